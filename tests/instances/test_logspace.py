from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from instances.errors import NumericalError, ParameterError
from instances.logspace import LOG_HUGE, LOG_TINY, LogArray, log_add, logsumexp

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


_shapes = hnp.array_shapes(min_dims=1, max_dims=2, max_side=6)


@given(hnp.arrays(np.float64, _shapes, elements=finite).flatmap(
    lambda x: st.tuples(st.just(x), hnp.arrays(np.float64, x.shape, elements=finite))))
def test_log_add_matches_float_addition(xy):
    x, y = xy
    s = log_add(LogArray.from_float(x), LogArray.from_float(y))
    out = s.sign * np.exp(s.log_abs)
    assert np.allclose(out, x + y, rtol=1e-12, atol=1e-9 * (np.abs(x) + np.abs(y)).max(initial=0))


def test_far_below_float_range():
    a = LogArray(np.array([1, 1], dtype=np.int8), np.array([-1e4, -1e4 - np.log(3)]))
    b = LogArray(np.array([-1, 1], dtype=np.int8), np.array([-1e4 - np.log(3), -1e4]))
    s = log_add(a, b)
    assert np.allclose(s.log_abs, [-1e4 + np.log(2 / 3), -1e4 + np.log(4 / 3)])
    with pytest.raises(NumericalError, match="underflows"):
        s.to_float()
    with pytest.raises(NumericalError, match="overflows"):
        LogArray(np.array([1], dtype=np.int8), np.array([1e4])).to_float()


def test_exact_cancellation_gives_zero():
    x = LogArray.from_float(np.array([2.5]))
    z = log_add(x, LogArray(-x.sign, x.log_abs))
    assert z.sign.tolist() == [0] and np.isneginf(z.log_abs).all()


def test_invalid_arrays_rejected():
    with pytest.raises(NumericalError):
        LogArray(np.array([1], dtype=np.int8), np.array([np.nan]))
    with pytest.raises(NumericalError):
        LogArray(np.array([0], dtype=np.int8), np.array([0.0]))
    with pytest.raises(NumericalError):
        LogArray.from_float(np.array([np.inf]))


def test_logsumexp():
    a = np.array([[-1e4, -1e4], [-np.inf, -np.inf]])
    out = logsumexp(a, axis=1)
    assert np.isclose(out[0], -1e4 + np.log(2)) and np.isneginf(out[1])


#: Log magnitudes far outside the float64 range (|log| up to 1e5), and exact zeros.
_log_abs = st.one_of(st.floats(-1e5, 1e5, allow_subnormal=False), st.just(-np.inf))


@st.composite
def log_arrays(draw, shape):
    logs = draw(hnp.arrays(np.float64, shape, elements=_log_abs))
    signs = draw(hnp.arrays(np.int8, shape, elements=st.sampled_from([-1, 1])))
    return LogArray(np.where(np.isneginf(logs), 0, signs).astype(np.int8), logs)


def _exact_sum(sx, lx, sy, ly) -> tuple[int, mpmath.mpf]:
    """sign and log|x + y| of sx e^lx + sy e^ly: the difference of the logs exactly (2300 bits), then 60 digits."""
    if sx == 0 or sy == 0:
        s, lg = (sy, ly) if sx == 0 else (sx, lx)
        return int(s), (mpmath.mpf(float(lg)) if s else mpmath.mpf("-inf"))
    (s_hi, hi), (s_lo, lo) = sorted([(int(sx), float(lx)), (int(sy), float(ly))], key=lambda p: -p[1])
    with mpmath.workprec(2300):
        diff = mpmath.mpf(lo) - mpmath.mpf(hi)  # exact: two float64 values
    with mpmath.workdps(60):
        if s_hi == s_lo:
            return s_hi, hi + mpmath.log1p(mpmath.exp(diff))
        if diff == 0:
            return 0, mpmath.mpf("-inf")
        return s_hi, hi + mpmath.log(-mpmath.expm1(diff))


@settings(max_examples=150)
@given(st.data())
def test_log_add_matches_mpmath_far_outside_the_float_range(data):
    """x + y in log space against mpmath (exponent range unbounded), including near-cancellation and zeros."""
    shape = data.draw(_shapes)
    x = data.draw(log_arrays(shape))
    # y is often x's negation nudged by one ulp, or an equal value: cancellation and doubling
    nudged = np.where(np.isfinite(x.log_abs), np.nextafter(x.log_abs, np.inf), x.log_abs)
    y = data.draw(st.one_of(log_arrays(shape), st.just(LogArray(-x.sign, x.log_abs)),
                            st.just(x), st.just(LogArray(-x.sign, nudged))))
    s = log_add(x, y)
    assert s.shape == np.broadcast_shapes(x.shape, y.shape)
    for idx in np.ndindex(s.shape):
        want_sign, want_log = _exact_sum(x.sign[idx], x.log_abs[idx], y.sign[idx], y.log_abs[idx])
        assert s.sign[idx] == want_sign, (idx, x[idx], y[idx])
        if want_sign:
            hi = max(x.log_abs[idx], y.log_abs[idx])
            # exact up to rounding of the logs (|L| 2^-52 each), amplified by the cancellation e^(hi - log|x+y|)
            amplification = float(mpmath.exp(hi - want_log))
            tol = 4 * 2.0**-52 * (abs(hi) + 1) * amplification
            assert abs(s.log_abs[idx] - float(want_log)) <= tol, (idx, x[idx], y[idx])


@settings(max_examples=100)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5), elements=_log_abs),
       st.integers(-1, 2))
def test_logsumexp_matches_mpmath(a, axis):
    axis = axis % a.ndim
    out = logsumexp(a, axis=axis)
    assert out.shape == tuple(np.delete(a.shape, axis))
    moved = np.moveaxis(a, axis, -1)
    with mpmath.workdps(40):
        for idx in np.ndindex(moved.shape[:-1]):
            terms = [mpmath.exp(mpmath.mpf(v)) for v in moved[idx] if np.isfinite(v)]
            if not terms:
                assert np.isneginf(out[idx])
                continue
            want = float(mpmath.log(mpmath.fsum(terms)))
            assert abs(out[idx] - want) <= 4 * 2.0**-52 * (abs(want) + moved[idx].size + 1)


def test_contract_dtypes_messages_and_boundaries():
    """Details the properties above leave open (mutation testing, docs/testing.md)."""
    a = LogArray([1, -1, 0], [0, 2, -np.inf])  # lists, int64 signs: stored as int8 and float64
    assert a.sign.dtype == np.int8 and a.log_abs.dtype == np.float64
    f = LogArray.from_float([0, 3])  # integers convert too
    assert f.sign.dtype == np.int8 and f.sign.tolist() == [0, 1] and f.log_abs[1] == np.log(3.0)
    assert np.allclose(f.to_float(), [0.0, 3.0], rtol=1e-15, atol=0)  # zeros are not "underflows"
    with pytest.raises(ValueError, match=r"^sign shape \(2,\) differs from log_abs shape \(1,\)$"):
        LogArray([1, 1], [0.0])
    with pytest.raises(NumericalError, match=r"^log-space array contains NaN or \+inf in log\|x\|$"):
        LogArray([1], [np.inf])
    with pytest.raises(NumericalError, match="^cannot convert a non-finite float array to log space$"):
        LogArray.from_float([np.nan])
    # the conversion limits themselves are representable
    edge = LogArray([1, 1], [LOG_HUGE, LOG_TINY]).to_float()
    assert np.isfinite(edge).all() and edge[1] > 0
    e = LogArray([1], [0.0]).add_scalar_error(0.0, np.array([-1]))
    assert e.sign.dtype == np.int8 and e.sign.tolist() == [0]
    assert logsumexp(np.empty((3, 0)), axis=-1).shape == (3,)
    assert logsumexp(np.empty((0, 2)), axis=-2).shape == (2,)
    assert logsumexp(np.array([[1, 1]]), axis=-1)[0] == pytest.approx(1 + np.log(2))  # integer input


def test_add_scalar_error_takes_only_plus_or_minus_one():
    x = LogArray.from_float(np.array([1.0, 2.0]))
    np.testing.assert_allclose(x.add_scalar_error(0.0, np.array([-1, 1])).to_float(), [0.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(x.add_scalar_error(0.0, -1.0).to_float(), [0.0, 1.0], rtol=1e-15)
    # the int8 cast used to truncate -1.5 to -1 and to overflow on 256
    for bad in (256, -1.5, 0, 2, "x", np.array([1, 0])):
        with pytest.raises(ParameterError, match="direction must hold \\+1 or -1 per entry"):
            x.add_scalar_error(0.0, bad)
    with pytest.raises(ParameterError, match=r"direction of shape \(3,\) does not broadcast to \(2,\)"):
        x.add_scalar_error(0.0, np.array([1, 1, -1]))


def test_add_scalar_error_checks_its_log_delta():
    from decimal import Decimal

    x = LogArray.from_float(np.array([1.0, 2.0]))
    for bad in ("x", np.array([0.0, 1.0]), Decimal("sNaN"), np.nan):
        with pytest.raises(ParameterError, match="log_delta must be a"):
            x.add_scalar_error(bad, 1)
