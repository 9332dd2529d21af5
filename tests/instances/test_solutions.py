"""The solution types of instances.solutions: every field, default and derived property."""

import re

import numpy as np
import pytest

from instances.logspace import LogArray
from instances.solutions import CertifiedOutput, GapANNAnswer, OrthogonalPair


def test_orthogonal_pair_fields():
    p = OrthogonalPair(2, 5)
    assert (p.i, p.j) == (2, 5) and p == OrthogonalPair(i=2, j=5) and p != OrthogonalPair(5, 2)


def test_gap_ann_answer_defaults_and_conversions():
    a = GapANNAnswer([1, 0, 2])
    assert a.yes.dtype == bool and a.yes.tolist() == [True, False, True]
    assert a.undecided.dtype == bool and a.undecided.tolist() == [False, False, False]
    assert a.margin is None and a.certified is True
    assert a.decided.dtype == bool and a.decided.tolist() == [True, True, True]

    b = GapANNAnswer(np.array([True, False]), undecided=[0, 3], margin=[1, -2])
    assert b.undecided.dtype == bool and b.undecided.tolist() == [False, True]
    assert b.margin.dtype == np.float64 and b.margin.tolist() == [1.0, -2.0]
    assert b.decided.tolist() == [True, False]

    c = GapANNAnswer([True, True], undecided=[False, True], certified=False)
    assert c.decided.dtype == bool and c.decided.tolist() == [False, False]  # an uncertified oracle decides nothing
    assert c.yes.tolist() == [True, True] and c.undecided.tolist() == [False, True]

    d = GapANNAnswer(np.zeros((2, 3), dtype=bool))
    assert d.undecided.shape == (2, 3) and d.decided.shape == (2, 3) and d.decided.all()


def test_gap_ann_answer_refuses_mismatched_undecided_with_the_whole_message():
    with pytest.raises(ValueError, match="^" + re.escape("undecided has shape (3,), yes has (2,)") + "$"):
        GapANNAnswer([True, False], undecided=[False, False, True])


def test_certified_output_shape_certified_and_indexing():
    v = LogArray.from_float(np.array([[1.0, -2.0], [0.0, 4.0]]))
    lo = LogArray.from_float(np.array([[0.5, -4.0], [-1.0, 2.0]]))
    hi = LogArray.from_float(np.array([[2.0, -1.0], [1.0, 8.0]]))
    plain = CertifiedOutput(v)
    assert plain.shape == (2, 2) and plain.certified is False and plain.lower is None and plain.upper is None
    row = plain[1]
    assert isinstance(row, CertifiedOutput) and row.certified is False and row.lower is None and row.upper is None
    assert row.shape == (2,) and row.value.sign.tolist() == [0, 1]

    assert CertifiedOutput(v, lo).certified is False and CertifiedOutput(v, None, hi).certified is False
    full = CertifiedOutput(v, lo, hi)
    assert full.certified is True
    cell = full[0, 1]
    assert cell.certified is True and cell.shape == ()
    assert float(cell.value.to_float()) == -2.0
    assert float(cell.lower.to_float()) == -4.0 and float(cell.upper.to_float()) == -1.0
    col = full[:, 0]
    assert col.lower.to_float().tolist() == [0.5, -1.0] and col.upper.to_float().tolist() == [2.0, 1.0]
    assert col.value.to_float().tolist() == [1.0, 0.0]
