"""Max-IP -> Attention and OV -> Max-IP: round trips by check_reduction, margins, binary search, float64 range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention import exact
from instances.errors import ParameterError, ReductionError, WrongAnswerError
from instances.logspace import LogArray
from instances.maxip import MaxIPAnswer, MaxIPInstance, max_inner_products
from instances.ov import OVInstance
from reductions import Chain, check_reduction, path
from reductions.maxip_to_attention import MaxIPToAttention, OVToMaxIP, score_error_bound
from reductions.ov_to_attention import gadget_lambda


def _solve(att):
    return exact(att.Q, att.K, att.V, scale=att.scale)


def test_karp_property(generators):
    assert check_reduction(MaxIPToAttention(), generators["Max-IP"], trials=200, seed=4) is None
    assert check_reduction(MaxIPToAttention(), generators["Max-IP"], trials=50, seed=5, solve_target=_solve) is None
    assert check_reduction(OVToMaxIP(), generators["OV"], trials=200, seed=6) is None


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


def test_end_to_end_from_ov_and_ksat(generators):
    assert path("OV", "Max-IP").problems == ["OV", "Max-IP"]
    assert path("k-SAT", "Max-IP").problems == ["k-SAT", "OV", "Max-IP"]
    chain_ov = Chain([*path("OV", "Max-IP").steps, MaxIPToAttention()])
    assert check_reduction(chain_ov, generators["OV"], trials=100, seed=2, solve_target=_solve) is None
    chain = Chain([*path("k-SAT", "Max-IP").steps, MaxIPToAttention()])
    assert check_reduction(chain, generators["k-SAT"], trials=100, seed=3, solve_target=_solve) is None


def test_ov_to_maxip_and_errors():
    ov = OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1]])
    mip = OVToMaxIP().forward(ov)
    assert mip.brute_force_solve().yes.tolist() == [True, False]
    with pytest.raises(WrongAnswerError, match="no orthogonal partner"):
        OVToMaxIP().backward(ov, type(mip.brute_force_solve())([False, True]))
    with pytest.raises(ReductionError, match="shape"):
        OVToMaxIP().backward(ov, MaxIPAnswer([True]))
    with pytest.raises(ReductionError, match="MaxIPAnswer"):
        OVToMaxIP().backward(ov, [True, False])
    with pytest.raises(ParameterError):
        MaxIPInstance([[1.5]], [[1]], 0)
    with pytest.raises(ReductionError, match="at least one vector"):
        MaxIPToAttention().forward(MaxIPInstance(np.zeros((1, 2)), np.zeros((0, 2)), 0))
    with pytest.raises(ReductionError, match="expected"):
        MaxIPToAttention().backward(mip, LogArray.from_float(np.ones((3, 1))))


def _boundary_instance(rng: np.random.Generator, k: int) -> MaxIPInstance:
    """Entries of magnitude in [2^k - 2^(k-4), 2^k], random signs, thresholds at the row maximum or one above."""
    n_a, n_b, d = int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    lo = 2**k - 2 ** (k - 4)

    def draw(n):
        return rng.integers(lo, 2**k + 1, (n, d)) * rng.choice([-1, 1], (n, d))

    A, B = draw(n_a), draw(n_b)
    best = (A @ B.T).max(axis=1)
    return MaxIPInstance(A, B, best + rng.integers(0, 2, n_a))


def _unguarded_scores_decision(inst: MaxIPInstance) -> np.ndarray:
    """The decision an exact oracle makes on the gadget built without the range check (the old forward)."""
    lam = gadget_lambda(inst.n_b)
    Q = np.column_stack([lam * inst.A, lam * (0.5 - inst.tau)])
    K = np.zeros((inst.n_b + 1, inst.dim + 1))
    K[: inst.n_b, : inst.dim] = inst.B
    K[: inst.n_b, inst.dim] = 1.0
    V = np.zeros((inst.n_b + 1, 1))
    V[inst.n_b, 0] = 1.0
    out = exact(Q, K, V, scale=1.0)
    return ~((out.sign[:, 0] > 0) & (out.log_abs[:, 0] >= -math.log(2.0)))


def test_float64_range_check_over_the_failing_class():
    # Issue 11 item 6: entries near 2^26 make inner products near 2^52, where float64 scores are off by more than
    # lambda/2, and the float instance encodes the wrong answer. Every such instance must be refused.
    rng = np.random.default_rng(26)
    r = MaxIPToAttention()
    wrong_without_check = 0
    for k in range(24, 31):
        for _ in range(30):
            inst = _boundary_instance(rng, k)
            with pytest.raises(ReductionError, match="too large for float64"):
                r.forward(inst)
            wrong_without_check += int((_unguarded_scores_decision(inst) != inst.brute_force_solve().yes).any())
    assert wrong_without_check > 20  # the class really is one where the unchecked gadget answers wrongly


def test_float64_range_check_keeps_every_accepted_instance_correct():
    # Below the refusal bound the decision survives, at thresholds exactly at (and one above) every row's maximum.
    rng = np.random.default_rng(20)
    r = MaxIPToAttention()
    accepted = refused = 0
    for k in range(12, 25):
        for _ in range(15):
            inst = _boundary_instance(rng, k)
            lam = gadget_lambda(inst.n_b)
            if score_error_bound(inst, lam) > r.score_tolerance():
                with pytest.raises(ReductionError):
                    r.forward(inst)
                refused += 1
                continue
            accepted += 1
            att = r.forward(inst)
            for out in (_solve(att), att.brute_force_solve()):
                assert np.array_equal(r.backward(inst, out).yes, inst.brute_force_solve().yes)
    assert accepted > 100 and refused > 10
    # the tolerance is the derived ln(c/3)/2, and the bound scales with the inner products it covers
    assert math.isclose(r.score_tolerance(), 0.5 * math.log(8 / 3))
    small = MaxIPInstance([[3, 4]], [[5, -6]], 0)
    d, u = 2, 2.0**-53
    m = 3 * 5 + 4 * 6 + 0.5
    assert math.isclose(score_error_bound(small, 1.0), (d + 2) * u / (1 - (d + 2) * u) * m, rel_tol=1e-12)


def test_ov_to_maxip_refusals_are_their_whole_message():
    """Whole-message checks (mutation triage, issue 18): each names the argument that is wrong."""
    r, ov = OVToMaxIP(), OVInstance([[1, 0]], [[0, 1]])
    cases = [
        (lambda: r.forward(1), "the OV -> Max-IP input must be a OVInstance, got int"),
        (lambda: r.backward(1, MaxIPAnswer([True])), "the OV instance must be a OVInstance, got int"),
        (lambda: r.backward(ov, 1), "the Max-IP answer must be a MaxIPAnswer, got int"),
    ]
    for call, message in cases:
        with pytest.raises(ReductionError) as info:
            call()
        assert str(info.value) == message
