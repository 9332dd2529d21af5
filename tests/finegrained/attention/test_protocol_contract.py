"""Exact contracts of the protocol's small helpers: ``_fmt_log`` at its switch points and ``_as_matrix``'s
refusals, conversions and largest entry (mutation triage, docs/testing.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention.protocol import _as_matrix, _fmt_log, check_attention_inputs
from instances.errors import NumericalError, ParameterError


def test_fmt_log_in_words_at_its_switch_points():
    assert _fmt_log(-math.inf) == "0" and _fmt_log(math.inf) == "inf"
    assert _fmt_log(0.0) == "1 (e^0)" and _fmt_log(0.5) == f"{math.exp(0.5):.3g} (e^0.5)"
    # the plain number is shown strictly inside (-700, 700); at and beyond the ends only the power
    for x in (-699.5, 699.5):
        assert _fmt_log(x) == f"{math.exp(x):.3g} (e^{x:.4g})"
    for x in (-700.0, -700.5, 700.0, 700.5, -1e5):
        assert _fmt_log(x) == f"e^{x:.6g}"


def test_as_matrix_refusals_are_whole_messages():
    with pytest.raises(ParameterError) as e:
        _as_matrix("Q", np.ones((1, 1), dtype=complex))
    assert str(e.value) == "Q must be a real numeric matrix, got dtype complex128"
    with pytest.raises(ParameterError) as e:
        _as_matrix("K", [["a"]])
    assert str(e.value) == "K must be a real numeric matrix (could not convert string to float: 'a')"
    with pytest.raises(ParameterError) as e:
        _as_matrix("V", [1.0, 2.0])
    assert str(e.value) == "V must be a 2-D matrix, got an array of shape (2,)"
    with pytest.raises(NumericalError) as e:
        _as_matrix("Q", [[1.0, math.nan]])
    assert str(e.value) == "Q contains NaN or infinite entries"


def test_as_matrix_converts_to_float64_and_returns_the_largest_entry():
    arr, top = _as_matrix("Q", [[1, -3], [2, 0]])
    assert arr.dtype == np.float64 and arr.tolist() == [[1.0, -3.0], [2.0, 0.0]] and top == 3.0
    assert _as_matrix("Q", [[0.25]])[1] == 0.25  # not floored at 1
    arr, top = _as_matrix("Q", np.zeros((0, 3)))  # no rows: the largest entry is 0, not an error
    assert arr.shape == (0, 3) and top == 0.0


def test_check_attention_inputs_names_each_matrix():
    good = [[1.0]]
    for pos, name in enumerate("QKV"):
        args = [good, good, good]
        args[pos] = [[math.inf]]
        with pytest.raises(NumericalError) as e:
            check_attention_inputs(*args, None)
        assert str(e.value) == f"{name} contains NaN or infinite entries"
    Q, K, V, s = check_attention_inputs([[1, 2]], [[3, 4]], [[5]], None)
    assert Q.dtype == K.dtype == V.dtype == np.float64 and s == 0.5


def _refusal(exc_type, *args):
    with pytest.raises(exc_type) as e:
        check_attention_inputs(*args)
    return str(e.value)


def test_check_attention_inputs_refusals_are_whole_messages():
    assert _refusal(ParameterError, np.ones((1, 2)), np.ones((1, 3)), np.ones((1, 1)), None) == (
        "Q has 2 columns but K has 3; they must share dimension d")
    assert _refusal(ParameterError, np.ones((1, 1)), np.ones((2, 1)), np.ones((3, 1)), None) == (
        "V has 3 rows but K has 2; V needs one row per key")
    assert _refusal(ParameterError, np.ones((1, 1)), np.ones((0, 1)), np.ones((0, 1)), None) == (
        "attention needs at least one key (K has 0 rows): the normaliser D would be 0")
    assert _refusal(ParameterError, [[1.0]], [[1.0]], [[1.0]], "x") == "scale must be a real number, got 'x'"
    assert _refusal(ParameterError, [[1.0]], [[1.0]], [[1.0]], math.inf) == "scale must be finite, got inf"
    # max|Q| below 1 still counts: log(0.5) + log(1.7e308) is above LOG_HUGE - 1
    assert _refusal(NumericalError, [[0.5]], [[1e-300]], [[1.0]], 1.7e308) == (
        "scale * Q overflows float64 (|scale| = 1.7e+308, max|Q| = 0.5)")


def test_default_scale_is_one_over_d_and_one_without_features():
    for d, want in ((1, 1.0), (2, 0.5), (4, 0.25)):
        assert check_attention_inputs(np.ones((1, d)), np.ones((1, d)), np.ones((1, 1)), None)[3] == want
    assert check_attention_inputs(np.ones((1, 0)), np.ones((1, 0)), np.ones((1, 1)), None)[3] == 1.0
    # one key is enough
    assert check_attention_inputs(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), 2.0)[3] == 2.0


def test_all_zero_queries_raise_no_floating_point_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_attention_inputs(np.zeros((2, 2)), np.ones((3, 2)), np.ones((3, 1)), 1e300)
