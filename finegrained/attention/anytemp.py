r"""Attention at any temperature for small head dimension (Gupta, Huang, Saha, Xu & Ye 2025, Theorem 1.1).

The algorithm of the paper, made practical
------------------------------------------
For each query ``q_i`` (scores ``x_ij = s <q_i, k_j>``):

1. **Maximum.** ``M_i = max_j x_ij`` by branch and bound on a kd-tree over the keys: a node's bounding box gives
   an upper bound ``s q . c + sum_l |s q_l| h_l`` (centre ``c``, half-widths ``h``), one key of the node a lower
   bound; nodes whose upper bound is below the best lower bound found so far are pruned. For ``d = 1`` the
   maximum is ``max(s q k_min, s q k_max)`` in closed form.
2. **Window.** Keys with ``x_ij < M_i - L`` are dropped, ``L = ln(4 n ||V||_inf / eps)``.
3. **Polynomial.** Inside the window ``exp(x - M_i)`` is replaced, node by node, by a polynomial about the score
   of the node's box centre: with ``t`` the centre score minus ``M_i`` and ``z = x - M_i - t`` in ``[-r, r]``
   (``r`` the node's score radius), ``e^z`` is replaced by the truncated Chebyshev expansion ``p`` of ``e^z`` on
   ``[-R, R]``, ``R >= r`` the next radius of a fixed geometric table (ratio ``2^{1/4}``), converted to the
   monomial basis. Its degree ``g' <= g`` is chosen **per (query, node) pair**: the smallest of ``0, 2, 4, ...,
   g`` whose certified error fits the budget. ``g`` is a constant (default 20, 16, 8, 6 for ``d = 1, 2, 3, 4``):
   it does not depend on ``B``.
4. **Range sums.** Every internal node stores ``sum_j u_j^alpha [V_j | 1]`` for ``|alpha| <= g`` with
   ``u_j = (k_j - c) / h`` in ``[-1, 1]^d`` (centred and scaled, so no digits are lost), ordered by total degree
   so that degree ``g'`` uses a prefix. A query visits the tree level by level: a node whose box lies below the
   window is *dropped*; a node whose certified error (approximation plus rounding) is below the per-key budget
   ``eta = eps / (4 n ||V||_inf)`` (times a proved lower bound on the normaliser) is *accepted* and contributes
   ``e^{t} sum_alpha c_|alpha| |alpha|! w^alpha / alpha! m_alpha`` (``w = s q * h``, ``c_j`` the monomial
   coefficients of ``p``); otherwise it is split, and leaves are evaluated exactly.

The paper uses one polynomial of degree ``O(log(n/eps))`` on the whole window and a partition tree
(Matoušek/Chan) for the halfspace range sums. Here the degree is at most ``g`` and a node is accepted only where
its score radius ``r = sum_l |s q_l| h_l`` is small enough for it, which keeps the monomial count
``C(g + d, d)`` small; the price is that nodes wide in score are split even when they lie inside the window.
Chebyshev truncation on ``[-R, R]`` has error about ``2 (R/2)^{g+1} / (g+1)!``, a factor ``2^g`` below the
Taylor remainder, so nodes about twice as wide in score are accepted at the same degree.

Guarantees
----------
*Proved* (for the output in exact arithmetic, and with float64 rounding bounded under the standard model, see
:func:`anytemp`): the returned :attr:`AnytempResult.error_bound` bounds ``|T_hat - D^{-1} A V|`` entrywise, and it
is at most ``eps`` plus float64 rounding terms. The bound is assembled per row from

* dropped nodes: at most ``|S| e^{hi}`` in the denominator and ``sum_S |V_j| e^{hi}`` in the numerators, relative
  to ``e^{M_i}``, where ``hi < -L`` is the box's upper score;
* accepted nodes: ``e^t`` times the certified uniform error of ``p`` on ``[-R, R]`` per key (see
  :func:`_cheb_table`: Chebyshev tail ``2 sum_{k>g'} I_k(R) <= 2 I_{g'+1}(R) / (1 - R / (2(g'+2)))``, the error
  of the computed Bessel values and the rounding of the conversion to monomials), plus the rounding of the
  feature products and moment sums, ``2 (|S| + C(g'+d, d) + 2 g' + 20) u e^t sum_j |c_j| R^j`` per key;
* float64 rounding of the moment sums, the feature products and the scores;

and ``|N_hat/D_hat - N/D| <= (delta_N + ||V||_inf delta_D) / (D_hat - delta_D)``, with ``D >= 1`` relative to
``e^{M_i}`` because the maximal key is in ``D``.

*Not proved: the running time.* A kd-tree is not a partition tree: a hyperplane can cross ``Theta(n)`` of its
cells in the worst case, whereas partition trees guarantee ``O(n^{1-1/d})``. For points in general position
the crossing number of a kd-tree with an arbitrary hyperplane is ``O(n^{1-1/d})`` too, but data can defeat it.
:class:`AnytempResult` reports the measured crossing numbers (nodes straddling ``M_i - L`` per query). For
``d = 1`` the kd-tree is a segment tree over the sorted keys, the window is a suffix or prefix of the sorted
order, and at most two nodes per level straddle its boundary: there the time bound
``O(n log n + n g (log n + L / r_max))`` (with ``r_max`` the accepted radius) is proved.

Low rank
--------
For ``d > 1`` the scores depend on ``Q`` and ``K`` only through ``Q K^T``. With ``P = W W^T`` the projector on the
numerical row space of the lower-rank of ``Q``, ``K`` (rank ``r``, thin SVD), ``Q' = Q W`` and ``K' = K W`` have
``r`` columns and ``Q' K'^T = Q P K^T``; the perturbation ``|q (I - P) k|`` is bounded by Cauchy–Schwarz and
added to the certificate. The tree then runs in dimension ``r``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product

import numpy as np

from instances.errors import ParameterError
from instances.logspace import LogArray

from .exact import check_attention_inputs, exact

#: unit roundoff of float64
UNIT_ROUNDOFF = 2.0**-53
#: default maximal degree per tree dimension (moments are stored up to it; each accepted (query, node) pair uses
#: the smallest sufficient degree of :func:`_degree_ladder`): monomial counts C(g + d, d) = 21, 153, 165, 210
DEFAULT_DEGREE = {1: 20, 2: 16, 3: 8, 4: 6}
#: largest tree dimension; beyond it the monomial count explodes and :func:`anytemp` falls back to ``exact``
MAX_TREE_DIM = 4
DEFAULT_LEAF_SIZE = 16
#: queries processed together; bounds the number of live (query, node) pairs
DEFAULT_QUERY_BATCH = 2048
#: (query, node) pairs whose features or leaf keys are materialised at once
_PAIR_CHUNK = 4096
#: memory allowed for the per-node moments before the leaves are made larger
_MOMENT_BYTES = 512 * 2**20


@dataclass(frozen=True)
class AnytempResult:
    """Output and certificate of :func:`anytemp`.

    Attributes
    ----------
    output : LogArray, shape (n_q, d_v)
        The approximation ``T_hat`` of ``D^{-1} exp(s Q K^T) V``.
    error_bound : float
        Certified ``max_ij |T_hat_ij - T_ij|`` (worst row); ``row_bounds`` has one bound per row.
    row_bounds : numpy.ndarray, shape (n_q,)
    eps : float
        Requested accuracy; ``error_bound <= eps`` up to the float64 rounding terms listed in ``stats``.
    window : float
        ``L``: keys more than ``L`` below the row maximum are dropped.
    degree : int
        ``g``, the largest polynomial degree (independent of ``B``); ``stats["degree_mean"]`` is the mean degree
        actually used by the accepted (query, node) pairs.
    method : str
        ``"tree"``, ``"tree-1d"`` or ``"exact-fallback"`` (tree dimension above :data:`MAX_TREE_DIM`).
    tree_dim : int
        Dimension the tree was built in (the numerical rank after the low-rank rewrite).
    stats : dict
        Per-query means and maxima of visited, accepted, dropped, crossing and leaf pairs, keys evaluated
        exactly, max-search visits, tree depth and leaf size, and the rounding parts of the bound.
    """

    output: LogArray
    error_bound: float
    row_bounds: np.ndarray
    eps: float
    window: float
    degree: int
    method: str
    tree_dim: int
    stats: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------- features


def monomial_exponents(d: int, g: int) -> np.ndarray:
    """All ``alpha`` in ``N^d`` with ``|alpha| <= g``, by total degree; shape ``(C(g + d, d), d)``."""
    alphas = [a for a in product(range(g + 1), repeat=d) if sum(a) <= g]
    alphas.sort(key=lambda a: (sum(a), a))
    return np.array(alphas, dtype=np.int64).reshape(-1, d)


def _features(X: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """``X^alpha`` for every row of ``X`` (shape ``(P, d)``) and every exponent: shape ``(P, m)``."""
    g = int(alphas.max(initial=0))
    pw = np.empty((X.shape[0], X.shape[1], g + 1))
    pw[:, :, 0] = 1.0
    for p in range(1, g + 1):
        np.multiply(pw[:, :, p - 1], X, out=pw[:, :, p])
    out = pw[:, 0, alphas[:, 0]]
    for col in range(1, X.shape[1]):
        out *= pw[:, col, alphas[:, col]]
    return out


# --------------------------------------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class KeyTree:
    """A balanced kd-tree over the keys in implicit heap layout, with per-node boxes and polynomial moments.

    Node ``(level, k)`` has global id ``2^level - 1 + k`` and owns the sorted keys
    ``[floor(k n / 2^level), floor((k + 1) n / 2^level))``; its children are ``(level + 1, 2k)`` and
    ``(level + 1, 2k + 1)``. All leaves are at level ``depth``.
    """

    keys: np.ndarray
    values: np.ndarray
    order: np.ndarray
    depth: int
    leaf_size: int
    start: np.ndarray
    stop: np.ndarray
    centre: np.ndarray
    half: np.ndarray
    count: np.ndarray
    abs_v: np.ndarray
    moments: np.ndarray
    alphas: np.ndarray
    inv_factorial: np.ndarray

    @property
    def num_internal(self) -> int:
        return 2**self.depth - 1


def _level_ranges(n: int, level: int) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(2**level, dtype=np.int64)
    return (k * n) >> level, ((k + 1) * n) >> level


def build_tree(K: np.ndarray, V: np.ndarray, degree: int, leaf_size: int = DEFAULT_LEAF_SIZE) -> KeyTree:
    """Build the kd-tree (split on the widest box side at the count median) and its moments.

    Moments ``sum_{j in S} u_j^alpha [V_j | 1]`` are accumulated in key chunks aligned with node boundaries, at
    cost ``O(n C(g + d, d) (d_v + 1))`` per level.
    """
    n, d = K.shape
    d_v = V.shape[1]
    alphas = monomial_exponents(d, degree)
    m = alphas.shape[0]
    depth = max(0, math.ceil(math.log2(max(n / leaf_size, 1.0))))
    while depth > 0 and (2**depth) * m * (d_v + 1) * 8 > _MOMENT_BYTES:
        depth -= 1
    num_nodes = 2 ** (depth + 1) - 1
    order = np.arange(n)
    start = np.empty(num_nodes, dtype=np.int64)
    stop = np.empty(num_nodes, dtype=np.int64)
    lo = np.empty((num_nodes, d))
    hi = np.empty((num_nodes, d))
    for level in range(depth + 1):
        a, b = _level_ranges(n, level)
        ids = slice(2**level - 1, 2 ** (level + 1) - 1)
        start[ids], stop[ids] = a, b
        Ks = K[order]
        nonempty = b > a
        lo_l = np.zeros((a.size, d))
        hi_l = np.zeros((a.size, d))
        lo_l[nonempty] = np.minimum.reduceat(Ks, a[nonempty], axis=0)
        hi_l[nonempty] = np.maximum.reduceat(Ks, a[nonempty], axis=0)
        lo[ids], hi[ids] = lo_l, hi_l
        if level == depth:
            break
        # Split every node on its widest side: sort keys by (node, coordinate of that side).
        node_of_key = np.repeat(np.arange(a.size), b - a)
        side = np.argmax(hi_l - lo_l, axis=1)
        coord = Ks[np.arange(n), side[node_of_key]]
        order = order[np.lexsort((coord, node_of_key))]
    keys = np.ascontiguousarray(K[order])
    values = np.ascontiguousarray(V[order])
    centre = (lo + hi) / 2
    half = (hi - lo) / 2
    count = (stop - start).astype(np.float64)
    W = np.concatenate([values, np.ones((n, 1))], axis=1)
    absW = np.abs(W)
    csum = np.concatenate([np.zeros((1, d_v + 1)), np.cumsum(absW, axis=0)])
    abs_v = csum[stop] - csum[start]  # |V| sums per node (last column is the count)
    abs_v = np.maximum(abs_v, 0.0)
    inv_factorial = 1.0 / np.prod([[float(math.factorial(int(x))) for x in a] for a in alphas], axis=1)
    moments = np.zeros((2**depth - 1, m, d_v + 1))
    chunk = max(1, (8 * 2**20) // (8 * m * (d_v + 2)))
    for level in range(depth):
        a, b = _level_ranges(n, level)
        node_of_key = np.repeat(np.arange(2**level - 1, 2 ** (level + 1) - 1), b - a)
        h = half[node_of_key]
        h_safe = np.where(h > 0, h, 1.0)
        for s0 in range(0, n, chunk):
            s1 = min(n, s0 + chunk)
            nk = node_of_key[s0:s1]
            U = (keys[s0:s1] - centre[nk]) / h_safe[s0:s1]
            F = _features(U, alphas)
            cut = np.concatenate([[0], np.flatnonzero(np.diff(nk)) + 1])
            seg = nk[cut]
            for c in range(d_v + 1):
                moments[seg, :, c] += np.add.reduceat(F * W[s0:s1, c : c + 1], cut, axis=0)
    return KeyTree(keys, values, order, depth, leaf_size, start, stop, centre, half, count, abs_v, moments, alphas,
                   inv_factorial)


# ------------------------------------------------------------------------------------------------ per-query work


def _degree_ladder(g: int) -> list[int]:
    """Degrees tried per (query, node) pair, smallest first: ``0, 2, 4, ...`` and ``g`` itself."""
    return sorted(set(range(0, g + 1, 2)) | {g})


#: radii of the Chebyshev table: ``R_i = 2^(i/4)`` for ``i = _R_LO .. _R_HI``
_R_LO, _R_HI = -32, 24


def _bessel_i(R: float, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``I_k(R)`` for ``k = 0..kmax`` by the series of positive terms, with a relative error bound for each.

    Terms ``(R/2)^(2m+k) / (m! (m+k)!)`` are formed by the recurrence (ratio ``(R/2)^2 / ((m+1)(m+k+1))``);
    the sum stops once the ratio is below 1/2 and the term below ``1e-18`` of the sum, so the neglected tail is at
    most twice the last term (added). Rounding: ``(4m + 2k + 10) u`` relative (standard model, positive terms).
    """
    vals, rel = np.empty(kmax + 1), np.empty(kmax + 1)
    for k in range(kmax + 1):
        term = math.exp(k * math.log(R / 2) - math.lgamma(k + 1))
        total, m = term, 0
        while True:
            rho = (R / 2) ** 2 / ((m + 1) * (m + k + 1))
            term *= rho
            m += 1
            total += term
            if rho < 0.5 and term < 1e-18 * total:
                break
        vals[k] = total + 2 * term
        # exp/lgamma of the first term: allow 64 u for the library functions
        rel[k] = (4 * m + 2 * k + 74) * UNIT_ROUNDOFF
    return vals, rel


@lru_cache(maxsize=8)
def _cheb_table(g_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Truncated Chebyshev expansions of ``e^z`` on ``[-R, R]`` in the monomial basis, with certified errors.

    ``e^{R x} = I_0(R) + 2 sum_k I_k(R) T_k(x)`` on ``[-1, 1]``; truncating at degree ``g`` leaves at most
    ``2 sum_{k>g} I_k(R) <= 2 I_{g+1}(R) / (1 - R / (2(g+2)))`` (as ``I_{k+1}(R) <= R/(2(k+1)) I_k(R)``). The
    polynomial is converted to ``p(z) = sum_j c_j z^j`` in float64. Returns, per radius ``R_i`` and degree ``g``:

    * ``radii`` (shape ``(n_R,)``);
    * ``coef[i, g, j] = c_j j!`` (the factor that turns the Taylor feature ``w^alpha / alpha!`` into ``p``'s);
    * ``err[i, g]``: a bound on ``max_{|z| <= R} |e^z - p(z)|`` for the float coefficients actually stored
      (truncation, the error of the computed ``I_k`` and the rounding of the basis conversion); ``inf`` when the
      tail bound does not apply;
    * ``absum[i, g]``: a bound on ``sum_j |c_j| R^j``, which bounds the sum of the absolute values of the terms
      evaluated (for the rounding of the feature products and moment sums).
    """
    T = np.zeros((g_max + 1, g_max + 1))
    T[0, 0] = 1.0
    if g_max >= 1:
        T[1, 1] = 1.0
    for k in range(2, g_max + 1):
        T[k, 1:] = 2 * T[k - 1, :-1]
        T[k] -= T[k - 2]
    radii = 2.0 ** (np.arange(_R_LO, _R_HI + 1) / 4)
    coef = np.zeros((radii.size, g_max + 1, g_max + 1))
    err = np.full((radii.size, g_max + 1), np.inf)
    absum = np.full((radii.size, g_max + 1), np.inf)
    fact = np.array([float(math.factorial(j)) for j in range(g_max + 1)])
    for i, R in enumerate(radii):
        bes, rel = _bessel_i(float(R), g_max + 1)
        a_all = 2 * bes
        a_all[0] = bes[0]
        for g in range(g_max + 1):
            if R >= 2 * (g + 2):
                continue
            a = a_all[: g + 1]
            Rj = R ** np.arange(g + 1)
            c = (a @ T[: g + 1, : g + 1]) / Rj
            conv = float(np.abs(a) @ np.abs(T[: g + 1, : g + 1]).sum(axis=1))  # >= sum_j sum_k |a_k T_kj|
            tail = 2 * bes[g + 1] * (1 + rel[g + 1]) / (1 - R / (2 * (g + 2)))
            e = tail + float((rel[: g + 1] * np.abs(a)).sum()) + 4 * (g + 4) * UNIT_ROUNDOFF * conv
            coef[i, g, : g + 1] = c * fact[: g + 1]
            err[i, g] = e * (1 + 1e-10)
            absum[i, g] = float((np.abs(c) * Rj).sum()) * (1 + 1e-10) + 4 * (g + 4) * UNIT_ROUNDOFF * conv
    return radii, coef, err, absum


def _segment_counts(qi: np.ndarray, nq: int) -> np.ndarray:
    return np.bincount(qi, minlength=nq).astype(np.int64)


def _box_scores(tree: KeyTree, Qb: np.ndarray, qi: np.ndarray, nd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre score and score radius of node ``nd`` for query ``qi`` (scaled queries)."""
    q = Qb[qi]
    return np.einsum("pd,pd->p", q, tree.centre[nd]), np.einsum("pd,pd->p", np.abs(q), tree.half[nd])


def _leaf_scores(tree: KeyTree, Qb: np.ndarray, qi: np.ndarray, nd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every key of leaf ``nd`` for query ``qi``, padded with ``-inf``; also the key indices."""
    width = int((tree.stop[nd] - tree.start[nd]).max(initial=0))
    idx = tree.start[nd][:, None] + np.arange(width)
    inside = idx < tree.stop[nd][:, None]
    idx = np.where(inside, idx, 0)
    x = np.einsum("pld,pd->pl", tree.keys[idx], Qb[qi])
    return np.where(inside, x, -np.inf), idx


def _max_scores(tree: KeyTree, Qb: np.ndarray, slack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Branch and bound for ``M_i = max_j q_i . k_j``, level-synchronous over a batch of (scaled) queries.

    A node is kept while its box upper bound (plus the rounding ``slack``) reaches the best score of a real key
    seen so far; the key in the middle of each visited node supplies those lower bounds.
    """
    nq = Qb.shape[0]
    best = np.full(nq, -np.inf)
    visits = np.zeros(nq, dtype=np.int64)
    qi = np.arange(nq)
    nd = np.zeros(nq, dtype=np.int64)
    for _level in range(tree.depth):
        visits += _segment_counts(qi, nq)
        tc, r = _box_scores(tree, Qb, qi, nd)
        rep = (tree.start[nd] + tree.stop[nd]) // 2
        lb = np.einsum("pd,pd->p", tree.keys[np.minimum(rep, tree.keys.shape[0] - 1)], Qb[qi])
        lb = np.where(tree.stop[nd] > tree.start[nd], lb, -np.inf)
        np.maximum.at(best, qi, lb)
        keep = (tc + r + slack[qi] >= best[qi]) & (tree.stop[nd] > tree.start[nd])
        qi, nd = np.repeat(qi[keep], 2), np.stack([2 * nd[keep] + 1, 2 * nd[keep] + 2], axis=1).ravel()
    visits += _segment_counts(qi, nq)
    for c0 in range(0, qi.size, _PAIR_CHUNK):
        sl = slice(c0, c0 + _PAIR_CHUNK)
        x, _ = _leaf_scores(tree, Qb, qi[sl], nd[sl])
        np.maximum.at(best, qi[sl], x.max(axis=1, initial=-np.inf))
    return best, visits


def _accumulate(tree: KeyTree, Qb: np.ndarray, M: np.ndarray, L: float, log_eta: float) -> dict:
    """Level-synchronous traversal for one batch: relative numerators/denominator and their error terms."""
    nq, d_v = Qb.shape[0], tree.values.shape[1]
    g = int(tree.alphas.sum(axis=1).max(initial=0))
    degrees = _degree_ladder(g)
    radii, cheb_coef, cheb_err, cheb_abs = _cheb_table(g)
    lad = np.asarray(degrees)
    err_lad, abs_lad = cheb_err[:, lad], cheb_abs[:, lad]
    err_min = err_lad.min(axis=1)
    alpha_deg = tree.alphas.sum(axis=1)
    mono_count = np.searchsorted(alpha_deg, np.arange(g + 1), side="right")
    lad_extra = (mono_count[lad] + 2 * lad + 20)[None, :]
    num = np.zeros((nq, d_v))
    den = np.zeros(nq)
    err_num = np.zeros((nq, d_v))
    err_den = np.zeros(nq)
    counters = {k: np.zeros(nq, dtype=np.int64) for k in ("visited", "accepted", "dropped", "crossing", "leaves",
                                                           "exact_keys", "degree_sum")}
    settled = np.zeros(nq)
    qi = np.arange(nq)
    nd = np.zeros(nq, dtype=np.int64)

    def add_rows(target: np.ndarray, rows: np.ndarray, vals: np.ndarray) -> None:
        if target.ndim == 1:
            target += np.bincount(rows, weights=vals, minlength=nq)
        else:
            for c in range(target.shape[1]):
                target[:, c] += np.bincount(rows, weights=vals[:, c], minlength=nq)

    for level in range(tree.depth + 1):
        if qi.size == 0:
            break
        counters["visited"] += _segment_counts(qi, nq)
        tc, r = _box_scores(tree, Qb, qi, nd)
        t = tc - M[qi]
        top = t + r
        # The budgets scale with a proved lower bound on D (settled parts plus every live box at its lowest).
        d_low = np.maximum(settled + np.bincount(qi, weights=tree.count[nd] * np.exp(t - r), minlength=nq), 1.0)
        log_budget = log_eta + np.log(d_low)
        cut = log_budget[qi]
        drop = top < cut
        counters["crossing"] += _segment_counts(qi[(t - r < cut) & ~drop], nq)
        if drop.any():
            qd, ndd, e = qi[drop], nd[drop], np.exp(top[drop])
            counters["dropped"] += _segment_counts(qd, nq)
            err_den += np.bincount(qd, weights=tree.count[ndd] * e, minlength=nq)
            add_rows(err_num, qd, tree.abs_v[ndd, :d_v] * e[:, None])
        if level == tree.depth:
            keep = ~drop
            qi, nd = qi[keep], nd[keep]
            counters["leaves"] += _segment_counts(qi, nq)
            gam = 2 * (tree.leaf_size + 8) * UNIT_ROUNDOFF
            for c0 in range(0, qi.size, _PAIR_CHUNK):
                sl = slice(c0, c0 + _PAIR_CHUNK)
                q_, n_ = qi[sl], nd[sl]
                x, idx = _leaf_scores(tree, Qb, q_, n_)
                w = np.exp(x - M[q_, None])
                sw = w.sum(axis=1)
                den += np.bincount(q_, weights=sw, minlength=nq)
                add_rows(num, q_, np.einsum("pl,plc->pc", w, tree.values[idx]))
                err_den += np.bincount(q_, weights=gam * sw, minlength=nq)
                add_rows(err_num, q_, gam * np.einsum("pl,plc->pc", w, np.abs(tree.values[idx])))
                counters["exact_keys"] += np.bincount(q_, weights=np.isfinite(x).sum(axis=1), minlength=nq).astype(
                    np.int64)
            break
        # Smallest degree g' <= g whose certified Chebyshev error (plus rounding) fits the budget (per pair).
        # R >= r with room for the rounding of r itself (at most a few units in the last place).
        r_up = r * (1 + 1e-12)
        ridx = np.clip(np.ceil(4 * np.log2(np.maximum(r_up, radii[0])) - 1e-9).astype(np.int64) - _R_LO, 0,
                       radii.size - 1)
        ridx = np.where(radii[ridx] >= r_up, ridx, np.minimum(ridx + 1, radii.size - 1))
        fits = radii[ridx] >= r_up
        # Per pair and degree: certified error of p on [-R, R] plus rounding, relative to e^{t}; the first degree
        # whose error fits exp(cut - t) is used. Pairs whose smallest table error already exceeds it are skipped.
        with np.errstate(over="ignore", invalid="ignore"):
            room = np.exp(cut - t)
        cand = np.flatnonzero(~drop & fits & (err_min[ridx] <= room))
        gsel = np.full(qi.size, -1, dtype=np.int64)
        per_key = np.zeros(qi.size)
        if cand.size:
            rc = ridx[cand]
            with np.errstate(over="ignore", invalid="ignore"):
                lhs = err_lad[rc] + (2 * UNIT_ROUNDOFF) * (tree.count[nd[cand]][:, None] + lad_extra) * abs_lad[rc]
                ok = (lhs <= room[cand, None]) & np.isfinite(lhs)
            first = np.argmax(ok, axis=1)
            rows = np.arange(cand.size)
            hit = ok[rows, first]
            gsel[cand[hit]] = lad[first[hit]]
            per_key[cand[hit]] = np.exp(t[cand[hit]]) * lhs[rows[hit], first[hit]]
        accept = gsel >= 0
        if accept.any():
            counters["accepted"] += _segment_counts(qi[accept], nq)
            counters["degree_sum"] += np.bincount(qi[accept], weights=gsel[accept], minlength=nq).astype(np.int64)
        for gc in degrees:
            grp = gsel == gc
            if not grp.any():
                continue
            qa, na, ta, ra, pka, ia = qi[grp], nd[grp], t[grp], r[grp], per_key[grp], ridx[grp]
            m_c = int(mono_count[gc])
            alphas_c, invf_c, deg_c = tree.alphas[:m_c], tree.inv_factorial[:m_c], alpha_deg[:m_c]
            for c0 in range(0, qa.size, _PAIR_CHUNK):
                sl = slice(c0, c0 + _PAIR_CHUNK)
                q_, n_ = qa[sl], na[sl]
                F = _features(Qb[q_] * tree.half[n_], alphas_c) * invf_c
                F *= cheb_coef[ia[sl], gc][:, deg_c]
                S = np.einsum("pm,pmc->pc", F, tree.moments[n_, :m_c])
                et = np.exp(ta[sl])
                den += np.bincount(q_, weights=S[:, d_v] * et, minlength=nq)
                settled += np.bincount(q_, weights=tree.count[n_] * np.exp(ta[sl] - ra[sl]), minlength=nq)
                add_rows(num, q_, S[:, :d_v] * et[:, None])
                # Certified approximation error of p on [-R, R] plus rounding, per key (relative to e^{M_i}).
                pk_ = pka[sl]
                err_den += np.bincount(q_, weights=tree.count[n_] * pk_, minlength=nq)
                add_rows(err_num, q_, tree.abs_v[n_, :d_v] * pk_[:, None])
        rec = ~drop & ~accept
        qi, nd = np.repeat(qi[rec], 2), np.stack([2 * nd[rec] + 1, 2 * nd[rec] + 2], axis=1).ravel()
    # Summing the per-node contributions of a row in float64 costs another relative rounding error.
    gam_rows = 2 * (counters["visited"] + 8) * UNIT_ROUNDOFF
    err_den += gam_rows * (den + err_den)
    err_num += gam_rows[:, None] * (np.abs(num) + err_num)
    return {"num": num, "den": den, "err_num": err_num, "err_den": err_den, **counters}


# ------------------------------------------------------------------------------------------------------ low rank


def low_rank_rewrite(
    Q: np.ndarray, K: np.ndarray, rtol: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewrite ``(Q, K)`` as ``(Q W, K W)`` with ``r = min(rank Q, rank K)`` columns (GHSXY25, Theorem 1.1).

    ``W`` holds the right singular vectors of the lower-rank matrix with singular values above
    ``rtol * s_max`` (default ``max(n, d) * 2^-52``). Returns ``Q'``, ``K'`` and per query row ``rho_i`` with
    ``|q_i k_j - q'_i k'_j| <= rho_i`` for every ``j`` (exact arithmetic; Cauchy–Schwarz on the discarded part).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 6)); K = rng.normal(size=(40, 6))
    >>> Q2, K2, rho = low_rank_rewrite(Q, K)
    >>> Q2.shape, bool(np.allclose(Q2 @ K2.T, Q @ K.T)), bool(rho.max() < 1e-10)
    ((50, 2), True, True)
    """
    def row_space(A: np.ndarray) -> tuple[np.ndarray, int]:
        if A.shape[0] == 0:
            return np.zeros((A.shape[1], 0)), 0
        _, s, Vt = np.linalg.svd(A, full_matrices=False)
        tol = (max(A.shape) * 2.0**-52 if rtol is None else rtol) * (s[0] if s.size else 0.0)
        rank = int(np.count_nonzero(s > tol))
        return Vt[:rank].T, rank

    WQ, rq = row_space(Q)
    WK, rk = row_space(K)
    if rq <= rk:
        W = WQ
        rho = np.linalg.norm(Q - (Q @ W) @ W.T, axis=1) * float(np.linalg.norm(K, axis=1).max(initial=0.0))
    else:
        W = WK
        rho = np.linalg.norm(Q, axis=1) * float(np.linalg.norm(K - (K @ W) @ W.T, axis=1).max(initial=0.0))
    return Q @ W, K @ W, rho


# ---------------------------------------------------------------------------------------------------- top level


def anytemp(Q, K, V, *, eps: float, scale: float | None = None, degree: int | None = None,
            leaf_size: int = DEFAULT_LEAF_SIZE, query_batch: int = DEFAULT_QUERY_BATCH,
            low_rank: bool = True) -> AnytempResult:
    """Attention ``D^{-1} exp(s Q K^T) V`` to additive error ``eps`` for any entry size (GHSXY25, Theorem 1.1).

    Implements the window-plus-polynomial scheme of Theorem 1.1 with a kd-tree in place of the partition tree
    (see the module docstring for what is proved and what is only measured).

    Parameters
    ----------
    Q : array_like, shape (n_q, d)
    K : array_like, shape (n, d)
    V : array_like, shape (n, d_v)
    eps : float
        Target additive (entrywise) error, ``> 0``.
    scale : float, optional
        Score scale ``s``, default ``1/d``.
    degree : int, optional
        Largest polynomial degree ``g`` (moments are stored up to it); default :data:`DEFAULT_DEGREE` for the
        tree dimension.
    leaf_size : int
        Keys per leaf (leaves are evaluated exactly).
    query_batch : int
        Queries traversed together.
    low_rank : bool
        Apply :func:`low_rank_rewrite` when ``d > 1``.

    Returns
    -------
    AnytempResult
        Output in log space, certified error bound (``<= eps`` plus float64 rounding terms) and statistics.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> Q, K = rng.uniform(-100, 100, (300, 2)), rng.uniform(-100, 100, (300, 2)); V = rng.normal(size=(300, 1))
    >>> res = anytemp(Q, K, V, eps=1e-6, scale=1.0)
    >>> err = np.abs(res.output.to_float() - exact(Q, K, V, scale=1.0).to_float()).max()
    >>> bool(err <= res.error_bound <= 1e-6), res.degree
    (True, 16)
    """
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    eps = float(eps)
    if not (np.isfinite(eps) and eps > 0):
        raise ParameterError(f"eps must be a finite positive number, got {eps}")
    if leaf_size < 1 or query_batch < 1:
        raise ParameterError(f"leaf_size and query_batch must be >= 1, got {leaf_size}, {query_batch}")
    n_q, d = Q.shape
    n, d_v = K.shape[0], V.shape[1]
    nu_cols = np.abs(V).max(axis=0) if n else np.zeros(d_v)
    nu = float(nu_cols.max(initial=0.0))
    L = max(math.log(4 * n * max(nu, 1e-300) / eps), 0.0)
    log_eta = -L
    Qs = Q * scale
    rho = np.zeros(n_q)
    Kt = K
    if low_rank and d > 1:
        Qs, Kt, rho = low_rank_rewrite(Qs, K)
    r_dim = Qs.shape[1]
    g = DEFAULT_DEGREE.get(max(r_dim, 1), 6) if degree is None else int(degree)
    if g < 0:
        raise ParameterError(f"degree must be >= 0, got {g}")

    if r_dim > MAX_TREE_DIM or n_q == 0:
        out = exact(Q, K, V, scale=scale)
        return AnytempResult(out, 0.0, np.zeros(n_q), eps, L, g, "exact-fallback", r_dim,
                             {"reason": f"tree dimension {r_dim} > {MAX_TREE_DIM}" if n_q else "no queries"})
    if r_dim == 0:
        # Every score is 0 (up to rho): plain averaging of V.
        Qs, Kt = np.zeros((n_q, 1)), np.zeros((n, 1))
        r_dim = 1

    tree = build_tree(Kt, V, g, leaf_size)
    kmax = np.abs(Kt).max(axis=0)
    parts: dict[str, list[np.ndarray]] = {}
    M_all = np.empty(n_q)
    search_visits = np.zeros(n_q, dtype=np.int64)
    for b0 in range(0, n_q, query_batch):
        Qb = Qs[b0 : b0 + query_batch]
        slack = 4 * (r_dim + 4) * UNIT_ROUNDOFF * (np.abs(Qb) @ kmax) + 1e-300
        if r_dim == 1:
            lo_k, hi_k = tree.keys[:, 0].min(), tree.keys[:, 0].max()
            M = np.maximum(Qb[:, 0] * lo_k, Qb[:, 0] * hi_k)
            visits = np.zeros(Qb.shape[0], dtype=np.int64)
        else:
            M, visits = _max_scores(tree, Qb, slack)
        M_all[b0 : b0 + Qb.shape[0]] = M
        search_visits[b0 : b0 + Qb.shape[0]] = visits
        for k, v in _accumulate(tree, Qb, M, L, log_eta).items():
            parts.setdefault(k, []).append(v)
    acc = {k: np.concatenate(v) for k, v in parts.items()}

    num, den, err_num, err_den = acc["num"], acc["den"], acc["err_num"], acc["err_den"]
    # Every weight carries a relative error of at most delta_s from rounding the scores, centres and offsets.
    delta_s = 4 * (r_dim + 4) * UNIT_ROUNDOFF * (np.abs(Qs) @ kmax + np.abs(M_all) + L + 1.0)
    den_lower = np.maximum(den - err_den, np.exp(-delta_s))
    rows = (err_num + nu_cols[None, :] * err_den[:, None]) / den_lower[:, None]
    perturb = nu_cols[None, :] * np.expm1(2 * (delta_s + rho))[:, None]
    row_bounds = (rows + perturb).max(axis=1) if d_v else np.zeros(n_q)
    with np.errstate(divide="ignore", invalid="ignore"):
        out_rel = num / den[:, None]
    out = LogArray.from_float(np.where(np.isfinite(out_rel), out_rel, 0.0))
    visited = acc["visited"]
    stats = {
        "n": n, "n_q": n_q, "d": d, "tree_depth": tree.depth, "leaf_size": tree.leaf_size,
        "monomials": int(tree.alphas.shape[0]),
        "visited_mean": float(visited.mean()), "visited_max": int(visited.max(initial=0)),
        "accepted_mean": float(acc["accepted"].mean()), "dropped_mean": float(acc["dropped"].mean()),
        "crossing_mean": float(acc["crossing"].mean()), "crossing_max": int(acc["crossing"].max(initial=0)),
        "leaves_mean": float(acc["leaves"].mean()),
        "degree_mean": float(acc["degree_sum"].sum() / max(int(acc["accepted"].sum()), 1)),
        "exact_keys_mean": float(acc["exact_keys"].mean()),
        "search_visits_mean": float(search_visits.mean()),
        "rounding_bound": float((nu_cols.max(initial=0.0) * np.expm1(2 * delta_s)).max(initial=0.0)),
        "low_rank_bound": float((nu * np.expm1(2 * rho)).max(initial=0.0)),
    }
    method = "tree-1d" if r_dim == 1 else "tree"
    return AnytempResult(out, float(row_bounds.max(initial=0.0)), row_bounds, eps, L, g, method, r_dim, stats)


def anytemp_oracle(Q, K, V, *, scale: float | None = None, eps: float = 1e-6) -> LogArray:
    """The ``"anytemp"`` oracle: :func:`anytemp` with additive error ``eps`` (certified, see its docstring)."""
    return anytemp(Q, K, V, eps=eps, scale=scale).output


__all__ = ["AnytempResult", "KeyTree", "anytemp", "anytemp_oracle", "build_tree", "low_rank_rewrite",
           "monomial_exponents"]
