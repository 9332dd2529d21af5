r"""Attention at any temperature for small head dimension (Gupta, Huang, Saha, Xu & Ye 2025, Theorem 1.1).

The algorithm of the paper, made practical
------------------------------------------
For each query ``q_i`` (scores ``x_ij = s <q_i, k_j>``):

1. **Maximum.** ``M_i = max_j x_ij`` by branch and bound on a kd-tree over the keys: a node's bounding box gives
   an upper bound ``s q . c + sum_l |s q_l| h_l`` (centre ``c``, half-widths ``h``), one key of the node a lower
   bound; nodes whose upper bound is below the best lower bound found so far are pruned. For ``d = 1`` the
   maximum is ``max(s q k_min, s q k_max)`` in closed form.
2. **Window.** Keys with ``x_ij < M_i - L`` are dropped, ``L = ln(4 n ||V||_inf / eps)``, at most
   ``-LOG_ETA_MIN = 600`` (below ``e^{-600}`` of the row maximum the weights would be subnormal floats).
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
:func:`certify_quotient`): ``AnytempResult.log_bounds`` bounds ``|T_hat - T|`` entrywise (``row_bounds`` per
row); without the rounding terms it is at most about ``eps``. Everything is computed relative to ``e^{M_i}``
with ``V`` scaled by a power of two to ``||V||_inf`` in ``[1/2, 1)``, so nothing overflows. The ingredients:

* ``e_D``, ``e_N`` bound ``|den - D'|`` and ``|num - N'|``, where ``D'``, ``N'`` are the exact sums at the
  weights the algorithm uses (its scores): dropped nodes add ``|S| e^{hi}`` and ``sum_S |V_j| e^{hi}``
  (``hi`` the box's upper score); accepted nodes add ``e^t`` times the certified uniform error of ``p`` on
  ``[-R, R]`` per key (see :func:`_cheb_table`: Chebyshev tail ``2 sum_{k>g'} I_k(R) <= 2 I_{g'+1}(R) /
  (1 - R / (2(g'+2)))``, the error of the computed Bessel values and the rounding of the conversion to
  monomials) plus the rounding of the feature products and moment sums, ``2 (|S| + C(g'+d, d) + 2 g' + 20) u
  e^t sum_j |c_j| R^j`` per key; leaves add ``gamma`` times ``sum w |V|``; the float64 sum of the per-node
  contributions adds ``gamma_{2 visited + 16}`` times the sum of their absolute values (``|num| + 2 e_N`` for a
  column of ``V`` of one sign, ``||V_c|| (|den| + 2 e_D) + 2 e_N`` otherwise); and every operation that can
  underflow adds ``2^-1074``;
* ``delta = delta_s + rho``: ``delta_s = 4 (r + 4) u (sum_l |q_l| max_j |k_jl| + |M_i| + L + 1)`` bounds the
  rounding of every score (relative error ``e^{+-delta_s}`` on each weight), ``rho`` the low-rank rewrite;
* the quotient (issue 11 item 3; the earlier ``(e_N + ||V|| e_D) / max(den - e_D, e^{-delta})`` mixed a bound on
  the computed ``den`` with a floor on the true ``D'`` and failed when ``den`` was far below ``D' >= 1``):
  ``|num/den - N'/D'| <= min((e_N + ||V_c|| e_D) / den, (e_N + |T~| e_D) / D_low)`` with
  ``D_low = max(den - e_D, e^{-2 delta}) <= D'``; then ``+ (e^{2 delta} - 1) sum_j p_j |V_jc|`` for the
  rounding of the scores, the output clipped to ``[min V_c, max V_c]`` (which contains ``T``), the bound capped
  at ``max V_c - min V_c``, plus the rounding of the division and of the conversion to log space.

Every path returns finite bounds or raises one line: scores whose rounding exceeds
:data:`MAX_SCORE_ROUNDING` nats (entries ``>= 1e7`` at scale 1, or ``1e300`` against ``1e-300``) raise
:class:`~instances.errors.NumericalError`; ``degree`` is an integer in ``[0, MAX_DEGREE]`` with at most
:data:`MAX_MONOMIALS` moments (issue 19). :func:`anytemp_oracle` refuses, before any tree work, requests below
the a priori floors it documents (:class:`~instances.errors.UncertifiedError`).

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
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product

import numpy as np

from instances.errors import NumericalError, ParameterError, UncertifiedError, real_number, short_repr
from instances.logspace import LogArray

from .exact import exact  # noqa: F401  (the docstring examples compare with it)
from .protocol import Certificate, OracleAnswer, _fmt_log, check_attention_inputs

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
    log_bounds : numpy.ndarray, shape (n_q, d_v)
        Natural log of the certified bound on ``|T_hat_ij - T_ij|`` per entry (``-inf``: exact); ``row_bounds``
        is its row maximum rounded up to a float.
    parts : dict
        The quantities the bound is computed from (tree paths; in the units of ``V 2^-v_log2``, relative to
        ``e^{M_i}``): ``num``, ``den``, ``err_num``, ``err_den``, ``delta`` (= ``delta_s + rho``), ``delta_s``,
        ``rho``, ``nu_cols``, ``vmin``, ``vmax``, ``single_sign``, ``v_log2``, ``M``; see
        :func:`certify_quotient`.
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
    log_bounds: np.ndarray | None = None
    parts: dict = field(default_factory=dict)


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

    Moments ``sum_{j in S} u_j^alpha [V_j | 1]`` are accumulated over fixed ranges of the sorted keys (a node that
    spans two ranges gets the sum of two partial sums), at cost ``O(n C(g + d, d) (d_v + 1))`` per level.
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
    most twice the last term (added). The first term ``(R/2)^k / k!`` is the product of the ``k`` factors
    ``(R/2) / j`` (``R/2`` is exact; two roundings per factor, ``2k u``), not ``exp(k log(R/2) - lgamma(k+1))``,
    whose error would be that of ``lgamma`` and ``log`` scaled by ``k |log(R/2)| + lgamma(k+1)``, which the
    standard model does not bound. Rounding: ``(4m + 2k + 10) u`` for the series (standard model, positive
    terms), plus ``2k u`` for the first term and ``2 u`` for the ``gamma_n = n u / (1 - n u)`` slack:
    ``(4m + 4k + 12) u`` relative.
    """
    vals, rel = np.empty(kmax + 1), np.empty(kmax + 1)
    half = R / 2
    for k in range(kmax + 1):
        term = 1.0
        for j in range(1, k + 1):
            term *= half / j
        if not term >= sys.float_info.min / 1e-18:
            # below ~2e-290 the stopping test's 1e-18 * total underflows to 0 and never becomes true (a subnormal
            # or zero term, which has no relative error bound, would loop forever as well)
            raise NumericalError(f"I_{k}({R:g}) underflows float64: its first term (R/2)^k / k! = {term:g}")
        total, m = term, 0
        while True:
            rho = half**2 / ((m + 1) * (m + k + 1))
            term *= rho
            m += 1
            total += term
            if rho < 0.5 and term < 1e-18 * total:
                break
        vals[k] = total + 2 * term
        rel[k] = (4 * m + 4 * k + 12) * UNIT_ROUNDOFF
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


def _gamma(m: np.ndarray | float) -> np.ndarray:
    """Higham's ``gamma_m = m u / (1 - m u)``: relative error bound of ``m`` float64 operations in sequence."""
    mu = np.asarray(m, dtype=np.float64) * UNIT_ROUNDOFF
    if np.any(mu >= 0.5):
        raise NumericalError("too many float64 operations for the rounding analysis (m u >= 1/2)")
    return mu / (1.0 - mu)


def _leaf_chunk(tree: KeyTree) -> int:
    """(query, leaf) pairs evaluated at once: the padded score and value arrays stay near 2^22 numbers."""
    width = int((tree.stop[-(2**tree.depth):] - tree.start[-(2**tree.depth):]).max(initial=1))
    per_pair = max(1, width * (tree.keys.shape[1] + tree.values.shape[1] + 2))
    return max(1, min(_PAIR_CHUNK, 2**22 // per_pair))


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
    leaf_chunk = _leaf_chunk(tree)
    for c0 in range(0, qi.size, leaf_chunk):
        sl = slice(c0, c0 + leaf_chunk)
        x, _ = _leaf_scores(tree, Qb, qi[sl], nd[sl])
        np.maximum.at(best, qi[sl], x.max(axis=1, initial=-np.inf))
    return best, visits


def _accumulate(tree: KeyTree, Qb: np.ndarray, M: np.ndarray, log_eta: float, nu_cols: np.ndarray,
                single_sign: np.ndarray) -> dict:
    """Level-synchronous traversal for one batch: relative numerators/denominator and their error terms.

    ``err_num`` and ``err_den`` bound ``|num - N'|`` and ``|den - D'|``, where ``N'``, ``D'`` are the sums of
    the weights ``e^{x_j - M_i}`` (at the scores the algorithm uses) times ``V_j`` and 1: dropped mass,
    polynomial errors, the rounding of every product and sum, and absolute underflow terms (``2^-1074`` per
    operation that can produce a subnormal). ``single_sign[c]`` says that column ``c`` of ``V`` has one sign, so
    that ``sum_j w_j |V_jc| = |N'_c|``; otherwise ``||V_c||_inf D'`` bounds it.
    """
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
                                                           "exact_keys", "degree_sum", "degree_max")}
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
            leaf_chunk = _leaf_chunk(tree)
            for c0 in range(0, qi.size, leaf_chunk):
                sl = slice(c0, c0 + leaf_chunk)
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
            np.maximum.at(counters["degree_max"], qi[accept], gsel[accept])
        for gc in degrees:
            grp = gsel == gc
            if not grp.any():
                continue
            qa, na, ta, ra, pka, ia = qi[grp], nd[grp], t[grp], r[grp], per_key[grp], ridx[grp]
            m_c = int(mono_count[gc])
            alphas_c, invf_c, deg_c = tree.alphas[:m_c], tree.inv_factorial[:m_c], alpha_deg[:m_c]
            # (pairs, monomials, d_v + 1) is materialised per chunk: keep it near 2^21 numbers.
            pair_chunk = max(64, min(_PAIR_CHUNK, 2**21 // max(1, m_c * (d_v + 1))))
            for c0 in range(0, qa.size, pair_chunk):
                sl = slice(c0, c0 + pair_chunk)
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
    # Summing the per-node contributions of a row in float64 (bincount, then += per level, chunk and degree
    # group; additions of an exact 0 are exact) costs gamma_m times the sum of their absolute values, m <= 2
    # visited + 16. A contribution approximates a part of N' (D') to within its own error term, so the absolute
    # values sum to at most |N'| + e (one-signed columns and D) or ||V_c|| D' + e (mixed signs), with
    # |N'| <= |num| + e + rounding: hence the 1 / (1 - gamma).
    gam_rows = _gamma(2 * counters["visited"] + 16)
    grow = 1.0 / (1.0 - gam_rows)
    den_abs = (np.abs(den) + 2 * err_den) * grow
    num_abs = np.where(single_sign[None, :], np.abs(num) + 2 * err_num,
                       nu_cols[None, :] * (np.abs(den) + 2 * err_den)[:, None] + 2 * err_num) * grow[:, None]
    # Absolute underflow: every exp, product and sum of the traversal may round a subnormal by 2^-1074; at most
    # 8 (n + visited (m + 8)) such operations feed one row (m monomials), and V was scaled by a power of two,
    # which rounds entries far below ||V|| by 2^-1075 each (weighted by the weights, so by D').
    m_all = tree.alphas.shape[0]
    tiny = _TINY * 8.0 * (tree.keys.shape[0] + counters["visited"] * (m_all + 8.0))
    err_den = err_den + gam_rows * den_abs + tiny
    err_num = err_num + gam_rows[:, None] * num_abs + tiny[:, None] + _TINY * (np.abs(den) + 2 * err_den)[:, None]
    return {"num": num, "den": den, "err_num": err_num, "err_den": err_den, **counters}


# ------------------------------------------------------------------------------------------------------ low rank


def _row_norms(A: np.ndarray) -> np.ndarray:
    """Euclidean row norms, rounded up, without overflow or underflow of the squares (rows scaled first)."""
    top = np.abs(A).max(axis=1, initial=0.0)
    safe = np.where(top > 0, top, 1.0)
    return top * np.sqrt(((A / safe[:, None]) ** 2).sum(axis=1)) * (1 + 4 * (A.shape[1] + 4) * UNIT_ROUNDOFF)


def low_rank_rewrite(
    Q: np.ndarray, K: np.ndarray, rtol: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewrite ``(Q, K)`` as ``(Q W, K W)`` with ``r = min(rank Q, rank K)`` columns (GHSXY25, Theorem 1.1).

    ``W`` holds the right singular vectors of the lower-rank matrix with singular values above
    ``rtol * s_max`` (default ``max(n, d) * 2^-52``). Returns ``Q'``, ``K'`` and per query row ``rho_i`` with
    ``|q_i k_j - q'_i k'_j| <= rho_i`` for every ``j``, for the float64 ``Q'``, ``K'`` returned: Cauchy–Schwarz on
    the discarded part, ``|q (I - W W^T) k| <= ||q - q W W^T|| ||k||``, plus the rounding of the residual and of
    the products ``Q W``, ``K W`` (standard model, ``gamma_m`` terms times ``||q|| ||k|| (||W||_F^2 + 1)``).

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
        try:
            _, s, Vt = np.linalg.svd(A, full_matrices=False)
        except np.linalg.LinAlgError as exc:
            raise NumericalError(f"the SVD of the low-rank rewrite did not converge ({exc})") from None
        tol = (max(A.shape) * 2.0**-52 if rtol is None else rtol) * (s[0] if s.size else 0.0)
        rank = int(np.count_nonzero(s > tol))
        return Vt[:rank].T, rank

    WQ, rq = row_space(Q)
    WK, rk = row_space(K)
    d = Q.shape[1]
    qn, kn = _row_norms(Q), float(_row_norms(K).max(initial=0.0))
    if rq <= rk:
        W = WQ
        res = _row_norms(Q - (Q @ W) @ W.T) * kn
    else:
        W = WK
        res = qn * float(_row_norms(K - (K @ W) @ W.T).max(initial=0.0))
    wf2 = float((W * W).sum()) * (1 + 1e-12)
    # Residual computed in float64 (two products and a subtraction), and the rounding of Q W and K W themselves.
    rounding = (2 * float(_gamma(d + W.shape[1] + 4)) * (wf2 + 1) + 3 * float(_gamma(d + 2)) * wf2) * qn * kn
    return Q @ W, K @ W, (res + rounding) * (1 + 1e-12)


# ---------------------------------------------------------------------------------------------------- top level

#: largest ``degree`` accepted (issue 19): beyond it the Chebyshev-to-monomial conversion loses every digit and
#: the moments grow as ``C(g + d, d)``
MAX_DEGREE = 32
#: largest monomial count ``C(g + r, r)`` (``r`` the tree dimension) accepted for the moments
MAX_MONOMIALS = 4096
#: the window stops where the weights ``exp(x - M_i)`` leave the normal float64 range: the per-key budget
#: ``eta`` is at least ``e^{LOG_ETA_MIN}``, so no additive error below ``4 n ||V||_inf e^{LOG_ETA_MIN}`` is
#: certified (``anytemp_oracle`` refuses such requests)
LOG_ETA_MIN = -600.0
#: scores whose float64 rounding ``8 (d + 4) u max_i sum_l |s q_il| max_j |k_jl|`` reaches this many nats leave
#: the weights undetermined even to a factor ``e``: anytemp refuses them with a NumericalError
MAX_SCORE_ROUNDING = 1.0
#: smallest positive (subnormal) float64: the absolute rounding error of an operation that underflows
_TINY = 2.0**-1074
_LN2 = math.log(2.0)


def _int_param(name: str, value, lo: int, hi: int | None = None) -> int:
    """An integer parameter in ``[lo, hi]``, or a one-line ParameterError (bools and non-integral floats refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ParameterError(f"{name} must be an integer, got {short_repr(value)}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ParameterError(f"{name} must be {bound}, got {value}")
    return value


@dataclass
class _Setup:
    """Validated inputs and the quantities fixed before any tree work (see :func:`_setup`)."""

    Q: np.ndarray
    K: np.ndarray
    V: np.ndarray
    scale: float
    Qs: np.ndarray
    Kt: np.ndarray
    rho: np.ndarray
    r_dim: int
    g: int
    leaf_size: int
    query_batch: int
    v_log2: int
    Vs: np.ndarray
    nu_cols: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    single_sign: np.ndarray
    score_tiny: float
    delta_floor: np.ndarray
    method: str
    reason: str = ""


def _setup(Q, K, V, scale, degree, leaf_size, query_batch, low_rank) -> _Setup:
    """Check every argument and limit (cheap: ``O((n + n_q) d)`` plus the thin SVD of the low-rank rewrite).

    * ``Q s`` and ``K`` are rebalanced by a power of two (scores unchanged) and ``V`` is scaled by ``2^-v_log2``
      so that ``||V||_inf`` lies in ``[1/2, 1)``: no sum or norm can overflow, whatever the entry sizes.
    * Scores whose rounding alone exceeds :data:`MAX_SCORE_ROUNDING` nats are refused (NumericalError).
    """
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    g_req = None if degree is None else _int_param("degree", degree, 0, MAX_DEGREE)
    leaf_size = _int_param("leaf_size", leaf_size, 1, 2**20)
    query_batch = _int_param("query_batch", query_batch, 1, 2**24)
    if not isinstance(low_rank, (bool, np.bool_)):
        raise ParameterError(f"low_rank must be True or False, got {low_rank!r}")
    n_q, d = Q.shape
    n, d_v = K.shape[0], V.shape[1]
    Qs = Q * scale
    qa, ka = float(np.abs(Qs).max(initial=0.0)), float(np.abs(K).max(initial=0.0))
    kmax0 = np.abs(K).max(axis=0) if n else np.zeros(d)
    S = float((np.abs(Qs) @ kmax0).max(initial=0.0)) if d else 0.0
    if 8 * (d + 4) * UNIT_ROUNDOFF * S >= MAX_SCORE_ROUNDING:
        raise NumericalError(
            f"scores s<q,k> reach {S:.3g}: float64 rounds them by up to {8 * (d + 4) * UNIT_ROUNDOFF * S:.3g} "
            "nats, so exp(score) is not determined even to a factor e and anytemp can certify nothing; rescale "
            "Q, K or scale")
    Kb = K
    if qa > 0 and ka > 0:
        # Powers of two keep the products exact; both factors end near sqrt(max score).
        e = int(round(0.5 * (math.frexp(ka)[1] - math.frexp(qa)[1])))
        Qs, Kb = np.ldexp(Qs, e), np.ldexp(K, -e)
    qb, kb = float(np.abs(Qs).max(initial=0.0)), float(np.abs(Kb).max(initial=0.0))
    # Underflow of Q * scale and of the rebalancing: 2^-1075 per entry, times the other factor, per coordinate.
    score_tiny = (d + 4) * math.ldexp(ka + qa + qb + kb + 4.0, -1073)
    nu = float(np.abs(V).max(initial=0.0))
    v_log2 = math.frexp(nu)[1] if nu > 0 else 0
    Vs = np.ldexp(V, -v_log2)
    nu_cols = np.abs(Vs).max(axis=0) if n else np.zeros(d_v)
    vmin, vmax = Vs.min(axis=0), Vs.max(axis=0)
    single_sign = (vmin >= 0) | (vmax <= 0)
    rho = np.zeros(n_q)
    Kt = Kb
    if low_rank and d > 1 and n_q > 0 and not (d > MAX_TREE_DIM and _rank_surely_above(Qs, MAX_TREE_DIM)
                                              and _rank_surely_above(Kb, MAX_TREE_DIM)):
        Q2, K2, rho2 = low_rank_rewrite(Qs, Kb)
        # The rounding of Q * scale (u |q s| per entry) enters the scores through ||q s|| ||k||.
        rho2 = rho2 + 2 * UNIT_ROUNDOFF * _row_norms(Qs) * float(_row_norms(Kb).max(initial=0.0))
        # Only a rewrite that lowers the dimension pays for its rounding, and one whose perturbation is not
        # negligible would cost more certificate than it saves.
        if Q2.shape[1] < d and float(rho2.max(initial=0.0)) <= 1e-7:
            Qs, Kt, rho = Q2, K2, rho2
    r_dim = Qs.shape[1]
    method, reason = ("tree-1d" if r_dim <= 1 else "tree"), ""
    if n_q == 0:
        method, reason = "exact-fallback", "no queries"
    elif r_dim > MAX_TREE_DIM:
        method, reason = "exact-fallback", f"tree dimension {r_dim} > {MAX_TREE_DIM}"
    if r_dim == 0:
        # Every score is 0 (up to rho): plain averaging of V, in a one-dimensional tree.
        Qs, Kt, r_dim = np.zeros((n_q, 1)), np.zeros((n, 1)), 1
    g = DEFAULT_DEGREE.get(max(r_dim, 1), 6) if g_req is None else g_req
    if method != "exact-fallback" and math.comb(g + r_dim, r_dim) > MAX_MONOMIALS:
        raise ParameterError(f"degree {g} in tree dimension {r_dim} needs {math.comb(g + r_dim, r_dim)} moments per "
                             f"node; at most {MAX_MONOMIALS} are allowed (lower the degree)")
    kmax = np.abs(Kt).max(axis=0) if n else np.zeros(r_dim)
    delta_floor = 4 * (r_dim + 4) * UNIT_ROUNDOFF * (np.abs(Qs) @ kmax + 1.0) + score_tiny
    return _Setup(Q, K, V, scale, Qs, Kt, rho, r_dim, g, leaf_size, query_batch, v_log2, Vs, nu_cols, vmin, vmax,
                  single_sign, score_tiny, delta_floor, method, reason)


def _rank_surely_above(A: np.ndarray, r: int) -> bool:
    """True when ``A`` has ``r + 1`` singular values well apart from 0, judged on a Gaussian sketch ``A G``.

    ``A G`` (``G`` of shape ``(d, r + 4)``, fixed seed) has the rank of ``A`` up to ``r + 4``; its ``(r+1)``-th
    singular value above ``1e-6`` of the first means that no rewrite to ``r`` columns can exist, so the thin SVD
    of ``A`` (seconds for a 2048 x 1020 instance of the chain) is skipped. A False answer only means "not sure".
    """
    if A.shape[0] <= r or A.shape[1] <= r:
        return False
    G = np.random.default_rng(0).standard_normal((A.shape[1], r + 4))
    top = float(np.abs(A).max(initial=0.0))
    if top == 0:
        return False
    try:
        s = np.linalg.svd((A / top) @ G, compute_uv=False)
    except np.linalg.LinAlgError:
        return False
    return bool(s.size > r and s[r] > 1e-6 * s[0])


def _log_expm1(x: np.ndarray) -> np.ndarray:
    """``log(e^x - 1)`` for ``x >= 0`` without overflow (``-inf`` at 0)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(x > 30, x + np.log1p(-np.exp(-np.minimum(x, 700.0))), np.log(np.expm1(np.minimum(x, 30.0))))


def certify_quotient(num: np.ndarray, den: np.ndarray, err_num: np.ndarray, err_den: np.ndarray,
                     delta: np.ndarray, nu_cols: np.ndarray, vmin: np.ndarray, vmax: np.ndarray,
                     single_sign: np.ndarray, v_log2: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""The output ``T^`` and an entrywise bound ``E >= |T^ - T|`` from certified sums (module docstring).

    With ``N'``, ``D'`` the sums at the perturbed weights (``|num - N'| <= e_N``, ``|den - D'| <= e_D``), every
    ``T' = N'/D'`` is a convex combination of the rows of ``V``, and ``D' >= e^{-2 delta}`` (the key whose computed
    score is ``M_i`` has weight ``>= e^{-delta}`` at the scores used, one more ``delta`` for the perturbation).
    For ``T~ = num/den``:

    * (A) ``T~ - T' = (num - N')/den + T' (D' - den)/den``, so ``|T~ - T'| <= (e_N + ||V_c|| e_D) / den`` when
      ``den > 0``; the computed ``den`` is the divisor here, **not** a lower bound on ``D'``;
    * (B) ``T~ - T' = (num - N')/D' + T~ (D' - den)/D'``, so ``|T~ - T'| <= (e_N + |T~| e_D) / D_low`` with the
      valid lower bound ``D_low = max(den - e_D, e^{-2 delta}) <= D'``;
    * if ``den <= 0`` (or ``num/den`` overflows) ``T~ = 0`` and ``|T'| <= (|num| + e_N) / D_low``;
    * the true weights differ from the perturbed ones by a factor in ``[e^{-delta - rho}, e^{delta + rho}]``, so
      ``|T - T'| <= (e^{2 (delta + rho)} - 1) sum_j p'_j |V_jc|``, which is ``|T'_c| <= |T~_c| + A`` for a column
      of one sign and ``||V_c||`` otherwise (``delta`` here already includes ``rho``);
    * ``T`` lies in ``[min_j V_jc, max_j V_jc]``: clipping ``T~`` to it never increases the error, and bounds
      it by the width of the interval;
    * the division and the conversion to log space (``log|T^|`` and the ``2^v_log2`` shift) add
      ``|T^| (u + e^{2 u (|log|T^|| + |v_log2| ln 2 + 4)} - 1)``.

    So ``E = min(min(A, B) + P, max V_c - min V_c) + rounding``.
    """
    nq = den.shape[0]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_raw = num / den[:, None]
        ok = (den[:, None] > 0) & np.isfinite(t_raw)
        d_floor = np.exp(-2 * delta)
        d_low = np.maximum(den - err_den, d_floor)
        t = np.where(ok, t_raw, 0.0)
        form_a = np.where(ok, (err_num + nu_cols[None, :] * err_den[:, None]) / np.where(ok, den[:, None], 1.0),
                          np.inf)
        form_b = np.where(ok, (err_num + np.abs(t) * err_den[:, None]) / d_low[:, None],
                          (np.abs(num) + err_num) / d_low[:, None])
        a = np.minimum(form_a, form_b)
        weight = np.where(single_sign[None, :], np.abs(t) + a, nu_cols[None, :])
        p = np.expm1(2 * delta)[:, None] * weight
        e = np.minimum(a + p, (vmax - vmin)[None, :])
    e = np.where(np.isfinite(e), e, (vmax - vmin)[None, :] * np.ones((nq, 1)))
    t = np.clip(t, vmin[None, :], vmax[None, :])
    with np.errstate(divide="ignore"):
        log_t = np.where(t != 0, np.log(np.abs(t)), 0.0)
    rounding = np.abs(t) * (UNIT_ROUNDOFF + np.expm1(2 * UNIT_ROUNDOFF * (np.abs(log_t) + abs(v_log2) * _LN2 + 4)))
    return t, e + rounding


def _unscale(x: float, v_log2: int) -> float:
    """``x 2^v_log2`` for a reported statistic, saturating at the float range instead of raising."""
    if not x > 0:
        return 0.0
    return math.exp(min(math.log(x) + v_log2 * _LN2, LOG_HUGE_BOUND))


def _tree_run(st: _Setup, log_eps_s: float) -> dict:
    """The tree algorithm at per-entry accuracy ``e^{log_eps_s}`` in the units of the scaled ``V``."""
    n_q = st.Qs.shape[0]
    n = st.Kt.shape[0]
    nu = float(st.nu_cols.max(initial=0.0))
    L = max(math.log(4 * n) + math.log(nu) - log_eps_s, 0.0)
    # Below e^{LOG_ETA_MIN} of the row maximum the weights leave the normal float64 range: the window stops there.
    L = min(L, -LOG_ETA_MIN)
    tree = build_tree(st.Kt, st.Vs, st.g, st.leaf_size)
    kmax = np.abs(st.Kt).max(axis=0)
    parts: dict[str, list[np.ndarray]] = {}
    M_all = np.empty(n_q)
    search_visits = np.zeros(n_q, dtype=np.int64)
    for b0 in range(0, n_q, st.query_batch):
        Qb = st.Qs[b0 : b0 + st.query_batch]
        slack = 4 * (st.r_dim + 4) * UNIT_ROUNDOFF * (np.abs(Qb) @ kmax) + 1e-300
        if st.r_dim == 1:
            lo_k, hi_k = tree.keys[:, 0].min(), tree.keys[:, 0].max()
            M = np.maximum(Qb[:, 0] * lo_k, Qb[:, 0] * hi_k)
            visits = np.zeros(Qb.shape[0], dtype=np.int64)
        else:
            M, visits = _max_scores(tree, Qb, slack)
        M_all[b0 : b0 + Qb.shape[0]] = M
        search_visits[b0 : b0 + Qb.shape[0]] = visits
        for k, v in _accumulate(tree, Qb, M, -L, st.nu_cols, st.single_sign).items():
            parts.setdefault(k, []).append(v)
    acc = {k: np.concatenate(v) for k, v in parts.items()}
    # Every weight carries a relative error of at most delta_s from rounding the scores, centres and offsets.
    delta_s = 4 * (st.r_dim + 4) * UNIT_ROUNDOFF * (np.abs(st.Qs) @ kmax + np.abs(M_all) + L + 1.0) + st.score_tiny
    delta = delta_s + st.rho
    out, bound = certify_quotient(acc["num"], acc["den"], acc["err_num"], acc["err_den"], delta, st.nu_cols,
                                  st.vmin, st.vmax, st.single_sign, st.v_log2)
    visited = acc["visited"]
    stats = {
        "n": n, "n_q": n_q, "d": st.Q.shape[1], "tree_depth": tree.depth, "leaf_size": tree.leaf_size,
        "monomials": int(tree.alphas.shape[0]),
        "visited_mean": float(visited.mean()), "visited_max": int(visited.max(initial=0)),
        "accepted_mean": float(acc["accepted"].mean()), "dropped_mean": float(acc["dropped"].mean()),
        "crossing_mean": float(acc["crossing"].mean()), "crossing_max": int(acc["crossing"].max(initial=0)),
        "leaves_mean": float(acc["leaves"].mean()),
        "degree_mean": float(acc["degree_sum"].sum() / max(int(acc["accepted"].sum()), 1)),
        "degree_max": int(acc["degree_max"].max(initial=0)),
        "exact_keys_mean": float(acc["exact_keys"].mean()),
        "search_visits_mean": float(search_visits.mean()),
        "rounding_bound": _unscale(float((nu * np.expm1(2 * delta_s)).max(initial=0.0)), st.v_log2),
        "low_rank_bound": _unscale(float((nu * np.expm1(2 * st.rho)).max(initial=0.0)), st.v_log2),
    }
    parts_out = {"num": acc["num"], "den": acc["den"], "err_num": acc["err_num"], "err_den": acc["err_den"],
                 "delta": delta, "delta_s": delta_s, "rho": st.rho, "nu_cols": st.nu_cols, "vmin": st.vmin,
                 "vmax": st.vmax, "single_sign": st.single_sign, "v_log2": st.v_log2, "M": M_all}
    return {"out": out, "bound": bound, "window": L, "stats": stats, "parts": parts_out}


def _finish(st: _Setup, out_s: np.ndarray, bound_s: np.ndarray) -> tuple[LogArray, np.ndarray]:
    """Output and per-entry log bounds in the units of the original ``V`` (undo the ``2^v_log2`` scaling)."""
    shift = st.v_log2 * _LN2
    out = LogArray.from_float(out_s)
    out = LogArray(out.sign, np.where(out.sign != 0, out.log_abs + shift, -np.inf))
    with np.errstate(divide="ignore"):
        # 1e-12 relative covers the rounding of the few operations that assembled the bound.
        log_b = np.where(bound_s > 0, np.log(bound_s) + shift + 1e-12, -np.inf)
    return out, log_b


def _float_bounds(log_b: np.ndarray) -> np.ndarray:
    """Per-row float bounds from log bounds, rounded up (a bound below the float range becomes 5e-324, not 0)."""
    if log_b.size == 0:
        return np.zeros(log_b.shape[0])
    worst = log_b.max(axis=1)
    if np.any(worst > LOG_HUGE_BOUND):
        raise NumericalError(f"anytemp's error bound exp({float(worst.max()):.6g}) overflows float64; rescale V")
    with np.errstate(under="ignore"):
        vals = np.exp(worst)
    return np.where(np.isneginf(worst), 0.0, np.maximum(vals, _TINY))


#: log of the largest bound reported as a float
LOG_HUGE_BOUND = 709.0


def _fallback(st: _Setup) -> tuple[LogArray, np.ndarray]:
    """The exact oracle, its ``"log"`` certificate turned additive: ``|T~ - T| <= |T~| (e^delta - 1)``."""
    n_q, d_v = st.Q.shape[0], st.V.shape[1]
    if n_q == 0:
        return LogArray(np.zeros((0, d_v), np.int8), np.full((0, d_v), -np.inf)), np.full((0, d_v), -np.inf)
    from .exact import exact_oracle

    ans = exact_oracle(st.Q, st.K, st.V, scale=st.scale)
    if not ans.certificate.certified:
        raise NumericalError(f"anytemp fell back to exact attention ({st.reason}), whose float64 analysis certifies "
                             "nothing here (cancellation)")
    delta = np.exp(np.broadcast_to(np.asarray(ans.certificate.log_bound, dtype=np.float64), ans.output.shape))
    log_b = np.where(ans.output.sign != 0, ans.output.log_abs + _log_expm1(delta) + 1e-12, -np.inf)
    return ans.output, log_b


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
        Target additive (entrywise) error, ``> 0``. The certified bound is at most about ``eps`` plus float64
        rounding terms; it is reported, never assumed.
    scale : float, optional
        Score scale ``s``, default ``1/d``.
    degree : int, optional
        Largest polynomial degree ``g``, an integer in ``[0, MAX_DEGREE]`` with ``C(g + r, r) <= MAX_MONOMIALS``
        in tree dimension ``r`` (moments are stored up to it); default :data:`DEFAULT_DEGREE`.
    leaf_size : int
        Keys per leaf (leaves are evaluated exactly).
    query_batch : int
        Queries traversed together.
    low_rank : bool
        Apply :func:`low_rank_rewrite` when ``d > 1``.

    Returns
    -------
    AnytempResult
        Output in log space (clipped to the column ranges of ``V``), certified per-entry bounds
        (``log_bounds``), per-row bounds and statistics.

    Raises
    ------
    ParameterError
        Bad shapes, ``eps``, ``degree``, ``leaf_size`` or ``query_batch``.
    NumericalError
        Scores so large that their float64 rounding exceeds :data:`MAX_SCORE_ROUNDING` nats (entries ``>= 1e7``
        at scale 1, or ``1e300`` against ``1e-300``): no bound below the range of ``V`` could be certified.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> Q, K = rng.uniform(-100, 100, (300, 2)), rng.uniform(-100, 100, (300, 2)); V = rng.normal(size=(300, 1))
    >>> res = anytemp(Q, K, V, eps=1e-6, scale=1.0)
    >>> err = np.abs(res.output.to_float() - exact(Q, K, V, scale=1.0).to_float()).max()
    >>> bool(err <= res.error_bound <= 1e-6), res.degree
    (True, 16)
    """
    try:
        # real_number: strings, bools and complex numbers are refused, not converted or truncated
        eps = real_number("eps", eps, finite=False)
    except ParameterError:
        raise ParameterError(f"eps must be a finite positive number, got {short_repr(eps)}") from None
    if not (math.isfinite(eps) and eps > 0):
        raise ParameterError(f"eps must be a finite positive number, got {eps}")
    st = _setup(Q, K, V, scale, degree, leaf_size, query_batch, low_rank)
    return _run(st, math.log(eps))


def _run(st: _Setup, log_eps: float) -> AnytempResult:
    n_q, d_v = st.Q.shape[0], st.V.shape[1]
    n = st.K.shape[0]
    eps = math.exp(min(log_eps, LOG_HUGE_BOUND))
    nu = float(np.abs(st.V).max(initial=0.0))
    if st.method == "exact-fallback":
        out, log_b = _fallback(st)
        L = max(math.log(4 * n) + math.log(nu) - log_eps, 0.0) if nu > 0 else 0.0
        rows = _float_bounds(log_b)
        return AnytempResult(out, float(rows.max(initial=0.0)), rows, eps, L, st.g, "exact-fallback", st.r_dim,
                             {"reason": st.reason}, log_b, {})
    if nu == 0:
        # V = 0: the output is exactly 0.
        zero = LogArray(np.zeros((n_q, d_v), np.int8), np.full((n_q, d_v), -np.inf))
        return AnytempResult(zero, 0.0, np.zeros(n_q), eps, 0.0, st.g, st.method, st.r_dim, {"reason": "V = 0"},
                             np.full((n_q, d_v), -np.inf), {})
    run = _tree_run(st, log_eps - st.v_log2 * _LN2)
    out, log_b = _finish(st, run["out"], run["bound"])
    rows = _float_bounds(log_b)
    return AnytempResult(out, float(rows.max(initial=0.0)), rows, eps, run["window"], st.g, st.method, st.r_dim,
                         run["stats"], log_b, run["parts"])


def _refusal(st: _Setup, log_eps: float) -> str | None:
    """Why ``e^{log_eps}`` cannot be certified by the tree algorithm, from a priori lower bounds (or None)."""
    n = st.K.shape[0]
    nu = float(st.nu_cols.max(initial=0.0))
    if nu == 0:
        return None
    shift = st.v_log2 * _LN2
    log_eps_s = log_eps - shift
    floor_window = math.log(4 * n) + math.log(nu) + LOG_ETA_MIN
    if log_eps_s < floor_window:
        return (f"its window stops at e^{LOG_ETA_MIN:g} of the row maximum, where float64 weights turn subnormal, "
                f"so it certifies no additive error below 4 n ||V||inf e^{LOG_ETA_MIN:g} = "
                f"{_fmt_log(floor_window + shift)}")
    mixed = ~st.single_sign
    if mixed.any():
        # For a column with both signs the bound contains ||V_c|| (e^{2 (delta + rho)} - 1) >= this floor
        # (delta >= delta_floor), unless the trivial bound max V_c - min V_c is smaller.
        with np.errstate(over="ignore"):
            p_floor = np.expm1(2 * (st.delta_floor + st.rho))[:, None] * st.nu_cols[None, mixed]
        best = np.minimum(p_floor, (st.vmax - st.vmin)[None, mixed])
        worst = float(best.max(initial=0.0))
        if worst > 0 and log_eps_s < math.log(worst):
            return (f"float64 rounding of scores up to {float((np.abs(st.Qs) @ np.abs(st.Kt).max(axis=0)).max()):.3g} "
                    f"alone costs ||V_c||inf (e^(2 delta) - 1) = {_fmt_log(math.log(worst) + shift)} on a column of V "
                    "with both signs")
    return None


def anytemp_oracle(Q, K, V, *, scale: float | None = None, log_eps: float | None = None,
                   eps: float | None = None) -> OracleAnswer:
    """The ``"anytemp"`` oracle: :func:`anytemp` with its per-entry bound as an ``"additive"`` certificate.

    Parameters
    ----------
    Q, K, V, scale
        As for :func:`anytemp`.
    log_eps : float, optional
        Natural log of the additive error the caller needs (oracle protocol). anytemp then runs at that accuracy
        It raises :class:`~instances.errors.UncertifiedError` (one line: the accuracy requested, the best
        certifiable, why) **before** the tree work when an a priori lower bound on its certificate exceeds the
        request: the window floor ``4 n ||V||inf e^{LOG_ETA_MIN}``, or, for a column of ``V`` with both signs, the
        score rounding ``||V_c|| (e^{2 delta_i} - 1)`` (``delta_i >= 4 (r + 4) u (sum_l |q'_il| max_j |k'_jl| +
        1)``). If the bound measured after the tree work still exceeds the request (after one retry at a quarter
        of the accuracy), the answer is returned with its true certificate and ``info["request_met"] = False``:
        the caller decides by the certificate, never by the request.
    eps : float, optional
        Plain additive target (default ``1e-6`` when neither is given); the certificate is whatever anytemp
        proves, which may exceed ``eps`` by rounding terms. Give ``eps`` or ``log_eps``, not both.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = rng.normal(size=(20, 2)), rng.normal(size=(30, 2)), rng.uniform(0, 1, (30, 1))
    >>> ans = anytemp_oracle(Q, K, V, log_eps=-20.0)
    >>> ans.certificate.kind, bool(ans.certificate.worst_log_bound <= -20.0)
    ('additive', True)
    >>> anytemp_oracle(Q, K, V, log_eps=-800.0)
    Traceback (most recent call last):
    ...
    instances.errors.UncertifiedError: anytemp cannot certify the requested additive error e^-800: ...
    """
    if log_eps is not None and eps is not None:
        raise ParameterError("give eps or log_eps, not both")
    if log_eps is not None:
        try:
            # real_number: strings, bools and complex numbers are refused, not converted or truncated
            log_eps = real_number("log_eps", log_eps, finite=False)
        except ParameterError:
            raise ParameterError(f"log_eps must be a real number, got {short_repr(log_eps)}") from None
        if math.isnan(log_eps) or log_eps == math.inf:
            raise ParameterError(f"log_eps must be a real number below +inf, got {log_eps}")
        if log_eps == -math.inf:
            raise UncertifiedError("anytemp cannot certify the requested additive error 0: its bound includes "
                                   "float64 rounding")
        target = log_eps
    else:
        e = 1e-6 if eps is None else eps
        try:
            # real_number: strings, bools and complex numbers are refused, not converted or truncated
            e = real_number("e", e, finite=False)
        except ParameterError:
            raise ParameterError(f"eps must be a finite positive number, got {short_repr(e)}") from None
        if not (math.isfinite(e) and e > 0):
            raise ParameterError(f"eps must be a finite positive number, got {e}")
        target = math.log(e)
    st = _setup(Q, K, V, scale, None, DEFAULT_LEAF_SIZE, DEFAULT_QUERY_BATCH, True)
    head = f"anytemp cannot certify the requested additive error {_fmt_log(target)}: "
    if log_eps is not None and st.method != "exact-fallback":
        why = _refusal(st, target)
        if why is not None:
            raise UncertifiedError(head + why)
    res = _run(st, target)
    worst = float(res.log_bounds.max(initial=-math.inf)) if res.log_bounds.size else -math.inf
    if log_eps is not None and worst > target and st.method != "exact-fallback":
        # The a priori floors held but the measured bound did not: retry once with a quarter of the budget, when
        # the part of the bound that the budget controls (not rounding) is what is too large.
        rounding = res.stats.get("rounding_bound", 0.0) + res.stats.get("low_rank_bound", 0.0)
        if rounding < 0.5 * math.exp(min(target, LOG_HUGE_BOUND)):
            res = _run(st, target - math.log(4.0))
            worst = float(res.log_bounds.max(initial=-math.inf))
    cert = Certificate("additive", res.log_bounds, detail=(
        "finegrained.attention.anytemp: dropped mass, certified Chebyshev errors and float64 rounding, through "
        "certify_quotient" if res.method != "exact-fallback" else
        "exact fallback: |T~| (e^delta - 1) from the exact oracle's log certificate"))
    # A request the a priori floors allowed but the measured bound missed is not refused after the work is done:
    # the answer carries its true, larger certificate, which the caller's threshold test reads row by row.
    info = {"eps": res.eps, "log_eps": target, "request_met": bool(worst <= target), "window": res.window,
            "method": res.method, "tree_dim": res.tree_dim,
            "degree": res.degree, "log_error_bound": worst if math.isfinite(worst) else None}
    return OracleAnswer(res.output, cert, info=info)


__all__ = ["LOG_ETA_MIN", "MAX_DEGREE", "MAX_MONOMIALS", "MAX_SCORE_ROUNDING", "AnytempResult", "KeyTree", "anytemp",
           "anytemp_oracle", "build_tree", "certify_quotient", "low_rank_rewrite", "monomial_exponents"]
