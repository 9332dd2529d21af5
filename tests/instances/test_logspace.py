from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from instances.errors import NumericalError
from instances.logspace import LogArray, log_add, logsumexp

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@given(st.lists(finite, min_size=1, max_size=8), st.lists(finite, min_size=1, max_size=8))
def test_log_add_matches_float_addition(xs, ys):
    n = min(len(xs), len(ys))
    x, y = np.array(xs[:n]), np.array(ys[:n])
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
