"""check_reduction: it passes correct reductions, finds broken ones within its default trials, and reproduces them."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.gap_ann import GapANNInstance
from instances.maxip import MaxIPInstance
from instances.ov import OVInstance
from instances.solutions import GapANNAnswer, OrthogonalPair
from reductions import (
    Counterexample,
    GapANNToAAttC,
    OVToGapANN,
    OVToMaxIP,
    Reduction,
    SatToOV,
    agree_answers,
    check_reduction,
    path,
)


class OffByOneOVToMaxIP(OVToMaxIP):
    """Broken on purpose: asks for <a, -b> >= 1 instead of >= 0, so no pair is ever found."""

    def forward(self, instance: OVInstance) -> MaxIPInstance:
        return MaxIPInstance(instance.A, -instance.B.astype(np.int64), 1)


class SwappedHalvesSatToOV(SatToOV):
    """Broken on purpose: decodes the pair with the two halves of the variables swapped."""

    def backward(self, instance, target_solution):
        if target_solution is None:
            return None
        return super().backward(instance, OrthogonalPair(target_solution.j, target_solution.i))


def test_broken_reductions_are_caught_within_the_default_trials(generators):
    cx = check_reduction(OffByOneOVToMaxIP(), generators["OV"])
    assert isinstance(cx, Counterexample)
    assert "found no pair" in cx.reason and cx.got is None and cx.expected is not None
    assert cx.trial < 100 and str(cx).startswith(f"trial {cx.trial} (seed {cx.seed}): ")
    # the seed reproduces the instance, and the instance reproduces the failure
    again = generators["OV"](np.random.default_rng(cx.seed))
    assert np.array_equal(again.A, cx.instance.A) and np.array_equal(again.B, cx.instance.B)
    assert check_reduction(OffByOneOVToMaxIP(), lambda _rng: again, trials=1).reason == cx.reason
    assert check_reduction(OVToMaxIP(), lambda _rng: again, trials=1) is None
    # a failure inside the backward map is reported with the step that raised
    cx = check_reduction(SwappedHalvesSatToOV(), generators["k-SAT"])
    assert cx is not None and cx.reason.startswith(("extract raised", "the extracted assignment"))
    assert cx.target is not None and cx.target_solution is not None
    # below beta_min Lemma 4.7's rows are not decided (its bounds fail), which the checker reports; the chain above
    # it stays right only because the OV backward map verifies every pair it returns
    cx = check_reduction(GapANNToAAttC(beta=1.0, check=False), generators["Gap-ANN"])
    assert cx is not None and "undecided" in cx.reason
    assert check_reduction(path("k-SAT", "AAttC", beta=1.0, check=False), generators["k-SAT"]) is None


def test_uncertified_gap_ann_answers_from_an_exact_solve_are_counterexamples(generators):
    cx = check_reduction(GapANNToAAttC(beta=1.0, check=False), generators["Gap-ANN"])
    assert cx is not None and ("undecided" in cx.reason or "answered wrongly" in cx.reason)


def test_same_seed_same_instances(generators):
    seen = []

    def record(rng):
        f = generators["k-SAT"](rng)
        seen.append(f.clauses)
        return f

    assert check_reduction(SatToOV(), record, trials=20, seed=5) is None
    first, seen[:] = list(seen), []
    check_reduction(SatToOV(), record, trials=30, seed=5)
    assert seen[:20] == first  # trial i's generator depends only on (seed, i)
    seen[:] = []
    check_reduction(SatToOV(), record, trials=20, seed=6)
    assert seen != first


def test_answers_are_compared_in_the_problems_own_sense():
    f = CNFFormula([[1, 2], [-1]], num_vars=2)
    assert agree_answers(f, [-1, 2], [-1, 2]) is None
    assert "does not satisfy" in agree_answers(f, [-1, 2], [1, 2])
    assert "UNSAT" in agree_answers(f, [-1, 2], None)
    assert "malformed" in agree_answers(f, [-1, 2], [7])
    ov = OVInstance([[1, 0]], [[1, 1], [0, 1]])
    assert agree_answers(ov, OrthogonalPair(0, 1), OrthogonalPair(0, 1)) is None
    assert "not orthogonal" in agree_answers(ov, OrthogonalPair(0, 1), OrthogonalPair(0, 0))
    assert "out of range" in agree_answers(ov, OrthogonalPair(0, 1), OrthogonalPair(0, 2))
    # Gap-ANN: rows outside the promise may get either answer
    g = GapANNInstance([[1, 0, 1, 0], [1, 1, 0, 0]], [[1, 0, 1, 0], [0, 1, 1, 0]], t=1.5, eps=1.0)
    assert g.row_status().tolist() == [1, -1]  # row 1 is at distance 2, inside [t, (1+eps) t)
    assert agree_answers(g, None, GapANNAnswer([True, True])) is None
    assert agree_answers(g, None, GapANNAnswer([True, False])) is None
    assert "row 0" in agree_answers(g, None, GapANNAnswer([False, False]))
    assert "undecided" in agree_answers(g, None, GapANNAnswer([True, False], undecided=[True, False]))
    with pytest.raises(ParameterError, match="agree="):
        agree_answers(object(), None, None)


def test_user_reduction_with_its_own_problem_and_checker():
    class Parity:
        def __init__(self, bits):
            self.bits = list(bits)

        def brute_force_solve(self):
            return sum(self.bits) % 2

    class ParityToOV(Reduction):
        """Parity -> 'is the sum odd' via an OV instance with an orthogonal pair iff the sum is odd."""

        source, target = "Parity", "OV"

        def forward(self, instance):
            odd = sum(instance.bits) % 2
            return OVInstance([[1 - odd]], [[1]])

        def backward(self, instance, target_solution):
            return int(target_solution is not None)

    def gen(rng):
        return Parity(rng.integers(0, 2, int(rng.integers(0, 6))))

    def agree(instance, expected, got):
        return None if expected == got else f"parity {got} but the sum is {sum(instance.bits)}"

    assert check_reduction(ParityToOV(), gen, agree=agree) is None
    cx = check_reduction(ParityToOV(), gen, agree=lambda i, e, g: agree(i, 1 - e, g))
    assert cx is not None and cx.trial == 0 and "parity" in cx.reason


def test_argument_errors(generators):
    with pytest.raises(ParameterError, match="trials"):
        check_reduction(SatToOV(), generators["k-SAT"], trials=0)
    with pytest.raises(ParameterError, match="seed"):
        check_reduction(SatToOV(), generators["k-SAT"], seed=-1)
    with pytest.raises(ParameterError, match="reduce"):
        check_reduction(object(), generators["k-SAT"])

    class NoSolver:
        pass

    with pytest.raises(ParameterError, match="solve_source="):
        check_reduction(SatToOV(), lambda _rng: NoSolver(), trials=1)
    # an instance the reduction cannot map is a counterexample, with the step that refused
    cx = check_reduction(OVToGapANN(), lambda _rng: CNFFormula([[1]], num_vars=1), trials=1,
                         solve_source=lambda f: None, agree=lambda *_: None)
    assert cx is not None and cx.reason.startswith("reduce raised ReductionError")


class MisdeclaredSatToOV(SatToOV):
    """Declares the halves the wrong way round: wrong exactly when N is odd."""

    @property
    def sizes(self):
        from reductions.sizes import symbol

        N, m = symbol("N"), symbol("m")
        return {"n_a": 2 ** sympy.floor(N / 2), "n_b": 2 ** sympy.ceiling(N / 2), "d": m}


def test_declared_sizes_are_checked_on_every_instance(generators):
    cx = check_reduction(MisdeclaredSatToOV(), generators["k-SAT"])
    assert cx is not None and cx.reason.startswith("k-SAT -> OV: declared size n_a")
    assert cx.instance.num_vars % 2 == 1
    assert check_reduction(MisdeclaredSatToOV(), generators["k-SAT"], check_sizes=False) is None


def test_every_disagreement_is_its_whole_line():
    """Whole-line checks: a counterexample's reason is what a user reads first (mutation triage, issue 18)."""
    from instances.maxip import MaxIPAnswer

    f = CNFFormula([[1, 2], [-1]], num_vars=2)
    assert agree_answers(f, [-1, 2], None) == "the reduction answered UNSAT, but the formula is satisfiable"
    assert agree_answers(f, [-1, 2], [1, 2]) == "the extracted assignment [1, 2] does not satisfy the formula"
    unsat = CNFFormula([[1], [-1]], num_vars=1)
    assert agree_answers(unsat, None, [1]) == "the reduction answered SAT with [1], but the formula is unsatisfiable"
    ov = OVInstance([[1, 0]], [[1, 1], [0, 1]])
    assert agree_answers(ov, None, OrthogonalPair(0, 1)) is None
    assert agree_answers(ov, OrthogonalPair(0, 1), None) == (
        "the reduction found no pair, but OrthogonalPair(i=0, j=1) is orthogonal")
    assert agree_answers(ov, OrthogonalPair(0, 1), "x") == (
        "the extracted answer is a str, not an OrthogonalPair or None")
    assert agree_answers(ov, OrthogonalPair(0, 1), OrthogonalPair(1, 1)) == (
        "the extracted pair OrthogonalPair(i=1, j=1) is out of range for 1 x 2 vectors")
    g = GapANNInstance([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], [[1, 0, 1, 0]], t=1.5, eps=0.2)
    assert g.row_status().tolist() == [1, 0, 0]  # row 0 YES, rows 1 and 2 NO (distance 4 >= 1.8)
    for bad in (None, GapANNAnswer([True, False])):
        assert agree_answers(g, None, bad) == f"the extracted answer is not a GapANNAnswer with 3 rows: {bad!r}"
    assert agree_answers(g, None, GapANNAnswer([False, True, True])) == (
        "3 in-promise row(s) answered wrongly (first: row 0, truth YES)")
    assert agree_answers(g, None, GapANNAnswer([True, True, False])) == (
        "1 in-promise row(s) answered wrongly (first: row 1, truth NO)")
    assert agree_answers(g, None, GapANNAnswer([True, False, False], certified=False)) == (
        "the extracted answer is marked uncertified although the target was solved exactly")
    m = MaxIPInstance([[1, 2], [0, 1]], [[1, 1], [2, 0]], [3, 5])
    expected = m.brute_force_solve()
    assert agree_answers(m, expected, None) == "the extracted answer is not a MaxIPAnswer with 2 rows: None"
    assert agree_answers(m, expected, MaxIPAnswer([False, True])) == (
        "2 row(s) answered wrongly (first: row 0, max <a, b> = 3, tau = 3)")
    assert agree_answers(m, expected, MaxIPAnswer([True, True])) == (
        "1 row(s) answered wrongly (first: row 1, max <a, b> = 1, tau = 5)")
