"""Integer Max-IP: brute-force row maxima and the parallel binary search of max_inner_products."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instances.errors import ParameterError
from instances.maxip import MaxIPAnswer, MaxIPInstance, max_inner_products


def _counting_brute_force():
    calls = []

    def decide(inst: MaxIPInstance):
        calls.append(inst.tau.copy())
        return inst.brute_force_solve()

    return decide, calls


@pytest.mark.parametrize("seed", range(6))
def test_binary_search_finds_every_row_maximum_in_the_documented_number_of_calls(seed):
    rng = np.random.default_rng(seed)
    n_a, n_b, d = rng.integers(1, 6), rng.integers(1, 6), rng.integers(1, 5)
    A, B = rng.integers(-4, 5, (n_a, d)), rng.integers(-3, 4, (n_b, d))
    A[:, 0] = 0  # an all-zero column: its max|A_l| is 0, not 1
    decide, calls = _counting_brute_force()
    got = max_inner_products(A, B, decide)
    assert got.dtype == np.int64 and got.tolist() == (A @ B.T).max(axis=1).tolist()
    R = int((np.abs(A).max(axis=0) * np.abs(B).max(axis=0)).sum())
    assert len(calls) == math.ceil(math.log2(2 * R + 1))


def test_binary_search_on_zero_vectors_needs_no_call_and_no_rows_give_an_empty_answer():
    decide, calls = _counting_brute_force()
    assert max_inner_products([[0, 0]], [[0, 0], [0, 0]], decide).tolist() == [0] and calls == []
    out = max_inner_products(np.zeros((0, 3), np.int64), [[1, 2, 3]], decide)
    assert out.shape == (0,) and out.dtype == np.int64 and calls == []


def test_empty_data_set_is_refused_with_one_message():
    for call in (lambda: max_inner_products([[1]], np.zeros((0, 1)), lambda inst: inst.brute_force_solve()),
                 lambda: MaxIPInstance([[1]], np.zeros((0, 1)), 0).row_maxima()):
        with pytest.raises(ParameterError, match="^Max-IP needs at least one vector in B$"):
            call()


def test_row_maxima_without_queries_is_an_empty_int64_vector():
    m = MaxIPInstance(np.zeros((0, 2), np.int64), [[1, -1]], 0).row_maxima()
    assert m.shape == (0,) and m.dtype == np.int64
    assert MaxIPInstance([[2, 3], [-1, 0]], [[1, -1], [0, 2]], 0).row_maxima().tolist() == [6, 0]


def test_search_interval_uses_each_coordinate_own_maxima():
    """R = sum_l max|A_l| max|B_l| coordinate by coordinate: 5*0 + 5*1 + 1*7 = 12, so ceil(log2 25) = 5 calls
    (a bound from B's overall maximum, 5*7 + 5*7 + 1*7 = 77, would take 8; a zero column counted as 1, 6)."""
    A = np.array([[5, 5, 1], [-5, 2, -1]])
    B = np.array([[0, 1, 7], [0, -1, 2]])
    decide, calls = _counting_brute_force()
    assert max_inner_products(A, B, decide).tolist() == (A @ B.T).max(axis=1).tolist() == [12, -4]
    assert len(calls) == 5
    # The first query is the upper middle of [-12, 12], 0; row 0 (max 12) answers yes and row 1 (max -4) no, so the
    # intervals become [0, 12] and [-12, -1], whose upper middles are 6 and -6 (with R = 17 they would be 9, -9).
    assert calls[0].tolist() == [0, 0] and calls[1].tolist() == [6, -6]


def test_instance_converts_integral_input_to_int64_and_broadcasts_tau():
    inst = MaxIPInstance([[2.0, -3.0], [0.0, 1.0]], np.array([[1, 1, 0]])[:, :2], 3)
    assert inst.A.dtype == np.int64 and inst.A.tolist() == [[2, -3], [0, 1]]
    assert inst.B.dtype == np.int64 and inst.tau.dtype == np.int64 and inst.tau.tolist() == [3, 3]
    assert MaxIPInstance([[1]], [[1]], [4.0]).tau.tolist() == [4]
    empty = MaxIPInstance(np.zeros((0, 2)), [[1, 2]], 0)
    assert empty.A.dtype == np.int64 and empty.A.shape == (0, 2)
    ans = MaxIPAnswer([1, 0, 2])
    assert ans.yes.dtype == bool and ans.yes.tolist() == [True, False, True] and ans.any
    assert not MaxIPAnswer(np.zeros(2, int)).any


@pytest.mark.parametrize(("A", "B", "tau", "message"), [
    ([1, 2, 3], [[1, 2, 3]], 0, "A must be a 2-D integer matrix, got shape (3,)"),
    ([[1]], [[[1]]], 0, "B must be a 2-D integer matrix, got shape (1, 1, 1)"),
    ([[1.5]], [[1]], 0, "A must contain only integers"),
    ([[1]], [[np.nan]], 0, "B must contain only integers"),
    ([[np.inf]], [[1]], 0, "A must contain only integers"),
    ([[1, 2]], [[1, 2, 3]], 0, "A has dimension 2 but B has 3"),
    ([[1]], [[1]], 0.5, "thresholds tau must be integers"),
])
def test_instance_refuses_bad_input_with_whole_messages(A, B, tau, message):
    with pytest.raises(ParameterError) as info:
        MaxIPInstance(A, B, tau)
    assert str(info.value) == message


@pytest.mark.parametrize("bad", [[[1e300]], np.array([[2**63]], dtype=np.uint64), [[10**30]], [["a"]], [[2.0**63]]])
def test_integers_beyond_int64_are_refused_not_wrapped(bad):
    # the int64 cast wrapped 1e300 and 2**63 to -2**63 silently; a Python int 10**30 leaked a TypeError
    with pytest.raises(ParameterError, match="A must contain only integers that fit in int64"):
        MaxIPInstance(bad, [[1]], 0)
    assert MaxIPInstance([[2**61]], [[1]], 0).A.tolist() == [[2**61]]


def test_inner_products_and_thresholds_stay_inside_int64():
    # 2^32 * 2^32 wrapped to 0 (a wrong "no"), tau = 1e300 or 2^63 wrapped to -2^63 (a wrong "yes"), and the
    # search's lo + hi overflowed (a hang)
    with pytest.raises(ParameterError, match=r"could reach 1\.84e\+19 = d max\|a\| max\|b\|, beyond the 2\^62"):
        MaxIPInstance([[2**32]], [[2**32]], 1)
    with pytest.raises(ParameterError, match="could reach"):
        MaxIPInstance([[3 * 2**61]], [[1]], 0)
    for tau in (1e300, 2**63, 10**30, "1"):
        with pytest.raises(ParameterError, match="thresholds tau must be integers"):
            MaxIPInstance([[1]], [[1]], tau)
    with pytest.raises(ParameterError, match=r"thresholds tau must lie within \+-2\^62"):
        MaxIPInstance([[1]], [[1]], 2**62)
    with pytest.raises(ParameterError, match=r"thresholds tau of shape \(2,\) do not fit 1 rows"):
        MaxIPInstance([[1]], [[1]], [1, 2])
    big = 2**61 - 1
    assert max_inner_products([[-big]], [[1]], lambda inst: inst.brute_force_solve()).tolist() == [-big]
    assert MaxIPInstance([[2**31]], [[2**30]], 2**61).brute_force_solve().yes.tolist() == [True]
