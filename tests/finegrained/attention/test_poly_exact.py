"""Exact checks of the polynomial method (issue 18, mutation testing): every field of a plan and of a result
against its stated formula recomputed here, boundaries, whole-message refusals and the streaming contract.

Every input is built inside its test (not at import time), so that the mutation tester associates the builders
with the tests that use them.
"""

from __future__ import annotations

import importlib
import math
import warnings

import mpmath
import numpy as np
import pytest

from finegrained.attention.exact import exact
from finegrained.attention.poly import (
    ExpPolynomial,
    MonomialIndex,
    choose_degree,
    exp_polynomial,
    feature_maps,
    lemma_3_6_factor,
    poly,
    poly_error_bound,
    poly_oracle,
    poly_plan,
)
from finegrained.attention.reference import reference
from instances.errors import NumericalError, ParameterError, ResourceLimitError, UncertifiedError

poly_module = importlib.import_module("finegrained.attention.poly")
U = 2.0**-53  # unit roundoff, restated


@pytest.fixture(autouse=True)
def _fresh_caches():
    """The polynomial and the monomial index are memoised: clear them so that every test recomputes them (a
    cache filled by an earlier test would hide those builders from the test, and from the mutation tester)."""
    poly_module._exp_polynomial.cache_clear()
    poly_module.MonomialIndex._build.cache_clear()
    yield


def _gamma(m: int) -> float:
    return m * U / (1 - m * U)


def _one_error(call) -> tuple[type, str]:
    with pytest.raises((ParameterError, NumericalError, ResourceLimitError, UncertifiedError)) as info:
        call()
    return type(info.value), str(info.value)


# ------------------------------------------------------------------------------------------------------------
# Whole-message refusals and accepted boundaries
# ------------------------------------------------------------------------------------------------------------


def _message_cases() -> dict:
    rng = np.random.default_rng(9)
    Q = rng.uniform(-1, 1, size=(6, 2))
    one = np.ones((3, 1))
    return {
        "plan n float": (lambda: poly_plan(2.5, 2, 1.0, 1e-3), ParameterError, "n must be an integer, got 2.5"),
        "plan n = 0": (lambda: poly_plan(0, 2, 1.0, 1e-3), ParameterError, "n must be >= 1, got 0"),
        "plan d = 0": (lambda: poly_plan(4, 0, 1.0, 1e-3), ParameterError, "d must be >= 1, got 0"),
        "plan d str": (lambda: poly_plan(4, "2", 1.0, 1e-3), ParameterError, "d must be an integer, got '2'"),
        "plan d_v = 0": (lambda: poly_plan(4, 2, 1.0, 1e-3, d_v=0), ParameterError, "d_v must be >= 1, got 0"),
        "plan d_v float": (lambda: poly_plan(4, 2, 1.0, 1e-3, d_v=1.0), ParameterError,
                           "d_v must be an integer, got 1.0"),
        "plan B str": (lambda: poly_plan(4, 2, "1", 1e-3), ParameterError, "B must be a real number, got '1'"),
        "plan B < 0": (lambda: poly_plan(4, 2, -1.0, 1e-3), ParameterError, "B must be finite and >= 0, got -1.0"),
        "plan scale str": (lambda: poly_plan(4, 2, 1.0, 1e-3, scale="x"), ParameterError,
                           "scale must be a real number, got 'x'"),
        "plan overflow": (lambda: poly_plan(4, 2, 1e200, 1e-3, scale=1.0), ParameterError,
                          "the score radius |scale| d B^2 overflows float64 (B = 1e+200, d = 2)"),
        "plan max_memory 0": (lambda: poly_plan(4, 2, 1.0, 1e-3, max_memory=0), ParameterError,
                              "max_memory must be >= 1, got 0"),
        "plan max_memory str": (lambda: poly_plan(4, 2, 1.0, 1e-3, max_memory="1"), ParameterError,
                                "max_memory must be an integer, got '1'"),
        "lemma str": (lambda: lemma_3_6_factor("x"), ParameterError, "eps_a must be a real number, got 'x'"),
        "lemma 1": (lambda: lemma_3_6_factor(1.0), ParameterError, "eps_a must lie in [0, 1), got 1.0"),
        "lemma < 0": (lambda: lemma_3_6_factor(-0.5), ParameterError, "eps_a must lie in [0, 1), got -0.5"),
        "poly max_memory 0": (lambda: poly(Q, Q, Q, eps=1e-3, max_memory=0), ParameterError,
                              "max_memory must be >= 1, got 0"),
        "poly max_memory float": (lambda: poly(Q, Q, Q, eps=1e-3, max_memory=2.0), ParameterError,
                                  "max_memory must be an integer, got 2.0"),
        "poly block_bytes 0": (lambda: poly(Q, Q, Q, eps=1e-3, block_bytes=0), ParameterError,
                               "block_bytes must be >= 1, got 0"),
        "poly block_bytes str": (lambda: poly(Q, Q, Q, eps=1e-3, block_bytes="8"), ParameterError,
                                 "block_bytes must be an integer, got '8'"),
        "poly B str": (lambda: poly(Q, Q, Q, eps=1e-3, B="2"), ParameterError, "B must be a real number, got '2'"),
        "poly B < 0": (lambda: poly(Q, Q, Q, eps=1e-3, B=-1.0), ParameterError, "B must be >= 0, got -1.0"),
        "poly B small": (lambda: poly(np.full((2, 1), 0.75), np.full((2, 1), -0.5), one[:2], eps=1e-3, B=0.5),
                         ParameterError, "entries of Q and K must satisfy |x| <= B = 0.5, but one has |x| = 0.75"),
        "poly radius overflow": (lambda: poly(np.full((2, 2), 1e300), np.full((2, 2), 1e300), one[:2], eps=1e-3,
                                              scale=1e-300),
                                 NumericalError, "poly: the score radius overflows float64; rescale the inputs"),
        "features 2-D coefficients": (lambda: feature_maps(Q, Q, np.ones((1, 2))), ParameterError,
                                      "coefficients must be a 1-D array, got shape (1, 2)"),
        "features empty coefficients": (lambda: feature_maps(Q, Q, []), ParameterError,
                                        "coefficients must hold at least the constant term"),
        "features nan coefficients": (lambda: feature_maps(Q, Q, [1.0, np.nan]), NumericalError,
                                      "coefficients contains NaN or infinite values"),
        "features string dtype": (lambda: feature_maps(Q, Q, np.array(["1", "2"])), ParameterError,
                                  "coefficients must be real numbers, got dtype <U1"),
        "features complex list": (lambda: feature_maps(Q, Q, [1.0, 1j]), ParameterError,
                                  "coefficients must be real numbers (float() argument must be a string or a real "
                                  "number, not 'complex')"),
        "features scalar K": (lambda: feature_maps(Q, 3.0, [1.0]), ParameterError,
                              "K must be a 2-D matrix, got an array of shape ()"),
        "oracle log_eps str": (lambda: poly_oracle(Q, Q, Q, log_eps="-3"), ParameterError,
                               "log_eps must be a real number, got '-3'"),
        "oracle log_eps nan": (lambda: poly_oracle(Q, Q, Q, log_eps=np.nan), ParameterError,
                               "log_eps must be a finite real number, got nan"),
        # the inputs are checked before the request is judged: a bad scale is named, not an uncertified request
        "oracle scale nan": (lambda: poly_oracle(Q, Q, Q, scale=np.nan, log_eps=-2484.0), ParameterError,
                             "scale must be finite, got nan"),
        "oracle log_eps -inf": (lambda: poly_oracle(Q, Q, 2 * Q, log_eps=-math.inf), UncertifiedError,
                                "poly cannot reach additive error e^-inf: its float64 output alone is only accurate "
                                f"to about u ||V|| = {U * float(np.abs(2 * Q).max()):.3g}"),
    }


@pytest.mark.parametrize("case", sorted(_message_cases()))
def test_refusals_are_one_exact_message(case: str) -> None:
    call, kind, message = _message_cases()[case]
    assert _one_error(call) == (kind, message)


def test_accepted_boundaries() -> None:
    # the smallest legal sizes and limits are accepted (max_memory = 1 is a plan that does not fit)
    plan = poly_plan(1, 1, 0.0, 1e-3, d_v=1, max_memory=1)
    assert (plan.n, plan.d, plan.d_v, plan.radius, plan.degree, plan.rank, plan.fits) == (1, 1, 1, 0.0, 0, 1, False)
    assert plan.max_memory == 1
    # B = 0 with zero data, and B equal to the largest entry, are legal
    Z = np.zeros((3, 2))
    res = poly(Z, Z, np.ones((3, 1)), eps=1e-3, B=0.0)
    assert res.degree == 0 and res.interval == (0.0, 0.0)
    rng = np.random.default_rng(1)
    Q, K, V = (rng.uniform(-1, 1, size=(5, 2)) for _ in range(3))
    B = float(max(np.abs(Q).max(), np.abs(K).max()))
    ref = poly(Q, K, V, eps=1e-6)
    np.testing.assert_array_equal(poly(Q, K, V, eps=1e-6, B=B).output.to_float(), ref.output.to_float())
    # block_bytes = 1: one feature row at a time, same answer
    np.testing.assert_allclose(poly(Q, K, V, eps=1e-6, block_bytes=1).output.to_float(), ref.output.to_float(),
                               rtol=1e-13, atol=1e-15)
    # max_memory = 1 is a limit (ResourceLimitError), not a bad parameter
    kind, message = _one_error(lambda: poly(Q, K, V, eps=1e-6, max_memory=1))
    assert kind is ResourceLimitError and "over the limit of 1;" in message


def test_degenerate_shapes() -> None:
    """No query rows, key dimension 0 (every score 0) and value dimension 0."""
    K, V = np.ones((3, 2)), np.arange(3.0)[:, None]
    res = poly(np.zeros((0, 2)), K, V, eps=1e-3, B=1.0)
    assert res.output.shape == (0, 1)
    ans = poly_oracle(np.zeros((2, 0)), np.zeros((3, 0)), V, eps=1e-3)
    np.testing.assert_allclose(ans.output.to_float(), np.full((2, 1), 1.0), rtol=1e-15)
    assert ans.info["radius"] == 0.0 and ans.info["degree"] == 0
    res = poly(np.ones((2, 1)), np.ones((3, 1)), np.ones((3, 0)), eps=1e-3)
    assert res.output.shape == (2, 0) and res.error_bound == 0.0
    res = poly(np.zeros((2, 0)), np.zeros((3, 0)), V, eps=1e-3, B=1.0)
    assert res.degree == 0 and res.output.shape == (2, 1)
    ans = poly_oracle(np.ones((2, 1)), np.ones((3, 1)), np.ones((3, 0)), log_eps=-10.0)
    assert ans.output.shape == (2, 0) and ans.info["degree"] == choose_degree(1.0, 0.5)[0]


# ------------------------------------------------------------------------------------------------------------
# The planner: every field against its formula
# ------------------------------------------------------------------------------------------------------------


def _itemised_memory(block: int, r: int, d: int, d_v: int, g: int) -> int:
    """Bytes the planner reserves: two feature blocks, U2^T [V | 1], the per-column coefficients, degrees and
    weights of the monomial index, one numerator block, and the index's (g + 1) x d prefix table."""
    feature_blocks = 2 * block * r
    kv = r * (d_v + 1)
    per_column = 3 * r
    numerator = block * (d_v + 1)
    prefix = (g + 1) * max(d, 1)
    return 8 * (feature_blocks + kv + per_column + numerator) + 8 * prefix


@pytest.mark.parametrize("n,d,B,eps,scale,d_v", [(2**16, 4, 1.0, 1e-6, None, None), (37, 2, 1.5, 1e-4, -0.8, 3),
                                                 (1, 1, 3.0, 1e-9, 1.0, 1), (5000, 3, 2.0, 0.1, None, 5)])
def test_plan_fields_equal_their_formulas(n, d, B, eps, scale, d_v) -> None:
    plan = poly_plan(n, d, B, eps, scale=scale, d_v=d_v)
    s = 1.0 / d if scale is None else scale
    d_v = d if d_v is None else d_v
    R = abs(s) * d * B * B
    g, method, log_bound = choose_degree(R, eps)
    r = math.comb(g + d, d)
    block = min(n, (32 * 2**20) // (8 * r))
    assert (plan.n, plan.d, plan.d_v, plan.radius, plan.eps) == (n, d, d_v, R, eps)
    assert (plan.degree, plan.method, plan.rank, plan.block) == (g, method, r, max(block, 1))
    assert plan.poly_error == math.exp(log_bound) and plan.poly_error <= eps
    assert plan.log10_rank == pytest.approx(math.log10(r), rel=1e-12, abs=1e-12)
    assert plan.memory_bytes == _itemised_memory(plan.block, r, d, d_v, g)
    # features (both sides), the coefficient scaling and the two skinny products, per query and per key row
    assert plan.poly_flops == 2 * n * r * (2 * (d_v + 1) + 2)
    assert plan.exact_flops == n * n * (2 * d + 4 * d_v + 1)
    assert plan.beats_exact == (plan.poly_flops < plan.exact_flops)
    assert plan.rounding_estimate == pytest.approx(_gamma(n + r + 4 * g + 16) * math.exp(2 * R), rel=1e-13)
    assert plan.fits == (plan.memory_bytes <= plan.max_memory) and plan.max_memory == 4 * 2**30


def test_plan_blocks_at_the_byte_limit() -> None:
    # r = d + 1 features of degree 1 (R = 0.01, eps = 1e-3); one feature row is 8 r bytes
    def plan(d: int):
        return poly_plan(3, d, 0.1, 1e-3)

    p = plan(2**22 - 1)  # r = 2^22: exactly one row in the 32 MiB block budget
    assert (p.degree, p.rank, p.block) == (1, 2**22, 1)
    p = plan(2**22 + 1)  # a row is more than the budget: still one row (never zero)
    assert (p.rank, p.block) == (2**22 + 2, 1)
    assert p.memory_bytes == _itemised_memory(1, 2**22 + 2, 2**22 + 1, 2**22 + 1, 1)
    p = plan(2**25)  # r above block_bytes itself
    assert (p.rank, p.block) == (2**25 + 1, 1)
    p = plan(8)
    assert p.block == 3  # min(n, ...)


def test_plan_fits_at_equality_and_the_explanations() -> None:
    p = poly_plan(2**16, 4, 1.0, 1e-6)
    assert poly_plan(2**16, 4, 1.0, 1e-6, max_memory=p.memory_bytes).fits
    assert not poly_plan(2**16, 4, 1.0, 1e-6, max_memory=p.memory_bytes - 1).fits
    assert p.explanation == (
        f"poly: degree g=8 (chebyshev), rank r=495 for scores in [-1, 1] needs ~{p.memory_bytes} bytes (fits); "
        f"{p.poly_flops} flops vs 1.1e+11 for exact, so it beats exact")
    assert p.block == 8473 and p.poly_flops == 2 * 2**16 * 495 * 12
    # fits but does not beat exact (n = 1), and float64 rounding above eps (R = 9, eps = 1e-9)
    q = poly_plan(1, 1, 3.0, 1e-9, d_v=1)
    assert q.explanation == (
        f"poly: degree g={q.degree} ({q.method}), rank r={q.rank} for scores in [-9, 9] needs ~{q.memory_bytes} "
        "bytes (fits, but float64 rounding (~e^{2R}) exceeds eps); "
        f"{q.poly_flops} flops vs 7 for exact, so it does not beat exact")
    # does not fit: n = 2, so sqrt(ln 2) = 0.83
    f = poly_plan(2, 1020, 230.0, 1e-6)
    assert (f.degree, len(str(f.rank)), str(f.rank)[:2]) == (147394, 2646, "48")
    assert f.explanation == (
        "poly: degree g=147394, rank r=4.8e+2645 (10^2645.7) for scores in [-5.29e+04, 5.29e+04] needs ~4.0e+2649 "
        "bytes, over the limit of 4.3e+9; this is the SETH side of the B ~ sqrt(log n) threshold (here sqrt(ln n) = "
        "0.83)")
    g1 = poly_plan(1, 1020, 230.0, 1e-6)  # n = 1 is planned as n = 2
    assert g1.explanation.endswith("(here sqrt(ln n) = 0.83)")


def test_plan_verdict_when_rounding_equals_eps() -> None:
    """``rounding < eps`` is strict: at equality the plan says the rounding exceeds eps."""
    for B in (2.0, 2.5, 3.0, 3.5):
        first = poly_plan(4, 1, B, 1e-6, d_v=1)
        eps = first.rounding_estimate
        p = poly_plan(4, 1, B, eps, d_v=1)
        if 0 < eps < 1 and p.rounding_estimate == eps:
            assert "(fits, but float64 rounding (~e^{2R}) exceeds eps)" in p.explanation
            return
    pytest.fail("no plan with rounding_estimate == eps found")


def test_plan_beats_exact_is_strict() -> None:
    """``beats_exact`` and the explanation use ``poly_flops < exact_flops``: equal counts do not beat exact."""
    p = poly_plan(4, 2, 0.1, 1e-3, d_v=1)  # g = 1, r = 3: 2 * 4 * 3 * 6 = 16 * 9 = 144 flops on both sides
    assert (p.rank, p.poly_flops, p.exact_flops) == (3, 144, 144)
    assert not p.beats_exact and p.explanation.endswith("144 flops vs 144 for exact, so it does not beat exact")
    p = poly_plan(5, 2, 0.1, 1e-3, d_v=1)
    assert p.beats_exact and p.explanation.endswith("180 flops vs 225 for exact, so it beats exact")


def test_plan_rounding_estimate_saturates() -> None:
    p = poly_plan(2, 1, 20.0, 1e-3, d_v=1)  # R = 400: gamma e^{800} is beyond float64
    assert p.rounding_estimate == math.inf and p.fits
    assert "fits, but float64 rounding" in p.explanation
    big = poly_plan(3, 2**52 - 2, 0.1, 1e-3, d_v=1)  # r = 2^52 - 1: still a number
    assert big.rank == 2**52 - 1 and big.rounding_estimate == pytest.approx(_gamma(3 + big.rank + 20) * math.exp(0.02))
    # r >= 2^52: m u >= 1/2, the estimate is >= 1 (void) and reported as inf without converting r to a float
    assert poly_plan(3, 2**52 - 1, 0.1, 1e-3, d_v=1).rounding_estimate == math.inf
    assert poly_plan(3, 2**60, 0.1, 1e-3, d_v=1).rounding_estimate == math.inf
    # estimates above e^700 are reported as inf too: find R with log(gamma_m) + 2R in [700, 701)
    lo, hi = 300.0, 400.0
    for _ in range(60):
        mid = (lo + hi) / 2
        g = choose_degree(mid, 1e-3)[0]
        log_round = math.log(_gamma(1 + (g + 1) + 4 * g + 16)) + 2 * mid
        lo, hi = (mid, hi) if log_round < 700.5 else (lo, mid)
    assert 700.0 <= log_round < 701.0
    assert poly_plan(1, 1, math.sqrt(mid), 1e-3, d_v=1, scale=1.0).rounding_estimate == math.inf


def test_human_numbers_round_up_to_the_next_power_of_ten() -> None:
    human = poly_module._human
    assert human(996_000_000_000) == "1.0e+12" and human(10**4000 - 1) == "1.0e+4000"
    assert human(994_999_999_999) == "9.9e+11" and human(125 * 10**20) == "1.3e+22"


def test_fixed_refusals() -> None:
    """A coefficient beyond float64 and a ragged K are one ParameterError each, not a raw Python error."""
    Q = np.ones((2, 2))
    assert _one_error(lambda: feature_maps(Q, Q, [1, 10**400])) == (
        ParameterError, "coefficients must be real numbers (int too large to convert to float)")
    kind, message = _one_error(lambda: feature_maps(Q, [[1.0, 2.0], [3.0]], [1.0]))
    assert kind is ParameterError and message.startswith("K must be a real numeric matrix (")


def test_human_numbers() -> None:
    human = poly_module._human
    assert human(0) == "0" and human(999_999_999) == "999999999"
    assert human(10**9) == "1.0e+9" and human(123_456_789_012) == "1.2e+11"
    assert human(987_654_321_012) == "9.9e+11" and human(10**3999 * 4) == "4.0e+3999"
    assert human(10**4000) == "10^4000" and human(7 * 10**5000) == "10^5001"


# ------------------------------------------------------------------------------------------------------------
# The certificate formulas
# ------------------------------------------------------------------------------------------------------------


def _stated(eps_a: float, eps_round: float, v: float) -> float:
    """:func:`poly_error_bound` as its docstring states it, in the stated order of float operations."""
    bound = lemma_3_6_factor(eps_a) * v + 2 * eps_round * v / (1 - eps_a - eps_round)
    return (bound + U * (v + bound)) * (1 + 4 * U)


@pytest.mark.parametrize("eps_a,eps_round,v", [(0.0, 0.25, 1.0), (0.0, 2.0**-10, 3.0), (0.3, 0.2, 2.0),
                                               (1e-9, 1e-7, 0.5), (0.6, 0.3999, 1.0)])
def test_poly_error_bound_is_its_formula_and_never_below_it(eps_a, eps_round, v) -> None:
    got = poly_error_bound(eps_a, eps_round, v)
    assert got == _stated(eps_a, eps_round, v)
    with mpmath.workdps(50):
        e, r, w = mpmath.mpf(eps_a), mpmath.mpf(eps_round), mpmath.mpf(v)
        b = 2 * e / (1 + mpmath.sqrt(1 - e * e)) * w + 2 * r * w / (1 - e - r)
        real = b + mpmath.mpf(U) * (w + b)
        assert mpmath.mpf(got) >= real  # the (1 + 4u) covers the rounding of the formula itself
        assert mpmath.mpf(got) <= real * (1 + 8 * mpmath.mpf(U))


def test_poly_error_bound_is_void_without_positivity() -> None:
    assert poly_error_bound(0.5, 0.5, 1.0) == math.inf  # eps_A + eps_round = 1: D~ may vanish
    assert poly_error_bound(0.6, 0.6, 1.0) == math.inf
    assert poly_error_bound(0.6, 0.5, 1.0) == math.inf
    assert math.isfinite(poly_error_bound(0.5, 0.4999, 1.0))


def test_entry_bounds_are_exact_at_radius_zero() -> None:
    """Q = 0: degree 0, eps_A = 0 and eps_round = gamma_{n_k + 17} exactly, so every per-entry bound is
    poly_error_bound of its column's max |V|, bit for bit; a zero column is certified exact."""
    rng = np.random.default_rng(2)
    Q, K = np.zeros((3, 2)), rng.uniform(-1, 1, size=(4, 2))
    V = rng.uniform(-1, 1, size=(4, 3)) * np.array([1.0, 1e-3, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log(0) of the exact column must not warn
        ans = poly_oracle(Q, K, V, eps=1e-6)
    eps_round = _gamma(4 + 1 + 16)
    assert ans.info == {"degree": 0, "rank": 1, "eps_A": 0.0, "rounding_error": eps_round, "radius": 0.0}
    assert ans.certificate.kind == "additive" and ans.certificate.detail == (
        "Alman-Song Algorithm 1, degree 0 chebyshev: Lemma 3.6 (sharp) + float64 rounding "
        "(finegrained.attention.poly.poly_error_bound)")
    v_col = np.abs(V).max(axis=0)
    st = poly_module._setup(Q, K, V, eps=1e-6, B=None, scale=None, max_memory=2**30, block_bytes=2**20)
    res = poly_module._run(st)
    bounds = poly_module._entry_bounds(st, res)  # the linear values (the certificate holds their logs)
    assert bounds.shape == (3, 3) and res.error_bound == _stated(0.0, eps_round, float(v_col.max()))
    for c in range(3):
        assert (bounds[:, c] == _stated(0.0, eps_round, float(v_col[c]))).all()
    assert (bounds[:, 2] == 0).all() and (ans.certificate.log_bound[:, 2] == -np.inf).all()
    with np.errstate(divide="ignore"):  # log(0) = -inf is the expected bound of the zero column
        want = np.log(bounds)
    np.testing.assert_array_equal(ans.certificate.log_bound, want)
    np.testing.assert_allclose(ans.output.to_float(), np.tile(V.mean(axis=0), (3, 1)), rtol=1e-14, atol=1e-300)


def _mixed_rows(kind: str):
    rng = np.random.default_rng(21)
    t = np.array([0.2, 1.0, 2.5, 4.0, 5.5])[:, None]  # row radii spread over the rounding regime
    angle = rng.uniform(0, 2 * np.pi, size=(5, 1))
    Q = t * np.hstack([np.cos(angle), np.sin(angle)])
    if kind in ("big_keys", "coarse"):  # max |K| > 1: the entry-wise radius is the Cauchy-Schwarz one
        K = rng.uniform(-1.3, 1.3, size=(6, 2))
        K[0] = [1.3, 0.1]
    else:  # every key norm below 1
        K = rng.uniform(-0.6, 0.6, size=(6, 2))
    V = rng.uniform(-1, 1, size=(6, 2)) * np.array([1.0, 1e-2])
    return Q, K, V


@pytest.mark.parametrize("kind", ["big_keys", "small_keys", "coarse"])
def test_entry_bounds_equal_their_stated_formula(kind: str) -> None:
    """Per entry: R_i = |s| min(d max|q_i| max|K|, ||q_i|| max||k_j||), eps_round_i = gamma_m S(R_i) e^{R_i}
    (at most the global one), and the Lemma 3.6 + rounding bound with the column's max |V|; in mpmath."""
    Q, K, V = _mixed_rows(kind)
    eps = 1e-9
    if kind == "coarse":  # eps_A ~ 0.3 and rows up to R = 9: the (1 - eps_A - eps_round) divisor is visible
        Q, eps = Q * 9.0 / 5.5, 0.3
    ans = poly_oracle(Q, K, V, scale=1.0, eps=eps)
    info = ans.info
    R, g, r = info["radius"], info["degree"], info["rank"]
    coeffs = exp_polynomial(R, eps).coefficients
    m = K.shape[0] + r + 4 * g + 16
    bounds = np.exp(ans.certificate.log_bound)
    worst = 0.0
    with mpmath.workdps(40):
        e = mpmath.mpf(info["eps_A"])
        lemma = 2 * e / (1 + mpmath.sqrt(1 - e * e))
        u = mpmath.mpf(U)
        kmax = max(abs(mpmath.mpf(float(x))) for x in K.ravel())
        knorm = max(mpmath.sqrt(sum(mpmath.mpf(float(x)) ** 2 for x in k)) for k in K)
        for i, q in enumerate(Q):
            qmax = max(abs(mpmath.mpf(float(x))) for x in q)
            qnorm = mpmath.sqrt(sum(mpmath.mpf(float(x)) ** 2 for x in q))
            Ri = min(min(2 * qmax * kmax, qnorm * knorm), mpmath.mpf(R))
            S = sum(abs(mpmath.mpf(float(c))) * Ri**k for k, c in enumerate(coeffs))
            er = min(m * u / (1 - m * u) * S * mpmath.exp(Ri), mpmath.mpf(info["rounding_error"]))
            for c in range(V.shape[1]):
                v = mpmath.mpf(float(np.abs(V[:, c]).max()))
                b = lemma * v + 2 * er * v / (1 - e - er)
                expected = (b + u * (v + b)) * (1 + 4 * u)
                assert bounds[i, c] == pytest.approx(float(expected), rel=1e-9)
                worst = max(worst, float(2 * er * v / (1 - e - er) / b))
    assert worst > (1e-6 if kind == "coarse" else 0.4)  # the rounding term is visible: its constants are checked
    assert bounds.max() == pytest.approx(poly(Q, K, V, eps=eps, scale=1.0).error_bound, rel=1e-12)
    err = np.abs(ans.output.to_float() - reference(Q, K, V, scale=1.0, dps=60).to_float())
    assert (err <= bounds).all()


def test_error_bound_formula_in_the_rounding_regime() -> None:
    """R = 10: eps_round ~ 1e-5 is comparable with eps_A, so every term of the certificate is visible."""
    Q, K, V = np.array([[10.0], [-10.0], [3.0]]), np.array([[1.0], [0.5], [-0.25]]), np.array([[1.0], [-2.0], [0.5]])
    res = poly(Q, K, V, eps=1e-4, scale=1.0)
    approx = exp_polynomial(10.0, 1e-4)
    m = 3 + math.comb(res.degree + 1, 1) + 4 * res.degree + 16
    S = sum(abs(c) * 10.0**k for k, c in enumerate(approx.coefficients))
    assert res.rounding_error == pytest.approx(_gamma(m) * S * math.exp(10.0), rel=1e-12)
    assert res.rounding_error > 1e-6 and res.poly_error > 1e-6
    assert res.error_bound == _stated(res.poly_error, res.rounding_error, 2.0)
    err = np.abs(res.output.to_float() - reference(Q, K, V, scale=1.0, dps=60).to_float()).max()
    assert err <= res.error_bound


# ------------------------------------------------------------------------------------------------------------
# The oracle's planning of eps_A
# ------------------------------------------------------------------------------------------------------------


def test_planned_eps_inverts_the_lemma_3_6_factor() -> None:
    planned = poly_module._planned_eps
    for log_eps, v in [(math.log(1e-6), 1.0), (math.log(1e-3), 2.5), (-30.0, 0.1), (math.log(0.4), 1.0)]:
        t = math.exp(log_eps) / (4 * v)
        eps_a = planned(log_eps, v)
        assert eps_a == pytest.approx(2 * t / (1 + t * t), rel=1e-14)
        assert lemma_3_6_factor(eps_a) == pytest.approx(2 * t, rel=1e-12)  # half of e^{log_eps} / ||V||
    assert planned(math.log(4.0), 1.0) == 0.5 and planned(math.log(1.9), 0.5) == 0.5  # t >= 1 and t near 1
    assert planned(5.0, 1.0) == 0.5 and planned(-3.0, 0.0) == 0.5
    assert planned(math.log(2.0), 1.0) == 0.5  # t = 1/2 gives 0.8: capped


def test_oracle_plans_its_degree_from_the_request() -> None:
    rng = np.random.default_rng(4)
    Q, K, V = rng.uniform(-1, 1, size=(20, 2)), rng.uniform(-1, 1, size=(15, 2)), rng.uniform(-3, 3, size=(15, 2))
    v = float(np.abs(V).max())
    for log_eps in (math.log(1e-3), math.log(1e-8), -20.0):
        ans = poly_oracle(Q, K, V, log_eps=log_eps)
        t = math.exp(log_eps) / (4 * v)
        g, method, log_bound = choose_degree(ans.info["radius"], 2 * t / (1 + t * t))
        assert (ans.info["degree"], ans.info["eps_A"]) == (g, math.exp(log_bound))
        assert ans.certificate.worst_log_bound <= log_eps
    # log_eps = +inf is no request at all: the default eps_A = 1e-6
    inf = poly_oracle(Q, K, V, log_eps=math.inf)
    assert inf.info["degree"] == choose_degree(inf.info["radius"], 1e-6)[0]
    np.testing.assert_array_equal(inf.output.to_float(), poly_oracle(Q, K, V).output.to_float())


def test_oracle_refusal_threshold_is_two_ulps_of_v() -> None:
    """Below log(2 u ||V||) the output's own rounding is named; at it, the planner's rounding floor is."""
    rng = np.random.default_rng(5)
    Q, K = rng.uniform(-1, 1, size=(8, 2)), rng.uniform(-1, 1, size=(6, 2))
    V = rng.uniform(-1, 1, size=(6, 1)) * 3.0
    v = float(np.abs(V).max())
    at = math.log(2 * U * v)
    kind, message = _one_error(lambda: poly_oracle(Q, K, V, log_eps=float(np.nextafter(at, -np.inf))))
    assert kind is UncertifiedError and message.endswith(f"only accurate to about u ||V|| = {U * v:.3g}")
    for log_eps in (at, math.log(2.5 * U * v)):
        kind, message = _one_error(lambda log_eps=log_eps: poly_oracle(Q, K, V, log_eps=log_eps))
        assert kind is UncertifiedError and "float64 rounding of the monomial basis alone" in message


# ------------------------------------------------------------------------------------------------------------
# Algorithm 1: scaling, guards and streaming
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["small_q", "small_k"])
def test_unbalanced_magnitudes_are_exact_to_the_bound(side: str) -> None:
    """Entries ~1e-160 on one side and ~1e+160 on the other: the power-of-two balancing keeps every monomial
    representable (without it, degree >= 2 monomials of the small side underflow)."""
    rng = np.random.default_rng(6)
    Q, K = rng.uniform(-1, 1, size=(7, 2)), rng.uniform(-1, 1, size=(9, 2))
    V = rng.uniform(-1, 1, size=(9, 2))
    if side == "small_q":
        Q, K = Q * 1e-160, K * 1e160
    else:
        Q, K = Q * 1e160, K * 1e-160
    res = poly(Q, K, V, eps=1e-8, scale=1.0)
    assert res.degree >= 4
    err = np.abs(res.output.to_float() - exact(Q, K, V, scale=1.0).to_float()).max()
    assert err <= res.error_bound < 1e-7


def test_row_sums_below_one_are_fine() -> None:
    res = poly(np.array([[1.0]]), np.array([[-1.0]]), np.array([[0.5]]), eps=1e-6, scale=1.0)  # D = e^-1
    assert abs(res.output.to_float()[0, 0] - 0.5) <= res.error_bound


def _fake_polynomial(monkeypatch, coefficients, bound: float = 0.0):
    real = poly_module.exp_polynomial

    def fake(radius: float, eps: float) -> ExpPolynomial:
        p = real(radius, eps)
        c = np.array(coefficients, dtype=float)
        return ExpPolynomial(p.radius, len(c) - 1, p.method, c, bound, float(np.abs(c).sum()), 0.0)

    monkeypatch.setattr(poly_module, "exp_polynomial", fake)


def test_row_sum_guard_names_the_first_bad_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """P(x) = x: the row sum of query 3 (negative scores) is negative; blocks of 2 rows put it at offset 1 of
    the block starting at 2."""
    _fake_polynomial(monkeypatch, [0.0, 1.0])
    Q = np.array([[1.0], [0.5], [2.0], [-1.0], [-2.0]])
    K = np.array([[1.0], [0.5]])
    st = poly_module._setup(Q, K, np.ones((2, 1)), eps=1e-3, B=None, scale=1.0, max_memory=2**30,
                            block_bytes=8 * 9 * 2)
    assert st.plan.block == 2
    with pytest.raises(NumericalError) as info:
        poly_module._run(st)
    assert str(info.value) == (
        "poly: approximate row sum D~[3] = -1.5 is not positive and finite (proved >= "
        f"(1 - {st.eps_round:.3g}) D > 0 in exact arithmetic); the computation lost precision")


def test_row_sum_guard_refuses_a_zero_row_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_polynomial(monkeypatch, [0.0])
    with pytest.raises(NumericalError) as info:
        poly(np.ones((2, 1)), np.ones((3, 1)), np.ones((3, 1)), eps=1e-3)
    assert str(info.value).startswith("poly: approximate row sum D~[0] = 0 is not positive and finite")


def test_row_sum_guard_catches_an_overflowing_numerator() -> None:
    """Values near the float64 limit: the numerator of row 1 (row sum > 1) overflows, that of row 0 does not."""
    Q = np.array([[-1.0], [1.0]])
    with pytest.raises(NumericalError) as info, np.errstate(over="ignore"):
        poly(Q, np.array([[1.0]]), np.array([[1e308]]), eps=1e-6, scale=1.0)
    assert str(info.value).startswith("poly: approximate row sum D~[1] = ")


def test_features_stream_through_one_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each key row and each query row is turned into features exactly once, in blocks of plan.block rows, all
    written into one preallocated buffer (so the peak memory is the plan's, independent of n)."""
    calls = []
    real = MonomialIndex.monomials

    def spy(self, X, out=None):
        calls.append((X.shape[0], out))
        return real(self, X, out=out)

    monkeypatch.setattr(MonomialIndex, "monomials", spy)
    rng = np.random.default_rng(5)
    Q, K, V = rng.uniform(-1, 1, size=(23, 3)), rng.uniform(-1, 1, size=(17, 3)), rng.uniform(-1, 1, size=(17, 2))
    res = poly(Q, K, V, eps=1e-6, block_bytes=8 * 120 * 5)  # r = 120: 5-row blocks
    assert res.rank == 120
    assert [n for n, _ in calls] == [5, 5, 5, 2] + [5, 5, 5, 5, 3]
    bases = {id(out.base if out.base is not None else out) for _, out in calls if out is not None}
    assert all(out is not None for _, out in calls) and len(bases) == 1


def test_feature_maps_default_scale_and_int_coefficients() -> None:
    Q = np.array([[1.0, 2.0]])
    K = np.array([[3.0, -1.0], [0.5, 0.5]])
    U1, U2 = feature_maps(Q, K, [1, 1, 2])  # 1 + x + 2 x^2 at scale 1: x = 1 and 1.5
    np.testing.assert_allclose(U1 @ U2.T, [[4.0, 7.0]], rtol=1e-15)
    assert U1.dtype == np.float64 and U2.dtype == np.float64


def test_eps_radius_and_degree_refusals_name_their_argument():
    # _check_eps and log_relative_error_bound: the refused value is named in the whole message, eps = 1 and eps = 0
    # are outside the open interval (0, 1), and eps just below 1 is accepted.
    cases = {
        lambda: choose_degree(1.0, 0.0): "eps must lie in (0, 1), got 0.0",
        lambda: choose_degree(1.0, 1.0): "eps must lie in (0, 1), got 1.0",
        lambda: choose_degree(1.0, 1.5): "eps must lie in (0, 1), got 1.5",
        lambda: choose_degree(1.0, "x"): "eps must be a real number, got 'x'",
        lambda: exp_polynomial(1.0, math.nan): "eps must be a finite real number, got nan",
        lambda: poly_plan(4, 2, 1.0, 0.0): "eps must lie in (0, 1), got 0.0",
        lambda: poly_module.log_relative_error_bound("r", 2, "taylor"): "radius must be a real number, got 'r'",
        lambda: poly_module.log_relative_error_bound(math.inf, 2, "taylor"):
            "radius must be a finite real number, got inf",
        lambda: poly_module.log_relative_error_bound(1.0, 2.0, "taylor"): "degree must be an integer, got 2.0",
        lambda: poly_module.log_relative_error_bound(1.0, -1, "taylor"): "degree must be >= 0, got -1",
    }
    for call, message in cases.items():
        assert _one_error(call) == (ParameterError, message)
    assert choose_degree(1.0, 0.999)[0] >= 0
