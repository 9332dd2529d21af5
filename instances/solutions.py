"""Solution types: what solvers return and backward maps translate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .logspace import LogArray


@dataclass(frozen=True)
class OrthogonalPair:
    """Indices ``(i, j)`` with ``<a_i, b_j> = 0`` in an OV instance."""

    i: int
    j: int


@dataclass(frozen=True)
class GapANNAnswer:
    """Per-row answers to Gap-ANN (Definition 4.5).

    Attributes
    ----------
    yes : numpy.ndarray of bool, shape (n_a,)
        ``yes[i]`` claims that ``a_i`` has a neighbour in B at Hamming distance ``< t`` (Case 1); ``False`` claims
        every ``b_j`` is at distance ``>= (1+eps) t`` (Case 2). Rows outside the promise may get either answer.
    undecided : numpy.ndarray of bool, optional
        Rows whose ``yes`` entry is only the oracle's point answer: its certified error leaves the row on both
        sides of the threshold. Default: none.
    margin : numpy.ndarray of float, optional
        The decision margin per row (for Lemma 4.7: ``log u_i - log 2t~`` in nats).
    certified : bool
        False when the answer came from an oracle that certifies nothing; ``yes`` is then its point answer.
    """

    yes: np.ndarray
    undecided: np.ndarray | None = None
    margin: np.ndarray | None = None
    certified: bool = True

    def __post_init__(self) -> None:
        yes = np.asarray(self.yes, dtype=bool)
        object.__setattr__(self, "yes", yes)
        undecided = np.zeros(yes.shape, dtype=bool) if self.undecided is None else np.asarray(self.undecided, bool)
        if undecided.shape != yes.shape:
            raise ValueError(f"undecided has shape {undecided.shape}, yes has {yes.shape}")
        object.__setattr__(self, "undecided", undecided)
        if self.margin is not None:
            object.__setattr__(self, "margin", np.asarray(self.margin, dtype=np.float64))

    @property
    def decided(self) -> np.ndarray:
        """Rows whose answer is certified: the attention output's certified interval lies on one side of the
        threshold (all rows when the answer came from an exact solver)."""
        return ~self.undecided if self.certified else np.zeros(self.yes.shape, dtype=bool)


@dataclass(frozen=True)
class CertifiedOutput:
    """An attention output together with certified entrywise bounds ``lower <= u <= upper`` on the true value.

    Attributes
    ----------
    value : LogArray
        The oracle's answer.
    lower, upper : LogArray or None
        Certified bounds on the exact output, entrywise; None when the oracle certifies nothing.
    """

    value: LogArray
    lower: LogArray | None = None
    upper: LogArray | None = None

    @property
    def certified(self) -> bool:
        return self.lower is not None and self.upper is not None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def __getitem__(self, index) -> CertifiedOutput:
        if not self.certified:
            return CertifiedOutput(self.value[index])
        return CertifiedOutput(self.value[index], self.lower[index], self.upper[index])
