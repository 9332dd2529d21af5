"""Direct Gap-ANN solvers against brute force, the cost model, and ANN by binary search."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import finegrained.gap_ann_solvers as solvers
from finegrained.gap_ann_solvers import (
    METHODS,
    CostModel,
    ann_threshold,
    approximate_nearest_neighbour,
    ball_size,
    solve_gap_ann,
)
from instances.errors import FinegrainedError, ParameterError
from instances.gap_ann import GapANNInstance
from instances.gap_ann_builders import planted
from instances.solutions import GapANNAnswer


def test_doctests():
    """The docstring examples run and pass; a module that lost its examples fails here (zero attempted)."""
    result = doctest.testmod(solvers, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 14, result


def _brute(A, B):
    return np.abs(A[:, None, :].astype(int) - B[None, :, :]).sum(axis=2)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 140), st.floats(0.3, 5.0),
       st.floats(0.05, 0.95), st.integers(0, 2**32 - 1))
def test_every_method_matches_brute_force(n_a, n_b, d, t, density, seed):
    rng = np.random.default_rng(seed)
    A = (rng.random((n_a, d)) < density).astype(np.uint8)
    B = (rng.random((n_b, d)) < density).astype(np.uint8)
    B[: n_b // 2] = A[rng.integers(0, n_a, n_b // 2)] ^ (rng.random((n_b // 2, d)) < 0.03)  # some near pairs
    inst = GapANNInstance(A, B, t, 0.5)
    dist = _brute(A, B)
    md = dist.min(axis=1)
    for method in METHODS:
        if method == "ball" and ball_size(d, t) > 50_000:
            continue  # correct but slow to enumerate; large balls are covered by the refusal test
        sol = solve_gap_ann(inst, method, witnesses=True)
        assert sol.method == method and np.array_equal(sol.yes, md < t)
        if method == "ball":
            assert np.array_equal(sol.min_distances, np.where(md < t, md, np.inf))
            ok = sol.witnesses >= 0
            assert np.array_equal(ok, md < t)
            assert np.array_equal(dist[np.flatnonzero(ok), sol.witnesses[ok]], md[ok])
        else:
            assert np.array_equal(sol.min_distances, md)
            assert np.array_equal(sol.witnesses, dist.argmin(axis=1))


def test_balanced_planted_instance_all_methods_and_auto():
    p = planted(300, 64, 3, 1.0, 20, seed=4)
    for method in (*METHODS, "auto"):
        sol = solve_gap_ann(p.instance, method)
        assert np.array_equal(sol.yes, p.expected_yes)
    sol = solve_gap_ann(p.instance, "gemm", witnesses=True)
    assert np.array_equal(sol.min_distances, p.min_distances) and np.array_equal(sol.witnesses, p.nearest)


def test_ball_survives_hash_collisions(monkeypatch):
    # a degenerate hash (every R_k equal) collides constantly; answers must still be exact
    rng = np.random.default_rng(0)
    A, B = rng.integers(0, 2, (20, 16)), rng.integers(0, 2, (30, 16))
    inst = GapANNInstance(A, B, 4.0, 0.5)
    real = np.random.default_rng

    class Fixed:
        def __init__(self, seed):
            self.g = real(seed)

        def integers(self, *a, size, **k):
            return np.full(size, 12345, dtype=np.uint64)

    monkeypatch.setattr(solvers.np.random, "default_rng", lambda seed=None: Fixed(seed))
    sol = solve_gap_ann(inst, "ball", witnesses=True)
    md = _brute(np.asarray(A), np.asarray(B)).min(axis=1)
    assert np.array_equal(sol.yes, md < 4)


def test_cost_model_estimate_is_its_stated_formula_and_choose_its_argmin():
    """estimate() is the module docstring's cost formula term by term; choose() takes its argmin."""
    model = CostModel(pop_word=3e-9, pop_pair=5e-10, gemm_dim=7e-11, gemm_pair=2e-10, ball_probe=1.1e-8,
                      ball_hash=1.3e-9, overhead=1e-4)
    n_a, n_b, d, t = 300, 500, 130, 3.0
    est = model.estimate(n_a, n_b, d, t)
    words = 3  # ceil(130 / 64)
    v = 1 + 130 + 130 * 129 // 2  # Hamming ball of radius ceil(3) - 1 = 2
    assert est["popcount"] == pytest.approx(n_a * n_b * (3e-9 * words + 5e-10) + 1e-4, rel=1e-12)
    assert est["gemm"] == pytest.approx(n_a * n_b * (7e-11 * d + 2e-10) + 1e-4, rel=1e-12)
    assert est["ball"] == pytest.approx(n_a * v * 1.1e-8 + n_b * d * 1.3e-9 + 1e-4, rel=1e-12)
    v_even = 1 + 130 * 129 // 2
    assert model.estimate(n_a, n_b, d, t, even_only=True)["ball"] == pytest.approx(
        n_a * v_even * 1.1e-8 + n_b * d * 1.3e-9 + 1e-4, rel=1e-12)
    # choose() follows the constants: make each method the cheapest in turn.
    inst = GapANNInstance(np.zeros((4, 8)), np.zeros((4, 8)), 2.0, 1.0)
    assert CostModel(gemm_dim=1.0, ball_probe=1.0).choose(inst) == "popcount"
    assert CostModel(pop_word=1.0, ball_probe=1.0).choose(inst) == "gemm"
    assert CostModel(pop_word=1.0, gemm_dim=1.0, ball_probe=0.0, ball_hash=0.0).choose(inst) == "ball"
    # A balanced instance is charged the even-weight ball only (every distance is even).
    A = np.array([[1, 0, 1, 0], [0, 1, 0, 1]])
    bal = GapANNInstance(A, A, 3.0, 1.0)
    assert bal.is_balanced()
    costs = CostModel(pop_word=1.0, gemm_dim=1.0, overhead=0.0)
    assert costs.estimate(2, 2, 4, 3.0, even_only=True)["ball"] < costs.estimate(2, 2, 4, 3.0)["ball"]
    assert costs.choose(bal) == "ball"


def test_cost_model_and_refusals():
    model = CostModel()
    est = model.estimate(2**14, 2**14, 256, 1.0)
    assert min(est, key=est.get) == "ball"  # radius 0: one lookup per query
    assert model.estimate(2**10, 2**10, 256, 60.0)["ball"] == np.inf
    assert ball_size(256, 60) > solvers.MAX_BALL
    inst = GapANNInstance(np.zeros((2, 256)), np.zeros((2, 256)), 60.0, 1.0)
    with pytest.raises(ParameterError, match="Hamming ball"):
        solve_gap_ann(inst, "ball")
    with pytest.raises(ParameterError, match="unknown Gap-ANN method"):
        solve_gap_ann(inst, "magic")


def test_calibrate_recovers_the_constants_of_a_known_machine(monkeypatch):
    """calibrate() on a fake clock where each kernel costs exactly a known model: it must return that model."""
    truth = CostModel(pop_word=0.9e-9, pop_pair=0.07e-9, gemm_dim=0.03e-9, gemm_pair=0.2e-9, ball_probe=17e-9)
    clock = [0.0]
    calls = []

    def advance(seconds):
        clock[0] += seconds

    def fake_pop(A, B, want_arg):
        calls.append(("popcount", A.shape[1]))
        advance(A.shape[0] * B.shape[0] * (truth.pop_word * -(-A.shape[1] // 64) + truth.pop_pair))

    def fake_gemm(A, B, want_arg):
        calls.append(("gemm", A.shape[1]))
        advance(A.shape[0] * B.shape[0] * (truth.gemm_dim * A.shape[1] + truth.gemm_pair))

    def fake_ball(A, B, t, even_only, want_arg):
        calls.append(("ball", A.shape[1]))
        advance(A.shape[0] * ball_size(A.shape[1], t) * truth.ball_probe)

    class FakeTime:
        @staticmethod
        def perf_counter():
            return clock[0]

    monkeypatch.setattr(solvers, "_popcount_min", fake_pop)
    monkeypatch.setattr(solvers, "_gemm_min", fake_gemm)
    monkeypatch.setattr(solvers, "_ball_min", fake_ball)
    monkeypatch.setattr(solvers, "time", FakeTime)
    got = CostModel.calibrate(n=32)
    for name in ("pop_word", "pop_pair", "gemm_dim", "gemm_pair", "ball_probe"):
        assert getattr(got, name) == pytest.approx(getattr(truth, name), rel=1e-9), name
    assert got.ball_hash == CostModel.ball_hash
    # each timing is the best of three runs, on two dimensions per brute-force method
    assert sorted(set(calls)) == [("ball", 64), ("gemm", 64), ("gemm", 512), ("popcount", 64), ("popcount", 512)]
    assert len(calls) == 15


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 10), st.integers(1, 10), st.integers(1, 40), st.sampled_from([0.1, 0.5, 1.0, 2.0]),
       st.integers(0, 2**32 - 1))
def test_ann_binary_search_is_within_one_plus_eps(n_a, n_b, d, eps, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.integers(0, 2, (n_a, d)), rng.integers(0, 2, (n_b, d))
    best = _brute(A, B).min()
    r = approximate_nearest_neighbour((A, B), eps)
    assert r.guarantee_holds and r.lower_bound <= best <= r.distance <= (1 + eps) * best
    assert r.distance == _brute(A[r.i : r.i + 1], B[r.j : r.j + 1])[0, 0]
    assert len(r.calls) <= int(np.ceil(np.log2(d + 1))) + 1


def test_ann_thresholds_and_faulty_deciders():
    for eps in (0.1, 0.5, 1.0, 0.3333):
        for k in range(0, 50):
            t = ann_threshold(k, eps)
            assert k < t <= k + 0.5 and np.floor((1 + eps) * t - 1e-9) == np.floor((1 + eps) * k)
    A = np.eye(4, dtype=np.uint8)
    with pytest.raises(FinegrainedError, match="answered NO on every row"):
        approximate_nearest_neighbour((A, A), 0.5, decider=lambda inst: GapANNAnswer(np.zeros(inst.n_a, bool)))
    with pytest.raises(ParameterError, match="unknown decider"):
        approximate_nearest_neighbour((A, A), 0.5, decider="psychic")
    with pytest.raises(ParameterError):
        approximate_nearest_neighbour((A, A[:, :3]), 0.5)
    r = approximate_nearest_neighbour(GapANNInstance(A, A, 1.0, 1.0), 0.5, method="popcount")
    assert r.distance == 0 and r.decider == "direct[popcount]"
