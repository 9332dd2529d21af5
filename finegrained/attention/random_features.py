"""Positive random features (Performer / FAVOR+): an unbiased low-rank baseline without an error guarantee.

For ``w ~ N(0, I_d)``, ``E[exp(w.x - ||x||^2/2) exp(w.y - ||y||^2/2)] = exp(x.y)``, so with ``m`` independent
draws the features ``phi(x) = exp(W x - ||x||^2/2) / sqrt(m)`` give ``phi(x).phi(y) ~ exp(x.y)``, always
positive. Attention with scale ``s`` applies them to ``x = sqrt|s| q`` and ``y = sign(s) sqrt|s| k``. The
variance grows like ``exp(2||x||^2 + 2||y||^2)``, so unlike :func:`~finegrained.attention.poly.poly` the
approximation degrades exponentially with the entry bound and no deterministic bound is claimed.
"""

from __future__ import annotations

import math

import numpy as np

from instances.errors import NumericalError, ParameterError, short_repr
from instances.logspace import LogArray

from .protocol import UNCERTIFIED, OracleAnswer, check_attention_inputs

#: memory for one block of feature rows
DEFAULT_BLOCK_BYTES = 32 * 2**20


def _positive_int(name: str, x) -> int:
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer) or x < 1:
        raise ParameterError(f"{name} must be a positive integer, got {short_repr(x)}")
    return int(x)


def _log_features(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``log phi(x)`` for the rows of ``X``, without the common ``-log(m)/2``."""
    return X @ W.T - 0.5 * np.einsum("ij,ij->i", X, X)[:, None]


def random_features(
    Q, K, V, *, rank: int, seed: int = 0, scale: float | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> LogArray:
    """Approximate attention ``D^{-1} exp(scale Q K^T) V`` with ``rank`` positive random features (FAVOR+).

    Computes ``diag(Phi_Q (Phi_K^T 1))^{-1} Phi_Q (Phi_K^T V)`` in ``O(n rank (d + d_v))`` time and
    ``O(block rank + rank d_v)`` memory. The exponents are shifted for stability: each query row by its own
    maximum (that factor cancels in the row's ratio) and all key rows by one running maximum (a common factor
    of numerator and denominator). The ``1/sqrt(m)`` normalisation cancels too and is omitted.

    Parameters
    ----------
    Q : array_like, shape (n_q, d)
    K : array_like, shape (n_k, d)
    V : array_like, shape (n_k, d_v)
    rank : int
        Number of random features ``m >= 1``.
    seed : int
        Seed of the :class:`numpy.random.Generator` drawing ``W``; equal seeds give identical outputs.
    scale : float, optional
        Default ``1/d``.
    block_bytes : int
        Memory of one block of feature rows.

    Returns
    -------
    LogArray, shape (n_q, d_v)

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> Q, K, V = (rng.uniform(-0.5, 0.5, size=(64, 2)) for _ in range(3))
    >>> out = random_features(Q, K, V, rank=4096, seed=0).to_float()
    >>> from finegrained.attention.exact import exact
    >>> bool(np.abs(out - exact(Q, K, V).to_float()).max() < 0.02)
    True
    """
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    rank = _positive_int("rank", rank)
    block_bytes = _positive_int("block_bytes", block_bytes)
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    n_q, d = Q.shape
    n_k, d_v = V.shape
    root = math.sqrt(abs(scale))
    Xq = Q * root
    Xk = K * (root if scale >= 0 else -root)
    W = np.random.default_rng(seed).standard_normal((rank, d))
    block = max(1, block_bytes // (8 * rank))

    # Keys: one running shift for all blocks (a common factor of numerator and denominator). When a block
    # raises the maximum, the sums so far are rescaled, so no exponent is ever positive.
    VW = np.empty((n_k, d_v + 1))
    VW[:, :d_v] = V
    VW[:, d_v] = 1.0
    KV = np.zeros((rank, d_v + 1))
    shift = -np.inf
    for start in range(0, n_k, block):
        stop = min(n_k, start + block)
        lf = _log_features(Xk[start:stop], W)
        top = float(lf.max())
        with np.errstate(under="ignore"):
            if top > shift:
                if np.isfinite(shift):
                    KV *= math.exp(shift - top)
                shift = top
            phi = np.exp(lf - shift)
        KV += phi.T @ VW[start:stop]

    out = np.empty((n_q, d_v))
    for start in range(0, n_q, block):
        stop = min(n_q, start + block)
        lf = _log_features(Xq[start:stop], W)
        with np.errstate(under="ignore"):
            phi = np.exp(lf - lf.max(axis=1, keepdims=True))
        num = phi @ KV
        den = num[:, d_v]
        if not (den > 0).all():
            raise NumericalError(
                "random_features: a row sum underflowed to 0 (query and key features share no support); "
                "the inputs are too large for positive random features"
            )
        out[start:stop] = num[:, :d_v] / den[:, None]
    return LogArray.from_float(out)


def random_features_oracle(
    Q, K, V, *, scale: float | None = None, log_eps: float | None = None, rank: int = 256, seed: int = 0
) -> OracleAnswer:
    """The ``"random_features"`` oracle: :func:`random_features` with rank 256; it certifies nothing.

    The estimate is unbiased but has no deterministic error bound, so the answer carries the ``"none"``
    certificate (:data:`~finegrained.attention.protocol.UNCERTIFIED`). ``log_eps`` is accepted and ignored.
    """
    out = random_features(Q, K, V, rank=rank, seed=seed, scale=scale)
    return OracleAnswer(out, UNCERTIFIED, info={"rank": int(rank), "seed": int(seed)})
