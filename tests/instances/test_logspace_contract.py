"""Contract of instances.logspace beyond the value checks of test_logspace.py: stored dtypes, whole error messages,
indexing, silence (no RuntimeWarning leaks out of the library) and the last-ulp accuracy of the cancellation branch."""

import re
import warnings

import mpmath
import numpy as np
import pytest

from instances.errors import NumericalError
from instances.logspace import LogArray, log_add, logsumexp


def _exact(msg):
    return "^" + re.escape(msg) + "$"


def test_stored_dtypes_are_int8_and_float64_whatever_the_input():
    x = LogArray(np.array([1, -1, 0]), np.array([3, 0, -np.inf]))  # int64 sign, float64 log
    assert x.sign.dtype == np.int8 and x.log_abs.dtype == np.float64
    y = LogArray(np.array([1], dtype=np.int8), np.array([2], dtype=np.int64))
    assert y.log_abs.dtype == np.float64 and y.log_abs.tolist() == [2.0]
    z = LogArray(np.array([1], dtype=np.int8), np.array([0.1], dtype=np.float32))
    assert z.log_abs.dtype == np.float64 and z.log_abs[0] == np.float64(np.float32(0.1))


def test_from_float_converts_to_float64_before_taking_logs():
    # a float32 input is widened first, so the log is the float64 log of the same number
    x32 = np.array([3.0, -0.1, 0.0], dtype=np.float32)
    got = LogArray.from_float(x32)
    with np.errstate(divide="ignore"):
        want = np.log(np.abs(x32.astype(np.float64)))
    assert got.log_abs.dtype == np.float64 and np.array_equal(got.log_abs, want)
    assert got.sign.tolist() == [1, -1, 0]
    # a Python integer beyond int64 is a finite float64
    big = LogArray.from_float([10**30, -(10**30)])
    assert big.sign.tolist() == [1, -1] and np.array_equal(big.log_abs, np.log([1e30, 1e30]))


def test_bad_signs_and_inconsistent_zeros_are_refused_with_whole_messages():
    for bad in (2, -2, 3):
        with pytest.raises(NumericalError, match=_exact("log-space array has a sign outside -1, 0, +1")):
            LogArray(np.array([1, bad]), np.array([0.0, 0.0]))
    with pytest.raises(NumericalError,
                       match=_exact("log-space array is inconsistent: sign 0 must pair with log|x| = -inf")):
        LogArray(np.array([0]), np.array([1.5]))
    with pytest.raises(NumericalError,
                       match=_exact("log-space array is inconsistent: sign 0 must pair with log|x| = -inf")):
        LogArray(np.array([1]), np.array([-np.inf]))


def test_indexing_keeps_sign_and_log_together():
    x = LogArray.from_float(np.array([[2.0, 0.0], [-0.5, 4.0]]))
    row = x[1]
    assert isinstance(row, LogArray) and row.sign.tolist() == [-1, 1]
    assert np.array_equal(row.log_abs, np.log([0.5, 4.0]))
    col = x[:, 1]
    assert col.sign.tolist() == [0, 1] and col.log_abs[0] == -np.inf and col.log_abs[1] == np.log(4.0)
    one = x[0, 0]
    assert one.shape == () and int(one.sign) == 1 and float(one.log_abs) == np.log(2.0)


def test_no_runtime_warning_leaks_out():
    # zeros (log 0), exact cancellation (log of 0 inside the cancel branch) and two zeros (-inf - -inf) are
    # all legitimate inputs: the library must handle them silently (it never prints, and a warning prints)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = LogArray.from_float(np.array([0.0, 1.0, -2.0]))
        assert z.sign.tolist() == [0, 1, -1]
        s = log_add(LogArray.from_float(np.array([0.0, 1.0, 3.0])), LogArray.from_float(np.array([0.0, -1.0, 1.0])))
        assert s.sign.tolist() == [0, 0, 1] and s.log_abs[0] == -np.inf and s.log_abs[1] == -np.inf
        assert abs(s.log_abs[2] - np.log(4.0)) <= np.spacing(np.log(4.0))
        e = z.add_scalar_error(0.0, np.array([1, -1, 1]))  # 0+1, 1-1, -2+1
        assert e.sign.tolist() == [1, 0, -1] and e.log_abs[1] == -np.inf
        out = logsumexp(np.array([[-np.inf, -np.inf], [0.0, 0.0]]), axis=1)
        assert out[0] == -np.inf and abs(out[1] - np.log(2.0)) <= np.spacing(np.log(2.0))


def test_logsumexp_computes_in_float64():
    a = np.array([0.1, 0.2, -3.7], dtype=np.float32)
    got = logsumexp(a)
    assert np.asarray(got).dtype == np.float64
    mpmath.mp.dps = 40
    exact = mpmath.log(sum(mpmath.exp(mpmath.mpf(float(v))) for v in a))
    assert abs(float(got) - float(exact)) <= 2 * np.spacing(float(exact))


def test_cancellation_is_within_one_ulp_between_minus_ln3_and_minus_ln2():
    # 1 - e^d for d in (-ln 3, -ln 2): log1p(-exp(d)) is accurate to 1 ulp there, log(-expm1(d)) only to 2 ulps,
    # so the switch between the two formulas must sit at -ln 2 (Lemma 4.7 outputs are compared on the logs)
    mpmath.mp.dps = 40
    d = np.random.default_rng(1).uniform(-np.log(3.0), -np.log(2.0), 1500)
    one = LogArray(np.ones(d.shape, dtype=np.int8), np.zeros(d.shape))
    got = log_add(one, LogArray(-np.ones(d.shape, dtype=np.int8), d))
    assert got.sign.tolist() == [1] * d.size
    exact = np.array([float(mpmath.log(-mpmath.expm1(mpmath.mpf(float(v))))) for v in d])
    ulps = np.abs(got.log_abs - exact) / np.spacing(np.abs(exact))
    assert ulps.max() <= 1.0
