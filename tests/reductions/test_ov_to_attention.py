from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention import anytemp_oracle, exact
from instances.errors import ParameterError, ReductionError, WrongAnswerError
from instances.logspace import LogArray
from instances.ov import OVInstance
from reductions import check_reduction, path
from reductions.ov_to_attention import OVToAttention, gadget_bounds, gadget_lambda


def _random_ov(rng: np.random.Generator) -> OVInstance:
    n_a, n_b, m = rng.integers(1, 9), rng.integers(1, 9), rng.integers(1, 7)
    p = rng.uniform(0.2, 0.7)
    return OVInstance(rng.random((n_a, m)) < p, rng.random((n_b, m)) < p)


@pytest.mark.parametrize("factor", [8.0, 4.0, 3.5])
def test_karp_property(factor, generators):
    cx = check_reduction(OVToAttention(factor=factor), generators["OV"], trials=150, seed=int(factor))
    assert cx is None, str(cx)


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
        # The derived gap: >= 8/9 on YES rows, <= 1/9 on NO rows.
        assert np.all(u[truth] >= 8 / 9 - 1e-12) and np.all(u[~truth] <= 1 / 9 + 1e-12)
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


def test_chain_from_ksat_through_ov(generators):
    chain = path("k-SAT", "Attention")
    assert chain.problems == ["k-SAT", "OV", "Attention"]
    assert path("OV", "Attention").problems == ["OV", "Attention"]
    assert path("k-SAT", "AAttC").problems == ["k-SAT", "OV", "Gap-ANN", "AAttC"]

    def solve(att):
        return exact(att.Q, att.K, att.V, scale=att.scale)

    cx = check_reduction(chain, generators["k-SAT"], trials=100, seed=1, solve_target=solve)
    assert cx is None, str(cx)


@pytest.mark.parametrize(("factor", "yes_low", "no_high"), [(4.0, 4 / 5, 1 / 5), (8.0, 8 / 9, 1 / 9)])
def test_gadget_bounds_are_the_exact_worst_cases(factor, yes_low, no_high):
    # lambda = 2 ln(c n): NO rows reach exactly 1/(c+1) (every <a, b> = 1), YES rows exactly c/(c+1) (n = 1);
    # with c = 4 that is 1/5 and 4/5, so eps_a = 1/4 leaves a margin of 1/20 on each side.
    assert np.allclose(gadget_bounds(factor), (yes_low, no_high), rtol=1e-15)
    r = OVToAttention(factor=factor)
    for n in (1, 2, 7, 50):
        no_row = r.forward(OVInstance([[1, 0]], [[1, 1]] * n)).brute_force_solve().to_float()[0, 0]
        assert math.isclose(no_row, no_high, rel_tol=1e-12)
        yes_row = r.forward(OVInstance([[1, 0]], [[0, 1]] + [[1, 1]] * (n - 1))).brute_force_solve().to_float()[0, 0]
        assert yes_row >= yes_low - 1e-12
        assert math.isclose(yes_row, yes_low, rel_tol=1e-12) == (n == 1)
    assert no_high + 0.25 < 0.5 < yes_low - 0.25
    if factor == 4.0:
        assert math.isclose(0.5 - (no_high + 0.25), 1 / 20) and math.isclose((yes_low - 0.25) - 0.5, 1 / 20)


def test_gadget_factor_must_leave_room():
    for bad in (3.0, 2.0, math.inf, math.nan):
        with pytest.raises(ParameterError, match="must exceed 3"):
            OVToAttention(factor=bad)


def test_anytemp_oracle_decides_small_instances():
    rng = np.random.default_rng(2)
    r = OVToAttention()
    for _ in range(20):
        ov = _random_ov(rng)
        att = r.forward(ov)
        out = anytemp_oracle(att.Q, att.K, att.V, scale=att.scale).output
        assert (r.backward(ov, out) is None) == (ov.brute_force_solve() is None)


def test_inconsistent_answer_raises():
    ov = OVInstance([[1, 1]], [[1, 0]])
    bad = LogArray.from_float(np.array([[1.0]]))
    with pytest.raises(WrongAnswerError, match="none exists"):
        OVToAttention().backward(ov, bad)
    with pytest.raises(ReductionError, match="expected"):
        OVToAttention().backward(ov, LogArray.from_float(np.ones((2, 1))))
    with pytest.raises(ReductionError, match="LogArray"):
        OVToAttention().backward(ov, np.ones((1, 1)))
