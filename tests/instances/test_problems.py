"""OV, Gap-ANN and AAttC instance types and their brute-force solvers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from instances.aattc import AAttCInstance
from instances.errors import NumericalError, ParameterError
from instances.examples import example_path, list_examples
from instances.gap_ann import NO, OUTSIDE_PROMISE, YES, GapANNInstance, balance, hamming_distances
from instances.ov import OVInstance


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(0, 6), st.integers(0, 5)), elements=st.integers(0, 1)),
       arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(0, 5)), elements=st.integers(0, 1)))
def test_ov_brute_force(A, B):
    d = min(A.shape[1], B.shape[1])
    ov = OVInstance(A[:, :d], B[:, :d])
    pair = ov.brute_force_solve()
    exists = any(int(a @ b) == 0 for a in ov.A.astype(int) for b in ov.B.astype(int))
    assert (pair is not None) == exists
    if pair is not None:
        assert ov.is_orthogonal(pair) and ov.partner_of(pair.i) is not None


def test_ov_rejects_non_binary():
    with pytest.raises(ParameterError, match="only 0 and 1"):
        OVInstance([[2]], [[1]])
    with pytest.raises(ParameterError, match="dimension"):
        OVInstance([[1, 0]], [[1]])


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 6)), elements=st.integers(0, 1)))
def test_balance_and_hamming(X):
    Y = balance(X)
    assert (Y.sum(1) == X.shape[1]).all()
    brute = (X[:, None, :] != X[None, :, :]).sum(2)
    assert np.array_equal(hamming_distances(Y, Y), 2 * brute)


def test_gap_ann_row_status():
    A = balance(np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0]]))
    B = balance(np.array([[0, 0, 0]]))
    g = GapANNInstance(A, B, t=1.0, eps=2.0)  # distances 0, 6, 2 -> YES, NO, outside
    assert g.row_status().tolist() == [YES, NO, OUTSIDE_PROMISE]
    assert g.is_balanced()
    assert g.brute_force_solve().yes.tolist() == [True, False, False]
    with pytest.raises(ParameterError, match="t must be positive"):
        GapANNInstance(A, B, t=0, eps=1)


def test_aattc_dense_reference_matches_float_formula():
    rng = np.random.default_rng(3)
    Q, K, V = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    inst = AAttCInstance(Q, K, V, B=10.0, log_eps_a=-10.0, scale=1 / 3)
    A = np.exp(Q @ K.T / 3)
    assert np.allclose(inst.brute_force_solve().to_float(), (A @ V) / A.sum(1, keepdims=True))
    assert inst.entries_bounded()
    with pytest.raises(NumericalError):
        AAttCInstance(Q * np.nan, K, V, B=1.0, log_eps_a=0.0, scale=1.0)


def test_shipped_examples_parse():
    names = list_examples()
    assert {"random3sat-n20", "random3sat-n20-unsat", "tiny4", "php-3-2"} <= set(names)
    from instances.cnf import CNFFormula

    assert CNFFormula.read(example_path("random3sat-n20")).num_vars == 20
    with pytest.raises(ParameterError, match="no shipped example"):
        example_path("nope")


def test_unknown_example_message_lists_the_examples():
    with pytest.raises(ParameterError) as info:
        example_path("nope")
    assert str(info.value) == f"no shipped example 'nope'; available: {', '.join(list_examples())}"
    assert ", " in str(info.value)  # more than one example, separated by a comma and a space


def test_gap_ann_row_at_exactly_t_is_outside_the_promise_and_answered_no():
    g = GapANNInstance([[1, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 0], [1, 1, 1, 1]], [[0, 0, 0, 1]], t=2.0, eps=0.5)
    assert g.min_distances().tolist() == [2.0, 0.0, 4.0, 3.0]
    assert g.row_status().tolist() == [OUTSIDE_PROMISE, YES, NO, NO]  # exactly (1+eps)t = 3 is Case 2
    assert g.brute_force_solve().yes.tolist() == [False, True, False, False]  # dist < t, so dist == t is a NO


@pytest.mark.parametrize(("make", "message"), [
    (lambda: balance([1, 0]), "X must be a 2-D 0/1 matrix, got shape (2,)"),
    (lambda: balance([[2, 0]]), "X must contain only 0 and 1"),
    (lambda: GapANNInstance([1, 0], [[1, 0]], 1.0, 1.0), "A must be a 2-D 0/1 matrix, got shape (2,)"),
    (lambda: GapANNInstance([[1, 0]], [[1, 3]], 1.0, 1.0), "B must contain only 0 and 1"),
    (lambda: GapANNInstance([[1, 0]], [[1, 0, 1]], 1.0, 1.0), "A has dimension 2 but B has 3"),
    (lambda: GapANNInstance([[1, 0]], [[1, 0]], 1.0, np.inf), "Gap-ANN gap eps must be positive, got inf"),
    (lambda: GapANNInstance([[1, 0]], [[1, 0]], 1.0, 0.0), "Gap-ANN gap eps must be positive, got 0.0"),
    (lambda: OVInstance([[[1]]], [[1]]), "A must be a 2-D 0/1 matrix, got shape (1, 1, 1)"),
    (lambda: OVInstance([[1]], [1]), "B must be a 2-D 0/1 matrix, got shape (1,)"),
    (lambda: OVInstance([[5]], [[1]]), "A must contain only 0 and 1"),
    (lambda: OVInstance([[1]], [[-1]]), "B must contain only 0 and 1"),
])
def test_vector_problems_refuse_bad_input_with_whole_messages(make, message):
    with pytest.raises(ParameterError) as info:
        make()
    assert str(info.value) == message


def test_instances_hold_uint8_matrices_and_float_parameters():
    g = GapANNInstance([[1, 0]], [[0, 1]], 2, 1)
    assert g.A.dtype == np.uint8 and g.B.dtype == np.uint8
    assert type(g.t) is float and type(g.eps) is float and (g.t, g.eps) == (2.0, 1.0)
    ov = OVInstance([[True, False]], [[0, 1]])
    assert ov.A.dtype == np.uint8 and ov.B.dtype == np.uint8 and ov.A.tolist() == [[1, 0]]
    big = np.zeros((3, 4), np.uint8)
    assert OVInstance(big, big).A is big  # uint8 input is not copied (large OV inputs are not doubled)


def test_is_balanced_needs_even_dimension_and_every_row_of_both_sets():
    assert GapANNInstance([[1, 1, 0, 0]], [[0, 1, 0, 1], [1, 0, 1, 0]], 1.0, 1.0).is_balanced()
    assert not GapANNInstance([[1, 1, 0, 0]], [[0, 1, 0, 1], [1, 1, 1, 0]], 1.0, 1.0).is_balanced()
    assert not GapANNInstance([[1, 0, 0]], [[0, 1, 0]], 1.0, 1.0).is_balanced()  # d = 3: weight d // 2 is not d/2


def test_empty_data_set_gives_infinite_distances_and_no_partner():
    g = GapANNInstance([[1, 0], [0, 1]], np.zeros((0, 2), np.uint8), 1.0, 1.0)
    d = g.min_distances()
    assert d.dtype == np.float64 and d.tolist() == [np.inf, np.inf]
    assert g.row_status().tolist() == [NO, NO]
    ov = OVInstance([[1, 0], [1, 1]], [[0, 1], [1, 0]])
    assert ov.partner_of(0) == 0 and ov.partner_of(1) is None
