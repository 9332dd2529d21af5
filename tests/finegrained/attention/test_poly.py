"""Tests of the Alman-Song polynomial method: features, degree selection, certificate, guards and planner."""

from __future__ import annotations

import importlib
import math
import tracemalloc

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention.exact import exact
from finegrained.attention.poly import (
    ExpPolynomial,
    MonomialIndex,
    choose_degree,
    exp_polynomial,
    feature_maps,
    lemma_3_6_factor,
    log_relative_error_bound,
    poly,
    poly_oracle,
    poly_plan,
    score_radius,
)
from finegrained.attention.protocol import OracleAnswer
from finegrained.attention.reference import reference
from instances.errors import (
    NumericalError,
    ParameterError,
    ResourceLimitError,
    UncertifiedError,
)

# the package exports the function poly; the module itself is reached through importlib
poly_module = importlib.import_module("finegrained.attention.poly")


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
    # the stated closed forms, recomputed here with exact factorials (not through log_relative_error_bound)
    closed = {"chebyshev": lambda g: 2 * (radius / 2) ** (g + 1) * math.exp(2 * radius) / math.factorial(g + 1),
              "taylor": lambda g: radius ** (g + 1) * math.exp(radius) / math.factorial(g + 1)}
    assert p.bound == pytest.approx(closed[p.method](p.degree), rel=1e-12)
    assert p.bound == pytest.approx(min(closed["chebyshev"](p.degree), closed["taylor"](p.degree)), rel=1e-12)
    if p.degree > 0:  # minimal: one degree less, neither family proves eps
        assert min(closed["chebyshev"](p.degree - 1), closed["taylor"](p.degree - 1)) > eps
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


def test_poly_oracle_matches_poly_and_certifies_its_bound() -> None:
    rng = np.random.default_rng(3)
    Q, K, V = (rng.uniform(-1, 1, size=(50, 2)) for _ in range(3))
    answer = poly_oracle(Q, K, V, eps=1e-5)
    assert isinstance(answer, OracleAnswer)
    res = poly(Q, K, V, eps=1e-5)
    np.testing.assert_array_equal(answer.output.to_float(), res.output.to_float())
    assert answer.certificate.kind == "additive"
    assert answer.certificate.worst_log_bound == pytest.approx(math.log(res.error_bound), rel=1e-12)
    # the certified interval contains the exact answer
    bounds = answer.bounds()
    ref = exact(Q, K, V).to_float()
    assert (bounds.lower.to_float() <= ref).all() and (ref <= bounds.upper.to_float()).all()


@pytest.mark.parametrize("log_eps", [math.log(1e-3), math.log(1e-8), -25.0, math.log(0.5), 30.0])
def test_poly_oracle_plans_for_the_requested_accuracy(log_eps: float) -> None:
    rng = np.random.default_rng(4)
    Q, K = rng.uniform(-1, 1, size=(80, 3)), rng.uniform(-1, 1, size=(70, 3))
    V = rng.uniform(-3, 3, size=(70, 2))
    answer = poly_oracle(Q, K, V, log_eps=log_eps)
    assert answer.certificate.worst_log_bound <= log_eps
    err = np.abs(answer.output.to_float() - exact(Q, K, V).to_float()).max()
    assert err <= math.exp(answer.certificate.worst_log_bound)
    # it plans for the accuracy, not for more: a looser request never needs a higher degree
    looser = poly_oracle(Q, K, V, log_eps=log_eps + 5)
    assert looser.info["degree"] <= answer.info["degree"]


def test_poly_oracle_refuses_quickly_what_it_cannot_certify() -> None:
    rng = np.random.default_rng(5)
    Q, K, V = (rng.uniform(-1, 1, size=(40, 2)) for _ in range(3))
    with pytest.raises(UncertifiedError, match="only accurate to"):  # e^-2484: below float64 output
        poly_oracle(Q, K, V, log_eps=-2484.0)
    with pytest.raises(UncertifiedError, match="requested"):  # an explicit eps_A too coarse for log_eps
        poly_oracle(Q, K, V, eps=0.1, log_eps=math.log(1e-6))
    # R = 12: rounding of the monomial basis (~n u e^{2R}) exceeds 1e-6; refused from the plan alone
    Qr = np.array([[12.0], [-12.0]])
    with pytest.raises(UncertifiedError, match="rounding"):
        poly_oracle(Qr, np.array([[1.0], [0.5]]), np.ones((2, 1)), scale=1.0, log_eps=math.log(1e-6))
    # a Lemma 4.7-sized instance: refused by the planner before any feature matrix exists
    Qb = rng.choice([-230.0, 230.0], size=(2**11, 1020))
    tracemalloc.start()
    with pytest.raises(ResourceLimitError, match="over the limit"):
        poly_oracle(Qb, Qb, Qb[:, :4], log_eps=-28.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 4 * Qb.nbytes


def test_poly_oracle_certifies_entry_by_entry() -> None:
    """One large query row among small ones and a column of small values: the per-entry bounds are far below
    the global one there, and each still holds against the 60-digit reference."""
    rng = np.random.default_rng(8)
    Q = rng.uniform(-0.3, 0.3, size=(40, 2))
    Q[0] *= 25.0
    K, V = rng.uniform(-1, 1, size=(30, 2)), rng.uniform(-1, 1, size=(30, 3))
    V[:, 2] *= 1e-4
    answer = poly_oracle(Q, K, V, eps=1e-9)
    bounds = np.exp(answer.certificate.log_bound)
    assert bounds.shape == (40, 3)
    assert bounds.max() == pytest.approx(poly(Q, K, V, eps=1e-9).error_bound, rel=1e-12)
    assert bounds[1:].max() < bounds[0].max() / 5 and bounds[:, 2].max() < bounds[:, 0].max() / 100
    err = np.abs(answer.output.to_float() - reference(Q, K, V, dps=60).to_float())
    assert (err <= bounds).all()


def test_poly_oracle_zero_values_are_exact() -> None:
    rng = np.random.default_rng(6)
    Q, K = rng.uniform(-1, 1, size=(5, 2)), rng.uniform(-1, 1, size=(4, 2))
    answer = poly_oracle(Q, K, np.zeros((4, 1)), log_eps=-2484.0)
    assert answer.certificate.worst_log_bound == -math.inf and (answer.output.to_float() == 0).all()


def _stated_bound(res, eps: float, d: int, n_k: int, v_max: float) -> tuple[float, float, float]:
    """poly's certificate from the formula its docstring states, recomputed without poly's helpers."""
    u = 2.0**-53
    R, g = res.interval[1], res.degree
    closed = {"chebyshev": 2 * (R / 2) ** (g + 1) * math.exp(2 * R) / math.factorial(g + 1),
              "taylor": R ** (g + 1) * math.exp(R) / math.factorial(g + 1)}
    eps_a = closed[res.method]  # Lemma 2.1 made explicit (the interpolation / Lagrange remainder)
    S = sum(abs(c) * R**k for k, c in enumerate(exp_polynomial(R, eps).coefficients))
    m = n_k + math.comb(g + d, d) + 4 * g + 16  # rounded operations per computed entry
    eps_round = (m * u / (1 - m * u)) * S * math.exp(R)
    lemma_3_6 = 2 * eps_a / (1 + math.sqrt(1 - eps_a**2)) * v_max  # sharp Lemma 3.6 (docstring, step 2)
    rounding = 2 * eps_round * v_max / (1 - eps_a - eps_round)  # step 3
    bound = lemma_3_6 + rounding
    return (bound + u * (v_max + bound)) * (1 + 4 * u), eps_a, eps_round


@pytest.mark.parametrize("d,B,eps,n", [(2, 0.5, 1e-3, 100), (3, 1.0, 1e-6, 300), (1, 2.5, 1e-9, 64),
                                       (4, 1.0, 0.3, 50)])
def test_error_bound_equals_its_stated_formula(d: int, B: float, eps: float, n: int) -> None:
    rng = np.random.default_rng(d + n)
    Q, K = rng.uniform(-B, B, size=(n, d)), rng.uniform(-B, B, size=(n + 3, d))
    V = rng.uniform(-2, 2, size=(n + 3, 2))
    res = poly(Q, K, V, eps=eps)
    expected, eps_a, eps_round = _stated_bound(res, eps, d, n + 3, float(np.abs(V).max()))
    assert res.poly_error == pytest.approx(eps_a, rel=1e-12)
    assert res.rounding_error == pytest.approx(eps_round, rel=1e-9)
    assert res.error_bound == pytest.approx(expected, rel=1e-12)


def test_lemma_3_6_factor_is_the_sharp_supremum() -> None:
    # sup over weights w (sum 1) and errors e_j in [-eps, eps] of sum w_j |e_j - ebar| / (1 + ebar),
    # searched over two-point distributions at the endpoints (the extremal ones) on a fine grid
    alphas = np.linspace(0.0, 1.0, 200001)
    for eps in (1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999):
        ebar = eps * (2 * alphas - 1)
        mad = 4 * eps * alphas * (1 - alphas)
        sup = float(np.max(mad / (1 + ebar)))
        assert lemma_3_6_factor(eps) == pytest.approx(sup, rel=1e-8)
        assert lemma_3_6_factor(eps) <= 2 * eps  # never above the paper's eps_A + eps_D


def _near_tight(R: float, eps: float):
    """Two keys with scores exactly +R and -R (the radius, where the interpolant's error peaks), values
    +-1 chosen against the sign of each key's weight change: the worst case of Lemma 3.6."""
    p = exp_polynomial(R, eps)
    rel = [float(mpmath.mpf(np.polynomial.polynomial.polyval(x, p.coefficients)) / mpmath.exp(x) - 1)
           for x in (R, -R)]
    w = [math.exp(R) / (2 * math.cosh(R)), math.exp(-R) / (2 * math.cosh(R))]
    ebar = w[0] * rel[0] + w[1] * rel[1]
    V = np.array([[math.copysign(1.0, rel[0] - ebar)], [math.copysign(1.0, rel[1] - ebar)]])
    Q, K = np.array([[1.0]]), np.array([[R], [-R]])
    with mpmath.workdps(60):
        a = [mpmath.exp(mpmath.mpf(R)), mpmath.exp(mpmath.mpf(-R))]
        ref = float((a[0] * V[0, 0] + a[1] * V[1, 0]) / (a[0] + a[1]))
    return Q, K, V, ref


@pytest.mark.parametrize("R,eps", [(0.01, 1e-5), (0.05, 1e-4), (0.2, 1e-5)])
def test_near_tight_instances_reach_most_of_the_bound(R: float, eps: float) -> None:
    """Measured error >= 0.6 x the certified bound: a bound (or Lemma 3.6 term) halved would be violated."""
    Q, K, V, ref = _near_tight(R, eps)
    res = poly(Q, K, V, eps=eps, scale=1.0)
    assert res.interval == (-R, R) and res.degree % 2 == 0  # even degree: errors of opposite sign at +-R
    err = abs(res.output.to_float()[0, 0] - ref)
    assert err <= res.error_bound
    assert err >= 0.6 * res.error_bound
    # the Lemma 3.6 term alone is what the measurement approaches (rounding is ~1e-15 here)
    assert err >= 0.6 * lemma_3_6_factor(res.poly_error) * np.abs(V).max()


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


def test_bench_module_smoke() -> None:
    from finegrained.bench import poly as bench

    result = bench.run(dims=[2], B=[0.5], eps=[1e-3], log2_n_min=6, log2_n_max=8, exact_cap_log2=7,
                       sample_rows=16, repeat=1)
    (case,) = result.cases
    assert case["bound_holds"] and len(case["rows"]) == 3
    assert case["rows"][-1]["exact_sampled"] and not case["rows"][0]["exact_sampled"]
    assert all(r["error"] <= r["error_bound"] for r in case["rows"])
    assert bench.crossover([1, 2, 4, 8], [5, 1, 3, 1], [4, 2, 2, 2]) == 8
    assert bench.crossover([1, 2], [3, 3], [1, 1]) is None


_Q3 = np.random.default_rng(9).uniform(-1, 1, size=(6, 2))
_BAD_CALLS = {
    "complex Q": lambda: poly(_Q3 + 1j, _Q3, _Q3, eps=1e-3),
    "object K": lambda: poly(_Q3, _Q3.astype(object), _Q3, eps=1e-3),
    "string V": lambda: poly(_Q3, _Q3, _Q3.astype(str), eps=1e-3),
    "NaN entry": lambda: poly(np.where(_Q3 > 0, np.nan, _Q3), _Q3, _Q3, eps=1e-3),
    "B = nan": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, B=np.nan),
    "B < 0": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, B=-1.0),
    "B string": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, B="2"),
    "eps = nan": lambda: poly(_Q3, _Q3, _Q3, eps=np.nan),
    "eps string": lambda: poly(_Q3, _Q3, _Q3, eps="1e-3"),
    "eps bool": lambda: poly(_Q3, _Q3, _Q3, eps=True),
    "scale = nan": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, scale=np.nan),
    "max_memory = nan": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, max_memory=np.nan),
    "max_memory < 0": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, max_memory=-5),
    "block_bytes = 2.5": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, block_bytes=2.5),
    "block_bytes = 0": lambda: poly(_Q3, _Q3, _Q3, eps=1e-3, block_bytes=0),
    "plan n = 2.5": lambda: poly_plan(2.5, 2, 1.0, 1e-3),
    "plan n < 0": lambda: poly_plan(-4, 2, 1.0, 1e-3),
    "plan d = nan": lambda: poly_plan(10, np.nan, 1.0, 1e-3),
    "plan B = inf": lambda: poly_plan(10, 2, np.inf, 1e-3),
    "plan B = nan": lambda: poly_plan(10, 2, np.nan, 1e-3),
    "plan d_v = 0": lambda: poly_plan(10, 2, 1.0, 1e-3, d_v=0),
    "plan radius overflow": lambda: poly_plan(10, 2, 1e200, 1e-3, scale=1.0),
    "exp_polynomial radius nan": lambda: exp_polynomial(np.nan, 1e-3),
    "exp_polynomial eps list": lambda: exp_polynomial(1.0, [1e-3]),
    "choose_degree radius inf": lambda: choose_degree(np.inf, 1e-3),
    "bound degree 2.5": lambda: log_relative_error_bound(1.0, 2.5, "taylor"),
    "bound degree < 0": lambda: log_relative_error_bound(1.0, -1, "taylor"),
    "index d = 2.5": lambda: MonomialIndex.build(2.5, 1),
    "index g < 0": lambda: MonomialIndex.build(2, -1),
    "features coefficients nan": lambda: feature_maps(_Q3, _Q3, np.array([1.0, np.nan])),
    "features coefficients complex": lambda: feature_maps(_Q3, _Q3, np.array([1.0, 1j])),
    "oracle log_eps nan": lambda: poly_oracle(_Q3, _Q3, _Q3, log_eps=np.nan),
    "oracle log_eps string": lambda: poly_oracle(_Q3, _Q3, _Q3, log_eps="-10"),
    "lemma factor 1": lambda: lemma_3_6_factor(1.0),
}


@pytest.mark.parametrize("case", sorted(_BAD_CALLS))
def test_bad_inputs_are_one_line_errors(case: str) -> None:
    with pytest.raises((ParameterError, NumericalError)) as info:
        _BAD_CALLS[case]()
    assert "\n" not in str(info.value) and str(info.value)


def test_feature_maps_checks_memory_before_allocating():
    # rank C(8 + 200, 200) ~ 7.6e13: refused from the sizes alone (a MemoryError before)
    with pytest.raises(ResourceLimitError, match=r"rank r = C\(8 \+ 200, 200\) = 7\.6e\+13 for 2 \+ 2 rows"):
        feature_maps(np.ones((2, 200)), np.ones((2, 200)), np.ones(9))
    Q, K = np.ones((3, 2)), np.ones((4, 2))
    need = 8 * math.comb(2 + 2, 2) * (3 + 4 + 2 + 2)
    U1, _ = feature_maps(Q, K, np.ones(3), max_memory=need)  # exactly at the limit: built
    assert U1.shape == (3, 6)
    with pytest.raises(ResourceLimitError, match="over the limit of 527"):
        feature_maps(Q, K, np.ones(3), max_memory=need - 1)


def test_feature_maps_overflow_is_one_numerical_error():
    with np.errstate(all="raise"):  # no numpy warning either: the check runs before
        with pytest.raises(NumericalError, match="overflows float64"):
            feature_maps(np.ones((2, 2)), np.ones((3, 2)), np.array([1.0, 1.0, 0.5]), scale=1e300)
        with pytest.raises(NumericalError, match="overflows float64"):
            feature_maps(np.full((1, 2), 1e200), np.ones((1, 2)), np.array([1.0, 1.0, 0.5]))


def test_poly_plan_of_huge_dimensions():
    with pytest.raises(ParameterError, match=r"d must be below 2\^1024"):
        poly_plan(10, 10**400, 1.0, 0.1)
    plan = poly_plan(10, 10**20, 1.0, 0.1)  # log10 of the rank from the exact integer, not lgamma's cancellation
    assert plan.log10_rank == pytest.approx(math.log10(math.comb(plan.degree + 10**20, plan.degree)), rel=1e-12)
    assert plan.log10_rank > 50 and not plan.fits and f"(10^{plan.log10_rank:.1f})" in plan.explanation
    assert math.isinf(poly_plan(10**400, 2, 1.0, 0.1).rounding_estimate)  # gamma_m for m u >= 1, no OverflowError


def test_poly_plan_refuses_a_rank_with_too_many_digits_at_once():
    # C(g + d, d) at d = 10^6 and scale 1 has ~950,000 digits: building it took minutes; the planner now estimates
    # its log10 at 60 digits and refuses before building it
    import time

    t0 = time.monotonic()
    for d in (10**6, 10**17):
        want = r"needs rank r = C\(\d+ \+ .*\) ~ 10\^9\.493e\+\d+, with more than 100000 digits"
        with pytest.raises(ResourceLimitError, match=want):
            poly_plan(10, d, 1.0, 1e-3, scale=1.0)
    assert time.monotonic() - t0 < 5
    plan = poly_plan(10, 1000, 1.0, 1e-3, scale=1.0)  # 948 digits: still planned exactly
    assert plan.log10_rank == pytest.approx(math.log10(plan.rank), rel=1e-15) and not plan.fits
