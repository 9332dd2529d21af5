"""k-SAT -> OV: forward, brute-force OV, backward, compared with brute force on the formula (check_reduction)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instances.cnf import CNFFormula
from instances.errors import ReductionError, WrongAnswerError
from instances.solutions import OrthogonalPair
from reductions import check_reduction
from reductions.sat_to_ov import SatToOV, split_variables


def assert_round_trip(f: CNFFormula) -> None:
    """Sizes of the split, then the round trip on this one formula by check_reduction."""
    ov = SatToOV().forward(f)
    left, right = split_variables(f.num_vars)
    assert ov.n_a == 2 ** left.size and ov.n_b == 2 ** right.size and ov.dim == f.num_clauses
    cx = check_reduction(SatToOV(), lambda _rng: f, trials=1)
    assert cx is None, str(cx)


def test_karp_property_on_random_formulas(generators):
    cx = check_reduction(SatToOV(), generators["k-SAT"], trials=300, seed=7)
    assert cx is None, str(cx)


@st.composite
def formulas(draw, max_vars: int = 7):
    n = draw(st.integers(0, max_vars))
    if n == 0:
        clauses = draw(st.lists(st.just([]), max_size=2))
    else:
        lit = st.integers(1, n).flatmap(lambda v: st.sampled_from([v, -v]))
        clauses = draw(st.lists(st.lists(lit, max_size=5), max_size=14))  # duplicates, tautologies, empties
    return CNFFormula(clauses, num_vars=n)


@settings(max_examples=150, deadline=None)
@given(formulas())
def test_karp_property(f):
    assert_round_trip(f)


@pytest.mark.parametrize(
    ("clauses", "num_vars", "sat"),
    [
        ([], 0, True),  # N = 0, no clauses: one (empty) assignment satisfies it
        ([[]], 0, False),  # the empty clause alone
        ([[1]], 1, True),  # N = 1: halves of sizes 1 and 0
        ([[1], [-1]], 1, False),
        ([], 3, True),  # no clauses, unused variables
        ([[1, 2], []], 4, False),  # an empty clause among others
        ([[1, 1, 1], [-2, -2]], 5, True),  # duplicate literals, odd N
        ([[1, -1], [3, -3, 2]], 3, True),  # tautologies only
        ([[2, -2], [1], [-1]], 3, False),  # a tautology does not rescue a contradiction
        ([[5]], 9, True),  # variables 1..4, 6..9 unused
    ],
)
def test_edge_cases(clauses, num_vars, sat):
    f = CNFFormula(clauses, num_vars=num_vars)
    assert (f.brute_force_solve() is not None) == sat
    assert_round_trip(f)


def test_vectors_follow_the_definition():
    f = CNFFormula([[1, -3], [2, 3], [-1, -2]], num_vars=3)
    ov = SatToOV().forward(f)
    left, right = split_variables(3)
    assert left.tolist() == [1, 2] and right.tolist() == [3]
    for alpha in range(4):
        vals = {1: bool(alpha & 1), 2: bool(alpha & 2)}
        for c, clause in enumerate(f.clauses):
            sat = any(vals[abs(x)] == (x > 0) for x in clause if abs(x) in vals)
            assert ov.A[alpha, c] == (0 if sat else 1)
    assert np.array_equal(ov.B, np.array([[0, 1, 1], [1, 0, 1]], dtype=np.uint8))


def test_backward_of_no_pair_is_unsat():
    f = CNFFormula([[1], [-1]], num_vars=2)
    assert SatToOV().backward(f, None) is None


def test_backward_errors():
    f = CNFFormula([[1, 2], [-1, 3]], num_vars=3)  # L = {1, 2} (4 codes), R = {3} (2 codes)
    with pytest.raises(ReductionError, match="OrthogonalPair"):
        SatToOV().backward(f, (0, 1))
    with pytest.raises(ReductionError, match="outside 0..3"):
        SatToOV().backward(f, OrthogonalPair(4, 0))
    with pytest.raises(ReductionError, match="outside 0..1"):
        SatToOV().backward(f, OrthogonalPair(0, -1))
    # alpha = 0 (x1 = x2 = false) falsifies clause 1 whatever x3 is: the pair is not orthogonal
    with pytest.raises(WrongAnswerError, match="not an orthogonal pair"):
        SatToOV().backward(f, OrthogonalPair(0, 1))
    with pytest.raises(ReductionError, match="CNFFormula"):
        SatToOV().forward([[1, 2]])
