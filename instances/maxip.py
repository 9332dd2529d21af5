"""Integer Maximum Inner Product (Max-IP), decision form with one threshold per row.

Given integer matrices ``A`` (``n_a x d``) and ``B`` (``n_b x d``) and integer thresholds ``tau_i``, decide for
every row ``a_i`` whether ``max_j <a_i, b_j> >= tau_i``. With one common threshold this is the decision version
of exact integer Max-IP, which Gupta–Huang–Saha–Xu–Ye (2025, Theorem 1.4) reduce to attention; per-row
thresholds let a binary search for every row's maximum run in parallel (:func:`max_inner_products`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .ov import VectorSets


def _as_int_array(name: str, x, ndim: int | None, must: str = "must contain only") -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be integers ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise ParameterError(f"{name} must be a 2-D integer matrix, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "biuf":
        # object arrays: Python ints beyond int64 (10**30), strings, ...
        raise ParameterError(f"{name} {must} integers that fit in int64, got dtype {arr.dtype}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.isfinite(arr).all() and np.all(arr == np.round(arr))):
            raise ParameterError(f"{name} {must} integers")
    # the int64 cast wraps silently (1e300 and uint64 2**63 become -2**63): check the range first
    if arr.size and (int(arr.max()) > np.iinfo(np.int64).max or int(arr.min()) < np.iinfo(np.int64).min):
        raise ParameterError(f"{name} {must} integers that fit in int64")
    return arr.astype(np.int64)


def _as_int_matrix(name: str, x) -> np.ndarray:
    return _as_int_array(name, x, 2)


@dataclass(frozen=True)
class MaxIPAnswer:
    """Per-row answers: ``yes[i]`` claims ``max_j <a_i, b_j> >= tau_i``."""

    yes: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "yes", np.asarray(self.yes, dtype=bool))

    @property
    def any(self) -> bool:
        """Whether some pair reaches its row's threshold."""
        return bool(self.yes.any())


@dataclass(frozen=True)
class MaxIPInstance(VectorSets):
    """Rows of ``A`` against rows of ``B`` (same dimension) with integer thresholds ``tau`` (scalar or per row)."""

    A: np.ndarray
    B: np.ndarray
    tau: np.ndarray

    def __post_init__(self) -> None:
        A, B = _as_int_matrix("A", self.A), _as_int_matrix("B", self.B)
        if A.shape[1] != B.shape[1]:
            raise ParameterError(f"A has dimension {A.shape[1]} but B has {B.shape[1]}")
        # every inner product (and the search's lo + hi over [-R, R]) must stay exact in int64
        R = A.shape[1] * (int(np.abs(A).max(initial=0)) * int(np.abs(B).max(initial=0)))
        if R >= 2**62:
            raise ParameterError(f"inner products of A and B could reach {R:.3g} = d max|a| max|b|, beyond the "
                                 "2^62 that int64 arithmetic keeps exact")
        tau = _as_int_array("thresholds tau", self.tau, None, must="must be")
        if tau.size and np.abs(tau).max() >= 2**62:
            raise ParameterError("thresholds tau must lie within +-2^62 (int64 arithmetic)")
        try:
            tau = np.broadcast_to(tau, (A.shape[0],)).copy()
        except ValueError:
            raise ParameterError(f"thresholds tau of shape {tau.shape} do not fit {A.shape[0]} rows") from None
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)
        object.__setattr__(self, "tau", tau)

    def row_maxima(self) -> np.ndarray:
        """``max_j <a_i, b_j>`` for every row by brute force (exact int64 products)."""
        if self.n_b == 0:
            raise ParameterError("Max-IP needs at least one vector in B")
        return (self.A @ self.B.T).max(axis=1) if self.n_a else np.zeros(0, dtype=np.int64)

    def brute_force_solve(self) -> MaxIPAnswer:
        return MaxIPAnswer(self.row_maxima() >= self.tau)


def max_inner_products(A, B, decide: Callable[[MaxIPInstance], MaxIPAnswer]) -> np.ndarray:
    """Every row's ``max_j <a_i, b_j>`` by a parallel binary search over thresholds with a decision procedure.

    ``decide`` answers per-row threshold queries (for example the attention reduction with an oracle). The
    search interval is ``[-R, R]`` with ``R = sum_l max|A_l| max|B_l|``; it takes ``ceil(log2(2R + 1))`` calls.

    Examples
    --------
    >>> A = [[1, 2], [-1, 0]]; B = [[3, 0], [0, -1]]
    >>> max_inner_products(A, B, lambda inst: inst.brute_force_solve()).tolist()
    [3, 0]
    """
    probe = MaxIPInstance(A, B, 0)
    if probe.n_b == 0:
        raise ParameterError("Max-IP needs at least one vector in B")
    R = int((np.abs(probe.A).max(axis=0, initial=0) * np.abs(probe.B).max(axis=0, initial=0)).sum())
    lo = np.full(probe.n_a, -R, dtype=np.int64)  # invariant: max >= lo
    hi = np.full(probe.n_a, R, dtype=np.int64)  # invariant: max <= hi
    while np.any(lo < hi):
        mid = (lo + hi + 1) // 2  # rounds up, so lo = mid always makes progress
        ans = decide(MaxIPInstance(probe.A, probe.B, mid)).yes
        lo = np.where(ans & (lo < hi), mid, lo)
        hi = np.where(~ans & (lo < hi), mid - 1, hi)
    return lo
