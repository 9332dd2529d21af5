"""LevAttention's universal set computed in parallel over chunks of keys with Dask (Kannan et al. 2024).

The paper's universal set for ``f(x) = x^2`` is ``U = {j : tau_j >= eps}`` with ``tau_j = k_j^T (K^T K)^+ k_j``
the leverage scores; it can be computed "in streaming and parallel settings" because ``K^T K`` is a sum over any
partition of the keys. :func:`parallel_universal_set` makes the same decisions as
:func:`~finegrained.attention.lev.universal_set` at ``p = 2`` (and as
:func:`~finegrained.attention.lev.streaming_universal_set`), with every pass over the keys a Dask graph over row
chunks:

1. **Balance.** The largest ``|K_ja|`` per column (a max reduction) gives the power-of-two column scaling of
   :mod:`~finegrained.attention.lev` (exact, and leverage scores are invariant under it).
2. **Gram by a tree reduction.** ``K^T K`` is kept factored as ``R^T R`` (``R`` triangular), as in TSQR: each chunk
   is reduced to its QR factor and pairs of factors are merged by the QR of their stack, up a binary tree of
   depth ``log2(chunks)``. This avoids squaring the condition number of ``K``. ``|K|^T |K|`` is summed alongside.
3. **Directions.** The SVD of ``R`` gives ``V``; a second tree pass reduces ``K V^T`` to its factor and takes the
   largest relative score along every direction, which decides the numerical rank exactly as the in-memory code
   does (a direction is kept if some key's component along it is above that key's rounding level).
4. **Scores chunk by chunk.** ``tau_j`` of every key of a chunk, thresholded at ``eps``; only indices come back.

Work ``O(n d^2)``, memory ``O(chunk d + d^2)`` per worker, ``O(d^2 log(chunks))`` for the tree. Dask's threaded
scheduler runs the chunks in parallel threads (NumPy/LAPACK release the GIL); with a
``dask.distributed.Client`` the same graph runs on its workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from instances.errors import NumericalError, ParameterError

from .lev import _check_eps, _flushed, _LevSpace, _ratio_max, _significant

#: default rows per chunk
DEFAULT_CHUNK_ROWS = 2**16


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ParameterError("parallel_universal_set needs Dask: pip install 'finegrained[parallel]'") from exc
    return dask, da


def _qr_r(A: np.ndarray) -> np.ndarray:
    return np.linalg.qr(A, mode="r") if A.shape[0] else np.zeros((0, A.shape[1]))


def _merge(a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray]):
    """Merge two (R, G, ratio) partial results: QR of the stacked factors, sum of G, max of ratios."""
    return _qr_r(np.vstack([a[0], b[0]])), a[1] + b[1], np.maximum(a[2], b[2])


def _tree(dask, parts: list) -> Any:
    """Binary tree of :func:`_merge` over delayed partial results (depth ``ceil(log2(len(parts)))``)."""
    merge = dask.delayed(_merge, pure=True)
    while len(parts) > 1:
        nxt = [merge(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


def _gram_part(c: np.ndarray, e: np.ndarray):
    cb = np.ldexp(c, -e[None, :])
    _flushed(c, cb, "a column of K")
    A = np.abs(cb)
    return _qr_r(cb), A.T @ A, np.zeros(c.shape[1])


def _direction_part(c: np.ndarray, e: np.ndarray, Vt: np.ndarray):
    cb = np.ldexp(c, -e[None, :])
    P = cb @ Vt.T
    return _qr_r(P), np.zeros((c.shape[1], c.shape[1])), _ratio_max(P, np.linalg.norm(cb, axis=1))


def _as_dask_array(da, K, chunk_rows: int):
    if isinstance(K, da.Array):
        if K.ndim != 2:
            raise ParameterError(f"K must be a 2-D array, got {K.ndim} dimensions")
        # an empty row chunk has no column maxima (dask's max over it raises); its rows are none, so drop it
        rows = tuple(c for c in K.chunks[0] if c) or (0,)
        return K.rechunk({0: rows, 1: -1}).astype(np.float64)
    if isinstance(K, Sequence) and not isinstance(K, np.ndarray) and len(K) and np.ndim(K[0]) == 2:
        return da.concatenate([da.from_array(np.asarray(c, dtype=np.float64), chunks=-1) for c in K], axis=0)
    arr = np.asarray(K, dtype=np.float64)
    if arr.ndim != 2:
        raise ParameterError(f"K must be a 2-D matrix, got an array of shape {arr.shape}")
    return da.from_array(arr, chunks=(chunk_rows, -1))


def parallel_universal_set(K, eps: float, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, client=None,
                           scheduler: str | None = None) -> np.ndarray:
    """Sorted indices ``{j : tau_j >= eps}`` of the keys, computed over row chunks in parallel with Dask.

    Same guarantee and same decisions as :func:`~finegrained.attention.lev.universal_set` with ``p = 2`` (see the
    module docstring for the passes): every query's attention weight ``A_qj >= eps`` under ``f(x) = x^2`` has
    ``j`` in the set, and its size is at most ``rank / eps``.

    Parameters
    ----------
    K : array_like, dask.array.Array or sequence of 2-D arrays
        The keys, ``(n, d)``. A NumPy matrix is split into chunks of ``chunk_rows`` rows; a Dask array keeps its
        row chunks; a list of arrays gives one chunk each.
    eps : float
        Threshold in ``(0, 1]``.
    chunk_rows : int
        Rows per chunk when ``K`` is not already chunked.
    client : dask.distributed.Client, optional
        Run on this cluster; otherwise Dask's ``scheduler`` (default ``"threads"``).
    scheduler : str, optional
        ``"threads"``, ``"synchronous"`` or ``"processes"``; ignored when ``client`` is given.

    Returns
    -------
    numpy.ndarray of int64

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> parallel_universal_set(K, 0.5, chunk_rows=2).tolist()  # the four copies share one unit of leverage
    [4]
    """
    dask, da = _dask()
    eps = _check_eps(eps)
    chunk_rows = int(chunk_rows)
    if chunk_rows < 1:
        raise ParameterError(f"chunk_rows must be >= 1, got {chunk_rows}")
    Kd = _as_dask_array(da, K, chunk_rows)
    n, d = Kd.shape
    if n == 0 or d == 0:
        return np.zeros(0, dtype=np.int64)

    def compute(*graphs):
        if client is not None:
            return tuple(client.compute(list(graphs), sync=True))
        return dask.compute(*graphs, scheduler=scheduler or "threads")

    top, = compute(da.abs(Kd).max(axis=0))
    if not np.isfinite(top).all():
        raise NumericalError("K contains NaN or infinite entries")
    e = np.where(top > 0, np.frexp(top)[1], 0).astype(np.int64)
    blocks = Kd.to_delayed().ravel().tolist()
    gram = dask.delayed(_gram_part, pure=True)
    R, G, _ = compute(_tree(dask, [gram(b, e) for b in blocks]))[0]
    Vt = np.linalg.svd(R, full_matrices=True)[2] if R.shape[0] else np.eye(d)
    direc = dask.delayed(_direction_part, pure=True)
    RP, _, ratio = compute(_tree(dask, [direc(b, e, Vt) for b in blocks]))[0]
    keep = np.flatnonzero(_significant(ratio, d))
    if keep.size > RP.shape[0]:  # at most min(n, d) independent directions: keep the clearest (as lev.py does)
        keep = np.sort(keep[np.argsort(-ratio[keep], kind="stable")[: RP.shape[0]]])
    if keep.size == 0:
        return np.zeros(0, dtype=np.int64)
    T = np.linalg.qr(RP[:, keep], mode="r")
    if not np.all(np.abs(np.diag(T)) > 0):
        raise NumericalError("LevAttention: the kept directions of K are linearly dependent to rounding")
    space = _LevSpace(R, Vt[keep], T, G)
    flags = Kd.map_blocks(lambda c: space.quad(np.ldexp(c, -e[None, :]))[:, None] >= eps,
                          dtype=bool, chunks=(Kd.chunks[0], (1,)))
    mask, = compute(flags)
    return np.flatnonzero(mask.ravel()).astype(np.int64)


__all__ = ["DEFAULT_CHUNK_ROWS", "parallel_universal_set"]
