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

1. ``S_g = s Q_b K_g^T`` (one float64 BLAS product per group, over only the coordinates on which some key of
   the group is non-zero: the others add exact zeros; Lemma 4.7's real keys are zero on the padding half, so
   this halves the product) and the row maxima ``m_g``;
2. ``E_g = exp(S_g - m_g)`` in place, and ``P_g = E_g W_g`` (a second, thin BLAS product) gives the numerators
   and the row sums relative to ``exp(m_g)``;
3. groups are combined by log-sum-exp.

An entry of ``E_g`` below ``exp(CUT)``, or a product ``E W`` below the smallest subnormal, may have lost
precision, so a numerator is known only to within a computable bound. Numerators not at least ``2**60`` times
that bound are recomputed exactly by a log-sum-exp over their column's support. Finally ``V^+`` and ``V^-`` parts
that cancel to fewer than about 8 digits are recomputed in multiprecision (:func:`_fix_cancellation`).

Memory is ``O((n_q + n_k) d + n_k d_v + block * n_k)``: the ``n_q x n_k`` matrix is never built. The block
height is the candidate with the best float64 GEMM rate measured in this process (:func:`block_rows`) among
those whose tile fits ``tile_bytes``.

The steps are exposed (:func:`prepare`, :func:`group_part`, :func:`merge_parts`, :func:`finish`) so that the
Dask backend (:mod:`.dask_backend`) and the torch backend (:mod:`.torch_backend`) run the same algorithm and
carry the same certificate.
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import dataclass

import numpy as np

from instances.errors import NumericalError, ParameterError, ResourceLimitError
from instances.logspace import LOG_HUGE, LOG_TINY, LogArray, log_add

from .protocol import Certificate, OracleAnswer, check_attention_inputs

#: exp(CUT) is safely inside the normal float64 range (smallest normal is about exp(-708.4)).
CUT = -700.0
#: log(2**60): a numerator this many nats above its underflow bound is exact to float64 precision.
_SAFE_NATS = 60 * float(np.log(2.0))
#: Default size of the score tile of one query block.
DEFAULT_TILE_BYTES = 64 * 2**20
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
    Q, K, V, *, scale: float | None = None, tile_bytes: int = DEFAULT_TILE_BYTES, dedupe: bool = True,
    backend: str = "local", client=None, progress: bool = False,
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
    backend : {"local", "dask"}
        ``"dask"`` runs the query blocks as Dask tasks (:mod:`.dask_backend`; extra ``parallel``), with the
        same preparation, kernel, certificate and decisions as ``"local"``.
    client : distributed.Client or str, optional
        For ``backend="dask"``: a client, a scheduler address, or None for a LocalCluster with one worker per
        core, started for the call.
    progress : bool
        For ``backend="dask"``: show Dask's progress bar.

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
    return _run(Q, K, V, scale=scale, tile_bytes=tile_bytes, dedupe=dedupe, backend=backend, client=client,
                progress=progress)[0]


BACKENDS = ("local", "dask")
#: Backends implemented in other modules: name -> module with ``exact_dask``-style entry point.
_REMOTE_BACKENDS = {"dask": "finegrained.attention.dask_backend"}


def _run(Q, K, V, *, scale, tile_bytes, dedupe, backend, client, progress) -> tuple[LogArray, np.ndarray | None,
                                                                                    dict]:
    """Dispatch to the local loop or the Dask backend; returns output, bound and run info."""
    if backend == "local":
        if client is not None:
            raise ParameterError("client= is for backend='dask'")
        out, bound = _exact(Q, K, V, scale=scale, tile_bytes=tile_bytes, dedupe=dedupe)
        return out, bound, {"backend": "local", "workers": 1}
    if backend in _REMOTE_BACKENDS:
        # Looked up by name, like the benchmarks: the backend module builds on this one, not the reverse, and
        # its optional dependency (dask.distributed) is imported only when it is asked for.
        mod = importlib.import_module(_REMOTE_BACKENDS[backend])
        return mod.exact_dask(Q, K, V, scale=scale, client=client, tile_bytes=tile_bytes, dedupe=dedupe,
                              progress=progress)
    raise ParameterError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def _exact(Q, K, V, *, scale: float | None, tile_bytes: int, dedupe: bool) -> tuple[LogArray, np.ndarray | None]:
    """:func:`exact` and, per output entry, the log of its proven error bound in nats (None: not certifiable)."""
    prep = prepare(Q, K, V, scale=scale, dedupe=dedupe)
    rows = block_rows(prep, tile_bytes)
    log_num = np.empty((prep.n_q, prep.c))
    log_den = np.empty(prep.n_q)
    for start in range(0, prep.n_q, rows):
        stop = min(prep.n_q, start + rows)
        parts = [group_part(prep.Qs[start:stop], g) for g in prep.groups]
        log_num[start:stop], log_den[start:stop] = merge_parts(parts)
    return finish(prep, log_num, log_den)


@dataclass(frozen=True)
class KeyGroup:
    """The keys of one support pattern of ``W`` (module docstring), ready for the tiled products.

    ``KT`` holds only the coordinates ``cols`` on which some key of the group is non-zero (``None``: all of
    them): the others contribute exact zeros to every score, so skipping them changes no score beyond float64
    rounding of a shorter dot product, and halves the product on Lemma 4.7's instances, whose real keys are zero
    on the padding half.
    """

    KT: np.ndarray  # (|cols|, n_g), contiguous
    W: np.ndarray  # (n_g, c + 1), contiguous
    cols: np.ndarray | None
    log_wmax: np.ndarray  # (c + 1,)
    c: int

    @property
    def size(self) -> int:
        return self.W.shape[0]


@dataclass(frozen=True)
class Prepared:
    """Everything :func:`exact` derives from ``Q, K, V`` before the query blocks run (see :func:`prepare`)."""

    Qs: np.ndarray  # distinct queries times the scale
    Q: np.ndarray  # distinct queries (for the multiprecision fix-up)
    K_all: np.ndarray
    V_all: np.ndarray
    scale: float
    q_inverse: np.ndarray | None
    log_col_scale: np.ndarray
    groups: list[KeyGroup]
    KT: np.ndarray  # all distinct keys, transposed (for the error bound)
    d_v: int

    @property
    def n_q(self) -> int:
        return self.Qs.shape[0]

    @property
    def c(self) -> int:
        return 2 * self.d_v

    @property
    def n_k(self) -> int:
        return self.KT.shape[1]

    def work(self) -> int:
        """Multiply-adds of the score products (after skipping zero columns): ``sum_g n_q |cols_g| n_g``."""
        return sum(self.n_q * g.KT.shape[0] * g.size for g in self.groups)


def prepare(Q, K, V, *, scale: float | None = None, dedupe: bool = True) -> Prepared:
    """Validate the inputs and build the key groups of :func:`exact` (scaling, merging, grouping, column skips).

    Exposed so that other backends (:mod:`.dask_backend`, :mod:`.torch_backend`) run exactly the same
    preparation, then the same per-block kernel :func:`group_part` and the same :func:`finish`.
    """
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    d_v = V.shape[1]
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
    order, slices = _key_groups(W)
    W = W[order]
    K = K[order]
    groups = []
    for g in slices:
        Kg = K[g]
        nz = np.flatnonzero((Kg != 0).any(axis=0))
        cols = None if nz.size == K.shape[1] else nz
        KTg = np.ascontiguousarray((Kg if cols is None else Kg[:, cols]).T)
        Wg = np.ascontiguousarray(W[g])
        with np.errstate(divide="ignore"):
            lw = np.log(Wg.max(axis=0))
        groups.append(KeyGroup(KTg, Wg, cols, lw, 2 * d_v))
    return Prepared(Q * scale, Q, K_all, V_all, scale, q_inverse, log_col_scale, groups,
                    np.ascontiguousarray(K.T), d_v)


def group_part(Qs: np.ndarray, g: KeyGroup) -> tuple[np.ndarray, np.ndarray]:
    """Log numerators ``(rows, c)`` and log row sums ``(rows,)`` of one block of scaled queries against one group.

    Steps 1-2 of the module docstring: one BLAS product for the scores, the row maximum subtracted, ``exp`` in
    place, and a thin BLAS product with ``W``; numerators that underflow could have touched are recomputed by an
    exact log-sum-exp over their column's support.
    """
    c = g.c
    Qb = Qs if g.cols is None else Qs[:, g.cols]
    S = Qb @ g.KT
    m = S.max(axis=1)
    np.subtract(S, m[:, None], out=S)
    with np.errstate(under="ignore"):
        np.exp(S, out=S)
    P = S @ g.W
    with np.errstate(divide="ignore"):
        lp = np.log(P)
    # Terms below exp(CUT) may have underflowed: flag numerators they could have changed.
    # So may products E * W below the smallest subnormal (absolute error up to 2^-1074 per term).
    unsafe = lp[:, :c] < np.maximum(CUT + g.log_wmax[:c], _LOG_SUBNORMAL) + np.log(g.size) + _SAFE_NATS
    if unsafe.any():
        _recompute(lp, unsafe, Qb, g.KT, g.W, m)
    return lp[:, :c] + m[:, None], lp[:, c] + m


def merge_parts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Combine the groups' parts of one query block by log-sum-exp (step 3), always in group order."""
    return _lse_stack([p[0] for p in parts]), _lse_stack([p[1] for p in parts])


def finish(prep: Prepared, log_num: np.ndarray, log_den: np.ndarray) -> tuple[LogArray, np.ndarray | None]:
    """Signed outputs from the merged logs, the error bound, the cancellation fix-up and the query expansion."""
    d_v, c = prep.d_v, prep.c
    log_num = log_num + prep.log_col_scale[:c]
    log_den = log_den + prep.log_col_scale[c]
    pos = LogArray(np.where(np.isneginf(log_num[:, :d_v]), 0, 1), log_num[:, :d_v])
    neg = LogArray(np.where(np.isneginf(log_num[:, d_v:]), 0, -1), log_num[:, d_v:])
    out = log_add(pos, neg)
    out = LogArray(out.sign, np.where(out.sign == 0, -np.inf, out.log_abs - log_den[:, None]))
    # The merged sums add up to n_k (unmerged) values per row of W, so the bound counts the unmerged keys.
    bound = _error_nats(out, pos, neg, log_den, prep.Qs, prep.KT, prep.K_all.shape[0])
    fixed, fixed_bound = _fix_cancellation(out, pos, neg, log_den, prep.Q, prep.K_all, prep.V_all, prep.scale)
    changed = ~np.isnan(fixed_bound)
    out = fixed
    if changed.any():
        # Recomputed entries carry the multiprecision reference's own certified bound (inf where it proves none:
        # an unresolved cancellation, or a zero that persisted at MAX_DPS digits).
        bound = np.where(changed, fixed_bound, bound)
        if not np.isfinite(bound).all():
            bound = None
    if prep.q_inverse is not None:
        out = out[prep.q_inverse]
        bound = None if bound is None else bound[prep.q_inverse]
    return out, bound


#: Candidate rows per query block; the fastest by measured GEMM rate (within the tile budget) is used.
BLOCK_ROW_CANDIDATES = (64, 128, 256, 512, 1024)
#: Below this many multiply-adds a call is too short to be worth measuring the GEMM rate.
CALIBRATE_WORK = 10**10
#: Measured float64 GEMM rates (multiply-adds per second), per (rows, inner dimension bucket); per process.
_GEMM_RATES: dict[tuple[int, int], float] = {}


def gemm_rate(rows: int, inner: int, cols: int = 1024, *, repeats: int = 2) -> float:
    """Measured float64 multiply-adds per second of ``(rows x inner) @ (inner x cols)``, cached per process.

    The inner dimension is bucketed to a multiple of 64 (at most 2048) so that a handful of measurements serve
    every call; the best of ``repeats`` runs is kept, because other processes share the cores.
    """
    key = (int(rows), min(2048, max(64, -(-int(inner) // 64) * 64)))
    if key not in _GEMM_RATES:
        a = np.full((key[0], key[1]), 0.5)
        b = np.full((key[1], cols), 0.25)
        out = np.empty((key[0], cols))
        best = math.inf
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - t0)
        _GEMM_RATES[key] = key[0] * key[1] * cols / max(best, 1e-9)
    return _GEMM_RATES[key]


def block_rows(prep: Prepared, tile_bytes: int) -> int:
    """Rows per query block: the candidate with the best measured GEMM rate whose score tile fits ``tile_bytes``.

    Small calls (under :data:`CALIBRATE_WORK` multiply-adds) skip the measurement and take the largest block
    that fits. The choice never changes a decision: every query row's output is computed the same way whatever
    block it falls in, up to the rounding the certificate bounds.
    """
    n_q = max(prep.n_q, 1)
    widest = max((g.size for g in prep.groups), default=1)
    fit = max(MIN_BLOCK_ROWS, int(tile_bytes) // (8 * widest))
    fitting = [r for r in BLOCK_ROW_CANDIDATES if r <= fit] or [MIN_BLOCK_ROWS]
    if prep.work() < CALIBRATE_WORK or len(fitting) == 1:
        return int(min(n_q, fit))
    inner = max((g.KT.shape[0] for g in prep.groups), default=1)
    rates = {r: gemm_rate(r, inner) for r in fitting}
    best = max(rates.values())
    # Ties (within 10 %, i.e. measurement noise) go to the larger block: fewer Python-level steps.
    return int(min(n_q, max(r for r, v in rates.items() if v >= 0.9 * best)))


#: Unit roundoff of float64.
_U = 2.0**-53
#: Error bound (nats) claimed for entries recomputed in multiprecision by the cancellation fix-up.
RECOMPUTED_NATS = 1e-12


def _gamma(m: float) -> float:
    """Higham's ``gamma_m = m u / (1 - m u)``: the relative error bound of an ``m``-term float64 sum or product."""
    if m * _U >= 0.5:
        return math.inf
    return m * _U / (1 - m * _U)


def _error_nats(out: LogArray, pos: LogArray, neg: LogArray, log_den: np.ndarray, Qs: np.ndarray,
                KT: np.ndarray, n_k: int) -> np.ndarray:
    """A priori bound, in nats, on ``|log|T~| - log|T||`` per entry (standard model of float arithmetic).

    * every score ``s <q, k>`` is computed with absolute error ``<= gamma_{d+1} |s| ||q|| ||k||`` (the scaling
      of ``Q`` and a ``d``-term dot product, in any summation order);
    * ``exp`` and the subtraction of the row maximum add ``<= 4 u S`` with ``S`` the largest score magnitude;
    * each non-negative sum of at most ``n_k`` terms (merged values, then ``E W``) has relative error
      ``<= gamma_{2 n_k + d + 16}``, and a stored log ``L`` carries ``u |L|``; the underflow cut-off keeps dropped
      mass below ``2^-60`` of what is kept;
    * numerator and denominator each carry that bound ``delta``; where ``V`` has both signs, the difference
      ``P - N`` amplifies the parts' relative error ``e^delta - 1`` by ``kappa = (P + N) / |P - N|``.

    The result is doubled as a margin for anything the model leaves out (e.g. a 1-ulp ``exp``).
    """
    d = Qs.shape[1]
    # ||q|| ||k|| <= d max|q| max|k|, which the input check keeps below the float64 range (squaring first could
    # overflow for entries near 1e154 and beyond)
    smax = float(np.abs(Qs).max(initial=0.0)) * float(np.abs(KT).max(initial=0.0)) * max(d, 1)
    delta = _gamma(d + 1) * smax + 4 * _U * smax + math.log1p(_gamma(2 * n_k + d + 16)) + 2.0**-60
    top = np.maximum(pos.log_abs, neg.log_abs)
    log_mag = np.where(np.isfinite(top), np.abs(top), 0.0) + np.abs(log_den)[:, None]
    delta_part = delta + _U * (log_mag + smax + 2000.0)
    with np.errstate(over="ignore"):  # a bound beyond e^709 is inf: that entry is then not certified
        rho = np.expm1(delta_part)
    with np.errstate(invalid="ignore", over="ignore"):
        log_sum = np.logaddexp(pos.log_abs, neg.log_abs)  # log(P + N), relative to exp(log_den)
        kappa_log = np.where(out.sign == 0, np.inf, log_sum - (out.log_abs + log_den[:, None]))
        kappa_log = np.where((pos.sign == 0) | (neg.sign == 0), 0.0, kappa_log)
        rel = rho * np.exp(np.minimum(kappa_log, 700.0))
        num = np.where(rel < 0.5, -np.log1p(-np.minimum(rel, 0.5)), np.inf)
    total = 2 * (num + delta_part)
    return np.where(out.sign == 0, np.where(np.isinf(kappa_log) & ((pos.sign != 0) | (neg.sign != 0)), np.inf, 0.0),
                    total)


def exact_oracle(Q, K, V, *, scale: float | None = None, log_eps: float | None = None,
                 tile_bytes: int = DEFAULT_TILE_BYTES, dedupe: bool = True, backend: str = "local", client=None,
                 progress: bool = False) -> OracleAnswer:
    """The ``"exact"`` oracle: :func:`exact` with its proven error bound as a ``"log"`` certificate.

    ``log_eps`` is accepted and ignored: the oracle's accuracy is fixed by float64, and the certificate says
    what it is. Entries whose bound cannot be proved (an infinite bound after catastrophic cancellation) make the
    certificate ``"none"``. ``backend``, ``client`` and ``progress`` are those of :func:`exact`; the answer's
    ``info`` names the backend and the number of workers.

    Examples
    --------
    >>> ans = exact_oracle(np.eye(2), np.eye(2), np.array([[1.0], [0.0]]), scale=1.0)
    >>> ans.certificate.kind, bool(ans.certificate.worst_log_bound < -25)
    ('log', True)
    """
    out, bound, info = _run(Q, K, V, scale=scale, tile_bytes=tile_bytes, dedupe=dedupe, backend=backend,
                            client=client, progress=progress)
    return answer_with_bound(out, bound, info)


def answer_with_bound(out: LogArray, bound: np.ndarray | None, info: dict | None = None) -> OracleAnswer:
    """The :class:`OracleAnswer` of the exact oracle's output and its per-entry bound in nats (None: none)."""
    info = dict(info or {})
    if bound is None or not np.isfinite(bound).all():
        return OracleAnswer(out, Certificate("none", detail="cancellation beyond what the float analysis bounds"),
                            info=info)
    with np.errstate(divide="ignore"):
        log_bound = np.log(bound)
    return OracleAnswer(out, Certificate("log", log_bound, detail="a priori float64 error analysis of the tiled "
                                         "log-sum-exp (finegrained.attention.exact._error_nats)"), info=info)


def _fix_cancellation(out: LogArray, pos: LogArray, neg: LogArray, log_den: np.ndarray, Q, K, V,
                      scale) -> tuple[LogArray, np.ndarray]:
    """Recompute in multiprecision the entries whose positive and negative parts cancel.

    Returns the output and, per entry, the error bound (nats) of a recomputed entry (NaN where nothing was
    recomputed; inf where the recomputation proves nothing), from :func:`.reference.reference_oracle`'s own
    certificate at the digits finally used — so a cancellation that even those digits cannot resolve (scores far
    larger than ``10^dps`` times the cancelled value) is never certified.

    ``P - N`` computed from ``P`` and ``N`` keeps about ``16 - (c + ln|log P|)/ln 10`` digits when it is ``e^c``
    times smaller than ``max(P, N)`` (the logs themselves carry relative error 2^-52). Entries that would keep
    fewer than about 8 digits, or that came out exactly zero, are recomputed with :func:`.reference.reference`,
    doubling the digits until each result stands clear of the working precision (a zero that persists at
    ``MAX_DPS`` digits is taken as exact); if that would be too much work, a :class:`NumericalError` says so.
    """
    none = np.full(out.shape, np.nan)
    both = (pos.sign != 0) & (neg.sign != 0)
    if not both.any():
        return out, none
    top = np.maximum(pos.log_abs, neg.log_abs)
    with np.errstate(invalid="ignore"):  # entries with both parts zero give -inf - -inf; they are not flagged
        cancelled = np.where(out.sign == 0, np.inf, top - (out.log_abs + log_den[:, None]))
    # A stored log L is exact only to about |L| * 2^-52 nats, so large logs leave less room for cancellation.
    allowed = CANCEL_NATS - np.log(np.maximum(1.0, np.where(np.isfinite(top), np.abs(top), 1.0)))
    flagged = both & (cancelled > allowed)
    if not flagged.any():
        return out, none
    from .reference import reference, reference_oracle  # imported here: reference builds on this module

    rows, cols = np.flatnonzero(flagged.any(axis=1)), np.flatnonzero(flagged.any(axis=0))
    sub = flagged[np.ix_(rows, cols)]
    # How deep the true cancellation goes is unknown (nearly equal scores cancel arbitrarily well), so the
    # precision adapts: an entry counts as resolved once it stands clear of the working precision relative to
    # the parts that cancelled; otherwise the digits double, up to MAX_DPS, where a zero is taken as exact.
    part = top[np.ix_(rows, cols)] - log_den[rows, None]  # log of the larger part, relative to the output
    # Scores of size S need about log10(S) digits before any cancellation between them can be seen at all.
    smax = abs(scale) * float(np.abs(Q).max(initial=0.0)) * float(np.abs(K).max(initial=0.0)) * max(Q.shape[1], 1)
    dps = int(min(MAX_DPS, max(50, 40 + np.ceil(np.log10(max(smax, 1.0) * (Q.shape[1] + 2))))))
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
    try:
        answer = reference_oracle(Q[rows], K, V[:, cols], scale=scale, dps=dps)
    except ResourceLimitError:
        raise NumericalError(f"{int(flagged.sum())} output entries cancel and are too many to certify in "
                             "multiprecision; use finegrained.attention.reference on those rows") from None
    fixed = answer.output
    cert = answer.certificate
    sub_bound = (np.broadcast_to(np.exp(np.asarray(cert.log_bound, dtype=np.float64)), fixed.shape)
                 if cert.certified else np.full(fixed.shape, np.inf))
    sub_bound = np.where(resolved, sub_bound, np.inf)
    sign, log_abs = out.sign.copy(), out.log_abs.copy()
    bound = none.copy()
    rr, cc = np.nonzero(sub)
    sign[rows[rr], cols[cc]] = fixed.sign[rr, cc]
    log_abs[rows[rr], cols[cc]] = fixed.log_abs[rr, cc]
    bound[rows[rr], cols[cc]] = sub_bound[rr, cc]
    return LogArray(sign, log_abs), bound


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
