"""anytemp's small helpers against independent references (issue 18 item 6, mutation testing).

* ``_bessel_i`` and ``_log_expm1`` against mpmath at many points, including the switch points of each branch,
  and ``_bessel_i``'s relative error budget against its stated formula ``(4 m + 4 k + 12) u``;
* ``_rank_surely_above`` at its shape boundaries, on zero, huge, tiny and non-finite matrices, and on both sides
  of its documented threshold (the ``(r+1)``-th singular value of the seed-0 sketch ``A G`` at ``1e-6`` of the
  first);
* the exact fallback (no queries, one query, a scale other than ``1/d``, a zero column, the formula of its additive
  bound, the message when the exact oracle certifies nothing);
* the oracle's a priori refusals as whole messages, at their exact boundaries, and with ``V`` rescaled by powers of
  two (the units of the scaled ``V`` must not leak into the numbers stated).

Every input is built inside its test (mutmut maps mutants to the tests that call the code).
"""

from __future__ import annotations

import importlib
import math
import warnings

import mpmath
import numpy as np
import pytest

from finegrained.attention import exact_oracle, reference_oracle
from finegrained.attention.anytemp import (
    LOG_ETA_MIN,
    UNIT_ROUNDOFF,
    _bessel_i,
    _log_expm1,
    _rank_surely_above,
    _setup,
    anytemp,
    anytemp_oracle,
)
from finegrained.attention.protocol import Certificate, OracleAnswer, _fmt_log
from instances.errors import NumericalError, UncertifiedError


@pytest.fixture(autouse=True)
def _mp_40_digits():
    """40 digits for every mpmath reference here, restored afterwards (a global setting would leak to other tests)."""
    with mpmath.workdps(40):
        yield


# the package exports the function exact under the module's name, so fetch the module itself
exact_mod = importlib.import_module("finegrained.attention.exact")

# --------------------------------------------------------------------------------------------------- _bessel_i


def _series_steps(R: float, k: int) -> int:
    """Number of recurrence steps the documented stopping rule takes, in exact (mpmath) arithmetic.

    Step ``m`` adds ``t_m = (R/2)^(2m+k) / (m! (m+k)!)``, reached by the ratio ``(R/2)^2 / (m (m+k))``; the sum
    stops at the first ``m`` whose ratio is below 1/2 and whose term is below ``1e-18`` of the partial sum.
    """
    h = mpmath.mpf(R) / 2
    term = h**k / mpmath.factorial(k)
    total, m = term, 0
    while True:
        m += 1
        ratio = h**2 / (m * (m + k))
        term *= ratio
        total += term
        if ratio < mpmath.mpf("0.5") and term < mpmath.mpf("1e-18") * total:
            return m


def _stated_rel(R: float, k: int) -> float:
    """The docstring's budget: ``(4 m + 2 k + 10) u`` for the series, ``2 k u`` for the first term, ``2 u`` slack."""
    return (4 * _series_steps(R, k) + 4 * k + 12) * UNIT_ROUNDOFF


# Radii from the table's smallest (2^-8) to its largest (2^6), smallest first (a broken recurrence fails fast),
# with the table's own grid points 2^(i/4) and points between them.
_RADII = [2.0**-8, 2.0**-5.75, 0.3, 0.5, 1.0, 2.0**0.25, 2.0, 3.7, 8.0, 2.0**4.5, 40.0, 2.0**6]


def test_bessel_i_matches_mpmath_within_its_stated_relative_error():
    kmax = 33  # MAX_DEGREE + 1, the largest order the Chebyshev table asks for
    for R in _RADII:
        vals, rel = _bessel_i(R, kmax)
        assert vals.shape == (kmax + 1,) and rel.shape == (kmax + 1,)
        assert vals.dtype == np.float64 and rel.dtype == np.float64
        for k in range(kmax + 1):
            true = mpmath.besseli(k, R)
            err = abs(mpmath.mpf(float(vals[k])) - true) / true
            assert err <= rel[k], (R, k, float(err), rel[k])
            assert rel[k] == _stated_rel(R, k), (R, k)


@pytest.mark.parametrize("kmax", [0, 1, 2, 7])
def test_bessel_i_returns_exactly_orders_0_to_kmax(kmax):
    vals, rel = _bessel_i(1.5, kmax)
    assert vals.shape == (kmax + 1,) and rel.shape == (kmax + 1,)
    for k in range(kmax + 1):
        assert abs(vals[k] / float(mpmath.besseli(k, 1.5)) - 1) <= rel[k]
        assert rel[k] == _stated_rel(1.5, k)


# -------------------------------------------------------------------------------------------------- _log_expm1


def _mp_log_expm1(x: float) -> mpmath.mpf:
    return mpmath.log(mpmath.expm1(mpmath.mpf(x)))


# 30 is the switch between log(expm1(x)) and x + log1p(-e^-x); 700 the clamp of e^-x.
_X = [1e-300, 1e-20, 1e-8, 0.25, 1.0, 2.5, 10.0, 29.5, 30.0, math.nextafter(30.0, math.inf), 30.25, 30.5, 31.0,
      31.5, 35.0, 100.0, 699.0, 700.0, 701.0, 1e4, 1e300]


def test_log_expm1_matches_mpmath_on_both_branches():
    got = _log_expm1(np.array(_X))
    assert got.dtype == np.float64 and got.shape == (len(_X),)
    for x, g in zip(_X, got):
        true = _mp_log_expm1(x)
        assert abs(mpmath.mpf(float(g)) - true) <= 5e-16 * abs(true), (x, float(g), float(true))
    # scalars, and 0 -> -inf exactly, without a divide-by-zero warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zero = _log_expm1(np.array([0.0, 1.0]))
        assert np.isneginf(zero[0]) and zero[1] == pytest.approx(float(_mp_log_expm1(1.0)), rel=5e-16)
        assert np.isneginf(_log_expm1(0.0))


def test_log_expm1_computes_in_float64_whatever_the_input_type():
    x32 = np.array([0.1, 1.5, 20.0, 29.75, 45.0], dtype=np.float32)
    got = _log_expm1(x32)
    assert got.dtype == np.float64
    for x, g in zip(x32.astype(np.float64), got):
        true = _mp_log_expm1(float(x))
        assert abs(mpmath.mpf(float(g)) - true) <= 5e-16 * abs(true), (x, float(g))
    ints = _log_expm1([0, 1, 31])
    assert ints.dtype == np.float64 and np.isneginf(ints[0])
    assert ints[2] == pytest.approx(float(_mp_log_expm1(31.0)), rel=5e-16)


# ----------------------------------------------------------------------------------------- _rank_surely_above


def _sketch_ratio(A: np.ndarray, r: int) -> float:
    """The documented criterion: sigma_{r+1} / sigma_1 of ``(A / max|A|) G``, ``G`` seed-0 Gaussian (d, r + 4)."""
    G = np.random.default_rng(0).standard_normal((A.shape[1], r + 4))
    s = np.linalg.svd((A / np.abs(A).max()) @ G, compute_uv=False)
    return float(s[r] / s[0])


def test_rank_surely_above_skips_the_sketch_at_the_shape_boundaries(monkeypatch):
    calls = []
    svd = np.linalg.svd

    def spy(*args, **kwargs):
        calls.append(np.shape(args[0]))
        return svd(*args, **kwargs)

    monkeypatch.setattr(np.linalg, "svd", spy)
    rng = np.random.default_rng(0)
    for r in (1, 4):
        # at most r rows or at most r columns: the rank is at most r, answered without any work
        for shape in ((r, r + 1), (r + 1, r), (r, r), (r, 50), (50, r), (0, r + 3), (r + 3, 0)):
            calls.clear()
            assert _rank_surely_above(rng.normal(size=shape), r) is False, (r, shape)
            assert calls == [], (r, shape)
        # r + 1 rows and columns of full rank: the sketch is taken, once, and the answer is True
        calls.clear()
        assert _rank_surely_above(rng.normal(size=(r + 1, r + 1)), r) is True
        assert calls == [(r + 1, r + 4)]


def test_rank_surely_above_on_special_matrices():
    r = 4
    eye = np.eye(r + 1)
    assert _rank_surely_above(eye, r) is True  # max |A| exactly 1
    assert _rank_surely_above(np.zeros((r + 2, r + 2)), r) is False
    # the normalisation by max |A| keeps huge and tiny matrices in range
    assert _rank_surely_above(1e300 * eye, r) is True
    assert _rank_surely_above(1e-300 * eye, r) is True
    assert _rank_surely_above(np.pad(3e200 * eye, ((0, 3), (0, 2))), r) is True
    # rank r exactly: False
    B = np.random.default_rng(1).normal(size=(12, r)) @ np.random.default_rng(2).normal(size=(r, 9))
    assert _rank_surely_above(B, r) is False
    # subnormal entries of a rank-1 matrix: only the normalised sketch still sees rank 1
    assert _rank_surely_above(5e-324 * np.outer([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]), 1) is False
    # a non-finite entry makes the SVD fail: "not sure", never an exception
    bad = np.eye(r + 1)
    bad[0, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert _rank_surely_above(bad, r) is False


@pytest.mark.parametrize("r", [1, 2, 4])
def test_rank_surely_above_switches_at_its_documented_threshold(r):
    """Singular values 1, 1/2, ..., t: the answer flips where the seed-0 sketch's ratio crosses 1e-6."""
    rng = np.random.default_rng(3)
    n0, d = r + 6, r + 3
    U = np.linalg.qr(rng.normal(size=(n0, r + 1)))[0]
    W = np.linalg.qr(rng.normal(size=(d, r + 1)))[0]

    def build(t):
        return (U * np.r_[0.5 ** np.arange(r), t]) @ W.T

    t = 1e-6
    t *= 1e-6 / _sketch_ratio(build(t), r)  # the ratio is proportional to t at this scale
    above, below = build(1.02 * t), build(0.98 * t)
    assert _sketch_ratio(above, r) > 1e-6 > _sketch_ratio(below, r)
    assert _rank_surely_above(above, r) is True
    assert _rank_surely_above(below, r) is False
    # the answer is deterministic (fixed seed), call after call
    assert [_rank_surely_above(above, r) for _ in range(3)] == [True] * 3


# ---------------------------------------------------------------------------------------------------- _fallback


def test_fallback_with_no_queries_returns_empty_float64_arrays():
    rng = np.random.default_rng(4)
    for d in (2, 7):
        res = anytemp(np.zeros((0, d)), rng.normal(size=(5, d)), rng.normal(size=(5, 3)), eps=1e-3)
        assert res.method == "exact-fallback" and res.stats == {"reason": "no queries"}
        assert res.output.sign.shape == (0, 3) and res.output.sign.dtype == np.int8
        assert res.output.log_abs.shape == (0, 3) and res.output.log_abs.dtype == np.float64
        assert res.log_bounds.shape == (0, 3) and res.log_bounds.dtype == np.float64
        assert res.row_bounds.shape == (0,) and res.error_bound == 0.0 and res.parts == {}


def test_fallback_certificate_is_its_formula_at_any_scale():
    """d = 7 > MAX_TREE_DIM: |T~ - T| <= |T~| (e^delta - 1) from exact's "log" certificate, at the caller's scale."""
    rng = np.random.default_rng(5)
    for n_q in (1, 6):
        Q, K = rng.normal(size=(n_q, 7)), rng.normal(size=(30, 7))
        V = rng.normal(size=(30, 3))
        V[:, 1] = 0.0  # an exactly zero output column: bound -inf there
        res = anytemp(Q, K, V, eps=1e-6, scale=0.9, low_rank=False)
        assert res.method == "exact-fallback" and res.stats == {"reason": "tree dimension 7 > 4"}
        assert res.output.shape == (n_q, 3) and res.log_bounds.shape == (n_q, 3)
        ex = exact_oracle(Q, K, V, scale=0.9)  # not the default scale 1/7
        assert np.array_equal(res.output.sign, ex.output.sign)
        assert np.array_equal(res.output.log_abs, ex.output.log_abs)
        delta = np.broadcast_to(np.exp(ex.certificate.log_bound), (n_q, 3))
        with np.errstate(divide="ignore"):
            want = np.where(ex.output.sign != 0, ex.output.log_abs + np.log(np.expm1(delta)) + 1e-12, -np.inf)
        assert np.all(np.isneginf(res.log_bounds[:, 1])) and np.all(res.output.sign[:, 1] == 0)
        live = np.isfinite(want)
        assert live.sum() == 2 * n_q
        assert np.all(np.abs(res.log_bounds[live] - want[live]) <= 1e-13)
        assert np.all(res.row_bounds == np.maximum(np.exp(res.log_bounds.max(axis=1)), 2.0**-1074))
        # and it is true: reference_oracle's certified interval lies inside
        truth = reference_oracle(Q, K, V, scale=0.9)
        t_lo, t_hi = truth.bounds().lower.to_float(), truth.bounds().upper.to_float()
        out, b = res.output.to_float(), np.exp(res.log_bounds)
        assert np.all(out - b <= t_lo) and np.all(t_hi <= out + b)


def test_fallback_refuses_in_one_line_when_exact_certifies_nothing(monkeypatch):
    real = exact_oracle

    def uncertified(*args, **kwargs):
        ans = real(*args, **kwargs)
        return OracleAnswer(ans.output, Certificate("none", detail="cancellation"), info=ans.info)

    monkeypatch.setattr(exact_mod, "exact_oracle", uncertified)
    rng = np.random.default_rng(6)
    with pytest.raises(NumericalError) as info:
        anytemp(rng.normal(size=(3, 6)), rng.normal(size=(9, 6)), rng.normal(size=(9, 1)), eps=1e-3,
                low_rank=False)
    assert str(info.value) == ("anytemp fell back to exact attention (tree dimension 6 > 4), whose float64 analysis "
                               "certifies nothing here (cancellation)")


# ----------------------------------------------------------------------------------------------------- _refusal

_HEAD = "anytemp cannot certify the requested additive error "


def _window_message(log_eps: float, n: int, vnorm: float) -> str:
    floor = math.log(4 * n * vnorm) + LOG_ETA_MIN
    return (_HEAD + f"{_fmt_log(log_eps)}: its window stops at e^-600 of the row maximum, where float64 weights turn "
            f"subnormal, so it certifies no additive error below 4 n ||V||inf e^-600 = {_fmt_log(floor)}")


@pytest.mark.parametrize("vscale", [0.75, 1000.0, 2.0**-40 * 3])
def test_window_floor_refusal_is_one_exact_message(vscale):
    rng = np.random.default_rng(7)
    n = 50
    Q, K = rng.normal(size=(10, 2)), rng.normal(size=(n, 2))
    V = rng.uniform(0.1, 1.0, (n, 2))
    V *= vscale / np.abs(V).max()  # ||V||inf = vscale exactly (up to one rounding)
    vnorm = float(np.abs(V).max())
    floor = math.log(4 * n * vnorm) + LOG_ETA_MIN
    for log_eps in (-2484.0, floor - 3.0):
        with pytest.raises(UncertifiedError) as info:
            anytemp_oracle(Q, K, V, log_eps=log_eps)
        assert str(info.value) == _window_message(log_eps, n, vnorm)


def test_window_floor_refusal_boundary_is_exact():
    """||V||inf in [1/2, 1) (no rescaling): refused just below the floor, answered at it."""
    rng = np.random.default_rng(8)
    n = 40
    Q, K = rng.normal(size=(4, 2)), rng.normal(size=(n, 2))
    V = rng.uniform(0.0, 0.7, (n, 1))
    floor = math.log(4 * n) + math.log(float(np.abs(V).max())) + LOG_ETA_MIN
    with pytest.raises(UncertifiedError, match="subnormal"):
        anytemp_oracle(Q, K, V, log_eps=math.nextafter(floor, -math.inf))
    ans = anytemp_oracle(Q, K, V, log_eps=floor)
    assert ans.info["log_eps"] == floor and ans.certificate.kind == "additive"


def _rounding_message(log_eps: float, Q, K, V) -> str:
    """The documented floor ||V_c|| (e^{2 delta_i} - 1), delta_i = 4 (r + 4) u (sum_l |q s_il| max_j |k_jl| + 1)."""
    S = np.abs(Q) @ np.abs(K).max(axis=0)  # scale 1, tree dimension 2 (no rewrite)
    delta = 4 * 6 * UNIT_ROUNDOFF * (S + 1.0)
    worst = float((np.expm1(2 * delta)[:, None] * np.abs(V).max(axis=0)[None, :]).max())
    return (_HEAD + f"{_fmt_log(log_eps)}: float64 rounding of scores up to {S.max():.3g} alone costs ||V_c||inf "
            f"(e^(2 delta) - 1) = {_fmt_log(math.log(worst))} on a column of V with both signs")


@pytest.mark.parametrize("vscale", [0.6, 1000.0, 2.0**-30 * 0.3])
def test_score_rounding_refusal_is_one_exact_message(vscale):
    rng = np.random.default_rng(9)
    Q, K = rng.uniform(-1e3, 1e3, (10, 2)), rng.uniform(-1e3, 1e3, (60, 2))
    V = rng.uniform(-1, 1, (60, 2))
    V[:, 1] *= 0.4  # two mixed columns of different norms: the worst one is stated
    V *= vscale / np.abs(V).max()
    with pytest.raises(UncertifiedError) as info:
        anytemp_oracle(Q, K, V, scale=1.0, log_eps=-60.0)
    assert str(info.value) == _rounding_message(-60.0, Q, K, V)


def test_score_rounding_refusal_counts_the_low_rank_perturbation():
    """Q of rank 1 in d = 3: the rewrite's rho adds to delta in the floor (delta_floor + rho)."""
    rng = np.random.default_rng(10)
    Q = np.outer(rng.uniform(-1e3, 1e3, 8), [0.6, -0.8, 0.0]) / 1.0
    K = rng.uniform(-1e3, 1e3, (40, 3))
    V = rng.uniform(-0.9, 0.9, (40, 1))
    st = _setup(Q, K, V, 1.0, None, 16, 2048, True)
    assert st.r_dim == 1 and float(st.rho.min()) > 0
    p = np.expm1(2 * (st.delta_floor + st.rho)) * float(np.abs(V).max())
    worst = float(p.max())
    assert worst > 1.05 * float((np.expm1(2 * st.delta_floor) * float(np.abs(V).max())).max())  # rho matters
    S = float((np.abs(st.Qs) @ np.abs(st.Kt).max(axis=0)).max())
    with pytest.raises(UncertifiedError) as info:
        anytemp_oracle(Q, K, V, scale=1.0, log_eps=-40.0)
    assert str(info.value) == (_HEAD + f"{_fmt_log(-40.0)}: float64 rounding of scores up to {S:.3g} alone costs "
                               f"||V_c||inf (e^(2 delta) - 1) = {_fmt_log(math.log(worst))} on a column of V with "
                               "both signs")
    # the boundary is exact: ||V|| < 1 (no rescaling), so the request log(worst) itself is not refused
    ans = anytemp_oracle(Q, K, V, scale=1.0, log_eps=math.log(worst))
    assert ans.certificate.kind == "additive"
    with pytest.raises(UncertifiedError, match="both signs"):
        anytemp_oracle(Q, K, V, scale=1.0, log_eps=math.nextafter(math.log(worst), -math.inf))


def test_refusal_edge_cases_are_not_refused():
    rng = np.random.default_rng(11)
    Q, K = rng.normal(size=(5, 2)), rng.normal(size=(30, 2))
    # V = 0: the output is exactly 0, whatever the request
    ans = anytemp_oracle(Q, K, np.zeros((30, 2)), log_eps=-5000.0)
    assert np.all(ans.output.sign == 0) and np.all(np.isneginf(ans.certificate.log_bound))
    assert ans.info["request_met"] is True
    # no value columns at all
    ans = anytemp_oracle(Q, K, np.zeros((30, 0)), log_eps=-5000.0)
    assert ans.output.shape == (5, 0)
    # a mixed column so small that its rounding floor underflows to 0 is no reason to refuse
    V = np.ones((30, 2))
    V[:, 1] = 1e-312 * np.where(np.arange(30) % 2 == 0, 1.0, -1.0)
    ans = anytemp_oracle(Q, K, V, log_eps=-30.0)
    assert ans.certificate.kind == "additive" and ans.info["request_met"] is True
