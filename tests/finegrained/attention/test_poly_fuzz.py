"""Certificate fuzz test of the polynomial method (issue 11, "Done when"): adversarial classes of inputs.

Every instance either raises one clean library error (a FinegrainedError subclass, one line), or returns a
finite certified bound that the measured error respects. The error is measured against the *certified*
interval of the exact oracle (``exact_oracle(...).bounds()``: float64 attention with its proved log-space
error), taking the worse end, so the reference's own rounding can only make the check stricter; where that
interval is not narrow against the bound (or certifies nothing), against the mpmath reference at 60 digits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention.exact import exact_oracle
from finegrained.attention.poly import poly, poly_oracle
from finegrained.attention.reference import reference
from instances.errors import FinegrainedError

CLASSES = ["huge_scale", "tiny_scale", "eps_above_v", "near_degenerate", "ties_at_max", "rounding_regime",
           "wide_values", "mixed_radius"]


def _instance(kind: str, rng: np.random.Generator):
    """(Q, K, V, scale) of one adversarial class."""
    n, d = int(rng.integers(2, 120)), int(rng.integers(1, 4))
    scale = None
    if kind == "huge_scale":  # entries ~1e150 and a scale ~1e-300: scores of order 1
        Q, K = (rng.uniform(-1, 1, size=(m, d)) * 1e150 for m in (n, n + 1))
        V = rng.uniform(-1, 1, size=(n + 1, 2))
        scale = float(rng.uniform(0.2, 2.0)) * 1e-300
    elif kind == "tiny_scale":  # entries ~1e-200: every score ~0, the polynomial is exact at degree 0
        Q, K = (rng.uniform(-1, 1, size=(m, d)) * 1e-200 for m in (n, n + 1))
        V = rng.uniform(-5, 5, size=(n + 1, 2))
    elif kind == "eps_above_v":  # ||V|| tiny against any accuracy a caller would ask for
        Q, K = (rng.uniform(-1.5, 1.5, size=(m, d)) for m in (n, n + 1))
        V = rng.uniform(-1, 1, size=(n + 1, 2)) * 10.0 ** float(rng.uniform(-12, -3))
    elif kind == "near_degenerate":  # n copies of one key and one deviating by a relative 1e-12..1e-10
        k0 = rng.uniform(-1.5, 1.5, size=d)
        K = np.tile(k0, (n + 1, 1))
        K[int(rng.integers(n + 1))] += 10.0 ** float(rng.uniform(-12, -10)) * np.linalg.norm(k0) * rng.normal(size=d)
        Q = rng.uniform(-1.5, 1.5, size=(n, d))
        V = rng.uniform(-1, 1, size=(n + 1, 2))
    elif kind == "ties_at_max":  # many keys at exactly the largest score of every query
        Q = rng.uniform(-1.5, 1.5, size=(n, d))
        top = rng.uniform(-1.5, 1.5, size=d)
        K = np.vstack([np.tile(top, (n // 2 + 1, 1)), rng.uniform(-1.5, 1.5, size=(n // 2 + 1, d)) * 0.1])
        V = rng.uniform(-1, 1, size=(K.shape[0], 2))
    elif kind == "rounding_regime":  # d = 1, radius 5..14: the float64 term of the certificate dominates
        R = float(rng.uniform(5.0, 14.0))
        Q = np.vstack([[-R], rng.uniform(-R, R, size=(n - 1, 1))])
        K = np.vstack([[1.0], rng.uniform(0.0, 1.0, size=(n, 1))])
        V = rng.uniform(-1, 1, size=(n + 1, 1))
        scale = 1.0
    elif kind == "wide_values":  # values spanning 1e-150 .. 1e150
        Q, K = (rng.uniform(-1, 1, size=(m, d)) for m in (n, n + 1))
        V = rng.uniform(-1, 1, size=(n + 1, 2)) * 10.0 ** rng.uniform(-150, 150, size=(n + 1, 1))
    else:  # mixed_radius: one large query row among small ones
        Q = rng.uniform(-0.5, 0.5, size=(n, d))
        Q[0] *= float(rng.uniform(2, 12))
        K = rng.uniform(-1, 1, size=(n + 1, d))
        V = rng.uniform(-1, 1, size=(n + 1, 2))
    return Q, K, V, scale


def _worst_error(out: np.ndarray, Q, K, V, scale, bound: float) -> np.ndarray:
    """Per entry, max |out - T| over every T the exact oracle's certificate allows, when that interval is narrow
    against ``bound``; otherwise |out - T| against the mpmath reference at 60 digits."""
    ans = exact_oracle(Q, K, V, scale=scale)
    if ans.certificate.certified:
        b = ans.bounds()
        lo, hi = b.lower.to_float(), b.upper.to_float()
        if float(np.max(hi - lo)) <= bound / 100:
            return np.maximum(np.abs(out - lo), np.abs(out - hi))
    return np.abs(out - reference(Q, K, V, scale=scale, dps=60).to_float())


def _check_clean(exc: FinegrainedError) -> None:
    assert "\n" not in str(exc) and str(exc)


@pytest.mark.parametrize("kind", CLASSES)
def test_poly_certificate_fuzz(kind: str) -> None:
    rng = np.random.default_rng(CLASSES.index(kind) + 1100)
    certified = 0
    for _ in range(12):
        Q, K, V, scale = _instance(kind, rng)
        eps = float(10.0 ** rng.uniform(-10, -1))
        try:
            res = poly(Q, K, V, eps=eps, scale=scale)
        except FinegrainedError as exc:
            _check_clean(exc)
            continue
        assert math.isfinite(res.error_bound) and res.error_bound >= 0
        out = res.output.to_float()
        assert np.isfinite(out).all()
        assert _worst_error(out, Q, K, V, scale, res.error_bound).max() <= res.error_bound
        certified += 1
    assert certified >= 6  # the classes are hard, not impossible: most instances get a certificate


@pytest.mark.parametrize("kind", CLASSES)
def test_poly_oracle_meets_the_requested_accuracy_or_refuses(kind: str) -> None:
    rng = np.random.default_rng(CLASSES.index(kind) + 2200)
    for _ in range(8):
        Q, K, V, scale = _instance(kind, rng)
        v_max = float(np.abs(V).max())
        # from far below float64 (e^-2484) to far above ||V|| (eps >> ||V||_inf)
        log_eps = float(rng.choice([-2484.0, math.log(v_max) - 30, math.log(v_max) - 12, math.log(v_max) - 3,
                                    math.log(v_max) + 8, 50.0]))
        try:
            ans = poly_oracle(Q, K, V, scale=scale, log_eps=log_eps)
        except FinegrainedError as exc:
            _check_clean(exc)
            assert log_eps < math.log(v_max) + 8  # a request above ||V|| is always met
            continue
        cert = ans.certificate
        assert cert.kind == "additive" and cert.worst_log_bound <= log_eps
        bounds = np.broadcast_to(np.exp(cert.log_bound), ans.output.shape)  # the per-entry certificate
        assert (_worst_error(ans.output.to_float(), Q, K, V, scale, float(bounds.min())) <= bounds).all()
