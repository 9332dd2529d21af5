"""Integer Max-IP: brute-force row maxima and the parallel binary search of max_inner_products."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instances.errors import ParameterError
from instances.maxip import MaxIPInstance, max_inner_products


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
