"""anytemp's certificate: the quotient bound (issue 11 item 3), finiteness (item 4), the degree limit (issue 19),
and the bound formula recomputed independently with near-tight instances (issue 18 item 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention import exact_oracle, reference_oracle
from finegrained.attention.anytemp import (
    LOG_ETA_MIN,
    MAX_DEGREE,
    MAX_MONOMIALS,
    anytemp,
)
from instances.errors import NumericalError, ParameterError

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

U = 2.0**-53


def _lower_error(res, Q, K, V, scale):
    """Per entry, a lower bound on anytemp's true error: distance to exact() minus exact()'s certified error."""
    ans = exact_oracle(Q, K, V, scale=scale)
    assert ans.certificate.kind == "log"
    ex = ans.output.to_float()
    ex_err = np.abs(ex) * np.expm1(np.exp(ans.certificate.log_bound))
    return np.abs(res.output.to_float() - ex) - ex_err


# ---------------------------------------------------------------------------------- issue 11 item 3: the quotient


def test_issue_example_large_eps_against_v():
    """d = 2, n = 150, entries of size 6, eps = 4.5e4, ||V|| = 1: the old bound (54) was below the error (79)."""
    rng = np.random.default_rng(253)
    n = 196
    Q, K = rng.uniform(-6, 6, (20, 2)), rng.uniform(-6, 6, (n, 2))
    V = rng.uniform(-1, 1, (n, 1))
    res = anytemp(Q, K, V, eps=19926.8, scale=1.0)
    err = _lower_error(res, Q, K, V, 1.0)
    assert np.all(err <= np.exp(res.log_bounds))
    # the output is clipped to [min V, max V], so both it and the bound stay within the range of V
    assert np.all(np.abs(res.output.to_float()) <= 1) and res.error_bound <= 2.0


@pytest.mark.parametrize("seed", range(6))
def test_quotient_bound_over_the_whole_class(seed):
    """Random d in 1..3, n in 50..300, scores spanning up to ~10^4, eps from 1e-8 to 1e6 ||V||: error <= bound."""
    rng = np.random.default_rng(1000 + seed)
    worst = 0.0
    for _ in range(12):
        d = int(rng.integers(1, 4))
        n = int(rng.integers(50, 301))
        B = 10.0 ** rng.uniform(-0.5, 2)
        Q, K = rng.uniform(-B, B, (8, d)), rng.uniform(-B, B, (n, d))
        nu = 10.0 ** rng.uniform(-3, 3)
        V = rng.uniform(-nu, nu, (n, 2)) if rng.random() < 0.5 else rng.uniform(0, nu, (n, 2))
        eps = 10.0 ** rng.uniform(-8, 6) * np.abs(V).max()
        res = anytemp(Q, K, V, eps=eps, scale=1.0, leaf_size=int(rng.choice([1, 4, 16])))
        bound = np.exp(res.log_bounds)
        assert np.all(np.isfinite(bound))
        err = _lower_error(res, Q, K, V, 1.0)
        assert np.all(err <= bound), (d, n, B, eps)
        worst = max(worst, float((err / bound).max()))
    assert worst > 1e-6  # the class reaches errors that matter, not only rounding


@pytest.mark.parametrize("chunk", range(3))
def test_quotient_bound_on_the_audit_generator(chunk):
    """The audit's own family (d = 2, 20 queries, entries in [-6, 6], n in 50..300, eps = 10^U(-2, 5), V in
    [-1, 1]), 100 seeds per chunk. Large eps drops every node whose box lies below log(eps / 4n), so the computed
    denominator can be far below the true one (which is >= 1): the old divisor max(den - e_D, e^-delta) then gave
    bounds below the error (seeds 119 and 253: 2x and 11x)."""
    for seed in range(100 * chunk, 100 * chunk + 100):
        rng = np.random.default_rng(seed)
        n = rng.integers(50, 300)
        Q, K, V = rng.uniform(-6, 6, (20, 2)), rng.uniform(-6, 6, (n, 2)), rng.uniform(-1, 1, (n, 1))
        eps = 10 ** rng.uniform(-2, 5)
        res = anytemp(Q, K, V, eps=eps, scale=1.0)
        assert np.all(_lower_error(res, Q, K, V, 1.0) <= np.exp(res.log_bounds)), seed


# ---------------------------------------------------------------------- issue 18 item 2: the formula, recomputed


def _recompute(p: dict) -> np.ndarray:
    """The per-entry bound of docs/anytemp.md, from the quantities anytemp documents (``res.parts``)."""
    num, den, en, ed = p["num"], p["den"], p["err_num"], p["err_den"]
    delta, nu, vmin, vmax, single = p["delta"], p["nu_cols"], p["vmin"], p["vmax"], p["single_sign"]
    out = np.zeros_like(num)
    bound = np.zeros_like(num)
    for i in range(num.shape[0]):
        for c in range(num.shape[1]):
            d_low = max(den[i] - ed[i], math.exp(-2 * delta[i]))
            if den[i] > 0:
                t = num[i, c] / den[i]
                a = min((en[i, c] + nu[c] * ed[i]) / den[i], (en[i, c] + abs(t) * ed[i]) / d_low)
            else:
                t = 0.0
                a = (abs(num[i, c]) + en[i, c]) / d_low
            w = abs(t) + a if single[c] else nu[c]
            e = min(a + math.expm1(2 * delta[i]) * w, vmax[c] - vmin[c])
            t = min(max(t, vmin[c]), vmax[c])
            lg = math.log(abs(t)) if t else 0.0
            e += abs(t) * (U + math.expm1(2 * U * (abs(lg) + abs(p["v_log2"]) * math.log(2) + 4)))
            out[i, c], bound[i, c] = t, e * 2.0 ** p["v_log2"]
    return out, bound


@pytest.mark.parametrize("d,eps,vlaw", [(1, 1e-6, "signed"), (2, 1e-3, "positive"), (3, 10.0, "signed"),
                                        (2, 1e5, "signed")])
def test_bound_recomputed_from_its_formula(d, eps, vlaw):
    rng = np.random.default_rng(d)
    n = 240
    Q, K = rng.uniform(-8, 8, (30, d)), rng.uniform(-8, 8, (n, d))
    V = rng.uniform(-3, 3, (n, 2)) if vlaw == "signed" else rng.uniform(0, 3, (n, 2))
    res = anytemp(Q, K, V, eps=eps, scale=1.0)
    out, bound = _recompute(res.parts)
    assert np.allclose(np.exp(res.log_bounds), bound, rtol=1e-9, atol=0)
    assert np.allclose(res.output.to_float(), out * 2.0 ** res.parts["v_log2"], rtol=1e-12, atol=0)
    # the documented ingredients are themselves sane: positive errors, delta at least the score rounding
    assert np.all(res.parts["err_den"] > 0) and np.all(res.parts["err_num"] > 0)
    S = (np.abs(Q) @ np.abs(K).max(axis=0))
    assert np.all(res.parts["delta"] >= 4 * (d + 4) * U * S * 0.99 * (res.tree_dim == d))


def _edge_cluster(d: int, m: int, eps: float, gap: float):
    """One key at score 0 with V = 0 and m identical keys at score -L - gap with V = 1 (L = ln(4 n / eps)).

    The cluster lies just below the window: anytemp drops it, so its output is 0 while the truth is
    ``m e^{-L-gap} / (1 + m e^{-L-gap})``, and the dropped-mass term of the bound is ``m e^{-L-gap}``.
    """
    n = m + 1
    L = math.log(4 * n / eps)
    q = np.zeros((1, d))
    q[0, 0] = 1.0
    K = np.zeros((n, d))
    K[1:, 0] = -(L + gap)
    if d > 1:
        K[1:, 1] = 0.5  # off the query's direction: same score, a different point
    V = np.zeros((n, 1))
    V[1:, 0] = 1.0
    mass = m * math.exp(-(L + gap))
    return q, K, V, mass / (1 + mass), mass


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("eps", [1e-3, 1e-6])
def test_near_tight_window_edge(d, eps):
    """Mass dropped right at L: the measured error is >= 99% of the certified bound (a halved bound fails)."""
    q, K, V, truth, mass = _edge_cluster(d, 999, eps, 1e-4)
    # degree 0: the window is not spanned by one polynomial, so the pure cluster nodes reach the drop test
    res = anytemp(q, K, V, eps=eps, scale=1.0, leaf_size=1, degree=0)
    assert res.stats["dropped_mean"] >= 1
    err = abs(res.output.to_float()[0, 0] - truth)
    bound = float(np.exp(res.log_bounds[0, 0]))
    assert err <= bound
    assert err >= 0.99 * bound, (err, bound)
    # the dropped-mass terms are the ones documented: count e^{top} for the numerator and the denominator
    assert res.parts["err_den"][0] == pytest.approx(mass, rel=1e-9)
    assert res.parts["err_num"][0, 0] * 2.0 ** res.parts["v_log2"] == pytest.approx(mass, rel=1e-9)


def test_near_tight_cluster_inside_window_is_exact():
    """Control: the same cluster just above the cut is kept, and the output is right to rounding."""
    q, K, V, _, _ = _edge_cluster(1, 999, 1e-6, -1e-3)
    truth_mass = 999 * math.exp(-(math.log(4 * 1000 / 1e-6) - 1e-3))
    res = anytemp(q, K, V, eps=1e-6, scale=1.0, leaf_size=1, degree=0)
    assert res.stats["dropped_mean"] == 0
    assert res.output.to_float()[0, 0] == pytest.approx(truth_mass / (1 + truth_mass), rel=1e-10)


# ---------------------------------------------------------------------------- issue 11 item 4: finite or refused


@pytest.mark.parametrize("b,scale", [(1e300, 1e-300), (1e8, 1.0), (1e150, 1e-150), (3e7, 1.0)])
def test_huge_scores_refused_with_one_line(b, scale):
    rng = np.random.default_rng(0)
    Q, K, V = rng.uniform(-b, b, (5, 2)), rng.uniform(-b, b, (30, 2)), rng.normal(size=(30, 1))
    with pytest.raises(NumericalError, match="rescale") as info:
        anytemp(Q, K, V, eps=1e-3, scale=scale)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", ["qk_unbalanced", "v_huge", "v_tiny", "tiny_scale", "entries_1e6",
                                  "tiny_eps", "huge_eps"])
def test_extreme_ranges_give_finite_true_bounds(case):
    rng = np.random.default_rng(1)
    n, d, scale, eps = 60, 2, 1.0, 1e-6
    Q, K, V = rng.uniform(-1, 1, (7, d)), rng.uniform(-1, 1, (n, d)), rng.normal(size=(n, 2))
    if case == "qk_unbalanced":
        Q, K, scale = Q * 1e300, K * 1e-300, 3.0  # products of moderate size from factors at both ends
    elif case == "v_huge":
        V, eps = V * 1e306, 1e300
    elif case == "v_tiny":
        V, eps = V * 1e-300, 1e-306
    elif case == "tiny_scale":
        Q, K, scale = Q * 1e3, K * 1e3, 1e-300
    elif case == "entries_1e6":
        Q, K = Q * 1e6, K * 1e6
    elif case == "tiny_eps":
        eps = 1e-300
    else:
        eps = 1e300
    res = anytemp(Q, K, V, eps=eps, scale=scale)
    assert np.all(np.isfinite(res.row_bounds)) and np.all(np.isfinite(res.log_bounds))
    nu = np.abs(V).max()
    ans = reference_oracle(Q, K, V, scale=scale)  # mpmath: exact() itself overflows on some of these inputs
    # compare relative to ||V|| so that 1e306 and 1e-300 stay representable
    ex = ans.output.sign * np.exp(ans.output.log_abs - math.log(nu))
    ex_err = np.abs(ex) * np.expm1(np.exp(ans.certificate.log_bound))
    got = res.output.sign * np.exp(res.output.log_abs - math.log(nu))
    assert np.all(np.abs(got - ex) - ex_err <= np.exp(res.log_bounds - math.log(nu)) * (1 + 1e-9) + 1e-300)


# ---------------------------------------------------------------------------------------- issue 19: the degree


@pytest.mark.parametrize("degree", [10000, MAX_DEGREE + 1, -1])
def test_degree_out_of_range_refused(degree):
    rng = np.random.default_rng(2)
    Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(9, 2)), rng.normal(size=(9, 1))
    with pytest.raises(ParameterError, match="degree"):
        anytemp(Q, K, V, eps=1e-3, degree=degree)


@pytest.mark.parametrize("degree", [2.5, "8", True, float("nan")])
def test_degree_must_be_an_integer(degree):
    rng = np.random.default_rng(2)
    Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(9, 2)), rng.normal(size=(9, 1))
    with pytest.raises(ParameterError, match="degree must be an integer"):
        anytemp(Q, K, V, eps=1e-3, degree=degree)


def test_degree_limits_monomials_and_max_degree_works():
    rng = np.random.default_rng(3)
    Q, K, V = rng.normal(size=(6, 4)), rng.normal(size=(40, 4)), rng.normal(size=(40, 1))
    with pytest.raises(ParameterError, match=str(MAX_MONOMIALS)):
        anytemp(Q, K, V, eps=1e-3, degree=MAX_DEGREE)  # C(36, 4) moments per node in 4 dimensions
    Q, K, V = rng.normal(size=(6, 1)) * 3, rng.normal(size=(300, 1)) * 3, rng.normal(size=(300, 1))
    res = anytemp(Q, K, V, eps=1e-9, degree=MAX_DEGREE, scale=1.0, leaf_size=4)
    assert res.degree == MAX_DEGREE
    assert np.all(_lower_error(res, Q, K, V, 1.0) <= np.exp(res.log_bounds))
    # an integral float is accepted as well
    assert anytemp(Q, K, V, eps=1e-3, degree=6.0, scale=1.0).degree == 6


@pytest.mark.parametrize("kw", [{"leaf_size": 0}, {"leaf_size": 2.5}, {"query_batch": -3}, {"low_rank": "yes"},
                                {"eps": float("nan")}, {"eps": "x"}])
def test_other_arguments_checked(kw):
    rng = np.random.default_rng(4)
    Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(9, 2)), rng.normal(size=(9, 1))
    args = {"eps": 1e-3, **kw}
    with pytest.raises(ParameterError):
        anytemp(Q, K, V, **args)


def test_window_floor_constant_is_inside_the_normal_range():
    # weights e^{x - M} >= e^{LOG_ETA_MIN - 64} (accepted nodes have radius <= 64) must stay normal floats
    assert LOG_ETA_MIN - 64 > math.log(np.finfo(np.float64).tiny)
