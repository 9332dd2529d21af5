"""The reduction protocol and composition of reductions into chains.

A reduction from problem P to problem P' is a pair of maps (Karp-style):

* ``forward(x) -> x'`` maps an instance of P to an instance of P';
* ``backward(x, y') -> y`` maps a solution ``y'`` of ``x'`` back to a solution ``y`` of ``x``.

Correctness means: whenever ``y'`` is a correct answer for ``x' = forward(x)``, ``backward(x, y')`` is a correct
answer for ``x``. :func:`reductions.check_reduction` checks exactly this on random instances, with brute force on
both sides; every shipped reduction's tests use it.

Errors: a backward map raises :class:`~instances.errors.ReductionError` when its input is malformed and
:class:`~instances.errors.WrongAnswerError` when the target solution it was given is wrong; option errors
(constructors, :func:`reductions.path`) are :class:`~instances.errors.ParameterError`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from instances.errors import ParameterError, ReductionError, WrongAnswerError

from .sizes import Derivation, Stage, compose, implies, measure


class CertificateError(WrongAnswerError):
    """A backward map could not build a certificate: the target solution it was given is wrong."""


def expect(value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """Return ``value`` if it is an instance of ``types``; otherwise raise :class:`ReductionError` naming ``what``.

    Forward and backward maps call this first, so that a wrong input is one clear error rather than an
    ``AttributeError`` deep inside numpy.
    """
    if not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise ReductionError(f"{what} must be a {names}, got {type(value).__name__}")
    return value


class Reduction(ABC):
    """One reduction between two named problems.

    Attributes
    ----------
    source, target : str
        Problem names, nodes of the reduction graph (:mod:`reductions.registry`).
    lemma : str
        The statement it implements.
    blowup : str
        How the target size depends on the source size.
    derived : str
        The parameters the reduction derives, with their formulas.
    """

    source: str = ""
    target: str = ""
    lemma: str = ""
    blowup: str = ""
    derived: str = ""

    @property
    def name(self) -> str:
        return f"{self.source} -> {self.target}"

    @abstractmethod
    def forward(self, instance: Any) -> Any:
        """Map a source instance to a target instance."""

    @abstractmethod
    def backward(self, instance: Any, target_solution: Any) -> Any:
        """Map a solution of ``forward(instance)`` back to a solution of ``instance``.

        Raises
        ------
        ReductionError
            ``instance`` or ``target_solution`` has the wrong type or shape (bad input).
        WrongAnswerError
            ``target_solution`` is provably wrong for ``forward(instance)``; no other error is raised on purpose.
        """

    def parameters(self, instance: Any) -> dict:
        """Derived parameters for this source instance (empty unless the reduction has any)."""
        return {}

    @property
    def sizes(self) -> dict:
        """The target's sizes as sympy expressions in the source's sizes.

        Size names are those of :data:`reductions.sizes.PROBLEM_SIZES`.

        Empty when the reduction declares none; :func:`reductions.check_reduction` compares declared sizes with the
        measured ones on every instance it draws.
        """
        return {}

    def reduce(self, instance: Any) -> Reduced:
        """Map ``instance`` forward once and keep what the way back needs (:class:`Reduced`)."""
        return Reduced(self, instance, self.forward(instance), self.parameters(instance))

    def extract(self, reduced: Reduced, target_solution: Any) -> Any:
        """Map a solution of ``reduced.target`` back to a solution of ``reduced.source``."""
        return self.backward(reduced.source, target_solution)


@dataclass
class Reduced:
    """One reduction applied to one instance: the target, the parameters derived (once), and the way back.

    Attributes
    ----------
    reduction : Reduction
    source, target : object
        The instance and its image.
    parameters : object
        What the reduction derived for this instance (a dict, or e.g. Lemma 4.7's parameter record).
    """

    reduction: Reduction
    source: Any
    target: Any
    parameters: Any = None

    def extract(self, target_solution: Any) -> Any:
        """A solution of :attr:`source` from a solution of :attr:`target` (the reduction's backward map)."""
        return self.reduction.extract(self, target_solution)


@dataclass
class ChainReduced:
    """A chain of reductions applied to one instance: every step's :class:`Reduced` and its forward time."""

    steps: list[Reduced]
    seconds: list[float] = field(default_factory=list)

    @property
    def source(self) -> Any:
        return self.steps[0].source

    @property
    def target(self) -> Any:
        return self.steps[-1].target

    @property
    def instances(self) -> list[Any]:
        """``[x_0, x_1, ..., x_k]``: the source and the image after every step."""
        return [self.steps[0].source] + [s.target for s in self.steps]

    @property
    def sizes(self) -> list[dict[str, float]]:
        """The sizes measured on every instance (:func:`reductions.sizes.measure`; ``{}`` for an unknown type)."""
        out = []
        for x in self.instances:
            try:
                out.append(measure(x))
            except ParameterError:
                out.append({})
        return out

    def extract(self, target_solution: Any) -> Any:
        """Map a solution of the last instance back through every step to a solution of the first."""
        solution = target_solution
        for step in reversed(self.steps):
            solution = step.extract(solution)
        return solution


@dataclass
class Chain:
    """A composition of reductions ``r_1, ..., r_k`` with ``r_i.target == r_{i+1}.source``.

    :meth:`forward_trace` keeps every intermediate instance, because the backward maps need them.
    """

    steps: Sequence[Reduction]

    def __post_init__(self) -> None:
        for a, b in zip(self.steps, self.steps[1:]):
            if a.target != b.source:
                raise ReductionError(f"cannot compose {a.name} with {b.name}")

    @property
    def source(self) -> str:
        return self.steps[0].source

    @property
    def target(self) -> str:
        return self.steps[-1].target

    @property
    def problems(self) -> list[str]:
        return [self.source] + [r.target for r in self.steps]

    def forward_trace(self, instance: Any) -> list[Any]:
        """``[x_0, x_1, ..., x_k]`` with ``x_{i} = r_i.forward(x_{i-1})``."""
        trace = [instance]
        for r in self.steps:
            trace.append(r.forward(trace[-1]))
        return trace

    def forward(self, instance: Any) -> Any:
        return self.forward_trace(instance)[-1]

    @property
    def sizes(self) -> list[Stage]:
        """The composed size map: one :class:`reductions.sizes.Stage` per problem, in the first problem's sizes."""
        return compose(list(self.steps))

    def implies(self, target_time: str) -> Derivation:
        """The bound that ``target_time`` for the last problem gives the first (:func:`reductions.sizes.implies`)."""
        return implies(list(self.steps), target_time)

    def reduce(self, instance: Any) -> ChainReduced:
        """Apply every step once, timing each; the result maps solutions back (:meth:`ChainReduced.extract`)."""
        steps, seconds = [], []
        x = instance
        for r in self.steps:
            t0 = time.perf_counter()
            red = r.reduce(x)
            seconds.append(time.perf_counter() - t0)
            steps.append(red)
            x = red.target
        return ChainReduced(steps, seconds)

    def backward(self, instance: Any, target_solution: Any, trace: list[Any] | None = None) -> Any:
        """Map a solution of the last instance back to the first; recomputes the trace if not given."""
        if trace is None:
            trace = self.forward_trace(instance)
        solution = target_solution
        for r, x in zip(reversed(self.steps), reversed(trace[:-1])):
            solution = r.backward(x, solution)
        return solution
