"""Certificate fuzz test for anytemp (issue 11, "Done when"): adversarial input classes, measured error against
exact() (its own "log" certificate subtracted) or the mpmath reference for tiny cases, never above the certified
bound; the bound always finite, or a clean one-line error instead."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention import exact_oracle, reference_oracle
from finegrained.attention.anytemp import anytemp
from instances.errors import NumericalError

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

CLASSES = ["wide_B", "huge_scale", "tiny_scale", "eps_far_above_V", "near_degenerate", "ties_at_max",
           "window_edge", "v_extremes", "low_rank"]


def _instance(kind: str, rng: np.random.Generator):
    """One adversarial (Q, K, V, scale, eps) of the class; entries up to B = 1000, d = 1..3."""
    d = int(rng.integers(1, 4))
    n = int(rng.integers(2, 160))
    nq = int(rng.integers(1, 12))
    B = float(rng.choice([1.0, 10.0, 100.0, 1000.0]))
    Q, K = rng.uniform(-B, B, (nq, d)), rng.uniform(-B, B, (n, d))
    V = rng.uniform(-1, 1, (n, int(rng.integers(1, 3))))
    scale, eps = 1.0, 10.0 ** rng.uniform(-9, -1)
    if kind == "huge_scale":
        Q, K = rng.uniform(-1, 1, (nq, d)), rng.uniform(-1, 1, (n, d))
        scale = 10.0 ** rng.uniform(3, 15)  # up to rounding-dominated and refused scores
    elif kind == "tiny_scale":
        scale = 10.0 ** rng.uniform(-300, -6)
    elif kind == "eps_far_above_V":
        eps = 10.0 ** rng.uniform(1, 8)
    elif kind == "near_degenerate":
        base = rng.uniform(-B, B, d)
        K = np.tile(base, (n, 1))
        if d > 1:
            direction = np.zeros(d)
            direction[-1] = 1.0
            K[-1] = base + 10.0 ** rng.uniform(-12, -10) * np.abs(base).max() * direction
            Q = np.tile(direction * B, (nq, 1))
        else:
            K[-1] = base * (1 + 10.0 ** rng.uniform(-12, -10))
    elif kind == "ties_at_max":
        top = rng.uniform(-B, B, d)
        k = int(rng.integers(2, max(3, n)))
        K[:k] = top  # k keys share the maximal score for every query that prefers them
        Q = np.tile(top, (nq, 1)) + rng.normal(scale=1e-3, size=(nq, d))
        V[:k] = rng.uniform(-1, 1, (k, V.shape[1]))
    elif kind == "window_edge":
        # keys spaced so that many scores sit near M - L for eps around 1e-6
        Q = np.ones((nq, d))
        L = math.log(4 * n / 1e-6)
        K = np.zeros((n, d))
        K[:, 0] = -L * rng.uniform(0.95, 1.05, n)
        K[0, 0] = 0.0
        eps = 1e-6
    elif kind == "v_extremes":
        V = V * 10.0 ** float(rng.choice([-300.0, -150.0, 150.0, 300.0]))
        if rng.random() < 0.5:
            V = np.abs(V)
        eps = float(np.abs(V).max()) * 10.0 ** rng.uniform(-9, 2)
    elif kind == "low_rank":
        d = int(rng.integers(4, 8))
        r = int(rng.integers(1, 3))
        Q = rng.uniform(-3, 3, (nq, r)) @ rng.normal(size=(r, d))
        K = rng.uniform(-3, 3, (n, d))
    return Q, K, V, scale, eps


def _truth(Q, K, V, scale):
    small = Q.shape[0] * K.shape[0] * (Q.shape[1] + V.shape[1]) <= 4000
    ans = reference_oracle(Q, K, V, scale=scale) if small else exact_oracle(Q, K, V, scale=scale)
    assert ans.certificate.kind == "log"
    return ans


@pytest.mark.parametrize("kind", CLASSES)
def test_certificate_fuzz(kind):
    rng = np.random.default_rng(CLASSES.index(kind) + 77)
    checked = refused = 0
    for _ in range(30):
        Q, K, V, scale, eps = _instance(kind, rng)
        try:
            res = anytemp(Q, K, V, eps=eps, scale=scale)
        except NumericalError as exc:
            # the only clean refusal here: scores whose rounding leaves the weights undetermined
            assert "\n" not in str(exc) and "rescale" in str(exc)
            refused += 1
            continue
        assert np.all(np.isfinite(res.log_bounds) | np.isneginf(res.log_bounds))
        assert np.all(np.isfinite(res.row_bounds))
        truth = _truth(Q, K, V, scale)
        # compare relative to ||V|| so that V of size 1e300 or 1e-300 stays representable
        log_nu = math.log(float(np.abs(V).max()))
        with np.errstate(under="ignore"):
            got = res.output.sign * np.exp(res.output.log_abs - log_nu)
            ex = truth.output.sign * np.exp(truth.output.log_abs - log_nu)
            ex_err = np.abs(ex) * np.expm1(np.exp(truth.certificate.log_bound))
            bound = np.exp(res.log_bounds - log_nu)
        slack = 4 * 2.0**-53 * (np.abs(got) + np.abs(ex)) + 1e-300  # the two conversions to relative floats
        assert np.all(np.abs(got - ex) - ex_err <= bound + slack), (kind, Q.shape, K.shape, scale, eps)
        checked += 1
    assert checked >= (8 if kind == "huge_scale" else 30)
