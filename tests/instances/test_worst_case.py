"""Worst-case Gap-ANN instances (Lemma 4.7 case 2b sharpness): exact vectors, distances, defaults and errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from instances.errors import ParameterError
from instances.gap_ann import hamming_distances
from instances.worst_case import worst_case_gap_ann


def _at(d: int, h: int) -> list[int]:
    """The balanced vector at distance ``h`` from ``1^{d/2} 0^{d/2}``, written out by hand."""
    half = d // 2
    return [0] * (h // 2) + [1] * (half - h // 2) + [1] * (h // 2) + [0] * (half - h // 2)


def test_default_instance_is_exactly_the_documented_vectors():
    g = worst_case_gap_ann(4, 20, 5.0, 0.2)
    assert g.A.dtype == np.uint8 and g.B.dtype == np.uint8
    assert g.A.tolist() == [_at(20, 4), _at(20, 6), _at(20, 6)]  # defaults: one YES row, two NO rows
    assert g.B.tolist() == [_at(20, 0)] * 4
    assert g.t == 5.0 and g.eps == 0.2
    assert g.min_distances().tolist() == [4.0, 6.0, 6.0]
    assert g.row_status().tolist() == [1, 0, 0]
    assert g.is_balanced()


@pytest.mark.parametrize(
    ("t", "eps", "near"),
    [(5.0, 0.2, 4), (5.5, 1 / 11, 4), (6.0, 1 / 3, 4), (7.0, 1 / 7, 6), (4.0, 0.5, 2), (2.0, 1.0, 0), (1.0, 1.0, 0)],
)
def test_default_yes_distance_is_largest_even_integer_below_t(t, eps, near):
    g = worst_case_gap_ann(3, 20, t, eps, yes_rows=2, no_rows=1)
    far = int(round((1 + eps) * t))
    assert hamming_distances(g.A, g.B).tolist() == [[near] * 3, [near] * 3, [far] * 3]
    assert g.A.tolist() == [_at(20, near)] * 2 + [_at(20, far)]
    assert g.is_balanced()


def test_explicit_rows_and_yes_distance():
    g = worst_case_gap_ann(2, 8, 3.0, 1 / 3, yes_rows=1, no_rows=3, yes_distance=0)
    assert g.A.tolist() == [_at(8, 0)] + [_at(8, 4)] * 3
    assert hamming_distances(g.A, g.B).tolist() == [[0, 0], [4, 4], [4, 4], [4, 4]]
    assert g.row_status().tolist() == [1, 0, 0, 0]


def test_far_distance_may_equal_d_and_n_may_be_one():
    g = worst_case_gap_ann(1, 6, 3.0, 1.0, yes_rows=1, no_rows=1)  # (1 + eps) t = 6 = d: complement of b
    assert g.A.tolist() == [_at(6, 2), [0, 0, 0, 1, 1, 1]]
    assert g.B.tolist() == [[1, 1, 1, 0, 0, 0]]


def test_no_rows_at_all_gives_an_empty_query_set_of_the_right_width():
    g = worst_case_gap_ann(2, 10, 3.0, 1 / 3, yes_rows=0, no_rows=0)
    assert g.A.shape == (0, 10) and g.B.shape == (2, 10)
    g = worst_case_gap_ann(2, 10, 3.0, 1 / 3, yes_rows=0, no_rows=1)
    assert g.A.tolist() == [_at(10, 4)]


def test_rounding_tolerance_on_the_far_distance():
    # (1 + eps) t within 1e-9 of an even integer is accepted and rounded; further off it is refused.
    g = worst_case_gap_ann(1, 10, 4.0 + 4e-10, 0.5, yes_rows=0, no_rows=1)
    assert g.A.tolist() == [_at(10, 6)]
    with pytest.raises(ParameterError):
        worst_case_gap_ann(1, 10, 4.0 + 1e-8, 0.5)


def _raises(message: str, *args, **kwargs) -> None:
    with pytest.raises(ParameterError, match="^" + re.escape(message) + "$"):
        worst_case_gap_ann(*args, **kwargs)


@pytest.mark.parametrize("d", [0, -2, 7, 1])
def test_bad_dimension(d):
    _raises(f"d must be even and positive, got {d}", 4, d, 5.0, 0.2)


@pytest.mark.parametrize(("n", "yes", "no"), [(0, 1, 2), (-1, 1, 2), (1, -1, 2), (1, 1, -1)])
def test_bad_counts(n, yes, no):
    _raises("need n >= 1 keys and non-negative row counts", n, 20, 5.0, 0.2, yes_rows=yes, no_rows=no)


@pytest.mark.parametrize(
    ("t", "eps", "shown"), [(5.0, 0.3, "6.5"), (5.0, 0.4, "7"), (5.0, 1.4, "12"), (4.5, 0.1, "4.95")]
)
def test_far_distance_must_be_an_even_integer_at_most_d(t, eps, shown):
    _raises(f"(1 + eps) t = {shown} must be an even integer in (0, d] for balanced vectors", 4, 10, t, eps)


@pytest.mark.parametrize(("yes_distance", "t"), [(-2, 5.0), (3, 5.0), (6, 5.0), (4, 4.0)])
def test_bad_yes_distance(yes_distance, t):
    eps = 6 / t - 1
    _raises(f"the YES distance must be an even integer in [0, t), got {yes_distance}", 4, 20, t, eps,
            yes_distance=yes_distance)


def test_far_distance_rounding_to_zero_is_refused():
    # (1 + eps) t = 2e-10 is within the rounding tolerance of 0, which is not a distance in (0, d]
    _raises("(1 + eps) t = 2e-10 must be an even integer in (0, d] for balanced vectors", 4, 10, 1e-10, 1.0)
