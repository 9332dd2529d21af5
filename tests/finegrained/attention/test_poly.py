"""Tests of the Alman-Song polynomial method: features, degree selection, certificate, guards and planner."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention import poly as poly_module
from finegrained.attention.exact import exact
from finegrained.attention.poly import (
    ExpPolynomial,
    MonomialIndex,
    choose_degree,
    exp_polynomial,
    feature_maps,
    log_relative_error_bound,
    poly,
    poly_oracle,
    poly_plan,
    score_radius,
)
from instances.errors import FinegrainedError, NumericalError, ParameterError, ResourceLimitError
from instances.logspace import LogArray


@settings(max_examples=40, deadline=None)
@given(
    d=st.integers(1, 4),
    g=st.integers(0, 5),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1.0, 0.25, -0.5]),
)
def test_feature_map_identity(d: int, g: int, n: int, seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    Q, K = rng.uniform(-1.5, 1.5, size=(n, d)), rng.uniform(-1.5, 1.5, size=(n + 1, d))
    coeffs = rng.normal(size=g + 1)
    U1, U2 = feature_maps(Q, K, coeffs, scale=scale)
    assert U1.shape == (n, math.comb(g + d, d)) and U2.shape == (n + 1, math.comb(g + d, d))
    expected = np.polynomial.polynomial.polyval(scale * Q @ K.T, coeffs)
    np.testing.assert_allclose(U1 @ U2.T, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d,g", [(1, 0), (1, 7), (3, 4), (5, 3), (8, 2)])
def test_monomial_index_counts_and_weights(d: int, g: int) -> None:
    index = MonomialIndex.build(d, g)
    assert index.rank == math.comb(g + d, d)
    for k in range(g + 1):
        block = slice(index.offsets[k], index.offsets[k + 1])
        assert index.offsets[k + 1] - index.offsets[k] == math.comb(k + d - 1, d - 1)
        assert (index.degree[block] == k).all()
        # multinomial theorem at x = (1, ..., 1): sum of k!/alpha! over |alpha| = k is d^k
        assert index.weight[block].sum() == pytest.approx(d**k)
    # all monomials distinct: evaluate at generic points
    X = np.random.default_rng(0).uniform(0.5, 2.0, size=(3, d))
    M = index.monomials(X)
    assert len({tuple(np.round(col, 12)) for col in M.T}) == index.rank


@pytest.mark.parametrize("radius", [0.05, 0.5, 1.0, 2.0, 4.0, 7.5])
@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-10])
def test_degree_selection_is_proved_minimal_and_grid_checked(radius: float, eps: float) -> None:
    p = exp_polynomial(radius, eps)
    assert p.bound <= eps
    assert math.exp(log_relative_error_bound(radius, p.degree, p.method)) == pytest.approx(p.bound)
    if p.degree > 0:
        for method in ("chebyshev", "taylor"):
            assert log_relative_error_bound(radius, p.degree - 1, method) > math.log(eps)
    # an independent dense grid, including the endpoints where the relative error peaks
    x = np.concatenate([np.linspace(-radius, radius, 20001), [-radius, radius]])
    rel = np.abs(np.polynomial.polynomial.polyval(x, p.coefficients) * np.exp(-x) - 1.0)
    assert rel.max() <= eps
    assert p.grid_error <= eps
    assert len(p.coefficients) == p.degree + 1


def test_degree_grows_like_lemma_2_1() -> None:
    # g is Theta(max(R, log(1/eps)/log(log(1/eps)/R))): linear in R for large R, sub-logarithmic in 1/eps
    degrees = [choose_degree(r, 1e-6)[0] for r in (1.0, 4.0, 16.0, 64.0)]
    assert degrees == sorted(degrees)
    assert 1.2 < degrees[-1] / 64.0 < 3.0
    assert choose_degree(0.0, 1e-6)[0] == 0


def test_chebyshev_and_taylor_bounds_match_closed_forms() -> None:
    r, g = 1.5, 6
    cheb = 2 * (r / 2) ** (g + 1) * math.exp(2 * r) / math.factorial(g + 1)
    taylor = r ** (g + 1) * math.exp(r) / math.factorial(g + 1)
    assert math.exp(log_relative_error_bound(r, g, "chebyshev")) == pytest.approx(cheb)
    assert math.exp(log_relative_error_bound(r, g, "taylor")) == pytest.approx(taylor)
    with pytest.raises(ParameterError, match="unknown polynomial method"):
        log_relative_error_bound(r, g, "pade")


@pytest.mark.parametrize(
    "d,B,eps,scale",
    [(2, 0.5, 1e-3, None), (4, 1.0, 1e-6, None), (3, 2.0, 1e-3, None), (8, 1.0, 1e-6, None),
     (4, 1.0, 1e-4, -0.7), (1, 3.0, 1e-8, 1.0)],
)
def test_certified_error_holds(d: int, B: float, eps: float, scale: float | None) -> None:
    rng = np.random.default_rng(d * 1000 + int(B * 10))
    Q = rng.uniform(-B, B, size=(300, d))
    K = rng.uniform(-B, B, size=(257, d))
    V = rng.uniform(-B, B, size=(257, 3))
    res = poly(Q, K, V, eps=eps, B=B, scale=scale)
    ref = exact(Q, K, V, scale=scale).to_float()
    err = np.abs(res.output.to_float() - ref).max()
    assert err <= res.error_bound
    assert res.poly_error <= eps
    assert res.error_bound <= 2 * (eps + res.rounding_error) * np.abs(V).max() * 1.01
    lo, hi = res.interval
    s = (1.0 / d if scale is None else scale) * (Q @ K.T)
    assert lo <= s.min() and s.max() <= hi
    assert res.rank == math.comb(res.degree + d, d)


@settings(max_examples=15, deadline=None)
@given(
    d=st.integers(1, 4),
    B=st.floats(0.1, 1.5),
    eps=st.sampled_from([1e-2, 1e-4, 1e-7]),
    seed=st.integers(0, 2**32 - 1),
)
def test_certified_error_property(d: int, B: float, eps: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Q, K, V = (rng.uniform(-B, B, size=(40, d)) for _ in range(3))
    res = poly(Q, K, V, eps=eps)
    assert np.abs(res.output.to_float() - exact(Q, K, V).to_float()).max() <= res.error_bound


def test_poly_oracle_matches_poly() -> None:
    rng = np.random.default_rng(3)
    Q, K, V = (rng.uniform(-1, 1, size=(50, 2)) for _ in range(3))
    out = poly_oracle(Q, K, V, eps=1e-5)
    assert isinstance(out, LogArray)
    np.testing.assert_array_equal(out.to_float(), poly(Q, K, V, eps=1e-5).output.to_float())


def test_zero_scores_are_exact() -> None:
    Q = np.zeros((4, 3))
    K = np.random.default_rng(0).normal(size=(5, 3))
    V = np.arange(10.0).reshape(5, 2)
    res = poly(Q, K, V, eps=1e-6)
    assert res.degree == 0 and res.rank == 1 and res.interval == (0.0, 0.0)
    np.testing.assert_allclose(res.output.to_float(), np.tile(V.mean(axis=0), (4, 1)))


def test_positivity_guard_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    real = poly_module.exp_polynomial

    def negated(radius: float, eps: float) -> ExpPolynomial:
        p = real(radius, eps)
        return ExpPolynomial(p.radius, p.degree, p.method, -p.coefficients, p.bound, p.abs_sum, p.grid_error)

    monkeypatch.setattr(poly_module, "exp_polynomial", negated)
    rng = np.random.default_rng(0)
    Q, K, V = (rng.uniform(-1, 1, size=(20, 2)) for _ in range(3))
    with pytest.raises(NumericalError, match="row sum"):
        poly(Q, K, V, eps=1e-4)


def test_precision_loss_of_the_monomial_basis_is_refused() -> None:
    # R = 30: the certificate would need cancellation of terms ~e^30 down to ~e^-30, beyond float64
    Q = np.array([[30.0], [-30.0]])
    K = np.array([[1.0], [0.5]])
    with pytest.raises(NumericalError, match="voids the certificate"):
        poly(Q, K, np.ones((2, 1)), eps=1e-6, scale=1.0)


def test_parameter_errors() -> None:
    Q = np.ones((3, 2))
    with pytest.raises(ParameterError, match="eps"):
        poly(Q, Q, Q, eps=0.0)
    with pytest.raises(ParameterError, match="eps"):
        poly(Q, Q, Q, eps=1.5)
    with pytest.raises(ParameterError, match="B = 0.5"):
        poly(Q, Q, Q, eps=1e-3, B=0.5)
    with pytest.raises(ParameterError):
        poly_plan(0, 2, 1.0, 1e-3)


def test_planner_refuses_the_reduction_instances_without_allocating() -> None:
    plan = poly_plan(2**11, 1020, 230.0, 1e-6)
    assert not plan.fits and not plan.beats_exact
    assert plan.rank == math.comb(plan.degree + 1020, 1020)
    assert plan.log10_rank > 300
    plan = poly_plan(2**400, 10**4, 1e3, 1e-300)
    assert plan.log10_rank > 1000

    rng = np.random.default_rng(0)
    Q = rng.choice([-230.0, 230.0], size=(2**11, 1020))
    # refused by the planner, before any feature matrix exists: peak memory stays near the inputs' size
    tracemalloc.start()
    with pytest.raises(ResourceLimitError, match="SETH side of the B ~ sqrt"):
        poly(Q, Q, Q[:, :4], eps=1e-6)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * Q.nbytes


def test_planner_memory_limit_and_small_case() -> None:
    plan = poly_plan(2**16, 4, 1.0, 1e-6)
    assert (plan.degree, plan.rank, plan.fits, plan.beats_exact) == (8, 495, True, True)
    assert plan.memory_bytes < 100 * 2**20
    assert "beats exact" in plan.explanation
    rng = np.random.default_rng(1)
    Q, K, V = (rng.uniform(-1, 1, size=(64, 4)) for _ in range(3))
    with pytest.raises(ResourceLimitError, match="over the limit"):
        poly(Q, K, V, eps=1e-6, max_memory=10_000)


def test_score_radius_is_the_tighter_bound() -> None:
    Q = np.array([[1.0, 0.0, 0.0, 0.0]])
    K = np.array([[0.0, 0.0, 0.0, 1.0]])
    assert score_radius(Q, K, 0.25) == pytest.approx(0.25)  # norms 1*1/4, vs Lemma 3.3's d*B^2/4 = 1
    Q = np.ones((1, 4))
    assert score_radius(Q, Q, 0.25) == pytest.approx(1.0)


def test_blocked_matches_unblocked() -> None:
    rng = np.random.default_rng(5)
    Q, K, V = (rng.uniform(-1, 1, size=(333, 3)) for _ in range(3))
    a = poly(Q, K, V, eps=1e-6).output.to_float()
    b = poly(Q, K, V, eps=1e-6, block_bytes=8 * 84 * 7).output.to_float()  # 7-row blocks (r = 84)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_bench_module_smoke(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import sys

    from finegrained.bench import poly as bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        ["--ds", "2", "--Bs", "0.5", "--epss", "1e-3", "--min-log2-n", "6", "--max-log2-n", "8",
         "--exact-cap-log2", "7", "--sample-rows", "16"]
    )
    args.json = False
    result = bench.run(args)
    (case,) = result["cases"]
    assert case["bound_holds"] and len(case["rows"]) == 3
    assert case["rows"][-1]["exact_sampled"] and not case["rows"][0]["exact_sampled"]
    assert "time exponent" in capsys.readouterr().out
    assert bench.fit_exponent([2, 4, 8], [1.0, 2.0, 4.0]) == pytest.approx(1.0)
    assert bench.crossover([1, 2, 4, 8], [5, 1, 3, 1], [4, 2, 2, 2]) == 8
    assert bench.crossover([1, 2], [3, 3], [1, 1]) is None

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(FinegrainedError, match="needs matplotlib"):
        bench.plot_degree_rank("unused.png", 10, 1e-6, [2])
