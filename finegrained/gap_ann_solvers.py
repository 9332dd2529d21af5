r"""Direct solvers for Hamming Gap-ANN (Alman & Song, Definition 4.5) and ANN by binary search over ``t``.

Three exact methods decide every row ``a_i``: is ``min_j ||a_i - b_j||_0 < t``?

``popcount``
    Rows packed into ``uint64`` words; ``||a - b||_0 = sum_w popcount(a_w XOR b_w)`` (``numpy.bitwise_count``),
    in row tiles. Cost ``~ n_a n_b (c_1 W + c_0)`` with ``W = ceil(d / 64)``.
``gemm``
    The identity ``||a - b||_0 = |a| + |b| - 2 a.b`` with one BLAS product per row tile, in float32 (every partial
    sum is an integer ``<= d < 2^24``, so float32 is exact), float64 beyond. Cost ``~ n_a n_b (c_1 d + c_0)``.
``ball``
    Lemma 4.7, Case 1: every ``b`` with ``||a_i - b||_0 < t`` lies in the Hamming ball of radius
    ``r = ceil(t) - 1`` around ``a_i``, which has ``V = sum_{k <= r} C(d, k)`` points. ``B`` goes into a hash
    table, and the ``V`` points of each ball are looked up. The hash ``h(x) = XOR_{k : x_k = 1} R_k`` (fixed random
    64-bit ``R_k``) is linear over GF(2), so ``h(a XOR m) = h(a) XOR h(m)``: the ``V`` mask hashes are computed
    once and each query costs ``V`` XORs and table probes. A hit is confirmed by its true distance, so a hash
    collision can never give a wrong answer. When both sides are balanced every distance is even, and odd radii
    are skipped. Cost ``~ n_a V c_1 + n_b d c_0``; refused when ``V > MAX_BALL``.

The cost model (:class:`CostModel`) estimates seconds for each method from ``(n_a, n_b, d, t)`` with constants
calibrated on a 2-core x86-64 machine (numpy 2, OpenBLAS); :meth:`CostModel.calibrate` re-measures them.
``method="auto"`` runs the cheapest estimate.

ANN (Definition 4.2) reduces to Gap-ANN by binary search over the threshold, as the text after Definition 4.5
says; :func:`approximate_nearest_neighbour` does it with ``ceil(log2(d + 1)) + 1`` decider calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from instances.errors import FinegrainedError, ParameterError
from instances.gap_ann import GapANNInstance
from instances.ov import as_binary_matrix
from instances.solutions import GapANNAnswer

METHODS = ("popcount", "gemm", "ball")
#: Largest Hamming ball (number of points per query) the ``ball`` method enumerates.
MAX_BALL = 2**23
#: Entries of one distance tile (rows x n_b); a few tiles of this size stay in the last-level cache's reach.
_TILE = 2**21
#: Largest integer every float32 represents exactly.
_FLOAT32_EXACT = 2**24
#: Fixed seed of the linear hash of the ``ball`` method (the hash is part of the algorithm, not of the input).
_HASH_SEED = 0x5EED_4A77

Decider = Callable[[GapANNInstance], GapANNAnswer]


# ------------------------------------------------------------------------------------------------ cost model
def ball_size(d: int, t: float, *, even_only: bool = False) -> int:
    """Points of the Hamming ball of radius ``ceil(t) - 1`` in ``{0,1}^d`` (only even weights if ``even_only``).

    Examples
    --------
    >>> ball_size(10, 3), ball_size(10, 3, even_only=True)  # 1 + 10 + 45, and 1 + 45
    (56, 46)
    """
    r = min(d, max(-1, math.ceil(t) - 1))
    return sum(math.comb(d, k) for k in range(r + 1) if not (even_only and k % 2))


@dataclass(frozen=True)
class CostModel:
    """Estimated seconds of each direct method (module docstring), with per-operation constants.

    ``popcount``: ``n_a n_b (pop_word W + pop_pair)``; ``gemm``: ``n_a n_b (gemm_dim d + gemm_pair)``;
    ``ball``: ``n_a V ball_probe + n_b d ball_hash`` (infinite when ``V > MAX_BALL``). Every method also pays
    ``overhead`` seconds. The defaults were measured on 2 shared x86-64 cores (numpy 2.4, OpenBLAS sgemm):
    about 0.65 ns per pair and 64-bit word for popcount; 0.0095 ns per pair and dimension for float32 GEMM on an
    idle machine but 2-4 times more under load (its BLAS threads suffer most from sharing), so the default charges
    0.02 ns and ``auto`` prefers popcount; 14 ns per probe of a Hamming ball.
    """

    pop_word: float = 0.65e-9
    pop_pair: float = 0.05e-9
    gemm_dim: float = 0.02e-9
    gemm_pair: float = 0.1e-9
    ball_probe: float = 14e-9
    ball_hash: float = 2.0e-9
    overhead: float = 2.0e-4

    def estimate(self, n_a: int, n_b: int, d: int, t: float, *, even_only: bool = False) -> dict[str, float]:
        """Estimated seconds per method for ``n_a`` queries, ``n_b`` data vectors, dimension ``d``, threshold ``t``.

        Examples
        --------
        >>> est = CostModel().estimate(2**14, 2**14, 256, 2.0)
        >>> min(est, key=est.get)
        'ball'
        >>> est = CostModel().estimate(2**14, 2**14, 256, 60.0)
        >>> est["ball"], min(est, key=est.get) in ("popcount", "gemm")
        (inf, True)
        """
        pairs = float(n_a) * float(n_b)
        words = (d + 63) // 64
        v = ball_size(d, t, even_only=even_only)
        ball = math.inf if v > MAX_BALL else n_a * v * self.ball_probe + n_b * d * self.ball_hash + self.overhead
        return {
            "popcount": pairs * (self.pop_word * words + self.pop_pair) + self.overhead,
            "gemm": pairs * (self.gemm_dim * d + self.gemm_pair) + self.overhead,
            "ball": ball,
        }

    def choose(self, instance: GapANNInstance) -> str:
        """The method with the smallest estimate for this instance."""
        est = self.estimate(instance.n_a, instance.n_b, instance.dim, instance.t, even_only=_both_balanced(instance))
        return min(METHODS, key=lambda m: est[m])

    @classmethod
    def calibrate(cls, seed: int = 0, n: int = 2048) -> CostModel:
        """Measure the constants on this machine (about a second): each method on two sizes, least squares.

        The fastest of three runs is kept for every timing, because shared machines are noisy.
        """
        rng = np.random.default_rng(seed)

        def best(f: Callable[[], object]) -> float:
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                f()
                times.append(time.perf_counter() - t0)
            return min(times)

        A = (rng.random((n, 512)) < 0.5).astype(np.uint8)
        B = (rng.random((n, 512)) < 0.5).astype(np.uint8)
        pairs = float(n) * n
        # two dimensions per brute-force method separate the per-word (per-flop) and per-pair terms
        pop = [best(lambda d=d: _popcount_min(A[:, :d], B[:, :d], False)) / pairs for d in (64, 512)]
        gem = [best(lambda d=d: _gemm_min(A[:, :d], B[:, :d], False)) / pairs for d in (64, 512)]
        pop_word = max((pop[1] - pop[0]) / 7, 1e-12)
        gemm_dim = max((gem[1] - gem[0]) / 448, 1e-14)
        inst = GapANNInstance(A[:, :64], B[:, :64], 3.0, 1.0)
        v = ball_size(64, 3.0)
        tb = best(lambda: _ball_min(inst.A, inst.B, 3.0, False, False))
        return cls(
            pop_word=pop_word,
            pop_pair=max(pop[0] - pop_word, 1e-12),
            gemm_dim=gemm_dim,
            gemm_pair=max(gem[0] - 64 * gemm_dim, 1e-12),
            ball_probe=tb / (n * v),
            ball_hash=cls.ball_hash,
        )


DEFAULT_COST_MODEL = CostModel()


def _both_balanced(instance: GapANNInstance) -> bool:
    return instance.is_balanced()


# ------------------------------------------------------------------------------------------------ kernels
def _pack(X: np.ndarray) -> np.ndarray:
    """Rows of a 0/1 matrix as ``uint64`` words (zero-padded), shape ``(n, ceil(d / 64))``."""
    n, d = X.shape
    packed = np.packbits(X, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad or packed.shape[1] == 0:
        packed = np.concatenate([packed, np.zeros((n, pad or 8), dtype=np.uint8)], axis=1)
    return np.ascontiguousarray(packed).view(np.uint64)


if hasattr(np, "bitwise_count"):
    _bitcount = np.bitwise_count
else:  # numpy < 2: byte lookup table
    _BYTE_COUNTS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _bitcount(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        counts = _BYTE_COUNTS[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.uint8)
        if out is None:
            return counts
        out[...] = counts
        return out


def _popcount_min(A: np.ndarray, B: np.ndarray, want_arg: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per row of ``A``: the minimum Hamming distance to ``B`` (and its first argmin), by XOR + popcount."""
    Ap, Bp = _pack(A), _pack(B)
    n_a, n_b, W = Ap.shape[0], Bp.shape[0], Ap.shape[1]
    acc_t = np.uint16 if A.shape[1] < 2**16 else np.uint32
    dist = np.empty(n_a, dtype=np.int64)
    arg = np.empty(n_a, dtype=np.int64) if want_arg else None
    rows = max(1, min(n_a, _TILE // max(n_b, 1)))
    x = np.empty((rows, n_b), dtype=np.uint64)
    c = np.empty((rows, n_b), dtype=np.uint8)
    acc = np.empty((rows, n_b), dtype=acc_t)
    BpT = np.ascontiguousarray(Bp.T)
    for s in range(0, n_a, rows):
        e = min(n_a, s + rows)
        k = e - s
        xa, ca, aa = x[:k], c[:k], acc[:k]
        aa[...] = 0
        for w in range(W):
            np.bitwise_xor(Ap[s:e, w, None], BpT[w][None, :], out=xa)
            _bitcount(xa, out=ca)
            np.add(aa, ca, out=aa)
        if want_arg:
            a = aa.argmin(axis=1)
            arg[s:e] = a
            dist[s:e] = aa[np.arange(k), a]
        else:
            dist[s:e] = aa.min(axis=1)
    return dist, arg


def _gemm_min(A: np.ndarray, B: np.ndarray, want_arg: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per row of ``A``: the minimum of ``|a| + |b| - 2 a.b`` over ``B`` (and its first argmin), by tiled GEMM.

    The product is ``[a, 1] . [2b, -|b|] = 2 a.b - |b|``, so the nearest ``b`` maximises one GEMM entry and no
    elementwise pass over the tile is needed; its entries are integers of magnitude ``<= 2d``.
    """
    n_a, d = A.shape
    n_b = B.shape[0]
    ft = np.float32 if 2 * d < _FLOAT32_EXACT else np.float64
    wa = A.sum(axis=1, dtype=np.int64)
    wb = B.sum(axis=1, dtype=np.int64)
    balanced_b = n_b > 0 and bool((wb == wb[0]).all())
    if balanced_b:
        # every |b| is equal: the largest a.b wins, and the plain 0/1 product suffices
        Af = A.astype(ft)
        BfT = np.ascontiguousarray(B.T, dtype=ft)
    else:
        Af = np.empty((n_a, d + 1), dtype=ft)
        Af[:, :d] = A
        Af[:, d] = 1
        BfT = np.empty((d + 1, n_b), dtype=ft)
        BfT[:d] = 2 * B.T
        BfT[d] = -wb
    dist = np.empty(n_a, dtype=np.int64)
    arg = np.empty(n_a, dtype=np.int64) if want_arg else None
    rows = max(1, min(n_a, _TILE // max(n_b, 1)))
    G = np.empty((rows, n_b), dtype=ft)
    for s in range(0, n_a, rows):
        e = min(n_a, s + rows)
        k = e - s
        g = G[:k]
        np.matmul(Af[s:e], BfT, out=g)
        a = g.argmax(axis=1)
        best = g[np.arange(k), a].astype(np.int64)
        dist[s:e] = wa[s:e] + int(wb[0]) - 2 * best if balanced_b else wa[s:e] - best
        if want_arg:
            arg[s:e] = a
    return dist, arg


def _hash_rows(X: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``h(x) = XOR_{k : x_k = 1} R_k`` for every row (chunked, so the ``n x d`` temporary stays small)."""
    out = np.empty(X.shape[0], dtype=np.uint64)
    step = max(1, 2**20 // max(X.shape[1], 1))
    for s in range(0, X.shape[0], step):
        out[s : s + step] = np.bitwise_xor.reduce(np.where(X[s : s + step].astype(bool), R, np.uint64(0)), axis=1)
    return out


def _mask_hashes(R: np.ndarray, radius: int, even_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of all masks of weight ``<= radius`` (weights in increasing order) and each mask's weight."""
    d = R.shape[0]
    level_h = np.zeros(1, dtype=np.uint64)
    level_last = np.full(1, -1, dtype=np.int64)
    hashes, weights = [], []
    for w in range(radius + 1):
        if not (even_only and w % 2):
            hashes.append(level_h)
            weights.append(np.full(level_h.size, w, dtype=np.int64))
        if w == radius:
            break
        nh, nl = [], []
        for b in range(d):
            sel = level_last < b
            if sel.any():
                nh.append(level_h[sel] ^ R[b])
                nl.append(np.full(int(sel.sum()), b, dtype=np.int64))
        level_h = np.concatenate(nh) if nh else np.zeros(0, dtype=np.uint64)
        level_last = np.concatenate(nl) if nl else np.zeros(0, dtype=np.int64)
    return np.concatenate(hashes), np.concatenate(weights)


class _HashTable:
    """Bucketed table of the 64-bit row hashes of ``B``; ``lookup`` returns the smallest matching row or -1."""

    def __init__(self, hb: np.ndarray) -> None:
        n = hb.size
        self.bits = max(4, int(math.ceil(math.log2(max(n, 1)))) + 2)
        self.mask = np.uint64((1 << self.bits) - 1)
        bucket = (hb & self.mask).astype(np.int64)
        self.order = np.argsort(bucket, kind="stable")
        self.keys = hb[self.order]
        self.starts = np.searchsorted(bucket[self.order], np.arange((1 << self.bits) + 1))
        self.n = n

    def lookup(self, q: np.ndarray) -> np.ndarray:
        b = (q & self.mask).astype(np.int64)
        s, e = self.starts[b], self.starts[b + 1]
        out = np.full(q.shape, -1, dtype=np.int64)
        if self.n == 0:
            return out
        occupied = s < e
        probe = np.minimum(s, self.n - 1)
        hit = occupied & (self.keys[probe] == q)
        out[hit] = self.order[probe[hit]]
        # buckets with several keys (a few percent at load <= 1/4): walk the rest of the bucket
        rest = np.flatnonzero(~hit & (e - s > 1))
        k = 1
        while rest.size:
            pos = s.ravel()[rest] + k
            live = pos < e.ravel()[rest]
            rest, pos = rest[live], pos[live]
            found = self.keys[pos] == q.ravel()[rest]
            out.ravel()[rest[found]] = self.order[pos[found]]
            rest = rest[~found]
            k += 1
        return out


def _ball_min(
    A: np.ndarray, B: np.ndarray, t: float, even_only: bool, want_arg: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Lemma 4.7 Case 1: per row the distance to a nearest ``b`` within radius ``ceil(t) - 1`` (else -1), and
    that ``b``'s index (else -1). Masks are tried in order of weight, so the first hit is at the minimum distance."""
    d = A.shape[1]
    radius = min(d, math.ceil(t) - 1)
    n_a = A.shape[0]
    dist = np.full(n_a, -1, dtype=np.int64)
    arg = np.full(n_a, -1, dtype=np.int64)
    if radius < 0 or B.shape[0] == 0 or n_a == 0:
        return dist, arg
    R = np.random.default_rng(_HASH_SEED).integers(0, 2**63, size=d, dtype=np.uint64, endpoint=True)
    table = _HashTable(_hash_rows(B, R))
    ha = _hash_rows(A, R)
    hm, wm = _mask_hashes(R, radius, even_only)
    V = hm.size
    vchunk = min(V, _TILE)
    rows = max(1, _TILE // vchunk)
    Ap, Bp = _pack(A), _pack(B)
    for s in range(0, n_a, rows):
        e = min(n_a, s + rows)
        todo = np.arange(s, e)
        for v0 in range(0, V, vchunk):
            if todo.size == 0:
                break
            idx = table.lookup(ha[todo, None] ^ hm[None, v0 : v0 + vchunk])
            has = idx >= 0
            first = has.argmax(axis=1)
            found = has[np.arange(todo.size), first]
            rr = todo[found]
            jj = idx[np.flatnonzero(found), first[found]]
            ww = wm[v0 + first[found]]
            true = _bitcount(Ap[rr] ^ Bp[jj]).sum(axis=1, dtype=np.int64)
            ok = true == ww
            dist[rr[ok]], arg[rr[ok]] = ww[ok], jj[ok]
            if not ok.all():
                # a 64-bit hash collision (probability ~ V n_b / 2^64): settle those rows exactly
                bad = rr[~ok]
                bd, ba = _popcount_min(A[bad], B, True)
                inside = bd <= radius
                dist[bad[inside]], arg[bad[inside]] = bd[inside], ba[inside]
            todo = todo[~found]
    return dist, arg


# ------------------------------------------------------------------------------------------------ solve
@dataclass(frozen=True)
class GapANNSolution:
    """Per-row answers of a direct solver, with what it learned along the way.

    Attributes
    ----------
    answer : GapANNAnswer
        ``yes[i]`` iff ``min_j ||a_i - b_j||_0 < t`` (exact, so correct on every row, inside the promise or not).
    method : str
        The method that ran.
    min_distances : numpy.ndarray of float64
        ``min_j ||a_i - b_j||_0``. The ``ball`` method only knows distances below ``t``; other rows hold ``inf``.
    witnesses : numpy.ndarray of int64 or None
        An index ``j`` of a nearest ``b_j`` (-1 when unknown), when asked for. ``popcount`` and ``gemm`` give the
        smallest such ``j``; ``ball`` gives one within the ball.
    estimates : dict
        The cost model's estimated seconds per method.
    seconds : float
        Wall time of the solve.
    """

    answer: GapANNAnswer
    method: str
    min_distances: np.ndarray
    witnesses: np.ndarray | None
    estimates: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def yes(self) -> np.ndarray:
        return self.answer.yes


def solve_gap_ann(
    instance: GapANNInstance,
    method: str = "auto",
    *,
    witnesses: bool = False,
    cost_model: CostModel | None = None,
) -> GapANNSolution:
    """Decide every row of a Gap-ANN instance (Definition 4.5) exactly, by the fastest direct method.

    Parameters
    ----------
    instance : GapANNInstance
    method : {"auto", "popcount", "gemm", "ball"}
        ``auto`` runs the method with the smallest :class:`CostModel` estimate.
    witnesses : bool
        Also return the index of a nearest neighbour of every row.
    cost_model : CostModel, optional
        Constants for ``auto`` (default: :data:`DEFAULT_COST_MODEL`).

    Examples
    --------
    >>> inst = GapANNInstance([[1, 0, 1, 0], [0, 0, 1, 1]], [[1, 1, 0, 0], [1, 0, 1, 0]], t=1.0, eps=1.0)
    >>> sol = solve_gap_ann(inst, "ball", witnesses=True)
    >>> sol.yes.tolist(), sol.min_distances.tolist(), sol.witnesses.tolist()
    ([True, False], [0.0, inf], [1, -1])
    >>> solve_gap_ann(inst, "gemm").min_distances.tolist()
    [0.0, 2.0]
    """
    model = cost_model or DEFAULT_COST_MODEL
    even = _both_balanced(instance)
    est = model.estimate(instance.n_a, instance.n_b, instance.dim, instance.t, even_only=even)
    if method == "auto":
        method = min(METHODS, key=lambda m: est[m])
    if method not in METHODS:
        raise ParameterError(f"unknown Gap-ANN method {method!r}; expected auto or one of {', '.join(METHODS)}")
    if instance.n_b == 0:
        raise ParameterError("Gap-ANN needs at least one data vector (B is empty)")
    t0 = time.perf_counter()
    A, B = instance.A, instance.B
    if method == "ball":
        v = ball_size(instance.dim, instance.t, even_only=even)
        if v > MAX_BALL:
            raise ParameterError(
                f"the Hamming ball of radius {math.ceil(instance.t) - 1} in dimension {instance.dim} has {v} points, "
                f"over the limit MAX_BALL = {MAX_BALL}; use method 'popcount' or 'gemm'"
            )
        dist_i, arg = _ball_min(A, B, instance.t, even, witnesses)
        dist = np.where(dist_i >= 0, dist_i.astype(np.float64), np.inf)
    else:
        kernel = _popcount_min if method == "popcount" else _gemm_min
        dist_i, arg = kernel(A, B, witnesses)
        dist = dist_i.astype(np.float64)
    seconds = time.perf_counter() - t0
    return GapANNSolution(
        answer=GapANNAnswer(dist < instance.t),
        method=method,
        min_distances=dist,
        witnesses=arg if witnesses else None,
        estimates=est,
        seconds=seconds,
    )


def direct_decider(method: str = "auto", cost_model: CostModel | None = None) -> Decider:
    """A Gap-ANN decider (instance -> :class:`GapANNAnswer`) backed by :func:`solve_gap_ann`."""

    def decide(instance: GapANNInstance) -> GapANNAnswer:
        return solve_gap_ann(instance, method, cost_model=cost_model).answer

    decide.__name__ = f"direct[{method}]"
    return decide


# ------------------------------------------------------------------------------------------------ ANN
@dataclass(frozen=True)
class ANNResult:
    """A ``(1+eps)``-approximate nearest pair (Definition 4.2) found by binary search with a Gap-ANN decider.

    Attributes
    ----------
    i, j : int
        ``a_i`` and ``b_j`` with ``||a_i - b_j||_0 <= (1+eps) min_{a, b} ||a - b||_0`` (when the decider is correct).
    distance : int
        ``||a_i - b_j||_0``.
    lower_bound : int
        ``k*``: the decider answered NO on every row at threshold ``t_{k*-1}``, so the true minimum is ``>= k*``.
    guarantee_holds : bool
        ``distance <= (1+eps) lower_bound``, checked exactly; False only if the decider answered wrongly.
    calls : list of dict
        One entry per decider call: ``k``, ``t`` and ``yes_rows``.
    decider : str
    seconds : float
    """

    i: int
    j: int
    distance: int
    lower_bound: int
    eps: float
    guarantee_holds: bool
    calls: list
    decider: str
    seconds: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def ann_threshold(k: int, eps: float) -> float:
    r"""The threshold ``t_k`` at which :func:`approximate_nearest_neighbour` probes "is the minimum ``<= k``?".

    ``t_k = k + theta_k`` with ``theta_k = (floor((1+eps) k) + 1 - (1+eps) k) / (2 (1+eps))`` (computed exactly from
    the float ``eps``). Then ``0 < theta_k <= 1/2``, so an all-NO answer at ``t_k`` means every distance is
    ``>= k + 1`` (distances are integers), while a YES row is not in Case 2, i.e. its distance is
    ``< (1+eps) t_k``, which lies strictly between ``(1+eps) k`` and the next integer: the distance is
    ``<= floor((1+eps) k)``.

    Examples
    --------
    >>> ann_threshold(0, 1.0), ann_threshold(4, 0.5), ann_threshold(3, 0.5)
    (0.25, 4.333333333333333, 3.1666666666666665)
    """
    one = 1 + Fraction(eps)
    x = one * k
    gap = math.floor(x) + 1 - x
    return float(k + gap / (2 * one))


def approximate_nearest_neighbour(
    instance_or_A_B: GapANNInstance | Sequence[np.ndarray],
    eps: float,
    decider: str | Decider = "direct",
    **decider_options,
) -> ANNResult:
    r"""``(1+eps)``-approximate Hamming nearest neighbour (Definition 4.2) from a Gap-ANN decider (Definition 4.5).

    Binary search over integer ``k in [0, d]`` with the decider called at ``t_k`` (:func:`ann_threshold`):
    a call with no YES row proves ``min ||a - b||_0 >= k + 1``; a YES row ``i`` at ``t_k`` has a neighbour at
    distance ``<= floor((1+eps) k)``. For the smallest ``k*`` with a YES row, ``k* <= min ||a - b||_0``, so the
    nearest ``b_j`` to that ``a_i`` (found by a linear scan of ``B``) is within ``(1+eps)`` of the optimum. This
    takes ``ceil(log2(d + 1)) + 1 <= log2(nd) + 2`` decider calls, as the text after Definition 4.5 says.

    Parameters
    ----------
    instance_or_A_B : GapANNInstance or (A, B)
        The point sets (a ``GapANNInstance``'s own ``t`` and ``eps`` are ignored).
    eps : float
        Approximation parameter (the Gap-ANN gap of every call).
    decider : "direct" or callable
        ``direct``: :func:`direct_decider` (``method=...`` option); or any callable
        ``GapANNInstance -> GapANNAnswer``, e.g. the Lemma 4.7 route
        ``finegrained.ann_chain.attention_decider(oracle=..., params=...)`` (this module sits below the attention
        route and never imports it).

    Examples
    --------
    >>> A = [[0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]]
    >>> B = [[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 0, 0]]
    >>> r = approximate_nearest_neighbour((A, B), eps=0.5)
    >>> r.i, r.j, r.distance, r.lower_bound, r.guarantee_holds, len(r.calls)
    (1, 1, 2, 2, True, 3)
    """
    if isinstance(instance_or_A_B, GapANNInstance):
        A, B = instance_or_A_B.A, instance_or_A_B.B
    else:
        if len(instance_or_A_B) != 2:
            raise ParameterError("pass a GapANNInstance or a pair (A, B)")
        A = as_binary_matrix("A", instance_or_A_B[0])
        B = as_binary_matrix("B", instance_or_A_B[1])
    if A.shape[0] == 0 or B.shape[0] == 0:
        raise ParameterError("ANN needs at least one vector in A and one in B")
    if A.shape[1] != B.shape[1]:
        raise ParameterError(f"A has dimension {A.shape[1]} but B has {B.shape[1]}")
    if not (math.isfinite(eps) and eps > 0):
        raise ParameterError(f"eps must be positive, got {eps}")
    if callable(decider):
        decide, name = decider, getattr(decider, "__name__", "custom")
    elif decider == "direct":
        decide = direct_decider(**decider_options)
        name = decide.__name__
    else:
        hint = " (pass finegrained.ann_chain.attention_decider(...) for the attention route)" if (
            decider == "attention") else ""
        raise ParameterError(f"unknown decider {decider!r}; expected 'direct' or a callable{hint}")

    t_start = time.perf_counter()
    d = A.shape[1]
    calls: list[dict] = []
    yes_at: dict[int, np.ndarray] = {}

    def ask(k: int) -> bool:
        t = ann_threshold(k, eps)
        yes = np.asarray(decide(GapANNInstance(A, B, t, eps)).yes, dtype=bool)
        if yes.shape != (A.shape[0],):
            raise FinegrainedError(f"decider {name!r} returned {yes.shape} answers for {A.shape[0]} rows")
        calls.append({"k": k, "t": t, "yes_rows": int(yes.sum())})
        if yes.any():
            yes_at[k] = yes
            return True
        return False

    lo, hi = -1, d  # invariant: NO at lo (or lo = -1), and every distance <= d < t_d forces YES at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ask(mid):
            hi = mid
        else:
            lo = mid
    if hi not in yes_at and not ask(hi):
        raise FinegrainedError(
            f"decider {name!r} answered NO on every row at t = {ann_threshold(hi, eps):g} > d = {d}, where every row "
            "is in Case 1 of Definition 4.5"
        )
    i = int(np.flatnonzero(yes_at[hi])[0])
    dist, arg = _popcount_min(A[i : i + 1], B, True)
    distance = int(dist[0])
    bound = math.floor((1 + Fraction(eps)) * hi)
    return ANNResult(
        i=i,
        j=int(arg[0]),
        distance=distance,
        lower_bound=hi,
        eps=float(eps),
        guarantee_holds=distance <= bound,
        calls=calls,
        decider=name,
        seconds=time.perf_counter() - t_start,
    )


__all__ = [
    "ANNResult",
    "CostModel",
    "DEFAULT_COST_MODEL",
    "GapANNSolution",
    "METHODS",
    "MAX_BALL",
    "ann_threshold",
    "approximate_nearest_neighbour",
    "ball_size",
    "direct_decider",
    "solve_gap_ann",
]
