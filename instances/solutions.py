"""Solution types: what solvers return and backward maps translate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    """

    yes: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "yes", np.asarray(self.yes, dtype=bool))
