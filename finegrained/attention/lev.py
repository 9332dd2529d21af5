"""LevAttention: universal sets of keys and all heavy attention entries in ``n poly(d/eps)`` time.

After Kannan, Bhattacharyya, Kacham & Woodruff, *LevAttention: time, space and streaming efficient algorithm
for heavy attentions* (2024). For ``f(x) = |x|^p`` let

.. math::  A = \\operatorname{rownormalise}\\big(f(Q K^\\top)\\big), \\qquad
           A_{ij} = \\frac{|\\langle q_i, k_j\\rangle|^p}{\\sum_l |\\langle q_i, k_l\\rangle|^p}.

The *f-sensitivity* of key ``j`` is ``sigma_j = sup_y |<k_j, y>|^p / sum_l |<k_l, y>|^p``. Since
``A_ij <= sigma_j`` for every query, the set ``U = {j : sigma_j >= eps}`` is *universal*: it contains the
column of every entry ``A_ij >= eps``, whatever ``Q`` is, and ``|U| <= (sum_j sigma_j) / eps``.

Facts implemented here (``r = rank K``):

* **p = 2** (Cauchy–Schwarz). With the thin SVD ``K = U S V^T`` truncated to the numerical rank,
  ``<k_j, y> = <U_j, S V^T y>`` and ``||K y|| = ||S V^T y||``, so ``sigma_j = ||U_j||^2 = tau_j``, the
  leverage score, attained at ``S V^T y = U_j``. Hence ``sum_j tau_j = r`` and ``|U| <= r / eps <= d / eps``.
  The numerical rank is decided from the keys' own rounding level, direction by direction, and not from
  ``n`` (:func:`_significant`), and all p = 2 routines first balance ``K`` (and ``Q``) by powers of two,
  which is exact and changes no answer, so inputs near ``1e300`` or ``1e-320`` are handled like others.
* **p != 2** (ℓ_p Lewis weights ``w``, the fixed point of ``w_j = (k_j^T (K^T W^{1-2/p} K)^+ k_j)^{p/2}``,
  ``sum_j w_j = r``). With ``B = W^{1/2-1/p} K`` one has ``|<k_j, y>| <= w_j^{1/p} ||B y||_2``
  (Cauchy–Schwarz), and Hölder gives ``||B y||_2 <= ||K y||_p`` for ``p <= 2`` and
  ``||B y||_2 <= r^{1/2-1/p} ||K y||_p`` for ``p >= 2``. Therefore ``sigma_j <= c_p w_j`` with
  ``c_p = max(1, r^{p/2-1})``, and ``U = {j : c_p w_j >= eps}`` is universal with ``|U| <= c_p r / eps``.

The softmax case has no size-independent universal set (keys on a circle); :func:`lev_attention` with
``kind="softmax"`` is the paper's heuristic and carries no guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from instances.errors import NumericalError, ParameterError, real_number
from instances.logspace import LogArray, logsumexp

from .exact import exact
from .protocol import UNCERTIFIED, OracleAnswer, _as_matrix, check_attention_inputs

#: Default ``eps`` of the ``"lev"`` oracle: at most ``100 * rank`` keys are kept.
DEFAULT_EPS = 0.01
#: Query rows per block in :func:`heavy_entries`; bounds the ``block x |U|`` score tile.
_BLOCK_ROWS = 8192
_UNIT = float(np.finfo(np.float64).eps)

Chunks = Callable[[], Iterable[np.ndarray]] | Iterable[np.ndarray]


# ----------------------------------------------------------------------------------------------- validation


def _matrix(name: str, x) -> np.ndarray:
    """A real float64 matrix; complex, object and string input is a ParameterError, NaN/inf a NumericalError."""
    return _as_matrix(name, x)[0]


def _check_eps(eps) -> float:
    eps = real_number("eps", eps, finite=False)
    if not (0.0 < eps <= 1.0):
        raise ParameterError(f"eps must lie in (0, 1] (attention scores are at most 1), got {eps}")
    return eps


def _check_p(p) -> float:
    p = real_number("p", p, finite=False)
    if not (np.isfinite(p) and p > 0.0):
        raise ParameterError(f"p must be a finite positive exponent for f(x) = |x|^p, got {p}")
    return p


# ---------------------------------------------------------------------------------------------- balancing


def _flushed(before: np.ndarray, after: np.ndarray, what: str) -> None:
    if np.any((before != 0) & (after == 0)):
        raise NumericalError(f"{what} spans more than the float64 range (a nonzero entry is below 2^-1074 times "
                             "the largest one after balancing); rescale the inputs")


def _balance_keys(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``K diag(2^-e)`` with every nonzero column's largest entry in ``[1/2, 1)``, and the exponents ``e``.

    Leverage scores and Lewis weights are invariant under ``K -> K M`` for invertible ``M``, and the scores
    ``<q, k>`` are unchanged if ``Q`` is scaled by ``2^e`` instead, so balancing by powers of two changes no
    answer. It is exact (a power-of-two scaling of a float is exact unless it leaves the normal range) and keeps
    every intermediate of the QR/SVD and of the squared scores away from overflow and underflow: inputs scaled
    by ``1e300`` or ``1e-320`` give the same answer as unscaled ones.
    """
    top = np.abs(K).max(axis=0, initial=0.0)
    e = np.where(top > 0, np.frexp(top)[1], 0).astype(np.int64)
    Kb = np.ldexp(K, -e[None, :])
    _flushed(K, Kb, "a column of K")
    return Kb, e


def _balance_queries(Q: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Rows of ``Q diag(2^e)`` each scaled by a power of two so that its largest entry lies in ``[1/2, 1)``.

    Row scaling of ``Q`` does not change ``A = rownormalise(|Q K^T|^p)``; the exponents are combined as
    integers, so ``Q 2^e`` is never formed (it could overflow).
    """
    m, x = np.frexp(Q)
    t = x + e[None, :]
    top = np.where(Q != 0, t, np.iinfo(np.int64).min).max(axis=1, initial=np.iinfo(np.int64).min)
    top = np.where(top == np.iinfo(np.int64).min, 0, top)
    Qb = np.ldexp(m, np.clip(t - top[:, None], -2000, 0))
    _flushed(Q, Qb, "a row of Q (after the key balancing)")
    return Qb


# ------------------------------------------------------------------------------------------ factorisations


def _rank_tol(s_max: float, n: int, d: int) -> float:
    """Singular values at most this are zero in the Lewis iteration (p != 2; ``numpy.linalg.matrix_rank``'s rule)."""
    return max(n, d, 1) * _UNIT * s_max


@dataclass(frozen=True)
class _RowSpace:
    """Right singular data of an ``n x d`` matrix ``A``: ``A^T A = V diag(s^2) V^T``.

    ``rank`` counts the singular values above the tolerance; the pseudo-inverse quadratic form
    ``a^T (A^T A)^+ a = ||a V_r / s_r||^2`` uses only those.
    """

    s: np.ndarray
    Vt: np.ndarray
    rank: int

    def quad(self, rows: np.ndarray) -> np.ndarray:
        """``a^T (A^T A)^+ a`` for every row ``a`` of ``rows``."""
        r = self.rank
        if r == 0:
            return np.zeros(rows.shape[0])
        Z = (rows @ self.Vt[:r].T) / self.s[:r]
        return np.einsum("ij,ij->i", Z, Z)


def _row_space_from_r(R: np.ndarray, n: int) -> _RowSpace:
    d = R.shape[1]
    _, s, Vt = np.linalg.svd(R, full_matrices=True) if R.shape[0] else (None, np.zeros(0), np.eye(d))
    if s.size < d:  # fewer rows than columns so far: the missing singular values are 0
        s = np.concatenate([s, np.zeros(d - s.size)])
    s_max = float(s[0]) if s.size else 0.0
    rank = int(np.count_nonzero(s > _rank_tol(s_max, n, d))) if s_max > 0 else 0
    return _RowSpace(s=s, Vt=Vt, rank=rank)


class _StreamingR:
    """Triangular factor ``R`` with ``R^T R = sum of chunk^T chunk``, updated one chunk at a time.

    Keeping ``R`` (a running QR, as in TSQR) instead of the Gram matrix ``K^T K`` avoids squaring the
    condition number, so the streaming leverage scores resolve the same numerical rank as an SVD of the whole
    of ``K``. Memory is ``O(d^2 + chunk * d)``.
    """

    def __init__(self, d: int) -> None:
        self.d = d
        self.R = np.zeros((0, d))
        self.n = 0

    def update(self, chunk: np.ndarray) -> None:
        if chunk.shape[0] == 0:
            return
        self.R = np.linalg.qr(np.vstack([self.R, chunk]), mode="r")
        self.n += chunk.shape[0]

    def row_space(self) -> _RowSpace:
        return _row_space_from_r(self.R, self.n)


def _row_space(K: np.ndarray) -> _RowSpace:
    n, d = K.shape
    if n == 0 or d == 0:
        return _RowSpace(s=np.zeros(d), Vt=np.eye(d), rank=0)
    return _row_space_from_r(np.linalg.qr(K, mode="r"), n)


# ------------------------------------------------------------------------- p = 2: rank from the data's noise

#: A direction ``v`` of the row space is real if some key's score along it exceeds ``_NOISE * d * u`` times
#: that key's norm, i.e. ``_NOISE`` times the rounding error of computing the score ``<k_j, v>`` in float64.
_NOISE = 8.0


def _noise_level(d: int) -> float:
    """Relative rounding level of one computed score: ``|fl(<k, v>) - <k, v>| <= gamma_d ||k|| ||v||``."""
    return _NOISE * max(d, 1) * _UNIT


@dataclass(frozen=True)
class _LevSpace:
    """The p = 2 row-space data of a (balanced) key matrix ``K``, with its rank decided row by row.

    ``R`` is the triangular factor of ``K`` (``R^T R = K^T K``) and ``Vt`` its right singular vectors. A
    direction ``v_i`` is kept when ``max_j |<k_j, v_i>| / ||k_j|| > _NOISE d u``: some key has a component
    along it above the rounding error of that key's own score (:func:`_significant`). ``T`` is the triangular
    factor of ``P = K V_kept`` (``T^T T = P^T P``), so that ``tau_j = ||p_j T^{-1}||^2``: the squared row norms
    of an orthonormal basis of the kept range, hence ``0 <= tau_j <= 1`` and ``sum_j tau_j = rank``. ``G``
    is ``|K|^T |K|``, which bounds the rounding error of every score of a query (:meth:`noise2`).
    """

    R: np.ndarray
    Vt: np.ndarray
    T: np.ndarray
    G: np.ndarray

    @property
    def rank(self) -> int:
        return self.Vt.shape[0]

    def quad(self, rows: np.ndarray) -> np.ndarray:
        """``tau(a) = a^T (K^T K)^+ a`` restricted to the kept directions, for every row ``a``."""
        if self.rank == 0:
            return np.zeros(rows.shape[0])
        Z = np.linalg.solve(self.T.T, (rows @ self.Vt.T).T).T
        return np.einsum("ij,ij->i", Z, Z)

    def log_norm(self, rows: np.ndarray) -> np.ndarray:
        """``log ||K a|| = log ||R a||`` for every row ``a`` (``-inf`` for ``K a = 0``)."""
        with np.errstate(divide="ignore"):
            return np.log(np.linalg.norm(rows @ self.R.T, axis=1))

    def noise2(self, rows: np.ndarray) -> np.ndarray:
        """``sum_j (|a| . |k_j|)^2 = |a|^T G |a|``: squared sum of the per-score rounding scales of query ``a``."""
        A = np.abs(rows)
        return np.einsum("ij,ij->i", A @ self.G, A)


def _significant(ratio_max: np.ndarray, d: int) -> np.ndarray:
    """Which candidate directions have a key whose relative score along them is above rounding noise.

    Derivation: every key ``k_j`` is exact data, and a score ``<k_j, y>`` computed in float64 errs by up to
    ``gamma_d ||k_j|| ||y||``. Dropping directions along which every key is within ``_NOISE`` times that
    level moves each score of a query ``y`` by at most ``_NOISE d u sqrt(d) ||y|| ||k_j||``: no more than the
    rounding error any float64 evaluation of the scores (``dense_scores`` included) already has. Keeping a
    direction is always safe for recall: the leverage scores still sum to the rank, so the universal set
    keeps ``|U| <= rank / eps <= d / eps``. The decision depends on each key's own noise level and not on
    ``n``: ``numpy.linalg.matrix_rank``'s ``max(n, d) u s_max`` grows with ``n`` and drops a key that deviates
    from ``n - 1`` copies of another by a relative ``1e-12``, whose attention weight is 1 for a query along
    the deviation.
    """
    return ratio_max > _noise_level(d)


def _ratio_max(P: np.ndarray, row_norms: np.ndarray) -> np.ndarray:
    live = row_norms > 0
    if not live.any():
        return np.zeros(P.shape[1])
    return (np.abs(P[live]) / row_norms[live, None]).max(axis=0)


def _lev_space_from_source(passes: Callable[[], Iterator[np.ndarray]], d: int) -> _LevSpace:
    """:class:`_LevSpace` of the balanced key matrix delivered, in chunks, by ``passes()`` (one call per pass).

    Pass 1 accumulates ``R`` (a running QR, as in TSQR) and ``G``; the SVD of ``R`` gives the directions
    ``V``. Pass 2 measures, for every direction, the largest relative score ``max_j |<k_j, v_i>| / ||k_j||``
    (:func:`_significant` decides) and accumulates the factor of ``K V^T``; the factor ``T`` of the kept
    columns is the QR factor of the kept columns of that factor (``P_S^T P_S = (R_P)_S^T (R_P)_S``). In memory
    ``passes`` yields ``K`` once; :func:`streaming_universal_set` gives the chunks, with memory
    ``O(d^2 + chunk d)``.

    The SVD fixes a direction only to within ``u ||K|| / gap``, so a direction the keys do not use may pick up
    a component of a nearly parallel used one above the noise level and be kept as well (for example a rank-2
    matrix of ``n - 1`` copies of one key and one deviating key can be given rank 3 when ``sqrt(n) u`` is
    comparable to the deviation's singular value). That only adds a direction: recall is unaffected and
    ``|U| <= rank / eps <= d / eps`` still holds.
    """
    acc, G = _StreamingR(d), np.zeros((d, d))
    for c in passes():
        acc.update(c)
        A = np.abs(c)
        G += A.T @ A
    R = acc.R
    Vt = np.linalg.svd(R, full_matrices=True)[2] if R.shape[0] else np.eye(d)
    accP, ratio = _StreamingR(d), np.zeros(d)
    for c in passes():
        P = c @ Vt.T
        accP.update(P)
        ratio = np.maximum(ratio, _ratio_max(P, np.linalg.norm(c, axis=1)))
    keep = np.flatnonzero(_significant(ratio, d))
    if keep.size > accP.R.shape[0]:  # at most min(n, d) independent directions: keep the clearest ones
        keep = np.sort(keep[np.argsort(-ratio[keep], kind="stable")[:accP.R.shape[0]]])
    if keep.size == 0:
        return _LevSpace(R, np.zeros((0, d)), np.zeros((0, 0)), G)
    T = np.linalg.qr(accP.R[:, keep], mode="r")
    if not np.all(np.abs(np.diag(T)) > 0):
        raise NumericalError("LevAttention: the kept directions of K are linearly dependent to rounding")
    return _LevSpace(R, Vt[keep], T, G)


def _lev_space(Kb: np.ndarray) -> _LevSpace:
    """:class:`_LevSpace` of a balanced in-memory ``K`` (``O(n d^2)``)."""
    return _lev_space_from_source(lambda: iter([Kb]), Kb.shape[1])


def _p2_leverage(K: np.ndarray) -> tuple[np.ndarray, _LevSpace, np.ndarray]:
    """Leverage scores of ``K``, its :class:`_LevSpace` and the balanced ``K`` itself."""
    Kb, e = _balance_keys(K)
    space = _lev_space(Kb)
    if space.rank == 0:
        return np.zeros(K.shape[0]), space, e
    # Squared row norms of an orthonormal basis of the kept part of K V^T (Householder: orthonormal to machine
    # precision however ill-conditioned the kept columns are), so 0 <= tau_j <= 1 and sum_j tau_j = rank.
    basis = np.linalg.qr(Kb @ space.Vt.T)[0]
    return np.einsum("ij,ij->i", basis, basis), space, e


# ------------------------------------------------------------------------------------- leverage and Lewis


def leverage_scores(K) -> np.ndarray:
    """Leverage scores ``tau_j = k_j^T (K^T K)^+ k_j`` of the rows of ``K``, stable for rank-deficient ``K``.

    ``K`` is balanced by powers of two (:func:`_balance_keys`, exact), factored ``K = Q R``, and rotated onto
    the right singular vectors ``V`` of ``R``. The rank is decided per direction from the keys' own rounding
    level, not from ``n`` (:func:`_significant`), and ``tau_j`` is the squared norm of row ``j`` of an
    orthonormal basis of the kept part of ``K V``, so ``0 <= tau_j <= 1`` and ``sum_j tau_j`` is the rank
    up to rounding. For ``f(x) = x^2``, ``tau_j`` is exactly the sensitivity ``sup_y <k_j, y>^2 / ||K y||^2``
    (Cauchy–Schwarz; module docstring).

    Parameters
    ----------
    K : array_like, shape (n, d)

    Returns
    -------
    numpy.ndarray, shape (n,)

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    >>> leverage_scores(K).round(12).tolist()
    [0.5, 0.5, 1.0]
    """
    K = _matrix("K", K)
    if K.shape[0] == 0 or K.shape[1] == 0:
        return np.zeros(K.shape[0])
    return _p2_leverage(K)[0]


def numerical_rank(K) -> int:
    """Numerical rank of ``K`` as decided by :func:`leverage_scores` (directions above the keys' noise level)."""
    K = _matrix("K", K)
    if K.shape[0] == 0 or K.shape[1] == 0:
        return 0
    return _p2_leverage(K)[1].rank


def _lewis_step_size(p: float) -> float:
    """Damping ``alpha`` of the log-space iteration ``log w <- (1 - alpha) log w + alpha log T(w)``.

    The Jacobian of ``log T`` is ``-(p/2 - 1) N`` with ``N = diag(1/P_jj) (P o P)`` row-stochastic and with
    eigenvalues in ``[0, 1]`` (``P`` the projection onto the column space of ``W^{1/2-1/p} K``). For ``p < 4``
    the undamped map is a contraction in the sup norm with factor ``|p/2 - 1|`` (Cohen & Peng). For ``p >= 4``
    no ``alpha`` gives a sup-norm contraction; ``alpha = 4/(p+2)`` puts the Jacobian spectrum in
    ``[-(p-2)/(p+2), (p-2)/(p+2)]``, a local contraction.
    """
    return 1.0 if p < 4.0 else 4.0 / (p + 2.0)


def _lewis_rate(p: float) -> float:
    """Contraction factor of the :func:`_lewis_step_size` iteration (proven for p < 4, local for p >= 4)."""
    return abs(p / 2.0 - 1.0) if p < 4.0 else (p - 2.0) / (p + 2.0)



def _log_quad(space: _RowSpace, rows: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(space.quad(rows))


def lewis_weights(K, p: float, *, tol: float = 1e-10, max_iter: int = 1000) -> np.ndarray:
    """ℓ_p Lewis weights of ``K``: the fixed point of ``w_j = (k_j^T (K^T W^{1-2/p} K)^+ k_j)^{p/2}``.

    Iterates ``x <- (1 - alpha) x + alpha log T(exp x)`` on ``x = log w``, starting from the leverage scores,
    with ``T(w)_j = (k_j^T (K^T W^{1-2/p} K)^+ k_j)^{p/2}``. For ``p < 4``, ``alpha = 1``: the Cohen–Peng
    iteration, a sup-norm contraction with factor ``L = |p/2 - 1|``. For ``p >= 4`` it is damped with
    ``alpha = 4/(p+2)``, whose local rate is ``L = (p-2)/(p+2)``; global convergence is then not proven, only
    checked. The iteration stops when the distance bound ``L/(1-L) * max_j |x_new - x_old|`` is at most
    ``tol``, so each returned weight is within a factor ``exp(tol)`` of the fixed point (for ``p >= 4``: once
    the iterates are in the local regime). At ``p = 2`` the map is constant and one step returns the leverage
    scores. Rows with zero leverage (zero rows) get weight 0, and ``sum_j w_j = rank K``.

    Parameters
    ----------
    K : array_like, shape (n, d)
    p : float
        Exponent, ``p > 0``.
    tol : float
        Target accuracy of ``log w``.
    max_iter : int
        Iteration limit.

    Returns
    -------
    numpy.ndarray, shape (n,)

    Raises
    ------
    NumericalError
        If the iteration has not met ``tol`` after ``max_iter`` steps or produced a non-finite weight.

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> lewis_weights(K, 1.0).round(9).tolist()  # Lewis weights always sum to the rank
    [1.0, 0.5, 0.5]
    """
    K = _matrix("K", K)
    p = _check_p(p)
    _check_iteration(tol, max_iter)
    # Lewis weights are invariant under K -> K M (M invertible): exact power-of-two column balancing keeps the
    # SVDs of the iteration away from overflow and underflow.
    K = _balance_keys(K)[0]
    tau, _ = _svd(K)
    w = np.zeros(K.shape[0])
    # A zero row may get a rounding-level tau from the SVD; its weight is exactly 0 (and log 0 is not finite).
    live = np.flatnonzero((tau > 0.0) & np.any(K != 0.0, axis=1))
    if live.size == 0:
        return w
    Kl = K[live]
    x = np.log(tau[live])
    alpha, factor = _lewis_step_size(p), _distance_factor(p)
    step = np.inf
    for _ in range(max_iter):
        # for small p the exponent of the row factors w^(1/2 - 1/p) is large (-499.5 at p = 0.002) and they
        # overflow: then they are shifted so that the largest is 1 (scaling B by e^-m adds exactly 2m to every log
        # quad form); otherwise left alone, as the rank decisions of an ill-conditioned K are sensitive to rounding
        e = (0.5 - 1.0 / p) * x
        m = float(np.max(e)) if np.max(e) > 600.0 else 0.0
        B = Kl * np.exp(e - m)[:, None]
        x_new = (1.0 - alpha) * x + alpha * 0.5 * p * (_log_quad(_row_space(B), Kl) - 2.0 * m)
        if not np.isfinite(x_new).all():
            raise NumericalError(f"Lewis weight iteration for p={p} produced a zero or non-finite weight")
        step = float(np.max(np.abs(x_new - x)))
        x = x_new
        if factor * step <= tol:
            w[live] = np.exp(x)
            return w
    raise NumericalError(
        f"Lewis weights for p={p} did not converge in {max_iter} iterations: last log-step {step:.3g}, "
        f"distance bound {factor * step:.3g} > tol={tol}"
    )


def _check_iteration(tol: float, max_iter: int) -> None:
    tol = real_number("tol", tol, finite=False)
    if isinstance(max_iter, bool | np.bool_) or not isinstance(max_iter, int | np.integer):
        raise ParameterError(f"max_iter must be an integer, got {max_iter!r}")
    if not (tol > 0 and max_iter >= 1):
        raise ParameterError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")


def _distance_factor(p: float) -> float:
    """``L / (1 - L)``: after a step of size ``delta`` the iterate is ``L delta / (1 - L)`` from the limit."""
    rate = _lewis_rate(p)
    if not rate < 1.0:  # p near 0 or beyond float range: the contraction rate rounds to 1 and bounds nothing
        raise NumericalError(f"the Lewis weight iteration for p={p} has contraction rate {rate:g}: no distance "
                             "bound")
    return rate / (1.0 - rate)


def _svd(K: np.ndarray) -> tuple[np.ndarray, _RowSpace]:
    """Leverage scores and right singular data of ``K`` from one thin SVD."""
    n, d = K.shape
    if n == 0 or d == 0:
        return np.zeros(n), _RowSpace(s=np.zeros(d), Vt=np.eye(d), rank=0)
    try:
        U, s, Vt = np.linalg.svd(K, full_matrices=False)
        if s.size < d:  # n < d: complete V^T so that gram_quad sees every direction (with singular value 0)
            _, _, Vt = np.linalg.svd(K, full_matrices=True)
            s = np.concatenate([s, np.zeros(d - s.size)])
    except np.linalg.LinAlgError:
        raise NumericalError(f"the SVD of a {n} x {d} matrix did not converge") from None
    s_max = float(s[0])
    r = int(np.count_nonzero(s > _rank_tol(s_max, n, d))) if s_max > 0 else 0
    tau = np.einsum("ij,ij->i", U[:, :r], U[:, :r])
    return tau, _RowSpace(s=s, Vt=Vt, rank=r)


def sensitivity_factor(p: float, rank: int) -> float:
    """``c_p`` with ``sigma_j <= c_p w_j`` for ``|x|^p``: ``1`` if ``p <= 2``, ``rank^{p/2-1}`` if ``p > 2``.

    Proof: ``|<k_j, y>| <= w_j^{1/p} ||B y||_2`` with ``B = W^{1/2-1/p} K`` (Cauchy–Schwarz in the ``B^T B``
    inner product, since ``k_j^T (B^T B)^+ k_j = w_j^{2/p}``); then for ``p > 2`` Hölder with exponents
    ``p/2`` and ``p/(p-2)`` and ``sum w = rank`` give ``||B y||_2^2 <= rank^{1-2/p} ||K y||_p^2``, and for ``p
    < 2`` the bound ``x_l^2 <= |x_l|^p w_l^{2/p-1} ||B y||^{2-p}`` summed over ``l`` gives ``||B y||_2 <= ||K
    y||_p``.
    """
    p = _check_p(p)
    return 1.0 if p <= 2.0 else float(max(rank, 1)) ** (p / 2.0 - 1.0)


# ------------------------------------------------------------------------------------------ universal sets


def universal_set(K, eps: float, p: float = 2, *, tol: float = 1e-10, max_iter: int = 1000) -> np.ndarray:
    """Sorted indices ``U`` of the keys whose ``|x|^p``-sensitivity may reach ``eps``.

    Guarantee (module docstring): for every query ``q`` and key ``j``, ``A_qj >= eps`` implies ``j in U``.

    * ``p = 2``: ``U = {j : tau_j >= eps}``; ``|U| <= rank / eps`` because ``sum_j tau_j = rank``.
    * ``p != 2``: ``U = {j : c_p w_j >= eps e^{-tol}}`` with Lewis weights ``w`` accurate to a factor
      ``e^{tol}``
      and ``c_p`` from :func:`sensitivity_factor`, so ``|U| <= c_p rank e^{tol} / eps``.

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> universal_set(K, 0.5).tolist()  # the four copies share one unit of leverage
    [4]
    """
    K = _matrix("K", K)
    eps, p = _check_eps(eps), _check_p(p)
    _check_iteration(tol, max_iter)
    if p == 2.0:
        return np.flatnonzero(leverage_scores(K) >= eps)
    w = lewis_weights(K, p, tol=tol, max_iter=max_iter)
    c = sensitivity_factor(p, _row_space(K).rank)
    return np.flatnonzero(c * w >= eps * np.exp(-tol))


def _chunk_source(chunks: Chunks) -> Callable[[], Iterator[np.ndarray]]:
    if callable(chunks):
        return lambda: iter(chunks())
    if isinstance(chunks, np.ndarray):
        raise ParameterError("chunks must be a sequence of 2-D arrays or a callable; wrap one matrix as [K]")
    if iter(chunks) is chunks:
        raise ParameterError(
            "streaming needs several passes over the keys, but chunks is a one-shot iterator; pass a list of "
            "chunks or a callable that returns a fresh iterator"
        )
    return lambda: iter(chunks)


def _passes(source: Callable[[], Iterator[np.ndarray]], d: int | None, n: int | None):
    """Yield ``(offset, chunk)`` over one pass, checking that every pass sees the same ``d`` and ``n``."""
    offset = 0
    for chunk in source():
        c = _matrix("key chunk", chunk)
        if d is not None and c.shape[1] != d:
            raise ParameterError(f"key chunks must all have {d} columns, got one with {c.shape[1]}")
        d = c.shape[1]
        yield offset, c
        offset += c.shape[0]
    if n is not None and offset != n:
        raise ParameterError(f"the key stream changed between passes: {n} rows first, then {offset}")


def streaming_universal_set(chunks: Chunks, eps: float, p: float = 2, *, tol: float = 1e-10,
                            max_iter: int = 1000) -> np.ndarray:
    """:func:`universal_set` over keys given as a stream of row chunks, in memory independent of ``n``.

    For ``p = 2``: four passes. Pass 0 finds the power-of-two balancing of the columns. Pass 1 accumulates the
    triangular factor ``R`` of ``K`` (``R^T R = K^T K``, ``O(d^2)`` memory; the Gram matrix is kept factored so
    that its condition number is not squared). Pass 2 decides the rank from the keys' own noise level
    (:func:`_significant`) and factors the kept part of ``K V``. Pass 3 emits every global index ``j`` with
    ``tau_j = k_j^T (K^T K)^+ k_j >= eps``: the same decisions as :func:`universal_set`.

    For ``p != 2``: a weight of the Lewis iteration is a function of ``k_j`` and ``d x d`` matrices only
    (``x_j = sum_s c_s log(k_j^T M_s^+ k_j)`` over the factored ``M_s = K^T W_{s-1}^{1-2/p} K`` of earlier
    steps), so each step is one pass that stores one more ``R`` factor. With ``alpha = 1`` (``p < 4``) only
    the last two factors have non-zero coefficients and are kept; for ``p >= 4`` the damped iteration keeps
    one factor per step, ``O(steps * d^2)`` memory. A last pass emits the indices. The iterates are those of
    :func:`lewis_weights`.

    Parameters
    ----------
    chunks : callable returning an iterable of arrays, or a re-iterable sequence of arrays
        The key matrix ``K`` as consecutive row blocks of shape ``(n_b, d)``. A one-shot iterator is refused.
    eps, p, tol, max_iter
        As in :func:`universal_set` and :func:`lewis_weights`.

    Returns
    -------
    numpy.ndarray of int64
        Sorted global row indices of ``U``: the set ``universal_set(vstack(chunks), eps, p)``.

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> streaming_universal_set([K[:2], K[2:]], 0.5).tolist()
    [4]
    """
    eps, p = _check_eps(eps), _check_p(p)
    _check_iteration(tol, max_iter)
    source = _chunk_source(chunks)
    if p == 2.0:
        return _streaming_p2(source, eps)
    acc: _StreamingR | None = None
    for _, c in _passes(source, None, None):
        acc = acc if acc is not None else _StreamingR(c.shape[1])
        acc.update(c)
    if acc is None or acc.n == 0:
        return np.zeros(0, dtype=np.int64)
    d, n, space = acc.d, acc.n, acc.row_space()

    alpha, factor = _lewis_step_size(p), _distance_factor(p)
    # x_t = sum_s coefs[s] * log(quad under spaces[s]); x_0 = log tau uses the factor of K itself.
    spaces, coefs, prev = [space], np.array([1.0]), None
    step = np.inf
    for _ in range(max_iter + 1):
        nxt, step = _StreamingR(d), 0.0
        for _, c in _passes(source, d, n):
            logs = np.stack([_log_quad(s, c) for s in spaces])
            live = np.isfinite(logs[0])
            x = coefs @ np.where(live, logs, 0.0)
            if prev is not None:
                x_prev = prev @ np.where(live, logs, 0.0)
                if not np.isfinite(x[live]).all():
                    raise NumericalError(f"streaming Lewis iteration for p={p} produced a non-finite weight")
                step = max(step, float(np.max(np.abs(x - x_prev)[live], initial=0.0)))
            nxt.update(c[live] * np.exp((0.5 - 1.0 / p) * x[live])[:, None])
        if prev is not None and factor * step <= tol:
            break
        spaces.append(nxt.row_space())
        prev = np.append(coefs, 0.0)
        coefs = np.append((1.0 - alpha) * coefs, alpha * 0.5 * p)
        keep = (coefs != 0.0) | (prev != 0.0)
        keep[0] = True  # the factor of K itself marks the live rows
        spaces = [s for s, k in zip(spaces, keep, strict=True) if k]
        coefs, prev = coefs[keep], prev[keep]
    else:
        raise NumericalError(
            f"streaming Lewis weights for p={p} did not converge in {max_iter} passes: distance bound "
            f"{factor * step:.3g} > tol={tol}"
        )
    thr = np.log(eps / sensitivity_factor(p, space.rank)) - tol

    def heavy(c: np.ndarray) -> np.ndarray:
        logs = np.stack([_log_quad(s, c) for s in spaces])
        live = np.isfinite(logs[0])
        return live & (coefs @ np.where(live, logs, 0.0) >= thr)

    return _emit(source, d, n, heavy)


def _streaming_p2(source: Callable[[], Iterator[np.ndarray]], eps: float) -> np.ndarray:
    """A few passes, ``O(d^2 + chunk d)`` memory: the same decisions as :func:`universal_set` at ``p = 2``.

    Pass 0 finds the balancing exponents (largest entry of each column); the passes of
    :func:`_lev_space_from_source` decide the rank (two); a last pass emits the keys with
    ``tau_j >= eps``.
    """
    d = n = None
    top = None
    for _, c in _passes(source, None, None):
        d = c.shape[1]
        m = np.abs(c).max(axis=0, initial=0.0)
        top = m if top is None else np.maximum(top, m)
        n = (n or 0) + c.shape[0]
    if d is None or not n:
        return np.zeros(0, dtype=np.int64)
    e = np.where(top > 0, np.frexp(top)[1], 0).astype(np.int64)

    def balanced(c: np.ndarray) -> np.ndarray:
        cb = np.ldexp(c, -e[None, :])
        _flushed(c, cb, "a column of K")
        return cb

    space = _lev_space_from_source(lambda: (balanced(c) for _, c in _passes(source, d, n)), d)
    return _emit(source, d, n, lambda c: space.quad(balanced(c)) >= eps)


def _emit(source, d: int, n: int, predicate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    found = [off + np.flatnonzero(predicate(c)) for off, c in _passes(source, d, n)]
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)


# ----------------------------------------------------------------------------------------- heavy entries


#: Keys with ``tau_j >= eps * _CANDIDATE_FACTOR`` are scored by :func:`heavy_entries`. A score and the
#: leverage score bounding it are computed by different float64 formulas, and ``tau_j`` of a direction with a
#: small singular value can be off by a few percent; an extra candidate costs one score column, a missing one
#: a heavy entry. The candidates stay a universal set of size ``<= 2 rank / eps``.
_CANDIDATE_FACTOR = 0.5


#: Rows whose ``||R q||`` may be off by more than this relative amount get their normaliser computed exactly.
_REDO_NORMALISER = 1e-3


def _null_rows(log_norm: np.ndarray, noise2: np.ndarray, d: int) -> np.ndarray:
    """Rows whose normaliser is at the rounding level of its scores: ``q_i`` is orthogonal to every key.

    A computed score ``<q, k_j>`` errs by at most ``gamma_d (|q| . |k_j|)``, so a normaliser ``||K q||^2`` not
    above ``(4 d u)^2 sum_j (|q| . |k_j|)^2`` may be pure rounding and the row ``A_i`` is ``0/0``; such a
    row has no heavy entry. Unlike a bound through ``||q|| ||K||_F`` this is zero for exact zeros (a query
    orthogonal to all but one key in exact arithmetic is never declared null).
    """
    with np.errstate(divide="ignore"):
        log_noise = 0.5 * np.log(noise2) + np.log(4.0 * max(d, 1) * _UNIT)
    return ~(log_norm > log_noise)


#: Most exact products (q_c k_jc as rationals) one heavy_entries call may spend on scores that float64 cannot
#: resolve; past it the call refuses rather than drop or misjudge an entry.
_MAX_EXACT_PRODUCTS = 2_000_000


def _exact_scores(q: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``<q, k_j>`` for each row of ``K``, correctly rounded: the sum of exact rational products (every float is a
    dyadic rational), for the scores whose floating-point value is within its own rounding error of zero."""
    fq = [(c, Fraction(float(v))) for c, v in enumerate(q) if v != 0.0]
    return np.array([float(sum((f * Fraction(float(k[c])) for c, f in fq if k[c] != 0.0), Fraction(0)))
                     for k in K])


def _heavy(Q, K, eps, p, tol) -> tuple[np.ndarray, np.ndarray]:
    Q, K = _matrix("Q", Q), _matrix("K", K)
    eps, p = _check_eps(eps), _check_p(p)
    _check_iteration(tol, 1)
    if Q.shape[1] != K.shape[1]:
        raise ParameterError(f"Q has {Q.shape[1]} columns but K has {K.shape[1]}; they must share d")
    d = K.shape[1]
    if K.shape[0] == 0 or Q.shape[0] == 0 or d == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    # Balancing is exact and leaves A unchanged; afterwards no score, square or normaliser over- or underflows.
    tau, space, e = _p2_leverage(K)
    Kb = np.ldexp(K, -e[None, :])
    Qb = _balance_queries(Q, e)
    if p == 2.0:
        cand = np.flatnonzero(tau >= eps * _CANDIDATE_FACTOR)
    else:
        cand = universal_set(Kb, eps * _CANDIDATE_FACTOR, p, tol=tol)
    Kc = Kb[cand]
    colnorm = np.sqrt(np.diag(space.G))
    out_i, out_j, out_v = [], [], []
    budget = [_MAX_EXACT_PRODUCTS]

    def spend(products: int) -> None:
        budget[0] -= products
        if budget[0] < 0:
            raise NumericalError(f"heavy_entries: more than {_MAX_EXACT_PRODUCTS} exact products would be needed for "
                                 "scores below float64's resolution; the entries cannot be certified")

    for start in range(0, Qb.shape[0], _BLOCK_ROWS):
        Qblk = Qb[start:start + _BLOCK_ROWS]
        # Whether a row's scores are all noise does not depend on p, so the p = 2 test serves both.
        log_norm = space.log_norm(Qblk)
        null = _null_rows(log_norm, space.noise2(Qblk), d)
        slack = np.zeros(Qblk.shape[0])
        redo = np.zeros(Qblk.shape[0], dtype=bool)
        if p == 2.0:
            log_z = 2.0 * log_norm
            # ||R q|| errs by at most about _NOISE d u sum_c |q_c| ||K_:,c|| (Householder QR is backward stable
            # column by column). Rows where that is above 1e-3 of ||R q|| get their normaliser summed score by
            # score, as dense_scores does (O(n d) each); the others widen the threshold by the error.
            with np.errstate(divide="ignore", invalid="ignore"):
                log_rho = np.log(_noise_level(d) * (np.abs(Qblk) @ colnorm)) - log_norm
            redo = ~null & ~(log_rho <= np.log(_REDO_NORMALISER))
            if redo.any():
                log_z[redo] = _log_normaliser(Qblk[redo], Kb, 2.0)
            slack = np.where(redo | null, 0.0, 2.0 * np.log1p(np.exp(np.minimum(log_rho, 0.0))))
        else:
            log_z = _log_normaliser(Qblk, Kb, p)
        # A row whose scores are all below the noise of ||R q|| may still have real ones (a tiny q against keys
        # with huge columns): unless q is zero, its scores and normaliser are computed exactly, not dropped.
        live_null = np.flatnonzero(null & np.any(Qblk != 0.0, axis=1))
        spend(0 if live_null.size * Kb.shape[0] * d <= budget[0] else budget[0] + 1)  # refuse before any work
        exact_rows = {}
        for r in live_null:
            spend(Kb.shape[0] * d)
            s_all = _exact_scores(Qblk[r], Kb)
            with np.errstate(divide="ignore"):
                log_z[r] = math.log(math.fsum(np.abs(s_all) ** p)) if np.any(s_all != 0.0) else -np.inf
            exact_rows[r] = s_all[cand]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            scores = Qblk @ Kc.T
            # the dot product errs by at most gamma_{d+2} sum_c |q_c k_c|: where that is not below 1e-3 of the
            # computed score (a cancellation, or an exact 0 hiding a real score) and the entry could be heavy, the
            # score is recomputed exactly; elsewhere its relative error rho widens the test. The bound used is
            # gamma_{d+2} ||q|| ||k_j|| (Cauchy-Schwarz), screened row-wise first with max_j ||k_j|| so that the
            # full matrix sees one comparison.
            q_err = (d + 2) * _UNIT * np.linalg.norm(Qblk, axis=1)
            k_norm = np.linalg.norm(Kc, axis=1)
            abs_s = np.abs(scores)
            screen = np.where(null, -1.0, 1e3 * q_err * (k_norm.max() if k_norm.size else 0.0))
            ui, uj = np.nonzero(abs_s < screen[:, None])
            err_u = q_err[ui] * k_norm[uj]
            could = ((err_u > 1e-3 * abs_s[ui, uj])
                     & (p * np.log(abs_s[ui, uj] + err_u) - log_z[ui] + slack[ui] >= np.log(eps) - 1e-9))
            ui, uj = ui[could], uj[could]
            if ui.size:
                spend(ui.size * d)
                before = scores[ui, uj].copy()
                for i, j in zip(ui, uj):
                    scores[i, j] = _exact_scores(Qblk[i], Kc[j:j + 1])[0]
                # where the normaliser summed the float scores (p != 2, or a p = 2 row whose ||R q|| was too
                # noisy), swap in the exact ones; a normaliser from ||R q|| is not affected by one score's rounding
                summed = np.ones(Qblk.shape[0], dtype=bool) if p != 2.0 else redo
                change = np.zeros(Qblk.shape[0])
                np.add.at(change, ui, np.exp(p * np.log(np.abs(scores[ui, uj])) - log_z[ui])
                          - np.exp(p * np.log(np.abs(before)) - log_z[ui]))
                log_z = np.where(summed, log_z + np.log1p(change), log_z)
            for r, s_row in exact_rows.items():
                scores[r] = s_row
            if ui.size or exact_rows:
                abs_s = np.abs(scores)
            logA = p * np.log(abs_s) - log_z[:, None]
            widen = slack[:, None]  # p = 2: also on the exact scores, which only adds a margin
            if p != 2.0 and Kc.shape[0]:
                fixed = np.zeros(scores.shape, dtype=bool)
                fixed[ui, uj] = True
                fixed[list(exact_rows)] = True
                # no p = 2 shortcut bounds the rounding here, so every entry is widened by its own: the score by
                # its relative error rho raised to the p-th power, the normaliser (n_k terms |s|^p) and the logs
                # by a few ulps of their size; without it an entry equal to eps could round below and go missing
                rho = np.where(fixed, 0.0, np.minimum(np.outer(q_err, k_norm) / abs_s, 1e-3))
                widen = (p * np.log1p(rho) + p * (K.shape[0] + d + 4) * _UNIT
                         + 8 * _UNIT * (np.abs(logA) + np.abs(log_z)[:, None]))
                widen = np.where(np.isfinite(widen), widen, 0.0)
        logA[null & ~np.isin(np.arange(null.size), live_null)] = -np.inf
        i, j = np.nonzero(logA + widen >= np.log(eps))
        out_i.append(i + start)
        out_j.append(cand[j])
        out_v.append(np.exp(logA[i, j]))
    pairs = np.stack([np.concatenate(out_i), np.concatenate(out_j)], axis=1).astype(np.int64)
    return pairs, np.concatenate(out_v)


def heavy_entries(Q, K, eps: float, p: float = 2, *, tol: float = 1e-10) -> np.ndarray:
    """Every entry ``A_ij >= eps`` of ``A = rownormalise(|Q K^T|^p)``, found without forming ``A``.

    For ``p = 2`` this takes ``O((n_q + n) d^2 + n_q d |U|)`` time with ``|U| <= 2 rank/eps``: the row
    normaliser ``sum_l <q_i, k_l>^2 = ||K q_i||^2 = ||R q_i||^2`` comes from the triangular factor of ``K``
    and the candidates are the keys with ``tau_j >= eps/2`` (a universal set with room for the rounding of
    ``tau``). For ``p != 2`` the candidates are the Lewis-weight universal set, but the normaliser ``sum_l
    |<q_i, k_l>|^p`` has no ``d x d`` summary and is computed exactly in ``O(n_q n d)`` time (blocked,
    ``O(block * n)`` memory).

    The inputs are first balanced by powers of two (exact, and ``A`` does not change), and ``A`` is formed as
    ``exp(p log|score| - log normaliser)``, so inputs scaled by ``1e300`` or ``1e-320`` give the same entries;
    inputs spanning more than the float64 range raise :class:`~instances.errors.NumericalError`. The rank of
    ``K`` is decided from the keys' own rounding level (:func:`leverage_scores`), not from ``n``. A row whose
    scores are all zero to rounding (``q_i`` orthogonal to every key) has ``A_i = 0/0``; it contributes no
    entries.

    Parameters
    ----------
    Q : array_like, shape (n_q, d)
    K : array_like, shape (n, d)
    eps : float
        Threshold in ``(0, 1]``.
    p : float
        Exponent of ``f(x) = |x|^p``.
    tol : float
        Accuracy of the Lewis weights (``p != 2``).

    Returns
    -------
    numpy.ndarray of int64, shape (m, 2)
        The ``(i, j)`` pairs in lexicographic order; :func:`heavy_entries_with_values` also returns ``A_ij``.

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    >>> Q = np.array([[2.0, 1.0], [0.0, 2.0], [0.0, 0.0]])  # the last query is orthogonal to every key
    >>> heavy_entries(Q, K, 0.25).tolist()
    [[0, 0], [1, 1], [1, 2], [1, 3]]
    """
    return _heavy(Q, K, eps, p, tol)[0]


def heavy_entries_with_values(Q, K, eps: float, p: float = 2, *, tol: float = 1e-10
                              ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`heavy_entries` and the values ``A_ij`` of the entries found (same order).

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    >>> pairs, vals = heavy_entries_with_values(np.array([[2.0, 1.0], [0.0, 2.0]]), K, 0.25)
    >>> pairs.tolist(), vals.round(4).tolist()
    ([[0, 0], [1, 1], [1, 2], [1, 3]], [0.5714, 0.3333, 0.3333, 0.3333])
    """
    return _heavy(Q, K, eps, p, tol)


def _log_normaliser(Qb: np.ndarray, K: np.ndarray, p: float) -> np.ndarray:
    """``log sum_l |<q_i, k_l>|^p`` for each row of ``Qb``, over key blocks (``-inf`` for an all-zero row)."""
    parts = []
    step = max(1, (1 << 24) // max(Qb.shape[0], 1))
    for start in range(0, K.shape[0], step):
        with np.errstate(divide="ignore"):
            L = p * np.log(np.abs(Qb @ K[start:start + step].T))
        parts.append(logsumexp(L, axis=1))
    return logsumexp(np.stack(parts, axis=1), axis=1)


def dense_scores(Q, K, p: float = 2) -> np.ndarray:
    """The dense matrix ``A = rownormalise(|Q K^T|^p)`` (``O(n_q n d)`` time and ``n_q x n`` memory).

    A reference for tests and benchmarks, computed in log space after the same exact power-of-two balancing
    as :func:`heavy_entries`. Rows whose scores are all exactly zero are returned as zero rows.
    """
    Q, K = _matrix("Q", Q), _matrix("K", K)
    p = _check_p(p)
    if Q.shape[1] != K.shape[1]:
        raise ParameterError(f"Q has {Q.shape[1]} columns but K has {K.shape[1]}; they must share d")
    Kb, e = _balance_keys(K)
    Qb = _balance_queries(Q, e)
    with np.errstate(divide="ignore"):
        L = p * np.log(np.abs(Qb @ Kb.T))
    log_z = logsumexp(L, axis=1)
    with np.errstate(invalid="ignore"):
        A = np.exp(L - log_z[:, None])
    A[np.isneginf(log_z)] = 0.0
    return A


# ---------------------------------------------------------------------------------------------- attention


def _lev(Q, K, V, eps, kind, scale, tol) -> tuple[LogArray, np.ndarray]:
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    eps = _check_eps(eps)
    if isinstance(kind, str):
        if kind != "softmax":
            raise ParameterError(f'kind must be "softmax" or a positive exponent p, got {kind!r}')
        tau = leverage_scores(K)
        U = np.flatnonzero(tau >= eps)
        if U.size == 0:
            U = np.array([int(np.argmax(tau))])
        return exact(Q, K[U], V[U], scale=scale), U
    p = _check_p(kind)
    _check_iteration(tol, 1)
    U = universal_set(K, eps, p, tol=tol)
    return _power_attention(Q, K[U], V[U], p), U


def lev_attention(Q, K, V, *, eps: float, kind: str | float = "softmax", scale: float | None = None,
                  tol: float = 1e-10) -> LogArray:
    """Attention restricted to the universal set ``U`` of the keys, in signed log space.

    * ``kind="softmax"``: the LevAttention heuristic of the paper, ``exact(Q, K[U], V[U], scale=scale)`` with
      ``U = {j : tau_j >= eps}``. No guarantee holds (softmax has no size-independent universal set); the
      error is measured in ``docs/benchmarks.md``. If no key reaches ``eps`` the key of largest leverage
      is kept, so the softmax is always defined.
    * ``kind=p`` (a positive number): the ``|x|^p`` attention ``A V`` with ``A`` renormalised over ``U`` (the
      Lewis-weight universal set for ``p != 2``). ``scale`` cancels in the normalisation. Every entry of ``A``
      that is at least ``eps`` is kept, so the output differs from full ``|x|^p`` attention only through
      entries below ``eps``. A row whose scores on ``U`` are all zero has output 0.

    Parameters
    ----------
    Q, K, V : array_like
        Shapes ``(n_q, d)``, ``(n, d)``, ``(n, d_v)``.
    eps : float
        Sensitivity threshold in ``(0, 1]`` (keyword-only).
    kind : "softmax" or float
    scale : float, optional
        Softmax temperature, default ``1/d`` as in :func:`~finegrained.attention.exact.exact`.
    tol : float
        Accuracy of the Lewis weights (``kind = p != 2``).

    Returns
    -------
    LogArray, shape (n_q, d_v)
        :func:`lev_attention_with_keys` also returns the sorted index array ``U``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    >>> lev_attention(Q, K, V, eps=0.2).shape
    (4, 1)
    """
    return _lev(Q, K, V, eps, kind, scale, tol)[0]


def lev_attention_with_keys(Q, K, V, *, eps: float, kind: str | float = "softmax", scale: float | None = None,
                            tol: float = 1e-10) -> tuple[LogArray, np.ndarray]:
    """:func:`lev_attention` and the sorted indices ``U`` of the keys it kept.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    >>> out, U = lev_attention_with_keys(Q, K, V, eps=0.2)
    >>> len(U) <= 2 / 0.2, out.shape
    (True, (4, 1))
    """
    return _lev(Q, K, V, eps, kind, scale, tol)


def _power_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, p: float) -> LogArray:
    """``rownormalise(|Q K^T|^p) V`` with the weights formed in log space (no overflow for large ``p``)."""
    n_q, d_v = Q.shape[0], V.shape[1]
    if K.shape[0] == 0:
        return LogArray(np.zeros((n_q, d_v), dtype=np.int8), np.full((n_q, d_v), -np.inf))
    Kb, e = _balance_keys(K)  # exact, and A does not change: no overflow in Q K^T for huge or tiny inputs
    Qb = _balance_queries(Q, e)
    with np.errstate(divide="ignore"):
        L = p * np.log(np.abs(Qb @ Kb.T))
    m = L.max(axis=1)
    dead = np.isneginf(m)
    E = np.exp(L - np.where(dead, 0.0, m)[:, None])
    num = E @ V
    den = E.sum(axis=1)
    out = np.where(dead[:, None], 0.0, num / np.where(dead, 1.0, den)[:, None])
    return LogArray.from_float(out)


def lev_oracle(Q, K, V, *, scale: float | None = None, log_eps: float | None = None,
               eps: float = DEFAULT_EPS) -> OracleAnswer:
    """The ``"lev"`` oracle: softmax LevAttention with threshold ``eps``; it certifies nothing.

    Softmax has no size-independent universal set, so no error bound holds: the answer carries the ``"none"``
    certificate (:data:`~finegrained.attention.protocol.UNCERTIFIED`). ``log_eps`` is accepted and ignored.
    """
    out, U = _lev(Q, K, V, eps, "softmax", scale, 1e-10)
    return OracleAnswer(out, UNCERTIFIED, info={"eps": eps, "kept_keys": int(U.size)})
