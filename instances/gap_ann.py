"""Hamming Gap approximate nearest neighbour, Gap-ANN(n, d, t, eps) (Alman & Song, Definition 4.5).

For each ``a_i`` decide between Case 1 (some ``b_j`` with ``||a_i - b_j||_0 < t``) and Case 2 (every ``b_j``
has ``||a_i - b_j||_0 >= (1+eps) t``). Rows in neither case are outside the promise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .ov import VectorSets, as_binary_matrix
from .solutions import GapANNAnswer

_TILE_ENTRIES = 2**24

#: Row status codes returned by :meth:`GapANNInstance.row_status`.
YES, NO, OUTSIDE_PROMISE = 1, 0, -1


def balance(X: np.ndarray) -> np.ndarray:
    """Remark 4.4: ``x -> [x, 1 - x]``; every image has weight ``d`` in dimension ``2d``, distances double.

    Examples
    --------
    >>> balance([[1, 0, 0], [1, 1, 0]]).tolist()
    [[1, 0, 0, 0, 1, 1], [1, 1, 0, 0, 0, 1]]
    >>> hamming_distances(balance([[1, 0, 0]]), balance([[1, 1, 0], [0, 0, 1]])).tolist()  # twice 1 and 2
    [[2.0, 4.0]]
    """
    X = as_binary_matrix("X", X)
    return np.concatenate([X, 1 - X], axis=1)


def hamming_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """All pairwise Hamming distances via the GEMM identity ``|a| + |b| - 2 a·b`` (exact in float64)."""
    A = A.astype(np.float64)
    B = B.astype(np.float64)
    return A.sum(1)[:, None] + B.sum(1)[None, :] - 2.0 * (A @ B.T)


@dataclass(frozen=True)
class GapANNInstance(VectorSets):
    """A Gap-ANN instance: query set ``A`` (``n_a x d``), data set ``B`` (``n_b x d``), threshold ``t``, gap ``eps``."""

    A: np.ndarray
    B: np.ndarray
    t: float
    eps: float

    def __post_init__(self) -> None:
        A, B = as_binary_matrix("A", self.A), as_binary_matrix("B", self.B)
        if A.shape[1] != B.shape[1]:
            raise ParameterError(f"A has dimension {A.shape[1]} but B has {B.shape[1]}")
        if not (np.isfinite(self.t) and self.t > 0):
            raise ParameterError(f"Gap-ANN threshold t must be positive, got {self.t}")
        if not (np.isfinite(self.eps) and self.eps > 0):
            raise ParameterError(f"Gap-ANN gap eps must be positive, got {self.eps}")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)
        object.__setattr__(self, "t", float(self.t))
        object.__setattr__(self, "eps", float(self.eps))

    def is_balanced(self) -> bool:
        """Whether every vector has exactly ``d/2`` ones (the form Lemma 4.7 needs)."""
        d = self.dim
        return d % 2 == 0 and bool((self.A.sum(1) == d // 2).all() and (self.B.sum(1) == d // 2).all())

    def min_distances(self) -> np.ndarray:
        """``min_j ||a_i - b_j||_0`` for every row, tile by tile (brute force)."""
        if self.n_b == 0:
            return np.full(self.n_a, np.inf)
        out = np.empty(self.n_a)
        rows = max(1, _TILE_ENTRIES // self.n_b)
        for s in range(0, self.n_a, rows):
            out[s : s + rows] = hamming_distances(self.A[s : s + rows], self.B).min(axis=1)
        return out

    def row_status(self) -> np.ndarray:
        """Per row: ``YES`` (Case 1), ``NO`` (Case 2) or ``OUTSIDE_PROMISE``.

        Examples
        --------
        >>> inst = GapANNInstance([[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], [[0, 0, 0, 1]], t=2.0, eps=0.5)
        >>> inst.min_distances().tolist(), inst.row_status().tolist()  # < 2 is YES, >= 3 is NO, 2 is outside
        ([1.0, 3.0, 3.0], [1, 0, 0])
        """
        dist = self.min_distances()
        return np.where(dist < self.t, YES, np.where(dist >= (1 + self.eps) * self.t, NO, OUTSIDE_PROMISE))

    def brute_force_solve(self) -> GapANNAnswer:
        """Exact per-row answers; rows outside the promise are answered by ``dist < t``."""
        return GapANNAnswer(self.min_distances() < self.t)
