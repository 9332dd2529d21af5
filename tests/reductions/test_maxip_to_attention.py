from __future__ import annotations

import numpy as np
import pytest

from finegrained.attention import exact
from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.logspace import LogArray
from instances.maxip import MaxIPInstance, max_inner_products
from instances.ov import OVInstance
from reductions import Chain, path
from reductions.maxip_to_attention import MaxIPToAttention, OVToMaxIP


def _solve(att):
    return exact(att.Q, att.K, att.V, scale=att.scale)


def test_karp_decision_on_random_instances_with_margins():
    rng = np.random.default_rng(0)
    r = MaxIPToAttention()
    for _ in range(150):
        n_a, n_b, d = rng.integers(1, 8), rng.integers(1, 8), rng.integers(1, 4)
        W = int(rng.integers(1, 50))
        inst = MaxIPInstance(rng.integers(-W, W + 1, (n_a, d)), rng.integers(-W, W + 1, (n_b, d)),
                             rng.integers(-W * W, W * W + 1, n_a))
        att = r.forward(inst)
        out = _solve(att)
        truth = inst.brute_force_solve().yes
        u = np.where(out.sign[:, 0] > 0, np.exp(np.maximum(out.log_abs[:, 0], -700.0)), 0.0)
        # The derived gap: <= 1/9 when some <a, b> >= tau, >= 8/9 otherwise.
        assert np.all(u[truth] <= 1 / 9 + 1e-12) and np.all(u[~truth] >= 8 / 9 - 1e-12)
        assert np.array_equal(r.backward(inst, out).yes, truth)
        worst = LogArray.from_float(np.clip(u + np.where(truth, 0.25, -0.25), 1e-300, None)[:, None])
        assert np.array_equal(r.backward(inst, worst).yes, truth)


def test_binary_search_finds_max_inner_product():
    rng = np.random.default_rng(1)
    r = MaxIPToAttention()

    def decide(inst):
        return r.backward(inst, _solve(r.forward(inst)))

    for _ in range(100):
        d, W = int(rng.integers(1, 4)), int(rng.integers(1, 1000))
        A = rng.integers(-W, W + 1, (int(rng.integers(1, 6)), d))
        B = rng.integers(-W, W + 1, (int(rng.integers(1, 6)), d))
        assert np.array_equal(max_inner_products(A, B, decide), (A @ B.T).max(axis=1))


def test_end_to_end_from_ov_and_ksat():
    assert path("OV", "Max-IP").problems == ["OV", "Max-IP"]
    assert path("k-SAT", "Max-IP").problems == ["k-SAT", "OV", "Max-IP"]
    rng = np.random.default_rng(2)
    chain_ov = Chain([*path("OV", "Max-IP").steps, MaxIPToAttention()])
    for _ in range(100):
        ov = OVInstance(rng.random((rng.integers(1, 7), 4)) < 0.5, rng.random((rng.integers(1, 7), 4)) < 0.5)
        trace = chain_ov.forward_trace(ov)
        pair = chain_ov.backward(ov, _solve(trace[-1]), trace)
        assert (pair is None) == (ov.brute_force_solve() is None)
        if pair is not None:
            assert ov.is_orthogonal(pair)
    chain = Chain([*path("k-SAT", "Max-IP").steps, MaxIPToAttention()])
    for _ in range(100):
        nv = int(rng.integers(1, 7))
        clauses = [[int(v) * int(rng.choice([-1, 1])) for v in rng.choice(np.arange(1, nv + 1),
                    size=min(nv, 3), replace=False)] for _ in range(int(rng.integers(1, 12)))]
        f = CNFFormula(clauses, num_vars=nv)
        trace = chain.forward_trace(f)
        assignment = chain.backward(f, _solve(trace[-1]), trace)
        assert (assignment is not None) == (f.solve_cdcl() is not None)
        if assignment is not None:
            assert f.is_satisfied_by(assignment)


def test_ov_to_maxip_and_errors():
    ov = OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1]])
    mip = OVToMaxIP().forward(ov)
    assert mip.brute_force_solve().yes.tolist() == [True, False]
    with pytest.raises(ParameterError):
        OVToMaxIP().backward(ov, type(mip.brute_force_solve())([False, True]))
    with pytest.raises(ParameterError):
        MaxIPInstance([[1.5]], [[1]], 0)
    with pytest.raises(ParameterError):
        MaxIPToAttention().forward(MaxIPInstance(np.zeros((1, 2)), np.zeros((0, 2)), 0))
