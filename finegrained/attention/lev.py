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
* **p != 2** (ℓ_p Lewis weights ``w``, the fixed point of ``w_j = (k_j^T (K^T W^{1-2/p} K)^+ k_j)^{p/2}``,
  ``sum_j w_j = r``). With ``B = W^{1/2-1/p} K`` one has ``|<k_j, y>| <= w_j^{1/p} ||B y||_2``
  (Cauchy–Schwarz), and Hölder gives ``||B y||_2 <= ||K y||_p`` for ``p <= 2`` and
  ``||B y||_2 <= r^{1/2-1/p} ||K y||_p`` for ``p >= 2``. Therefore ``sigma_j <= c_p w_j`` with
  ``c_p = max(1, r^{p/2-1})``, and ``U = {j : c_p w_j >= eps}`` is universal with ``|U| <= c_p r / eps``.

The softmax case has no size-independent universal set (keys on a circle); :func:`lev_attention` with
``kind="softmax"`` is the paper's heuristic and carries no guarantee.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from instances.errors import NumericalError, ParameterError
from instances.logspace import LogArray, logsumexp

from .exact import check_attention_inputs, exact

#: Default ``eps`` of the ``"lev"`` oracle: at most ``100 * rank`` keys are kept.
DEFAULT_EPS = 0.01
#: Relative slack on the candidate threshold of :func:`heavy_entries`: a score and the leverage score bounding
#: it are computed by different float64 formulas, so an entry equal to ``eps`` to within rounding could
#: otherwise see its key rejected.
_CANDIDATE_SLACK = 1e-9
#: Query rows per block in :func:`heavy_entries`; bounds the ``block x |U|`` score tile.
_BLOCK_ROWS = 8192
_UNIT = float(np.finfo(np.float64).eps)

Chunks = Callable[[], Iterable[np.ndarray]] | Iterable[np.ndarray]


# ----------------------------------------------------------------------------------------------- validation


def _matrix(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ParameterError(f"{name} must be a 2-D matrix, got an array of shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise NumericalError(f"{name} contains NaN or infinite entries")
    return arr


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not (0.0 < eps <= 1.0):
        raise ParameterError(f"eps must lie in (0, 1] (attention scores are at most 1), got {eps}")
    return eps


def _check_p(p: float) -> float:
    p = float(p)
    if not (np.isfinite(p) and p > 0.0):
        raise ParameterError(f"p must be a finite positive exponent for f(x) = |x|^p, got {p}")
    return p


# ------------------------------------------------------------------------------------------ factorisations


def _rank_tol(s_max: float, n: int, d: int) -> float:
    """Singular values at most this are treated as zero (the ``numpy.linalg.matrix_rank`` default)."""
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

    def gram_quad(self, rows: np.ndarray) -> np.ndarray:
        """``a^T (A^T A) a = ||S V^T a||^2`` for every row ``a`` (all singular values, never negative)."""
        Z = (rows @ self.Vt.T) * self.s
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


# ------------------------------------------------------------------------------------- leverage and Lewis


def leverage_scores(K) -> np.ndarray:
    """Leverage scores ``tau_j = k_j^T (K^T K)^+ k_j`` of the rows of ``K``, stable for rank-deficient ``K``.

    Computed from the thin SVD ``K = U S V^T`` as ``tau_j = ||U_{j,:r}||^2`` where ``r`` is the numerical rank
    (singular values above ``max(n, d) * machine_eps * s_max``). The columns of ``U`` are orthonormal to
    machine precision, so ``0 <= tau_j <= 1`` and ``sum_j tau_j = r`` up to rounding. For ``f(x) = x^2``,
    ``tau_j`` is exactly the sensitivity ``sup_y <k_j, y>^2 / ||K y||^2`` (Cauchy–Schwarz; module docstring).

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
    n, d = K.shape
    if n == 0 or d == 0:
        return np.zeros(n)
    U, s, _ = np.linalg.svd(K, full_matrices=False)
    s_max = float(s[0]) if s.size else 0.0
    if s_max == 0.0:
        return np.zeros(n)
    r = int(np.count_nonzero(s > _rank_tol(s_max, n, d)))
    return np.einsum("ij,ij->i", U[:, :r], U[:, :r])


def numerical_rank(K) -> int:
    """Numerical rank of ``K`` with the tolerance used by :func:`leverage_scores`."""
    K = _matrix("K", K)
    return _row_space(K).rank


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
        B = Kl * np.exp((0.5 - 1.0 / p) * x)[:, None]
        x_new = (1.0 - alpha) * x + alpha * 0.5 * p * _log_quad(_row_space(B), Kl)
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
    if not (tol > 0 and int(max_iter) >= 1):
        raise ParameterError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")


def _distance_factor(p: float) -> float:
    """``L / (1 - L)``: after a step of size ``delta`` the iterate is ``L delta / (1 - L)`` from the limit."""
    rate = _lewis_rate(p)
    return rate / (1.0 - rate)


def _svd(K: np.ndarray) -> tuple[np.ndarray, _RowSpace]:
    """Leverage scores and right singular data of ``K`` from one thin SVD."""
    n, d = K.shape
    if n == 0 or d == 0:
        return np.zeros(n), _RowSpace(s=np.zeros(d), Vt=np.eye(d), rank=0)
    U, s, Vt = np.linalg.svd(K, full_matrices=False)
    if s.size < d:  # n < d: complete V^T so that gram_quad sees every direction (with singular value 0)
        _, _, Vt = np.linalg.svd(K, full_matrices=True)
        s = np.concatenate([s, np.zeros(d - s.size)])
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

    For ``p = 2``: two passes. Pass 1 accumulates the triangular factor ``R`` of ``K`` (``R^T R = K^T K``,
    ``O(d^2)`` memory; the Gram matrix is kept factored so that its condition number is not squared). Pass 2
    emits every global index ``j`` with ``tau_j = k_j^T (K^T K)^+ k_j >= eps``.

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
    acc: _StreamingR | None = None
    for _, c in _passes(source, None, None):
        acc = acc if acc is not None else _StreamingR(c.shape[1])
        acc.update(c)
    if acc is None or acc.n == 0:
        return np.zeros(0, dtype=np.int64)
    d, n, space = acc.d, acc.n, acc.row_space()
    if p == 2.0:
        return _emit(source, d, n, lambda c: space.quad(c) >= eps)

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


def _emit(source, d: int, n: int, predicate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    found = [off + np.flatnonzero(predicate(c)) for off, c in _passes(source, d, n)]
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)


# ----------------------------------------------------------------------------------------- heavy entries


def _null_rows(Q: np.ndarray, z: np.ndarray, k_fro: float) -> np.ndarray:
    """Rows whose normaliser is at the rounding level of its scores: ``q_i`` is orthogonal to every key.

    A computed score ``<q, k_j>`` carries an absolute error of about ``d u ||q|| ||k_j||``, so a normaliser
    below ``(4 d u ||q|| ||K||_F)^2`` is noise and the row ``A_i`` is ``0/0``; such a row has no heavy entry.
    """
    d = Q.shape[1]
    noise = 4.0 * max(d, 1) * _UNIT * np.linalg.norm(Q, axis=1) * k_fro
    return z <= noise**2


def heavy_entries(Q, K, eps: float, p: float = 2, *, return_values: bool = False, tol: float = 1e-10):
    """Every entry ``A_ij >= eps`` of ``A = rownormalise(|Q K^T|^p)``, found without forming ``A``.

    For ``p = 2`` this takes ``O((n_q + n) d^2 + n_q d |U|)`` time with ``|U| <= rank/eps``: the row
    normaliser ``sum_l <q_i, k_l>^2 = q_i^T (K^T K) q_i = ||S V^T q_i||^2`` comes from the SVD of ``K`` and
    the candidates are the universal set (keys with ``tau_j >= eps``, less a relative ``1e-9`` rounding
    slack). For ``p != 2`` the candidates are the Lewis-weight universal set, but the normaliser ``sum_l
    |<q_i, k_l>|^p`` has no ``d x d`` summary and is computed exactly in ``O(n_q n d)`` time (blocked,
    ``O(block * n)`` memory).

    A row whose scores are all zero to rounding (``q_i`` orthogonal to every key) has ``A_i = 0/0``; it
    contributes no entries.

    Parameters
    ----------
    Q : array_like, shape (n_q, d)
    K : array_like, shape (n, d)
    eps : float
        Threshold in ``(0, 1]``.
    p : float
        Exponent of ``f(x) = |x|^p``.
    return_values : bool
        Also return the values ``A_ij`` of the entries found.

    Returns
    -------
    pairs : numpy.ndarray of int64, shape (m, 2)
        The ``(i, j)`` pairs in lexicographic order.
    values : numpy.ndarray, shape (m,)
        Only with ``return_values``.

    Examples
    --------
    >>> K = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    >>> Q = np.array([[2.0, 1.0], [0.0, 2.0], [0.0, 0.0]])  # the last query is orthogonal to every key
    >>> pairs, vals = heavy_entries(Q, K, 0.25, return_values=True)
    >>> pairs.tolist(), vals.round(4).tolist()
    ([[0, 0], [1, 1], [1, 2], [1, 3]], [0.5714, 0.3333, 0.3333, 0.3333])
    """
    Q, K = _matrix("Q", Q), _matrix("K", K)
    eps, p = _check_eps(eps), _check_p(p)
    if Q.shape[1] != K.shape[1]:
        raise ParameterError(f"Q has {Q.shape[1]} columns but K has {K.shape[1]}; they must share d")
    k_fro = float(np.linalg.norm(K))
    if p == 2.0:
        tau, space = _svd(K)
        cand = np.flatnonzero(tau >= eps * (1.0 - _CANDIDATE_SLACK))
    else:
        space = _row_space(K)
        cand = universal_set(K, eps * (1.0 - _CANDIDATE_SLACK), p, tol=tol)
    Kc = K[cand]
    out_i, out_j, out_v = [], [], []
    for start in range(0, Q.shape[0], _BLOCK_ROWS):
        Qb = Q[start:start + _BLOCK_ROWS]
        if p == 2.0:
            z = space.gram_quad(Qb)
            null = _null_rows(Qb, z, k_fro)
            with np.errstate(divide="ignore", invalid="ignore"):
                A = (Qb @ Kc.T) ** 2 / z[:, None]
        else:
            # Whether a row's scores are all noise does not depend on p, so the p = 2 test is reused.
            null = _null_rows(Qb, space.gram_quad(Qb), k_fro)
            log_z = _log_normaliser(Qb, K, p)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                A = np.exp(p * np.log(np.abs(Qb @ Kc.T)) - log_z[:, None])
        A[null] = 0.0
        i, j = np.nonzero(A >= eps)
        out_i.append(i + start)
        out_j.append(cand[j])
        out_v.append(A[i, j])
    if out_i:
        pairs = np.stack([np.concatenate(out_i), np.concatenate(out_j)], axis=1).astype(np.int64)
        vals = np.concatenate(out_v)
    else:
        pairs, vals = np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    return (pairs, vals) if return_values else pairs


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

    A reference for tests and benchmarks. Rows whose scores are all exactly zero are returned as zero rows.
    """
    Q, K = _matrix("Q", Q), _matrix("K", K)
    p = _check_p(p)
    with np.errstate(divide="ignore"):
        L = p * np.log(np.abs(Q @ K.T))
    log_z = logsumexp(L, axis=1)
    with np.errstate(invalid="ignore"):
        A = np.exp(L - log_z[:, None])
    A[np.isneginf(log_z)] = 0.0
    return A


# ---------------------------------------------------------------------------------------------- attention


def lev_attention(Q, K, V, eps: float, kind: str | float = "softmax", *, scale: float | None = None,
                  return_indices: bool = False, tol: float = 1e-10):
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
        Sensitivity threshold in ``(0, 1]``.
    kind : "softmax" or float
    scale : float, optional
        Softmax temperature, default ``1/d`` as in :func:`~finegrained.attention.exact.exact`.
    return_indices : bool
        Also return ``U`` (its size is ``len(U)``).

    Returns
    -------
    LogArray, shape (n_q, d_v)
        And the sorted index array ``U`` with ``return_indices``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    >>> out, U = lev_attention(Q, K, V, 0.2, return_indices=True)
    >>> len(U) <= 2 / 0.2, out.shape
    (True, (4, 1))
    """
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    eps = _check_eps(eps)
    if isinstance(kind, str):
        if kind != "softmax":
            raise ParameterError(f'kind must be "softmax" or a positive exponent p, got {kind!r}')
        tau = leverage_scores(K)
        U = np.flatnonzero(tau >= eps)
        if U.size == 0:
            U = np.array([int(np.argmax(tau))])
        out = exact(Q, K[U], V[U], scale=scale)
    else:
        p = _check_p(kind)
        U = universal_set(K, eps, p, tol=tol)
        out = _power_attention(Q, K[U], V[U], p)
    return (out, U) if return_indices else out


def _power_attention(Q: np.ndarray, K: np.ndarray, V: np.ndarray, p: float) -> LogArray:
    """``rownormalise(|Q K^T|^p) V`` with the weights formed in log space (no overflow for large ``p``)."""
    n_q, d_v = Q.shape[0], V.shape[1]
    if K.shape[0] == 0:
        return LogArray(np.zeros((n_q, d_v), dtype=np.int8), np.full((n_q, d_v), -np.inf))
    with np.errstate(divide="ignore"):
        L = p * np.log(np.abs(Q @ K.T))
    m = L.max(axis=1)
    dead = np.isneginf(m)
    E = np.exp(L - np.where(dead, 0.0, m)[:, None])
    num = E @ V
    den = E.sum(axis=1)
    out = np.where(dead[:, None], 0.0, num / np.where(dead, 1.0, den)[:, None])
    return LogArray.from_float(out)


def lev_oracle(Q, K, V, *, scale: float | None = None, eps: float = DEFAULT_EPS) -> LogArray:
    """The ``"lev"`` oracle: softmax LevAttention with threshold ``eps`` (a heuristic, no error guarantee)."""
    return lev_attention(Q, K, V, eps, "softmax", scale=scale)
