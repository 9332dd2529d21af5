"""OV -> Gap-ANN: the 1 + 2xy gadget, balance, the promise, and Karp-style round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from instances.errors import ReductionError, WrongAnswerError
from instances.gap_ann import OUTSIDE_PROMISE, YES
from instances.ov import OVInstance
from instances.solutions import GapANNAnswer
from reductions import check_reduction
from reductions.ov_to_gap_ann import CertificateError, OVToGapANN, gadget_parameters


def test_gadget_distance_is_one_plus_two_xy():
    for x, y in itertools.product((0, 1), repeat=2):
        ov = OVInstance([[x]], [[y]])
        g = OVToGapANN().forward(ov)
        # after balancing every distance doubles: 2 (1 + 2xy)
        assert g.min_distances()[0] == 2 * (1 + 2 * x * y)


@st.composite
def ov_instances(draw):
    m = draw(st.integers(0, 6))
    A = draw(arrays(np.uint8, (draw(st.integers(1, 6)), m), elements=st.integers(0, 1)))
    B = draw(arrays(np.uint8, (draw(st.integers(1, 6)), m), elements=st.integers(0, 1)))
    return OVInstance(A, B)


@settings(max_examples=150, deadline=None)
@given(ov_instances())
def test_karp_property(ov):
    r = OVToGapANN()
    g = r.forward(ov)
    assert g.is_balanced()
    assert g.dim == 6 * max(ov.dim, 1)
    status = g.row_status()
    assert not (status == OUTSIDE_PROMISE).any()
    # row i is YES exactly when a_i has an orthogonal partner
    for i in range(ov.n_a):
        assert (status[i] == YES) == (ov.partner_of(i) is not None)
    cx = check_reduction(r, lambda _rng: ov, trials=1)
    assert cx is None, str(cx)


def test_karp_property_on_random_instances(generators):
    cx = check_reduction(OVToGapANN(), generators["OV"], trials=300, seed=3)
    assert cx is None, str(cx)


def test_parameters_and_zero_dimension():
    assert gadget_parameters(5) == (30, 11.0, 3 / 11)
    g = OVToGapANN().forward(OVInstance(np.zeros((2, 0)), np.zeros((3, 0))))
    assert g.dim == 6 and (g.row_status() == YES).all()


def test_wrong_answer_is_detected():
    ov = OVInstance([[1, 1]], [[1, 0]])
    with pytest.raises(CertificateError, match="no orthogonal partner|none of them"):
        OVToGapANN().backward(ov, GapANNAnswer([True]))
    assert issubclass(CertificateError, WrongAnswerError)
    assert OVToGapANN().backward(ov, GapANNAnswer([False])) is None
    # undecided rows that lean YES claim nothing: no pair, and no error
    assert OVToGapANN().backward(ov, GapANNAnswer([True], undecided=[True])) is None


def test_bad_input_is_a_reduction_error():
    ov = OVInstance([[1, 1]], [[1, 0]])
    with pytest.raises(ReductionError, match="GapANNAnswer"):
        OVToGapANN().backward(ov, [True])
    with pytest.raises(ReductionError, match="shape"):
        OVToGapANN().backward(ov, GapANNAnswer([True, False]))
    with pytest.raises(ReductionError, match="OVInstance"):
        OVToGapANN().forward(np.eye(2))


def test_an_ov_instance_without_rows_on_one_side():
    # reshape(n, -1) cannot infer the width of 0 rows: the 3m width is given explicitly
    width = OVToGapANN().forward(OVInstance([[0, 1, 1]], [[1, 0, 0]])).A.shape[1]
    empty = np.zeros((0, 3))
    for A, B in ((empty, [[0, 1, 1]]), ([[0, 1, 1]], empty), (empty, empty)):
        g = OVToGapANN().forward(OVInstance(A, B))
        assert g.A.shape == (len(A), width) and g.B.shape == (len(B), width)
