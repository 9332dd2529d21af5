"""The oracle protocol: certificates turn an output into bounds that contain the truth, and nothing else passes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finegrained.attention.protocol import (
    Certificate,
    OracleAnswer,
    as_answer,
    call_oracle,
    check_attention_inputs,
)
from instances.errors import NumericalError, ParameterError
from instances.logspace import LOG_TINY, LogArray

finite_logs = st.floats(min_value=-3000, max_value=300, allow_nan=False)


def _contains(bounds, truth: LogArray) -> bool:
    """lower <= truth <= upper, compared in log space with signs."""
    def leq(a: LogArray, b: LogArray) -> np.ndarray:
        av = np.where(a.sign == 0, 0.0, a.sign * 1.0)
        bv = np.where(b.sign == 0, 0.0, b.sign * 1.0)
        same = (a.sign == b.sign) & (a.sign != 0)
        mag = np.where(a.sign > 0, a.log_abs <= b.log_abs + 1e-12, a.log_abs >= b.log_abs - 1e-12)
        return np.where(same, mag, av <= bv)

    return bool(leq(bounds.lower, truth).all() and leq(truth, bounds.upper).all())


@settings(max_examples=200, deadline=None)
@given(log_u=finite_logs, sign=st.sampled_from([-1, 1]), log_err=st.floats(-3100, 310), frac=st.floats(-1, 1))
def test_additive_interval_contains_every_value_within_the_bound(log_u, sign, log_err, frac):
    """If |u~ - u| <= e^b then u lies in the certified interval (checked for u = u~ + frac e^b)."""
    u_tilde = LogArray(np.array([sign], dtype=np.int8), np.array([log_u]))
    if frac == 0:
        delta = LogArray(np.array([0], dtype=np.int8), np.array([-np.inf]))
    else:
        delta = LogArray(np.array([1 if frac > 0 else -1], dtype=np.int8), np.array([log_err + math.log(abs(frac))]))
    from instances.logspace import log_add

    truth = log_add(u_tilde, delta)
    bounds = Certificate("additive", log_err).apply(u_tilde)
    assert _contains(bounds, truth)


@settings(max_examples=200, deadline=None)
@given(log_u=finite_logs, sign=st.sampled_from([-1, 1]), log_rho=st.floats(-40, -0.01), frac=st.floats(-1, 1))
def test_relative_and_log_intervals_contain_the_truth(log_u, sign, log_rho, frac):
    rho = math.exp(log_rho)
    # truth u with |u~ - u| <= rho |u|: u~ = u (1 + frac rho)
    truth = LogArray(np.array([sign], dtype=np.int8), np.array([log_u]))
    u_tilde = LogArray(truth.sign, truth.log_abs + math.log1p(frac * rho))
    assert _contains(Certificate("relative", log_rho).apply(u_tilde), truth)
    # |log u~ - log u| <= delta
    delta = abs(math.log1p(frac * rho)) + 1e-300
    assert _contains(Certificate("log", math.log(delta) + 1e-12).apply(u_tilde), truth)


def test_certificates_refuse_nan_inf_and_useless_bounds():
    for bad in (math.nan, math.inf, np.array([0.0, math.nan])):
        with pytest.raises(NumericalError):
            Certificate("additive", bad)
    with pytest.raises(NumericalError, match="does not fix the sign"):
        Certificate("relative", 0.0)
    with pytest.raises(ParameterError):
        Certificate("probably", 0.0)
    with pytest.raises(ParameterError, match="does not fit"):
        Certificate("additive", np.zeros(3)).apply(LogArray.from_float(np.ones((2, 1))))
    none = Certificate("none")
    assert not none.certified and none.apply(LogArray.from_float(np.ones(1))).lower is None
    c = Certificate("additive", math.log(1e-6))
    assert c.describe().startswith("additive error <= 1e-06") and c.to_dict()["kind"] == "additive"


def test_as_answer_wraps_arrays_and_refuses_junk():
    a = as_answer(np.array([[0.5], [0.25]]))
    assert a.from_float and not a.certificate.certified and a.output.shape == (2, 1)
    assert as_answer(np.array([0.5, 0.25])).output.shape == (2, 1)
    with pytest.raises(ParameterError, match="complex"):
        as_answer(np.ones((2, 1), dtype=complex))
    with pytest.raises(ParameterError):
        as_answer(np.array([["a"]]))
    with pytest.raises(NumericalError):
        as_answer(np.array([[np.inf]]))
    with pytest.raises(ParameterError, match="expected an OracleAnswer"):
        as_answer("0.5")


def test_call_oracle_passes_log_eps_only_to_oracles_that_take_it():
    seen = {}

    def takes(Q, K, V, *, scale=None, log_eps=None):
        seen["log_eps"] = log_eps
        return OracleAnswer(LogArray.from_float(np.ones((Q.shape[0], 1))))

    def does_not(Q, K, V, *, scale=None):
        return np.ones((Q.shape[0], 1))

    Q = np.ones((3, 2))
    call_oracle("t", takes, Q, Q, np.ones((3, 1)), scale=1.0, log_eps=-5.0)
    assert seen["log_eps"] == -5.0
    ans, seconds = call_oracle("d", does_not, Q, Q, np.ones((3, 1)), scale=1.0, log_eps=-5.0)
    assert ans.from_float and seconds >= 0
    with pytest.raises(ParameterError, match="shape"):
        call_oracle("d", does_not, Q, Q, np.ones((3, 2)), scale=1.0)


@pytest.mark.parametrize("bad", [np.array([["x"]]), np.ones((2, 2), dtype=complex), np.array([1.0, 2.0]),
                                 np.ones((2, 2), dtype=object)])
def test_input_checks_are_parameter_errors(bad):
    with pytest.raises(ParameterError):
        check_attention_inputs(bad, np.ones((2, 2)), np.ones((2, 1)), None)
    with pytest.raises(ParameterError):
        check_attention_inputs(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 1)), "x")


def _is_float64_of(ans: OracleAnswer, expected) -> bool:
    """The answer holds exactly the float64 values ``expected`` (compared as LogArrays: exp(log 3) != 3)."""
    want = LogArray.from_float(np.asarray(expected, dtype=np.float64))
    return np.array_equal(ans.output.sign, want.sign) and np.array_equal(ans.output.log_abs, want.log_abs)


def test_float_answers_record_the_smallest_normal_of_their_own_dtype():
    """``float_log_tiny`` is the log of the oracle's own float type's smallest normal; ints and float64 keep
    float64's, and every answer is converted to float64 exactly."""
    f32 = as_answer(np.array([[0.5], [-2.0]], dtype=np.float32))
    assert f32.from_float and f32.float_log_tiny == math.log(float(np.finfo(np.float32).tiny))
    assert _is_float64_of(f32, [[0.5], [-2.0]])
    f16 = as_answer(np.array([[0.25]], dtype=np.float16))
    assert f16.float_log_tiny == math.log(float(np.finfo(np.float16).tiny))
    for arr in (np.array([[1.0], [3.0]]), np.array([[1], [3]], dtype=np.int64), np.array([[True], [False]]),
                [[1.0], [3.0]]):
        ans = as_answer(arr)
        assert ans.float_log_tiny == LOG_TINY == math.log(float(np.finfo(np.float64).tiny))
        assert _is_float64_of(ans, arr)


def test_refused_arrays_say_exactly_why():
    with pytest.raises(ParameterError) as exc:
        as_answer(np.ones((2, 1), dtype=complex))
    assert str(exc.value) == "the oracle returned complex values; attention outputs are real"
    with pytest.raises(ParameterError) as exc:
        as_answer(np.array([["a"]]))
    assert str(exc.value) == "the oracle returned an array of dtype <U1; expected real floats"
    with pytest.raises(ParameterError) as exc:
        as_answer(np.array([[np.datetime64("2020-01-01")]]))
    assert str(exc.value) == "the oracle returned an array of dtype datetime64[D]; expected real floats"


class _TensorLike:
    """A torch-like array (``detach``, ``cpu``, ``double``, ``numpy``) without ``is_complex`` or
    ``is_floating_point``: the protocol takes the methods it lacks as answering False."""

    def __init__(self, values):
        self.values = np.asarray(values)
        self.dtype = "opaque"  # torch.finfo would refuse it: a float tensor-like must say so

    def detach(self):
        return self

    def cpu(self):
        return self

    def double(self):
        return _TensorLike(self.values.astype(np.float64))

    def numpy(self):
        return self.values


def test_tensor_likes_are_converted_and_objects_with_only_cpu_are_refused():
    ans = as_answer(_TensorLike([[0.5], [0.125]]))
    assert ans.from_float and ans.float_log_tiny == LOG_TINY
    assert _is_float64_of(ans, [[0.5], [0.125]])

    class OnlyCpu:
        def cpu(self):
            return self

    with pytest.raises(ParameterError) as exc:
        as_answer(OnlyCpu(), "k")
    assert str(exc.value) == ("oracle 'k' returned OnlyCpu; expected an OracleAnswer, a LogArray, a numpy array or "
                              "a torch tensor")


def test_torch_tensors_are_converted_with_their_own_float_range():
    torch = pytest.importorskip("torch")
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        t = torch.tensor([[0.5, -0.25], [2.0, 0.0]], dtype=dtype, requires_grad=dtype != torch.float16)
        ans = as_answer(t)
        assert ans.from_float and _is_float64_of(ans, [[0.5, -0.25], [2.0, 0.0]])
        assert ans.float_log_tiny == math.log(torch.finfo(dtype).tiny)
    ints = as_answer(torch.tensor([[3], [1]], dtype=torch.int32))
    assert ints.float_log_tiny == LOG_TINY and _is_float64_of(ints, [[3.0], [1.0]])
    assert as_answer(torch.tensor([0.5, 0.25])).output.shape == (2, 1)
    with pytest.raises(ParameterError) as exc:
        as_answer(torch.ones((2, 1), dtype=torch.complex64))
    assert str(exc.value) == "the oracle returned a complex tensor; attention outputs are real"


def test_a_python_int_beyond_float64_is_one_parameter_error():
    """10**400 cannot become a float64: the matrix check names the matrix instead of leaking OverflowError."""
    from finegrained.attention import exact

    for args, name in ((([[10**400]], [[1.0]], [[1.0]]), "Q"), (([[1.0]], [[10**400]], [[1.0]]), "K"),
                       (([[1.0]], [[1.0]], [[-(10**400)]]), "V")):
        with pytest.raises(ParameterError) as exc:
            exact(*args)
        assert str(exc.value) == f"{name} must be a real numeric matrix (int too large to convert to float)"


def test_a_python_int_scale_beyond_float64_is_one_parameter_error():
    from finegrained.attention import exact

    with pytest.raises(ParameterError) as exc:
        exact([[1.0]], [[1.0]], [[1.0]], scale=10**400)
    assert str(exc.value) == f"scale must be a real number, got {repr(10**400)[:57]}..."
    with pytest.raises(ParameterError) as exc:  # past Python's 4300-digit limit the value cannot even be printed
        exact([[1.0]], [[1.0]], [[1.0]], scale=10**5000)
    assert str(exc.value) == "scale must be a real number, got <int too large to print>"


def test_additive_bounds_beyond_1e16_nats_stay_wide_enough():
    """Past |log| ~ 1e16 a float64 log is spaced over a nat apart: v = -e^L with e = e^L once cancelled to exactly
    0, and an honest oracle's row of true value 0.89 fell outside its certified interval [-2e^L, 0]."""
    for L in (1e17, 1e20, 1e300, 1.7e308):
        c = Certificate("additive", L).apply(LogArray(np.array([[-1]]), np.array([[L]])))
        assert c.lower.sign[0, 0] == -1 and c.upper.sign[0, 0] == 1  # 0.89 (and 0) inside
        assert c.upper.log_abs[0, 0] >= L


def test_a_bound_on_no_entries_is_described():
    # the largest bound over an empty output is -inf (the max of nothing), not a numpy reduction error
    for kind in ("additive", "relative", "log"):
        c = Certificate(kind, np.zeros((0, 1)))
        assert c.worst_log_bound == -math.inf
        assert c.describe() == f"{kind} error <= 0"
        assert c.to_dict()["log_bound"] is None and c.to_dict()["description"] == f"{kind} error <= 0"
    assert Certificate("additive", np.array([[-3.0, -2.0]])).worst_log_bound == -2.0


def test_an_overflowing_log_certificate_is_one_error_without_warnings():
    value = LogArray(np.array([[1, 0]]), np.array([[2.0, -np.inf]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e^800 and -inf + inf used to warn before the NumericalError
        with pytest.raises(NumericalError, match="a certified bound overflows the log range"):
            Certificate("log", 800.0).apply(value)
        up = Certificate("log", 700.0).apply(value).upper
        with pytest.raises(NumericalError):  # rho rounds to 1: log1p(-1) divided by zero before the refusal
            Certificate("relative", -1e-300).apply(LogArray.from_float(np.array([[0.5], [0.0]])))
    assert up.log_abs[0, 0] == pytest.approx(2.0 + np.exp(700.0), rel=1e-12) and up.sign[0, 1] == 0
