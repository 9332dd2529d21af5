"""The reduction protocol and composition of reductions into chains.

A reduction from problem P to problem P' is a pair of maps (Karp-style):

* ``forward(x) -> x'`` maps an instance of P to an instance of P';
* ``backward(x, y') -> y`` maps a solution ``y'`` of ``x'`` back to a solution ``y`` of ``x``.

Correctness means: whenever ``y'`` is a correct answer for ``x' = forward(x)``, ``backward(x, y')`` is a correct
answer for ``x``. The tests check exactly this on random instances, with brute force on both sides.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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
        """Map a solution of ``forward(instance)`` back to a solution of ``instance``."""

    def parameters(self, instance: Any) -> dict:
        """Derived parameters for this source instance (empty unless the reduction has any)."""
        return {}


@dataclass
class Chain:
    """A composition of reductions ``r_1, ..., r_k`` with ``r_i.target == r_{i+1}.source``.

    :meth:`forward_trace` keeps every intermediate instance, because the backward maps need them.
    """

    steps: Sequence[Reduction]

    def __post_init__(self) -> None:
        for a, b in zip(self.steps, self.steps[1:]):
            if a.target != b.source:
                raise ValueError(f"cannot compose {a.name} with {b.name}")

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

    def backward(self, instance: Any, target_solution: Any, trace: list[Any] | None = None) -> Any:
        """Map a solution of the last instance back to the first; recomputes the trace if not given."""
        if trace is None:
            trace = self.forward_trace(instance)
        solution = target_solution
        for r, x in zip(reversed(self.steps), reversed(trace[:-1])):
            solution = r.backward(x, solution)
        return solution
