"""Orthogonal Vectors (OV): given ``A ⊂ {0,1}^m`` and ``B ⊂ {0,1}^m``, is there ``a ⟂ b``?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .solutions import OrthogonalPair

_TILE_ENTRIES = 2**24


def as_binary_matrix(name: str, x) -> np.ndarray:
    """A 2-D 0/1 matrix as ``uint8``; raises :class:`ParameterError` for anything else."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ParameterError(f"{name} must be a 2-D 0/1 matrix, got shape {arr.shape}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ParameterError(f"{name} must contain only 0 and 1")
    return arr.astype(np.uint8, copy=False)


class VectorSets:
    """Sizes shared by the problems on a query set ``A`` (``n_a x dim``) and a data set ``B`` (``n_b x dim``)."""

    A: np.ndarray
    B: np.ndarray

    @property
    def n_a(self) -> int:
        return self.A.shape[0]

    @property
    def n_b(self) -> int:
        return self.B.shape[0]

    @property
    def dim(self) -> int:
        return self.A.shape[1]


@dataclass(frozen=True)
class OVInstance(VectorSets):
    """An OV instance: rows of ``A`` (``n_a x m``) against rows of ``B`` (``n_b x m``)."""

    A: np.ndarray
    B: np.ndarray

    def __post_init__(self) -> None:
        A, B = as_binary_matrix("A", self.A), as_binary_matrix("B", self.B)
        if A.shape[1] != B.shape[1]:
            raise ParameterError(f"A has dimension {A.shape[1]} but B has {B.shape[1]}")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)

    def is_orthogonal(self, pair: OrthogonalPair) -> bool:
        return int(self.A[pair.i].astype(np.int64) @ self.B[pair.j].astype(np.int64)) == 0

    def partner_of(self, i: int) -> int | None:
        """A ``j`` with ``a_i ⟂ b_j`` (linear scan of B), or None."""
        hits = np.flatnonzero(self.B.astype(np.int32) @ self.A[i].astype(np.int32) == 0)
        return int(hits[0]) if hits.size else None

    def brute_force_solve(self) -> OrthogonalPair | None:
        """All inner products, tile by tile; the first orthogonal pair in row-major order, or None.

        Examples
        --------
        >>> ov = OVInstance([[1, 1, 0], [1, 0, 1]], [[1, 0, 0], [0, 1, 0]])
        >>> pair = ov.brute_force_solve()
        >>> (pair.i, pair.j), ov.is_orthogonal(pair), ov.partner_of(0)
        ((1, 1), True, None)
        >>> OVInstance([[1]], [[1]]).brute_force_solve() is None
        True
        """
        if self.n_a == 0 or self.n_b == 0:
            return None
        Bt = self.B.T.astype(np.float64)
        rows = max(1, _TILE_ENTRIES // max(self.n_b, 1))
        for start in range(0, self.n_a, rows):
            ip = self.A[start : start + rows].astype(np.float64) @ Bt
            hit = np.argwhere(ip == 0)
            if hit.size:
                return OrthogonalPair(int(start + hit[0, 0]), int(hit[0, 1]))
        return None
