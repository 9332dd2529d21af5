from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention import anytemp_oracle, exact
from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.logspace import LogArray
from instances.ov import OVInstance
from reductions import path
from reductions.ov_to_attention import OVToAttention, gadget_lambda


def _random_ov(rng: np.random.Generator) -> OVInstance:
    n_a, n_b, m = rng.integers(1, 9), rng.integers(1, 9), rng.integers(1, 7)
    p = rng.uniform(0.2, 0.7)
    return OVInstance(rng.random((n_a, m)) < p, rng.random((n_b, m)) < p)


def test_karp_on_random_instances_with_margins():
    rng = np.random.default_rng(0)
    r = OVToAttention()
    yes_count = 0
    for _ in range(150):
        ov = _random_ov(rng)
        att = r.forward(ov)
        out = exact(att.Q, att.K, att.V, scale=att.scale)
        truth = np.array([ov.partner_of(i) is not None for i in range(ov.n_a)])
        u = np.where(out.sign[:, 0] > 0, np.exp(np.maximum(out.log_abs[:, 0], -700.0)), 0.0)
        # The derived gap: >= 8/9 on YES rows, <= 1/8 on NO rows.
        assert np.all(u[truth] >= 8 / 9 - 1e-12) and np.all(u[~truth] <= 1 / 8 + 1e-12)
        assert np.array_equal(r.row_answers(ov, out), truth)
        pair = r.backward(ov, out)
        expected = ov.brute_force_solve()
        assert (pair is None) == (expected is None)
        if pair is not None:
            assert ov.is_orthogonal(pair)
            yes_count += 1
        # Any answer within eps_a = 1/4 decodes the same way.
        worst = LogArray.from_float(np.clip(u + np.where(truth, -0.25, 0.25), 1e-300, None)[:, None])
        assert np.array_equal(r.row_answers(ov, worst), truth)
    assert 20 < yes_count < 140
    assert math.isclose(att.B, gadget_lambda(ov.n_b))


def test_chain_from_ksat_through_ov():
    chain = path("k-SAT", "Attention")
    assert chain.problems == ["k-SAT", "OV", "Attention"]
    assert path("OV", "Attention").problems == ["OV", "Attention"]
    assert path("k-SAT", "AAttC").problems == ["k-SAT", "OV", "Gap-ANN", "AAttC"]
    rng = np.random.default_rng(1)
    for _ in range(100):
        nv = int(rng.integers(1, 7))
        clauses = [[int(v) * int(rng.choice([-1, 1])) for v in rng.choice(np.arange(1, nv + 1),
                    size=min(nv, 3), replace=False)] for _ in range(int(rng.integers(1, 12)))]
        f = CNFFormula(clauses, num_vars=nv)
        trace = chain.forward_trace(f)
        att = trace[-1]
        assignment = chain.backward(f, exact(att.Q, att.K, att.V, scale=att.scale), trace)
        sat = f.solve_cdcl() is not None
        assert (assignment is not None) == sat
        if assignment is not None:
            assert f.is_satisfied_by(assignment)


def test_anytemp_oracle_decides_small_instances():
    rng = np.random.default_rng(2)
    r = OVToAttention()
    for _ in range(20):
        ov = _random_ov(rng)
        att = r.forward(ov)
        out = anytemp_oracle(att.Q, att.K, att.V, scale=att.scale)
        assert (r.backward(ov, out) is None) == (ov.brute_force_solve() is None)


def test_inconsistent_answer_raises():
    ov = OVInstance([[1, 1]], [[1, 0]])
    bad = LogArray.from_float(np.array([[1.0]]))
    with pytest.raises(ParameterError, match="no|none"):
        OVToAttention().backward(ov, bad)
    with pytest.raises(ParameterError):
        OVToAttention().backward(ov, LogArray.from_float(np.ones((2, 1))))
