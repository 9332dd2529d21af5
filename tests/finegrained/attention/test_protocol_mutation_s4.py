"""Exact contracts of the oracle protocol that the mutation triage of session 4 found unchecked (docs/testing.md):
``call_oracle``'s one-line failures, its timing and the name it passes on, ``_accepts_log_eps`` on callables
without a signature, the overflow checks of ``check_attention_inputs`` at and around ``LOG_HUGE - 1``,
``resolve_oracle``'s names and refusals, ``Certificate.describe``/``to_dict`` and the outward rounding of
``_outward``."""

from __future__ import annotations

import functools
import math
import time
import warnings

import numpy as np
import pytest

from finegrained.attention import protocol
from finegrained.attention.protocol import (
    Certificate,
    _accepts_log_eps,
    as_answer,
    call_oracle,
    check_attention_inputs,
    resolve_oracle,
)
from instances.errors import NumericalError, ParameterError
from instances.logspace import LOG_HUGE, LOG_TINY, LogArray

ONE = np.ones((1, 1))


def _message(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as e:
        fn(*args, **kwargs)
    return str(e.value)


# ----------------------------------------------------------------------------------------------- call_oracle


def _raising(exc):
    def oracle(Q, K, V, *, scale):
        raise exc
    return oracle


def test_a_failing_oracle_is_one_whole_line_with_or_without_a_message():
    # the first line of the exception's text, after its type
    assert _message(ParameterError, call_oracle, "ext", _raising(RuntimeError("boom\nsecond line")), ONE, ONE, ONE,
                    scale=1.0) == "oracle 'ext' failed: RuntimeError: boom"
    # an exception with no text: the type alone, no trailing ": " and nothing made up
    assert _message(ParameterError, call_oracle, "ext", _raising(RuntimeError()), ONE, ONE, ONE,
                    scale=1.0) == "oracle 'ext' failed: RuntimeError"
    assert _message(ParameterError, call_oracle, "ext", _raising(SystemExit()), ONE, ONE, ONE,
                    scale=1.0) == "oracle 'ext' failed: SystemExit"


def test_call_oracle_reports_the_seconds_of_the_call_alone():
    def slow(Q, K, V, *, scale):
        time.sleep(0.02)
        return np.full((Q.shape[0], V.shape[1]), 0.5)

    before = time.perf_counter()
    answer, seconds = call_oracle("slow", slow, np.ones((2, 1)), ONE, ONE, scale=1.0)
    elapsed = time.perf_counter() - before
    assert 0.015 <= seconds <= elapsed  # (a margin for the sleep clock against perf_counter)
    assert answer.from_float and answer.certificate.kind == "none"
    assert answer.output.shape == (2, 1) and np.allclose(answer.output.to_float(), 0.5)


def test_call_oracle_names_the_oracle_when_its_answer_is_refused():
    assert _message(ParameterError, call_oracle, "mine", lambda Q, K, V, *, scale: {"T": 1}, ONE, ONE, ONE,
                    scale=1.0) == ("oracle 'mine' returned dict; expected an OracleAnswer, a LogArray, a numpy "
                                   "array or a torch tensor")
    assert _message(NumericalError, call_oracle, "mine", lambda Q, K, V, *, scale: np.array([[math.nan]]), ONE,
                    ONE, ONE, scale=1.0) == "oracle 'mine' returned NaN or infinite values"
    # as_answer's own default name
    assert _message(NumericalError, as_answer, np.array([[math.inf]])) == (
        "oracle 'oracle' returned NaN or infinite values")


class _NoSignature:
    """A callable whose signature cannot be read (inspect.signature raises TypeError)."""

    __signature__ = 0

    def __call__(self, Q, K, V, *, scale):
        return np.zeros((Q.shape[0], V.shape[1]))


def test_an_oracle_without_a_readable_signature_is_called_without_log_eps():
    assert _accepts_log_eps(_NoSignature()) is False
    assert _accepts_log_eps(max) is False  # a builtin without a signature: ValueError
    answer, _ = call_oracle("nosig", _NoSignature(), ONE, ONE, ONE, scale=1.0, log_eps=-5.0)
    assert answer.output.shape == (1, 1) and answer.output.to_float()[0, 0] == 0.0


# ------------------------------------------------------------------------------------ check_attention_inputs


def _passes(Q, K, scale):
    Q, K = np.atleast_2d(Q), np.atleast_2d(K)
    return check_attention_inputs(Q, K, np.ones((K.shape[0], 1)), scale)


def _log_exactly(target: float) -> float:
    """A float64 x with np.log(x) == target exactly (searched around exp(target))."""
    x = math.exp(target)
    for direction in (np.inf, -np.inf):
        y = x
        for _ in range(4096):
            if np.log(y) == target:
                return float(y)
            y = np.nextafter(y, direction)
    raise AssertionError(f"no float64 has log exactly {target!r}")


def test_the_scale_times_q_check_is_strict_at_log_huge_minus_one():
    edge = _log_exactly(LOG_HUGE - 1)
    # log max|Q| + log|scale| == LOG_HUGE - 1 exactly passes both checks (scale 1, K = 1, d = 1: the score
    # bound is the same number)
    Q, K, V, s = _passes([[edge]], [[1.0]], 1.0)
    assert Q[0, 0] == edge and s == 1.0
    # just above the edge (at scale 1 too), and well above it by a scale other than 1
    assert _message(NumericalError, _passes, [[1e308]], [[1e-300]], 1.0) == (
        "scale * Q overflows float64 (|scale| = 1, max|Q| = 1e+308)")
    assert _message(NumericalError, _passes, [[1e300]], [[1e-300]], -1e10) == (
        "scale * Q overflows float64 (|scale| = 1e+10, max|Q| = 1e+300)")
    # within a nat of the edge but below it: accepted (the limit is LOG_HUGE - 1, not LOG_HUGE - 2)
    _passes([[math.exp(LOG_HUGE - 1.5)]], [[1e-300]], 1.0)


def test_the_score_bound_is_log_q_plus_log_k_plus_log_d_plus_log_scale():
    def refusal(Q, K, scale):
        return _message(NumericalError, _passes, Q, K, scale)

    def want(q, k, d, s):
        return (f"scores s*<q,k> may reach exp({math.log(q) + math.log(k) + math.log(d) + math.log(s):.1f}) and "
                "overflow float64; rescale the inputs")

    # max|K| < 1 and d = 1000 at scale 1: every term counts with its sign
    msg = refusal(np.full((1, 1000), 1e307), np.full((2, 1000), 0.25), 1.0)
    assert msg == want(1e307, 0.25, 1000, 1.0) == (
        "scores s*<q,k> may reach exp(712.4) and overflow float64; rescale the inputs")
    # max|Q| < 1, d = 1 (log 1 = 0, not log 2), a scale other than 1
    assert refusal([[0.5]], [[1e300]], 1e10) == want(0.5, 1e300, 1, 1e10) == (
        "scores s*<q,k> may reach exp(713.1) and overflow float64; rescale the inputs")
    # between LOG_HUGE - 1 and LOG_HUGE + 1: refused (the limit is LOG_HUGE - 1)
    assert refusal([[math.exp(LOG_HUGE - 1.5)]], [[math.e]], 1.0) == want(math.exp(LOG_HUGE - 1.5), math.e, 1, 1.0)
    # a score bound of exactly LOG_HUGE - 1 passes (strict >), and one in (LOG_HUGE - 2, LOG_HUGE - 1) too
    edge = _log_exactly(LOG_HUGE - 1)
    _passes([[1.0]], [[edge]], 1.0)
    _passes([[math.exp(LOG_HUGE - 2.5)]], [[math.e]], 1.0)


def test_zero_queries_keys_or_scale_skip_the_log_bounds():
    # a zero max|Q|, max|K| or scale has no log: each check must skip it (no divide-by-zero warning) and accept
    cases = [(np.zeros((1, 2)), np.ones((1, 2)), 1.0), (np.ones((1, 2)), np.zeros((1, 2)), 1.0),
             (np.ones((1, 2)), np.ones((1, 2)), 0.0), (np.full((1, 2), 1e300), np.full((1, 2), 1e300), 0.0)]
    for Q, K, scale in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Qc, Kc, Vc, s = _passes(Q, K, scale)
        assert s == scale and np.array_equal(Qc, Q) and np.array_equal(Kc, K) and Vc.shape == (1, 1)


# --------------------------------------------------------------------------------------------- resolve_oracle


def _builtin(Q, K, V, *, scale):
    return np.zeros((Q.shape[0], V.shape[1]))


def test_a_callable_oracle_is_named_by_its_name_or_custom():
    assert resolve_oracle(_builtin, {}) == ("_builtin", _builtin)
    part = functools.partial(_builtin)  # no __name__
    assert resolve_oracle(part, {}) == ("custom", part)


class _EntryPoint:
    def __init__(self, load):
        self.load = load


def test_resolve_oracle_refusals_are_whole_messages(monkeypatch):
    def broken():
        raise ImportError("no module named fg_gone")

    eps = {"gone": _EntryPoint(broken), "number": _EntryPoint(lambda: 3)}
    monkeypatch.setattr(protocol, "_entry_point_oracles", lambda: dict(eps))
    builtin = {"exact": _builtin, "poly": _builtin}
    assert _message(ParameterError, resolve_oracle, 3, builtin) == "an oracle is a name or a callable, got int"
    assert _message(ParameterError, resolve_oracle, "gone", builtin) == (
        "cannot load oracle 'gone' from its entry point: no module named fg_gone")
    assert _message(ParameterError, resolve_oracle, "number", builtin) == (
        "entry point 'number' does not name a callable")
    assert _message(ParameterError, resolve_oracle, "lev_torch", builtin, {"lev_torch": "torch"}) == (
        "oracle 'lev_torch' needs the optional extra 'torch': pip install 'finegrained[torch]'")
    for unavailable in (None, {}, {"lev_torch": "torch"}):
        assert _message(ParameterError, resolve_oracle, "nope", builtin, unavailable) == (
            "unknown oracle 'nope'; available: exact, gone, number, poly, or package.module:function")
    assert resolve_oracle("poly", builtin) == ("poly", _builtin)


# ------------------------------------------------------------------------------------------------ Certificate


def test_describe_and_to_dict_are_whole_values():
    assert Certificate("none").describe() == "no certified error bound"
    assert Certificate("none", detail="nothing").to_dict() == {
        "kind": "none", "log_bound": None, "description": "no certified error bound", "detail": "nothing"}
    assert Certificate("additive", -1.5, "Lemma 3.6").to_dict() == {
        "kind": "additive", "log_bound": -1.5, "description": f"additive error <= {math.exp(-1.5):.3g} (e^-1.5)",
        "detail": "Lemma 3.6"}
    # an exact certificate: the log-bound -inf is no JSON number
    assert Certificate("relative").to_dict() == {
        "kind": "relative", "log_bound": None, "description": "relative error <= 0", "detail": ""}


def test_certified_bounds_are_widened_by_ulps_relative_to_their_logs():
    ulps = 8 * 2.0**-52
    log_abs = np.array([[100.0, -250.0, 0.3, -np.inf]])
    value = LogArray(np.array([[1, -1, 1, 0]], dtype=np.int8), log_abs)
    out = Certificate("relative", math.log(0.25)).apply(value)
    rho = float(np.exp(math.log(0.25)))  # the rho the certificate uses (exp of its log, maybe not 0.25 exactly)
    # before rounding: |T| in [|T~|/(1+rho), |T~|/(1-rho)]; the logs move outward by ulps * max(1, |log|)
    small, large = log_abs[0, :3] - math.log1p(rho), log_abs[0, :3] - math.log1p(-rho)
    for bound, logs, grow in ((out.lower, (small[0], large[1], small[2]), (False, True, False)),
                              (out.upper, (large[0], small[1], large[2]), (True, False, True))):
        want = [x + ulps * max(1.0, abs(x)) if g else x - ulps * max(1.0, abs(x)) for x, g in zip(logs, grow)]
        assert bound.log_abs[0, :3].tolist() == want
        assert bound.sign.tolist() == [[1, -1, 1, 0]] and bound.log_abs[0, 3] == -np.inf
    # the widening at log 100 is 100 times the one at |log| <= 1, so it moves the stored log by whole ulps
    assert out.upper.log_abs[0, 0] - large[0] > 10 * np.spacing(large[0])


# ------------------------------------------------------------------------- Certificate: construction and apply

_ULPS = 8 * 2.0**-52  # the documented outward rounding: a few units in the last place of a log


def _la(signs, logs) -> LogArray:
    return LogArray(np.array([signs], dtype=np.int8), np.array([logs], dtype=np.float64))


def test_certificate_construction_refusals_are_whole_messages():
    assert _message(ParameterError, Certificate, "bogus", 0.0) == (
        "unknown certificate kind 'bogus'; expected one of none, additive, relative, log")
    assert _message(NumericalError, Certificate, "log", "abc") == "a log certificate needs a real log-bound, got 'abc'"
    for bad in (math.nan, math.inf, [[-1.0], [math.nan]], [[-1.0], [math.inf]]):
        assert _message(NumericalError, Certificate, "additive", bad) == (
            "an additive certificate has a NaN or infinite bound: it certifies nothing")
    # rho = e^0 = 1 exactly and anything above: refused; just below 1: accepted
    for bad in (0.0, 0.5, [[-1.0, 0.0]]):
        assert _message(NumericalError, Certificate, "relative", bad) == (
            "a relative error bound >= 1 does not fix the sign of the output: it certifies nothing")
    assert Certificate("relative", -1e-12).log_bound == -1e-12
    # the refusal of rho >= 1 is the relative kind's own: additive and log bounds above e^0 are fine
    assert Certificate("additive", 2.0).log_bound == 2.0 and Certificate("log", 0.0).log_bound == 0.0


def test_certificate_stores_its_bound_as_float64():
    from fractions import Fraction

    c = Certificate("additive", Fraction(-3, 2))  # any real number, stored as a Python float
    assert type(c.log_bound) is float and c.log_bound == -1.5
    c = Certificate("log", np.float32(-2.0))
    assert type(c.log_bound) is float and c.log_bound == -2.0
    c = Certificate("additive", [[-2], [-3]])  # per row, ints: a float64 array of that shape
    assert isinstance(c.log_bound, np.ndarray) and c.log_bound.dtype == np.float64
    assert c.log_bound.tolist() == [[-2.0], [-3.0]] and c.worst_log_bound == -2.0
    c = Certificate("relative", [-4.0])  # one entry: still an array, not a scalar
    assert isinstance(c.log_bound, np.ndarray) and c.log_bound.shape == (1,)
    # no certificate: the bound is inf whatever was given
    assert Certificate("none", -5.0).log_bound == math.inf and Certificate("none").log_bound == math.inf
    assert Certificate("additive").log_bound == -math.inf  # the default is exact


def test_apply_without_a_certificate_and_with_a_bound_of_the_wrong_shape():
    value = _la([1, -1], [0.0, 1.0])
    out = Certificate("none").apply(value)
    assert out.value is value and out.lower is None and out.upper is None
    assert _message(ParameterError, Certificate("additive", np.zeros((3, 1))).apply, LogArray.from_float(
        np.ones((2, 1)))) == ("the certificate's bound has shape (3, 1), which does not fit an output of shape (2, 1)")


def _mp_log_abs_and_sign(x):
    import mpmath

    return (0, -math.inf) if x == 0 else (1 if x > 0 else -1, float(mpmath.log(abs(x))))


def test_additive_bounds_are_value_plus_minus_the_bound_and_the_rounding_slop():
    import mpmath

    mpmath.mp.prec = 200
    # per entry: log|v| and the certified log-bound b; the slop is e^big 2 ULPS (2 + |big|), big = max(log|v|, b)
    signs = [1, -1, 0, 1, -1, 1]
    logs = [0.0, 0.0, -math.inf, 0.25, -0.5, 3.0]
    bound = [math.log(1e-30), math.log(1e-30), math.log(0.5), -0.9, -0.3, 1.0]
    value = _la(signs, logs)
    out = Certificate("additive", np.array([bound])).apply(value)
    assert out.value is value
    for i, (s, L, b) in enumerate(zip(signs, logs, bound)):
        v = 0 if s == 0 else s * mpmath.exp(L)
        big = max(L, b)
        err = mpmath.exp(b) + mpmath.exp(big) * 2 * _ULPS * (2 + abs(big))
        for got, exact, up in ((out.lower, v - err, False), (out.upper, v + err, True)):
            sgn, lg = _mp_log_abs_and_sign(exact)
            # then moved outward by ULPS relative to the log
            lg += (1 if (sgn > 0) == up else -1) * _ULPS * max(1.0, abs(lg))
            assert got.sign[0, i] == sgn, (i, up)
            assert abs(got.log_abs[0, i] - lg) <= 0.1 * _ULPS * max(1.0, abs(lg)) + 4 * np.spacing(abs(lg)), (i, up)
    # at v = 1 with a negligible bound the interval is 1 -+ 4 ULPS, widened by 1 ULPS: [e^-5U, e^5U] to 1e-6
    assert out.upper.log_abs[0, 0] == pytest.approx(5 * _ULPS, rel=1e-6)
    assert out.lower.log_abs[0, 0] == pytest.approx(-5 * _ULPS, rel=1e-6)


def test_entries_certified_exact_are_left_exact():
    value = _la([1, -1, 0, 1], [-0.5, 2.0, -math.inf, 40.0])
    for kind in ("additive", "relative", "log"):
        b = np.array([[-math.inf, -math.inf, -math.inf, -3.0]])
        out = Certificate(kind, b).apply(value)
        for bound in (out.lower, out.upper):
            assert bound.sign[0, :3].tolist() == [1, -1, 0], kind
            assert bound.log_abs[0, :3].tolist() == [-0.5, 2.0, -math.inf], kind
        # the inexact entry is widened both ways
        assert out.lower.sign[0, 3] == out.upper.sign[0, 3] == 1
        assert out.lower.log_abs[0, 3] < 40.0 < out.upper.log_abs[0, 3], kind


def test_log_certificates_move_the_log_by_delta_and_keep_the_sign():
    ulps = _ULPS
    log_abs = [10.0, -250.0, 0.3, -math.inf]
    value = _la([1, -1, 1, 0], log_abs)
    delta = float(np.exp(-2.0))
    out = Certificate("log", -2.0).apply(value)
    assert out.value is value
    small = [x - delta for x in log_abs[:3]]
    large = [x + delta for x in log_abs[:3]]
    # lower: the positive entries' logs shrink, the negative one's grows; then ULPS outward
    want_lo = [small[0] - ulps * max(1, abs(small[0])), large[1] + ulps * abs(large[1]), small[2] - ulps]
    want_hi = [large[0] + ulps * max(1, abs(large[0])), small[1] - ulps * abs(small[1]), large[2] + ulps]
    assert out.lower.log_abs[0, :3].tolist() == want_lo and out.upper.log_abs[0, :3].tolist() == want_hi
    for bound in (out.lower, out.upper):
        assert bound.sign.tolist() == [[1, -1, 1, 0]] and bound.log_abs[0, 3] == -math.inf


def test_bounds_beyond_the_log_range_are_refused():
    # |log T~| + delta overflows float64: for a positive entry the upper bound, for a negative one the lower
    for signs in ([1], [-1], [1, -1]):
        value = _la(signs, [1.7e308] * len(signs))
        with np.errstate(over="ignore"):  # the log overflows on purpose
            assert _message(NumericalError, Certificate("log", 709.7).apply, value) == (
                "a certified bound overflows the log range")


def test_zeros_stay_exact_zeros_under_any_finite_log_bound():
    # delta = e^800 overflows to inf, which reaches no bound of a zero entry (-inf + inf would be NaN)
    zeros = _la([0, 0], [-math.inf, -math.inf])
    with np.errstate(over="ignore", invalid="ignore"):
        out = Certificate("log", 800.0).apply(zeros)
    for bound in (out.lower, out.upper):
        assert bound.sign.tolist() == [[0, 0]] and bound.log_abs.tolist() == [[-math.inf, -math.inf]]
    assert out.value is zeros


def test_as_answer_wraps_each_kind_of_output():
    la = _la([1, 0], [0.5, -math.inf])
    a = as_answer(la)
    assert a.output is la and not a.from_float and a.certificate.kind == "none"
    for raw in (np.array([0.5, -2.0]), [0.5, -2.0], np.array([[0.5], [-2.0]])):
        a = as_answer(raw)
        assert a.output.shape == (2, 1) and a.output.to_float().ravel().tolist() == [0.5, -2.0]
        assert a.from_float is True and a.certificate.kind == "none" and a.float_log_tiny == LOG_TINY
    wide = as_answer(np.ones((2, 3)))
    assert wide.output.shape == (2, 3)
    # the smallest normal of the oracle's own float type
    assert as_answer(np.ones((1, 1), dtype=np.float32)).float_log_tiny == math.log(float(np.finfo(np.float32).tiny))
    assert as_answer(np.ones((1, 1), dtype=np.int64)).float_log_tiny == LOG_TINY
