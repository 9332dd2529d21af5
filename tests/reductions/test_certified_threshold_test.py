"""Lemma 4.7's certified threshold test ``u_i >= 2 t~``, row by row, and the shape checks of its caller.

Every row is built in log space at a chosen offset from ``log 2t~``, so each branch of the test (point answer,
interval above, interval below, interval across, within the rounding allowance of ``log 2t~``, negative bounds,
the gap condition failing) is checked with its exact expected answer and margin.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from instances.errors import ReductionError
from instances.gap_ann import GapANNInstance
from instances.logspace import LogArray
from instances.solutions import CertifiedOutput
from reductions.gap_ann_to_attention import GapANNToAAttC, certified_threshold_test, lemma47_parameters


def _params(**kw):
    return lemma47_parameters(4, 4, 12, 5.0, 0.6, **kw)


def _log(offsets, signs=None, base=0.0) -> LogArray:
    """A 1-D LogArray with ``log|x| = base + offset`` and the given signs (+1 by default)."""
    off = np.asarray(offsets, dtype=np.float64)
    sign = np.ones(off.shape, dtype=np.int8) if signs is None else np.asarray(signs, dtype=np.int8)
    return LogArray(sign, np.where(sign == 0, -np.inf, base + off))


def test_a_bare_output_is_exact_and_a_row_at_the_threshold_stays_undecided():
    p = _params()
    T = p.log_threshold
    got = certified_threshold_test(p, _log([1.0, -1.0, 0.0], base=T))
    assert got.certified
    assert got.yes.tolist() == [True, False, True]  # the point test is u >= 2t~
    # an exact answer at log 2t~ itself is within the rounding of log 2t~: not decided either way
    assert got.undecided.tolist() == [False, False, True]
    assert got.margin.tolist() == [(T + 1.0) - T, (T - 1.0) - T, 0.0]


def test_an_output_without_bounds_gives_uncertified_point_answers():
    p = _params()
    T = p.log_threshold
    got = certified_threshold_test(p, CertifiedOutput(_log([0.5, -0.5, 2.0], signs=[1, 1, -1], base=T)))
    assert got.certified is False
    assert got.yes.tolist() == [True, False, False] and not got.undecided.any()
    assert got.margin.tolist() == [(T + 0.5) - T, (T - 0.5) - T, -math.inf]


def test_each_interval_decides_exactly_its_side():
    p = _params()
    T, eta = p.log_threshold, p.log_rounding
    assert 0 < eta < 1e-9
    rows = [
        # (value, lower, upper) offsets from log 2t~, signs of (value, lower, upper), expected (yes, undecided)
        ((1.0, 0.5, 1.5), (1, 1, 1), (True, False)),  # interval above
        ((-1.0, -1.5, -0.5), (1, 1, 1), (False, False)),  # interval below
        ((0.2, -0.5, 0.5), (1, 1, 1), (True, True)),  # across, point YES
        ((-0.2, -0.5, 0.5), (1, 1, 1), (False, True)),  # across, point NO
        ((1.0, 0.5 * eta, 1.0), (1, 1, 1), (True, True)),  # lower above 2t~ by less than the rounding: open
        ((1.0, 2.0 * eta, 1.0), (1, 1, 1), (True, False)),  # ... by more: decided
        ((-1.0, -1.0, -0.5 * eta), (1, 1, 1), (False, True)),  # upper below by less than the rounding: open
        ((-1.0, -1.0, -2.0 * eta), (1, 1, 1), (False, False)),  # ... by more: decided
        ((-0.1, 0.5, 1.0), (1, 1, 1), (True, False)),  # point below, certified interval above: the interval wins
        ((-1.0, 5.0, -1.0), (1, -1, 1), (False, False)),  # a negative lower bound is below 2t~, whatever |x|
        ((5.0, 5.0, 5.0), (-1, -1, -1), (False, False)),  # all negative: decided NO
        ((0.0, 0.0, -1.0), (0, 0, 1), (False, False)),  # zeros
    ]
    value = _log([r[0][0] for r in rows], [r[1][0] for r in rows], base=T)
    lower = _log([r[0][1] for r in rows], [r[1][1] for r in rows], base=T)
    upper = _log([r[0][2] for r in rows], [r[1][2] for r in rows], base=T)
    got = certified_threshold_test(p, CertifiedOutput(value, lower, upper))
    assert got.certified
    assert got.yes.tolist() == [r[2][0] for r in rows]
    assert got.undecided.tolist() == [r[2][1] for r in rows]
    expected_margin = [(T + r[0][0]) - T if r[1][0] > 0 else -math.inf for r in rows]
    assert got.margin.tolist() == expected_margin


def test_below_beta_min_every_row_is_undecided():
    p = _params(beta=1.0, check=False)
    assert not p.gap_condition_holds
    T = p.log_threshold
    value, lower, upper = _log([1.0, -1.0], base=T), _log([0.5, -1.5], base=T), _log([1.5, -0.5], base=T)
    got = certified_threshold_test(p, CertifiedOutput(value, lower, upper))
    assert got.certified and got.undecided.tolist() == [True, True] and got.yes.tolist() == [True, False]
    # with the gap condition the same intervals decide both rows
    assert not certified_threshold_test(_params(), CertifiedOutput(value, lower, upper)).undecided.any()


def _instance() -> GapANNInstance:
    A = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    B = np.array([[1, 1, 0, 0], [1, 0, 1, 0]])
    return GapANNInstance(A, B, t=2.0, eps=1.0)


def test_decide_reads_the_first_n_a_rows_of_the_first_column():
    g = _instance()
    r = GapANNToAAttC()
    p = r.derive(g)
    T = p.log_threshold
    # rows 0..1 of column 0 decide; the extra rows and the second column say the opposite and must be ignored
    log_abs = np.array([[T + 1.0, T - 1.0], [T - 1.0, T + 1.0], [T - 1.0, T + 1.0]])
    out = LogArray(np.ones((3, 2), dtype=np.int8), log_abs)
    got = r.backward(g, out)
    assert got.yes.tolist() == [True, False] and not got.undecided.any()
    assert got.margin.tolist() == [(T + 1.0) - T, (T - 1.0) - T]
    # exactly n_a rows and one column is the usual shape
    exact_shape = r.backward(g, out[:2, :1])
    assert exact_shape.yes.tolist() == [True, False] and exact_shape.margin.tolist() == got.margin.tolist()


def test_decide_refuses_outputs_of_the_wrong_shape_with_one_line():
    g = _instance()
    r = GapANNToAAttC()
    cases = [
        (LogArray(np.ones(2, dtype=np.int8), np.zeros(2)), "attention output has shape (2,); expected at least 2 rows"),
        (LogArray(np.ones((1, 1), dtype=np.int8), np.zeros((1, 1))),
         "attention output has shape (1, 1); expected at least 2 rows"),
        (LogArray(np.ones((1, 2), dtype=np.int8), np.zeros((1, 2))),
         "attention output has shape (1, 2); expected at least 2 rows"),
        (LogArray(np.ones((2, 0), dtype=np.int8), np.zeros((2, 0))),
         "attention output has shape (2, 0); expected at least 2 rows"),
        (LogArray(np.ones((2, 1, 1), dtype=np.int8), np.zeros((2, 1, 1))),
         "attention output has shape (2, 1, 1); expected at least 2 rows"),
    ]
    for out, message in cases:
        with pytest.raises(ReductionError) as info:
            r.backward(g, out)
        assert str(info.value) == message
    with pytest.raises(ReductionError) as info:
        r.backward(g, [[1.0], [1.0]])
    assert str(info.value) == ("Lemma 4.7's backward map needs the attention output as a LogArray or CertifiedOutput, "
                               "got list")
