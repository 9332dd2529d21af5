r"""Karp-style checking of a reduction on random instances: the public form of every reduction's test.

A reduction ``r`` from P to P' is correct when, for every instance ``x`` of P and every correct answer ``y'`` of
``x' = r.forward(x)``, the extracted ``r.backward(x, y')`` is a correct answer of ``x``. :func:`check_reduction`
tests this on instances drawn by a generator: it reduces each one (:meth:`~reductions.base.Reduction.reduce`),
solves the target by brute force, extracts, and compares with the source's own brute-force answer *in the source
problem's sense*:

* k-SAT (:class:`~instances.cnf.CNFFormula`): satisfiability agrees, and an extracted assignment satisfies the
  formula;
* OV (:class:`~instances.ov.OVInstance`): existence of a pair agrees, and an extracted pair is orthogonal;
* Gap-ANN (:class:`~instances.gap_ann.GapANNInstance`): every row inside the promise (Definition 4.5) gets the
  right answer, and is decided (a certified answer may leave no in-promise row undecided when the target was
  solved exactly); rows outside the promise may get either answer;
* Max-IP (:class:`~instances.maxip.MaxIPInstance`): every row's answer agrees.

It also checks the sizes each step declares (:mod:`reductions.sizes`) against the sizes of the instances it built.

Other source problems need an ``agree`` function. The first disagreement is returned as a :class:`Counterexample`
with the seed that reproduces it: ``generate(numpy.random.default_rng(cx.seed))`` draws the same instance.

The attention targets (AAttC, Attention) are solved by :meth:`~instances.aattc.AAttCInstance.brute_force_solve`,
a dense log-sum-exp over all keys in log space, exact up to float64 rounding of the scores; it is meant for the
small instances a checker draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instances.cnf import CNFFormula
from instances.errors import FinegrainedError, ParameterError
from instances.gap_ann import OUTSIDE_PROMISE, YES, GapANNInstance
from instances.maxip import MaxIPAnswer, MaxIPInstance
from instances.ov import OVInstance
from instances.solutions import GapANNAnswer, OrthogonalPair

from .sizes import size_mismatches

__all__ = ["Counterexample", "agree_answers", "check_reduction"]


@dataclass
class Counterexample:
    """A source instance on which a reduction's round trip gives a wrong answer.

    Attributes
    ----------
    instance : object
        The source instance ``generate(numpy.random.default_rng(seed))`` drew.
    expected : object
        The source's brute-force answer.
    got : object
        What the reduction extracted from the target's brute-force solution (None if a step raised).
    seed : int
        Reproduces the instance: ``generate(numpy.random.default_rng(seed))``.
    trial : int
        Index of the trial (0-based) within the :func:`check_reduction` call.
    reason : str
        One line saying what disagreed (or which step raised what).
    target, target_solution : object
        The reduced instance and the brute-force solution the extraction was given, when they were reached.
    """

    instance: Any = field(repr=False)
    expected: Any = field(repr=False)
    got: Any = field(repr=False)
    seed: int
    trial: int
    reason: str
    target: Any = field(default=None, repr=False)
    target_solution: Any = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"trial {self.trial} (seed {self.seed}): {self.reason}"


def _agree_sat(instance: CNFFormula, expected, got) -> str | None:
    if got is None:
        return None if expected is None else "the reduction answered UNSAT, but the formula is satisfiable"
    if expected is None:
        return f"the reduction answered SAT with {got}, but the formula is unsatisfiable"
    try:
        ok = instance.is_satisfied_by(got)
    except (FinegrainedError, ValueError, TypeError, IndexError) as exc:
        return f"the extracted assignment {got!r} is malformed: {exc}"
    return None if ok else f"the extracted assignment {got} does not satisfy the formula"


def _agree_ov(instance: OVInstance, expected, got) -> str | None:
    if got is None:
        return None if expected is None else f"the reduction found no pair, but {expected} is orthogonal"
    if not isinstance(got, OrthogonalPair):
        return f"the extracted answer is a {type(got).__name__}, not an OrthogonalPair or None"
    if not (0 <= got.i < instance.n_a and 0 <= got.j < instance.n_b):
        return f"the extracted pair {got} is out of range for {instance.n_a} x {instance.n_b} vectors"
    if not instance.is_orthogonal(got):
        return f"the extracted pair {got} is not orthogonal"
    return None


def _agree_gap_ann(instance: GapANNInstance, expected, got) -> str | None:
    if not isinstance(got, GapANNAnswer) or got.yes.shape != (instance.n_a,):
        return f"the extracted answer is not a GapANNAnswer with {instance.n_a} rows: {got!r}"
    status = instance.row_status()
    promise = status != OUTSIDE_PROMISE
    wrong = np.flatnonzero(promise & (got.yes != (status == YES)))
    if wrong.size:
        i = int(wrong[0])
        truth = "YES" if status[i] == YES else "NO"
        return f"{wrong.size} in-promise row(s) answered wrongly (first: row {i}, truth {truth})"
    if promise.any() and not got.certified:
        return "the extracted answer is marked uncertified although the target was solved exactly"
    undecided = np.flatnonzero(promise & ~got.decided)
    if undecided.size:
        return f"{undecided.size} in-promise row(s) undecided from an exact target solution (first: {undecided[0]})"
    return None


def _agree_maxip(instance: MaxIPInstance, expected: MaxIPAnswer, got) -> str | None:
    if not isinstance(got, MaxIPAnswer) or got.yes.shape != expected.yes.shape:
        return f"the extracted answer is not a MaxIPAnswer with {instance.n_a} rows: {got!r}"
    wrong = np.flatnonzero(got.yes != expected.yes)
    if wrong.size:
        i = int(wrong[0])
        return (f"{wrong.size} row(s) answered wrongly (first: row {i}, max <a, b> = {int(instance.row_maxima()[i])}, "
                f"tau = {int(instance.tau[i])})")
    return None


_AGREE: list[tuple[type, Callable[[Any, Any, Any], str | None]]] = [
    (CNFFormula, _agree_sat),
    (OVInstance, _agree_ov),
    (GapANNInstance, _agree_gap_ann),
    (MaxIPInstance, _agree_maxip),
]


def agree_answers(instance: Any, expected: Any, got: Any) -> str | None:
    """Compare two answers to ``instance`` in its problem's own sense (module docstring).

    Returns
    -------
    str or None
        None when ``got`` is a correct answer given the brute-force answer ``expected``; otherwise one line saying
        why it is not.

    Raises
    ------
    ParameterError
        For a problem type it does not know; pass ``agree`` to :func:`check_reduction` instead.
    """
    for cls, agree in _AGREE:
        if isinstance(instance, cls):
            return agree(instance, expected, got)
    raise ParameterError(f"no built-in comparison of answers for {type(instance).__name__}; pass agree=")


def _brute_force(instance: Any, role: str) -> Any:
    solve = getattr(instance, "brute_force_solve", None)
    if solve is None:
        raise ParameterError(f"the {role} instance ({type(instance).__name__}) has no brute_force_solve(); "
                             f"pass solve_{role}=")
    return solve()


def _size_mismatch(reduced: Any) -> str | None:
    """The first declared size of any step that disagrees with the measured one, as a line, or None."""
    for step in getattr(reduced, "steps", [reduced]):
        lines = size_mismatches(step.reduction, step.source, step.target)
        if lines:
            return f"{step.reduction.name}: {lines[0]}"
    return None


def check_reduction(
    reduction: Any,
    generate: Callable[[np.random.Generator], Any],
    *,
    trials: int = 100,
    seed: int = 0,
    solve_source: Callable[[Any], Any] | None = None,
    solve_target: Callable[[Any], Any] | None = None,
    agree: Callable[[Any, Any, Any], str | None] | None = None,
    check_sizes: bool = True,
) -> Counterexample | None:
    """Check a reduction Karp-style on ``trials`` random instances; the first counterexample, or None.

    Parameters
    ----------
    reduction : Reduction or Chain
        Anything with ``reduce(x)`` returning an object with ``.target`` and ``.extract(solution)``
        (:class:`~reductions.base.Reduced`, :class:`~reductions.base.ChainReduced`).
    generate : callable
        ``generate(rng)`` draws one source instance from a :class:`numpy.random.Generator`.
    trials : int
        Number of instances drawn.
    seed : int
        Seeds the per-trial generators; the same seed draws the same instances.
    solve_source, solve_target : callable, optional
        Brute-force solvers; default: the instance's own ``brute_force_solve()`` (for attention targets the dense
        log-space solve).
    agree : callable, optional
        ``agree(instance, expected, got) -> str | None``: None when ``got`` is right, else the reason. Default:
        :func:`agree_answers`.
    check_sizes : bool
        Also compare every step's declared sizes (:attr:`Reduction.sizes <reductions.base.Reduction.sizes>`) with
        the sizes measured on the instances it built (:func:`reductions.sizes.size_mismatches`); a mismatch is a
        counterexample. Reductions that declare no sizes are not checked.

    Returns
    -------
    Counterexample or None
        The first trial whose extracted answer is wrong, whose declared sizes disagree with the measured ones, or
        on which ``reduce`` or ``extract`` raised (a correct reduction maps every instance the generator draws and
        accepts every correct target solution). None if all trials pass. Errors of the brute-force solvers and of
        ``generate`` propagate: they are the checker's tools, not the reduction under test.

    Examples
    --------
    >>> from instances.ov import OVInstance
    >>> from reductions import OVToGapANN
    >>> def small_ov(rng):
    ...     m = int(rng.integers(1, 5))
    ...     return OVInstance(rng.random((int(rng.integers(1, 5)), m)) < 0.5, rng.random((3, m)) < 0.5)
    >>> check_reduction(OVToGapANN(), small_ov, trials=20) is None
    True
    """
    if not (isinstance(trials, (int, np.integer)) and trials >= 1):
        raise ParameterError(f"trials must be a positive integer, got {trials!r}")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    if not callable(getattr(reduction, "reduce", None)):
        raise ParameterError(f"{type(reduction).__name__} has no reduce(); pass a Reduction or a Chain")
    agree = agree_answers if agree is None else agree
    seeds = np.random.SeedSequence(int(seed)).generate_state(int(trials), dtype=np.uint64)
    for trial, s in enumerate(int(x) for x in seeds):
        instance = generate(np.random.default_rng(s))
        expected = solve_source(instance) if solve_source is not None else _brute_force(instance, "source")
        try:
            reduced = reduction.reduce(instance)
        except Exception as exc:  # any failure of the reduction on a drawn instance is what the checker reports
            return Counterexample(instance, expected, None, s, trial, f"reduce raised {type(exc).__name__}: {exc}")
        target = reduced.target
        mismatch = _size_mismatch(reduced) if check_sizes else None
        if mismatch is not None:
            return Counterexample(instance, expected, None, s, trial, mismatch, target)
        # The brute-force solve is the checker's tool, not the reduction: its errors (e.g. a size limit) propagate.
        solution = solve_target(target) if solve_target is not None else _brute_force(target, "target")
        try:
            got = reduced.extract(solution)
        except Exception as exc:  # a correct target solution must be accepted
            return Counterexample(instance, expected, None, s, trial, f"extract raised {type(exc).__name__}: {exc}",
                                  target, solution)
        reason = agree(instance, expected, got)
        if reason is not None:
            return Counterexample(instance, expected, got, s, trial, reason, target, solution)
    return None
