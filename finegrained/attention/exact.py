"""Exact softmax attention in log space, tiled over query blocks.

This is a general attention solver: it knows nothing about the reductions that call it. It computes

.. math::  T = D^{-1} A V, \\qquad A = \\exp(s\\, Q K^\\top), \\qquad D = \\operatorname{diag}(A \\mathbf 1),

the quantity of Definition 1.2 (AAttC) of Alman & Song, exactly up to float64 rounding, and returns it as a
signed log-space array, because entries of ``T`` can be far below the float64 range (``exp(-10**4)`` in the
reduction of Lemma 4.7).

Algorithm
---------
Columns of ``V`` are scaled around 1 (scales kept as logs). Write ``V = V^+ - V^-`` and
``W = [V^+ | V^- | 1]`` (non-negative). Identical keys are merged (their rows of ``W`` add up, so the last
column counts them) and identical queries are computed once; both are exact identities. Keys are grouped by which
columns of ``W`` they support, so that inside a group every numerator has a term at the group's maximum score.
For each block of query rows and each group ``g``:

1. ``S_g = s Q_b K_g^T`` (one float64 BLAS product for all groups) and the row maxima ``m_g``;
2. ``E_g = exp(S_g - m_g)`` in place, and ``P_g = E_g W_g`` (a second, thin BLAS product) gives the numerators
   and the row sums relative to ``exp(m_g)``;
3. groups are combined by log-sum-exp.

An entry of ``E_g`` below ``exp(CUT)``, or a product ``E W`` below the smallest subnormal, may have lost
precision, so a numerator is known only to within a computable bound. Numerators not at least ``2**60`` times
that bound are recomputed exactly by a log-sum-exp over their column's support. Finally ``V^+`` and ``V^-`` parts
that cancel to fewer than about 8 digits are recomputed in multiprecision (:func:`_fix_cancellation`).

Memory is ``O((n_q + n_k) d + n_k d_v + block * n_k)``: the ``n_q x n_k`` matrix is never built.
"""

from __future__ import annotations

import numpy as np

from instances.errors import NumericalError, ParameterError, ResourceLimitError
from instances.logspace import LOG_HUGE, LOG_TINY, LogArray, log_add

#: exp(CUT) is safely inside the normal float64 range (smallest normal is about exp(-708.4)).
CUT = -700.0
#: log(2**60): a numerator this many nats above its underflow bound is exact to float64 precision.
_SAFE_NATS = 60 * float(np.log(2.0))
#: Default size of the score tile of one query block.
DEFAULT_TILE_BYTES = 16 * 2**20
#: Minimum rows per block, so that the score product stays an efficient matrix-matrix product.
MIN_BLOCK_ROWS = 32
#: log of the smallest positive subnormal float64, 2^-1074.
_LOG_SUBNORMAL = -1074 * float(np.log(2.0))
#: Outputs this many nats below their larger part are recomputed in multiprecision (about 8 digits lost).
CANCEL_NATS = 18.0
#: Most decimal digits the cancellation fix-up works with.
MAX_DPS = 1600
#: More distinct support patterns than this and the keys form a single group.
MAX_GROUPS = 8


def _as_matrix(name: str, x) -> tuple[np.ndarray, float]:
    """The matrix as float64 and its largest absolute entry (one pass: NaN and inf propagate into the max)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ParameterError(f"{name} must be a 2-D matrix, got an array of shape {arr.shape}")
    top = float(np.abs(arr).max(initial=0.0))
    if not np.isfinite(top):
        raise NumericalError(f"{name} contains NaN or infinite entries")
    return arr, top


def check_attention_inputs(Q, K, V, scale: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Validate shapes and finiteness of an attention call and resolve the default ``scale = 1/d``.

    Returns float64 versions of Q, K, V and the scale. Raises :class:`~instances.errors.ParameterError` on
    inconsistent shapes and :class:`~instances.errors.NumericalError` on NaN/inf entries or if a score could
    overflow float64.
    """
    (Q, qmax), (K, kmax), (V, _) = _as_matrix("Q", Q), _as_matrix("K", K), _as_matrix("V", V)
    if Q.shape[1] != K.shape[1]:
        raise ParameterError(f"Q has {Q.shape[1]} columns but K has {K.shape[1]}; they must share dimension d")
    if V.shape[0] != K.shape[0]:
        raise ParameterError(f"V has {V.shape[0]} rows but K has {K.shape[0]}; V needs one row per key")
    if K.shape[0] == 0:
        raise ParameterError("attention needs at least one key (K has 0 rows): the normaliser D would be 0")
    d = Q.shape[1]
    if scale is None:
        scale = 1.0 / d if d > 0 else 1.0
    scale = float(scale)
    if not np.isfinite(scale):
        raise ParameterError(f"scale must be finite, got {scale}")
    # A bound on every |score|: if its log is below LOG_HUGE the product cannot overflow.
    if qmax > 0 and scale != 0 and np.log(qmax) + np.log(abs(scale)) > LOG_HUGE - 1:
        raise NumericalError(f"scale * Q overflows float64 (|scale| = {abs(scale):.3g}, max|Q| = {qmax:.3g})")
    if qmax > 0 and kmax > 0 and scale != 0:
        log_bound = np.log(qmax) + np.log(kmax) + np.log(max(d, 1)) + np.log(abs(scale))
        if log_bound > LOG_HUGE - 1:
            raise NumericalError(
                f"scores s*<q,k> may reach exp({log_bound:.1f}) and overflow float64; rescale the inputs"
            )
    return Q, K, V, scale


def _key_groups(W: np.ndarray) -> tuple[np.ndarray, list[slice]]:
    """A key permutation and contiguous slices grouping keys by the support pattern of their row of ``W``."""
    support = W[:, :-1] > 0
    if support.shape[1] <= 62:
        codes = support.astype(np.int64) @ (np.int64(1) << np.arange(support.shape[1], dtype=np.int64))
        _, labels = np.unique(codes, return_inverse=True)
    else:
        _, labels = np.unique(np.packbits(support, axis=1), axis=0, return_inverse=True)
    labels = labels.ravel()
    if labels.max(initial=0) + 1 > MAX_GROUPS:
        return np.arange(W.shape[0]), [slice(0, W.shape[0])]
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    edges = [0, *bounds.tolist(), W.shape[0]]
    return order, [slice(a, b) for a, b in zip(edges, edges[1:])]


def distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of one representative per distinct row of ``X``, and each row's representative (as a position
    in that list), so that ``X[reps][inverse] == X`` exactly.

    Rows are bucketed by a fixed random projection computed row by row (identical rows give bit-identical sums),
    and membership in a bucket is then verified entry by entry, so unequal rows are never merged.

    Examples
    --------
    >>> reps, inverse = distinct_rows(np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]]))
    >>> reps.tolist(), inverse.tolist()
    ([0, 1], [0, 1, 0])
    """
    n = X.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    weights = np.random.default_rng(20230226).uniform(1.0, 2.0, X.shape[1])
    h = (X * weights).sum(axis=1)
    order = np.argsort(h, kind="stable")
    starts = np.r_[True, h[order][1:] != h[order][:-1]]
    first = order[np.maximum.accumulate(np.where(starts, np.arange(n), 0))]
    candidate = np.empty(n, dtype=np.int64)
    candidate[order] = first
    same = (X == X[candidate]).all(axis=1)
    rep_of = np.where(same, candidate, np.arange(n))  # a hash collision keeps its own row
    reps, inverse = np.unique(rep_of, return_inverse=True)
    return reps, inverse.ravel()


def exact(
    Q, K, V, *, scale: float | None = None, tile_bytes: int = DEFAULT_TILE_BYTES, dedupe: bool = True
) -> LogArray:
    """Exact attention ``D^{-1} exp(scale Q K^T) V`` returned in signed log space.

    Parameters
    ----------
    Q : array_like, shape (n_q, d)
    K : array_like, shape (n_k, d)
    V : array_like, shape (n_k, d_v)
    scale : float, optional
        Multiplies every score; defaults to ``1/d`` as in Alman & Song (PyTorch's default is ``1/sqrt(d)``).
    tile_bytes : int
        Target size of one block's score tile; bounds the working memory of the call.
    dedupe : bool
        Merge identical keys (their rows of ``V`` add up, and the row sums count them) and compute identical
        queries once. Both are exact identities of softmax attention; they cost ``O((n_q + n_k) d)`` and pay off
        on structured inputs such as the padding blocks of Lemma 4.7.

    Returns
    -------
    LogArray, shape (n_q, d_v)
        ``sign`` and ``log|.|`` of every output entry.

    Examples
    --------
    >>> Q = np.array([[1.0, 0.0], [0.0, 1.0]]); K = Q.copy(); V = np.array([[1.0], [-1.0]])
    >>> out = exact(Q, K, V, scale=1.0)
    >>> np.round(out.to_float().ravel(), 6).tolist()  # (e - 1)/(e + 1) and its negative
    [0.462117, -0.462117]
    """
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    d_v = V.shape[1]
    c = 2 * d_v  # numerator columns; column c of W counts keys, for the row sums
    K_all, V_all = K, V  # the multiprecision fix-up needs the keys unmerged
    # Columns of V scaled around 1 (the scale is kept as a log): merged sums of huge values cannot overflow,
    # and subnormal values become normal.
    V, log_v_scale = _scaled_columns(V)
    # Non-negative parts, merged separately: sums of them never cancel; cancellation between the parts is
    # caught afterwards and resolved in multiprecision from the unmerged keys.
    W = np.concatenate([np.maximum(V, 0.0), np.maximum(-V, 0.0), np.ones((K.shape[0], 1))], axis=1)
    q_inverse = None
    if dedupe:
        key_reps, key_inverse = distinct_rows(K)
        if key_reps.size < K.shape[0]:
            merged = np.zeros((key_reps.size, W.shape[1]))
            np.add.at(merged, key_inverse, W)
            K, W = K[key_reps], merged
        q_reps, q_inverse = distinct_rows(Q)
        if q_reps.size < Q.shape[0]:
            Q = Q[q_reps]
        else:
            q_inverse = None
    log_col_scale = np.concatenate([log_v_scale, log_v_scale, [0.0]])
    n_q, n_k = Q.shape[0], K.shape[0]
    order, groups = _key_groups(W)
    W = np.ascontiguousarray(W[order])
    KT = np.ascontiguousarray(K[order].T)
    Qs = Q * scale
    with np.errstate(divide="ignore"):
        log_wmax = [np.log(W[g].max(axis=0)) for g in groups]

    log_num = np.empty((n_q, c))
    log_den = np.empty(n_q)
    rows = int(min(max(n_q, 1), max(MIN_BLOCK_ROWS, tile_bytes // (8 * n_k))))
    S = np.empty((rows, n_k))
    for start in range(0, n_q, rows):
        stop = min(n_q, start + rows)
        blk = S[: stop - start]
        np.matmul(Qs[start:stop], KT, out=blk)
        parts_num, parts_den = [], []
        for g, lw in zip(groups, log_wmax):
            sg = blk[:, g]
            m = sg.max(axis=1)
            np.subtract(sg, m[:, None], out=sg)
            with np.errstate(under="ignore"):
                np.exp(sg, out=sg)
            P = sg @ W[g]
            with np.errstate(divide="ignore"):
                lp = np.log(P)
            # Terms below exp(CUT) may have underflowed: flag numerators they could have changed.
            # So may products E * W below the smallest subnormal (absolute error up to 2^-1074 per term).
            unsafe = lp[:, :c] < np.maximum(CUT + lw[:c], _LOG_SUBNORMAL) + np.log(g.stop - g.start) + _SAFE_NATS
            if unsafe.any():
                _recompute(lp, unsafe, Qs[start:stop], KT[:, g], W[g], m)
            parts_num.append(lp[:, :c] + m[:, None])
            parts_den.append(lp[:, c] + m)
        log_num[start:stop] = _lse_stack(parts_num)
        log_den[start:stop] = _lse_stack(parts_den)

    log_num += log_col_scale[:c]
    log_den += log_col_scale[c]
    pos = LogArray(np.where(np.isneginf(log_num[:, :d_v]), 0, 1), log_num[:, :d_v])
    neg = LogArray(np.where(np.isneginf(log_num[:, d_v:]), 0, -1), log_num[:, d_v:])
    out = log_add(pos, neg)
    out = LogArray(out.sign, np.where(out.sign == 0, -np.inf, out.log_abs - log_den[:, None]))
    out = _fix_cancellation(out, pos, neg, log_den, Q, K_all, V_all, scale)
    if q_inverse is not None:
        out = out[q_inverse]
    return out


def _fix_cancellation(out: LogArray, pos: LogArray, neg: LogArray, log_den: np.ndarray, Q, K, V, scale) -> LogArray:
    """Recompute in multiprecision the entries whose positive and negative parts cancel.

    ``P - N`` computed from ``P`` and ``N`` keeps about ``16 - (c + ln|log P|)/ln 10`` digits when it is ``e^c``
    times smaller than ``max(P, N)`` (the logs themselves carry relative error 2^-52). Entries that would keep
    fewer than about 8 digits, or that came out exactly zero, are recomputed with :func:`.reference.reference`,
    doubling the digits until each result stands clear of the working precision (a zero that persists at
    ``MAX_DPS`` digits is taken as exact); if that would be too much work, a :class:`NumericalError` says so.
    """
    both = (pos.sign != 0) & (neg.sign != 0)
    if not both.any():
        return out
    top = np.maximum(pos.log_abs, neg.log_abs)
    with np.errstate(invalid="ignore"):  # entries with both parts zero give -inf - -inf; they are not flagged
        cancelled = np.where(out.sign == 0, np.inf, top - (out.log_abs + log_den[:, None]))
    # A stored log L is exact only to about |L| * 2^-52 nats, so large logs leave less room for cancellation.
    allowed = CANCEL_NATS - np.log(np.maximum(1.0, np.where(np.isfinite(top), np.abs(top), 1.0)))
    flagged = both & (cancelled > allowed)
    if not flagged.any():
        return out
    from .reference import reference  # imported here: reference builds on this module

    rows, cols = np.flatnonzero(flagged.any(axis=1)), np.flatnonzero(flagged.any(axis=0))
    sub = flagged[np.ix_(rows, cols)]
    # How deep the true cancellation goes is unknown (nearly equal scores cancel arbitrarily well), so the
    # precision adapts: an entry counts as resolved once it stands clear of the working precision relative to
    # the parts that cancelled; otherwise the digits double, up to MAX_DPS, where a zero is taken as exact.
    part = top[np.ix_(rows, cols)] - log_den[rows, None]  # log of the larger part, relative to the output
    dps = 50
    while True:
        try:
            fixed = reference(Q[rows], K, V[:, cols], scale=scale, dps=dps)
        except ResourceLimitError:
            raise NumericalError(
                f"{int(flagged.sum())} output entries cancel to fewer than 8 significant digits (positive and "
                "negative parts of V nearly balance) and are too many to recompute in multiprecision; use "
                "finegrained.attention.reference on those rows"
            ) from None
        resolved = fixed.log_abs > part - (dps - 20) * np.log(10)
        if (resolved | ~sub).all() or dps >= MAX_DPS:
            break
        dps *= 2
    sign, log_abs = out.sign.copy(), out.log_abs.copy()
    rr, cc = np.nonzero(sub)
    sign[rows[rr], cols[cc]] = fixed.sign[rr, cc]
    log_abs[rows[rr], cols[cc]] = fixed.log_abs[rr, cc]
    return LogArray(sign, log_abs)


def _scaled_columns(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``V`` with every non-zero column divided by the geometric middle of its non-zero magnitudes, and the logs.

    Scaled entries then lie in ``[e^{-r/2}, e^{r/2}]`` for a column spanning ``e^r``: sums of up to ``n`` of them
    stay finite and every entry stays a normal float as long as ``r/2 + log n`` is below the float64 range. Wider
    columns are refused with a :class:`NumericalError`.
    """
    A = np.abs(V)
    n = max(V.shape[0], 1)
    with np.errstate(divide="ignore"):
        logs = np.log(A)
    hi = np.max(logs, axis=0, initial=-np.inf)
    lo = np.min(np.where(A > 0, logs, np.inf), axis=0, initial=np.inf)
    nonzero = np.isfinite(hi)
    half = np.where(nonzero, (hi - lo) / 2, 0.0)
    limit = min(-LOG_TINY, LOG_HUGE) - np.log(n) - 2
    if (half > limit).any():
        raise NumericalError(
            f"a column of V has non-zero magnitudes spanning e^{2 * half.max():.0f}; the exact oracle handles at "
            f"most e^{2 * limit:.0f} here (use finegrained.attention.reference)"
        )
    with np.errstate(invalid="ignore"):  # all-zero columns give -inf + inf; they keep scale 1
        log_scale = np.where(nonzero, (hi + lo) / 2, 0.0)
    return V / np.exp(log_scale), log_scale


def _recompute(lp: np.ndarray, unsafe: np.ndarray, Qs: np.ndarray, KT: np.ndarray, W: np.ndarray, m: np.ndarray):
    """Exact log-sum-exp for the flagged (row, column) numerators of one group, relative to the row maxima."""
    for col in np.flatnonzero(unsafe.any(axis=0)):
        support = np.flatnonzero(W[:, col] > 0)
        if support.size == 0:
            continue  # an all-zero column: -inf is exact
        r = np.flatnonzero(unsafe[:, col])
        with np.errstate(divide="ignore"):
            t = Qs[r] @ KT[:, support] - m[r, None] + np.log(W[support, col])
        tm = t.max(axis=1)
        lp[r, col] = tm + np.log(np.exp(t - tm[:, None]).sum(axis=1))


def _lse_stack(parts: list[np.ndarray]) -> np.ndarray:
    """Elementwise log-sum-exp of same-shaped arrays (``-inf`` entries allowed)."""
    if len(parts) == 1:
        return parts[0]
    stacked = np.stack(parts)
    top = stacked.max(axis=0)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", under="ignore"):
        return np.log(np.exp(stacked - safe).sum(axis=0)) + safe
