r"""Gradients of softmax attention: exact (tiled), any-temperature (GHSXY25) and polynomial (Alman-Song 2024).

For ``O = Att(Q, K, V) = P V`` with ``P = D^{-1} A``, ``A = exp(s Q K^T)``, ``D = diag(A 1)`` and the loss
``L = <dO, O>`` (any upstream gradient ``dO``), the backward pass of attention is

.. math::

    dV = P^\top dO, \qquad dP = dO\, V^\top, \qquad \delta = \operatorname{rowsum}(dO \circ O), \qquad
    dS = P \circ (dP - \delta \mathbf 1^\top), \qquad dQ = s\, dS\, K, \qquad dK = s\, dS^\top Q .

(``dS`` is the gradient with respect to the scores ``S = s Q K^T``: the softmax Jacobian of row ``i`` is
``diag(p_i) - p_i p_i^T``.)

Reduction to attention-type products
------------------------------------
Expanding ``dS`` entrywise, every quantity is a product of ``P`` or ``P^T`` with a thin matrix:

.. math::

    (dQ)_{ia} = s \Big[\sum_l dO_{il}\, \big(P (V_{:l} \circ K_{:a})\big)_i - \delta_i (P K)_{ia}\Big], \qquad
    (dK)_{ja} = s \Big[\sum_l V_{jl}\, \big(P^\top (dO_{:l} \circ Q_{:a})\big)_j - \big(P^\top(\delta \circ
    Q_{:a})\big)_j\Big],

so the *row side* needs ``P X_row`` with ``X_row = [V | K | V_l K_a]`` (``d_v + d + d_v d`` columns, ``O = P V``
among them) and the *column side* needs ``P^T X_col`` with ``X_col = [dO | dO_l Q_a | delta Q_a]``; the rest is
``O(n d d_v)`` work. The column side is a transposed, *unnormalised* product. It becomes a normalised forward
call by two exact identities (:func:`anytemp_grad`):

* **Normaliser.** Append a key whose score against query ``i`` is a chosen ``c_i`` and whose value is the
  indicator of one extra column. The output of that column is ``z_i = e^{c_i} / (D_i + e^{c_i})``, so
  ``log D_i = c_i + log(1 - z_i) - log z_i``, and the other columns are ``(P X)_i (1 - z_i)``. Any ``c_i``
  works; it is well conditioned when ``c_i`` is within a few nats of ``log D_i``. **Gibbs' identity**
  ``log D_i = E_{P_i}[S_i] + H(P_i)`` with ``0 <= H <= log n_k`` gives such a ``c_i`` from one forward call:
  ``c_i = s q_i . (P K)_i`` lies in ``[log D_i - log n_k, log D_i]``.
* **Transpose.** With ``ell_i = log D_i``, queries ``k'_j = [k_j, 1]`` and keys ``q'_i = [q_i, -ell_i / s]``
  have scores ``s q_i . k_j - ell_i = log P_ij <= 0``. Add a zero key (score exactly 0) carrying the indicator
  of an extra column: the output is ``[(P^T X)_j, 1] / (1 + E_j)`` with ``E_j = sum_i P_ij`` the column sum,
  so ``P^T X = `` (the other columns) ``/`` (the indicator column), and ``1 + E_j`` lies in ``[1, 1 + n_q]``.

Certificates
------------
Every routine returns a :class:`GradResult` whose ``error_bound`` bounds ``max |computed - exact|`` over the
entries of ``dQ``, ``dK`` and ``dV`` (``bounds`` holds one bound per array). The error of the row and column
products is propagated through ``delta`` and the final contractions with the triangle inequality (see
:func:`_assemble`); the float64 rounding of the ``O(d d_v)``-term contractions is added as ``gamma_m`` times the
same expression on absolute values (Higham's ``gamma_m = m u / (1 - m u)``, ``u = 2^-53``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from instances.errors import NumericalError, ParameterError, ResourceLimitError, real_number, short_repr

from .anytemp import MAX_TREE_DIM, anytemp
from .poly import DEFAULT_MAX_MEMORY, MonomialIndex, exp_polynomial, score_radius
from .protocol import check_attention_inputs

#: unit roundoff of float64
UNIT_ROUNDOFF = 2.0**-53
#: default block size (rows of Q and of K) of :func:`exact_grad`: a 512 x 512 score tile is 2 MiB
DEFAULT_BLOCK = 512
#: default forward accuracy of :func:`anytemp_grad`
DEFAULT_ANYTEMP_EPS = 1e-9
#: default polynomial accuracy of :func:`poly_grad`
DEFAULT_POLY_EPS = 1e-8
#: feature rows materialised at once by :func:`poly_grad`
_POLY_BLOCK_BYTES = 32 * 2**20


def _gamma(m: int) -> float:
    """Higham's ``gamma_m``: relative error bound of ``m`` chained float64 operations."""
    mu = m * UNIT_ROUNDOFF
    return math.inf if mu >= 1 else mu / (1 - mu)


@dataclass(frozen=True)
class GradResult:
    """Gradients of ``L = <dO, Att(Q, K, V)>`` with a certified error bound.

    Attributes
    ----------
    dQ : numpy.ndarray, shape (n_q, d)
    dK : numpy.ndarray, shape (n_k, d)
    dV : numpy.ndarray, shape (n_k, d_v)
    error_bound : float
        Proved bound on the largest absolute entry error of ``dQ``, ``dK`` and ``dV`` together.
    bounds : dict
        ``{"dQ": ..., "dK": ..., "dV": ...}``: the bound of each array.
    method : str
        ``"exact"``, ``"anytemp"`` or ``"poly"``.
    stats : dict
        Method-specific details (forward certificates, degree, rank, number of forward calls, ...).
    """

    dQ: np.ndarray
    dK: np.ndarray
    dV: np.ndarray
    error_bound: float
    bounds: dict = field(default_factory=dict)
    method: str = ""
    stats: dict = field(default_factory=dict)


def _check_grad_inputs(Q, K, V, dO, scale):
    Q, K, V, s = check_attention_inputs(Q, K, V, scale)
    if isinstance(dO, np.ndarray) and dO.dtype.kind not in "biufO":  # O: Fractions, mpmath numbers
        # a complex dO would lose its imaginary part in the conversion below and be "certified"
        raise ParameterError(f"dO must be a real numeric matrix, got dtype {dO.dtype}")
    try:
        dO = np.asarray(dO, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ParameterError(f"dO must be a real numeric matrix ({exc})") from None
    if dO.shape != (Q.shape[0], V.shape[1]):
        raise ParameterError(f"dO must have the shape of the output, {(Q.shape[0], V.shape[1])}; got {dO.shape}")
    if not np.isfinite(dO).all():
        raise NumericalError("dO contains NaN or infinite entries")
    return Q, K, V, dO, s


def _to_float(x) -> tuple[np.ndarray, float]:
    """A forward output as floats; entries below the float64 range flush to 0, and the second value bounds the
    absolute error this adds (the smallest normal float64), to be added to the certificate."""
    with np.errstate(under="ignore"):
        return x.sign * np.exp(x.log_abs), 2.3e-308


def _forward(Qx: np.ndarray, Kx: np.ndarray, W: np.ndarray, eps: float, s: float, options: dict):
    """One :func:`anytemp` call with every value column scaled to ``max|W_c| <= 1`` by a power of two (exact).

    The forward certificate is one bound per row for all columns, driven by the largest column; scaling makes
    it a bound relative to each column's own size. Returns the unscaled output, its entrywise error bound and
    the call's result.
    """
    top = np.abs(W).max(axis=0)
    col_scale = np.where(top > 0, np.exp2(np.ceil(np.log2(np.where(top > 0, top, 1.0)))), 1.0)
    res = anytemp(Qx, Kx, W / col_scale, eps=eps, scale=s, **options)
    Y, flush = _to_float(res.output)
    return Y * col_scale, (res.row_bounds[:, None] + flush) * col_scale[None, :], res


def _finite(res: GradResult) -> GradResult:
    for name in ("dQ", "dK", "dV"):
        if not np.isfinite(getattr(res, name)).all():
            raise NumericalError(f"{name} overflows float64; rescale dO or V")
    if not np.isfinite(res.error_bound):
        raise NumericalError("the error bound overflows float64; rescale dO or V")
    return res


# ------------------------------------------------------------------------------------------------------------
# exact
# ------------------------------------------------------------------------------------------------------------


def exact_grad(Q, K, V, dO, *, scale: float | None = None, block: int = DEFAULT_BLOCK) -> GradResult:
    r"""Attention gradients in float64, tiled over query and key blocks, from the forward's row log-normalisers.

    Pass 1 (the forward) computes ``ell_i = log D_i`` and ``O`` by the online log-sum-exp over key blocks. Pass 2
    recomputes each score tile, forms ``P = exp(S - ell)`` (every entry in ``[0, 1]``: no overflow, and the
    normaliser is never formed as a float, so scores of any size are fine), and accumulates ``dV += P^T dO``,
    ``dQ += dS K`` and ``dK += dS^T Q`` tile by tile. Memory: ``O((n_q + n_k)(d + d_v) + block^2)``; the
    ``n_q x n_k`` matrix is never built.

    **Error bound** (standard model of float64 arithmetic, ``exp`` and ``log`` within one ulp). Let
    ``R = |s| max_i ||q_i|| max_j ||k_j||`` (bounds every ``|S_ij|`` and ``|s| sum_l |q_l k_l|``), ``n_b`` the
    number of key blocks and ``Lam = max_i |ell_i|``.

    1. Scores: ``|S^ - S| <= gamma_{d+2} R``. The online sum multiplies each term by at most ``n_b + 1``
       rounded exponentials of arguments at most ``2R`` in size, so
       ``|ell^ - ell| <= lam = gamma_{d+2} R + (n_b + 1)(2R + 3) u + gamma_{n_k + 2 n_b} + 2u(Lam + 1)``.
    2. ``P^ = P e^theta`` with ``|theta| <= tau = gamma_{d+2} R + lam + u(R + Lam) + 2u``; ``eps_P = e^tau - 1``.
       ``O`` carries ``|O^ - O| <= eps_O max|V|`` with ``eps_O = e^{2 tau} - 1 + gamma_{n_k + 2 n_b + 2}``, hence
       ``|delta^_i - delta_i| <= Dl_i = ||dO_i||_1 max|V| (eps_O + gamma_{d_v})(1 + eps_O)``.
    3. With ``h_i = ||dO_i||_1 max|V| + |delta_i|`` (it bounds ``|dP_ij - delta_i|``), each computed ``dS_ij``
       is within ``P_ij kappa_i`` of the exact one, ``kappa_i = (eps_P + gamma_{d_v+3})(1 + eps_P) h_i +
       (1 + eps_P) Dl_i``.
    4. Summing over keys (queries) adds ``gamma_{n + n_b + 2}`` times the absolute sums, and ``sum_j P_ij = 1``,
       ``sum_i P_ij = c_j`` (the column sum, accumulated alongside) give

       ``|dQ^ - dQ|_ia <= |s| max|K_a| [kappa_i + gamma (1 + eps_P)(h_i + kappa_i)]``,
       ``|dK^ - dK|_ja <= |s| max|Q_a| c_j max_i [kappa_i + gamma (1 + eps_P)(h_i + kappa_i)]`` and
       ``|dV^ - dV|_jl <= (eps_P + gamma)(1 + eps_P) c_j max_i |dO_il|``.

    ``error_bound`` is the largest of these (each inflated by ``1 + 8u``), an absolute bound that is a relative
    bound of order ``(d + n_b R + n) u`` on the absolute-value version of every sum.

    Parameters
    ----------
    Q, K, V : array_like, shapes (n_q, d), (n_k, d), (n_k, d_v)
    dO : array_like, shape (n_q, d_v)
        Upstream gradient ``dL/dO``.
    scale : float, optional
        Score scale ``s``; default ``1/d`` as in :func:`~finegrained.attention.exact.exact`.
    block : int
        Rows of ``Q`` and of ``K`` per tile.

    Returns
    -------
    GradResult

    Examples
    --------
    >>> Q = np.array([[1.0, 0.0]]); K = np.array([[1.0, 0.0], [0.0, 1.0]]); V = np.array([[1.0], [0.0]])
    >>> g = exact_grad(Q, K, V, np.ones((1, 1)), scale=1.0)
    >>> p = np.e / (np.e + 1); bool(np.allclose(g.dV.ravel(), [p, 1 - p]))
    True
    >>> bool(np.allclose(g.dQ, [[p * (1 - p), -p * (1 - p)]])), g.error_bound < 1e-13
    (True, True)
    """
    Q, K, V, dO, s = _check_grad_inputs(Q, K, V, dO, scale)
    block = int(block)
    if block < 1:
        raise ParameterError(f"block must be >= 1, got {block}")
    n_q, d = Q.shape
    n_k, d_v = V.shape
    Qs = Q * s
    ell = np.empty(n_q)
    out = np.empty((n_q, d_v))
    for qa in range(0, n_q, block):
        qb = slice(qa, min(n_q, qa + block))
        m = np.full(qb.stop - qa, -np.inf)
        tot = np.zeros(qb.stop - qa)
        acc = np.zeros((qb.stop - qa, d_v))
        for ka in range(0, n_k, block):
            kb = slice(ka, min(n_k, ka + block))
            S = Qs[qb] @ K[kb].T
            m_new = np.maximum(m, S.max(axis=1))
            alpha = np.exp(m - m_new)  # exp(-inf) = 0 on the first block
            np.subtract(S, m_new[:, None], out=S)
            np.exp(S, out=S)
            tot = tot * alpha + S.sum(axis=1)
            acc = acc * alpha[:, None] + S @ V[kb]
            m = m_new
        ell[qb] = m + np.log(tot)
        out[qb] = acc / tot[:, None]
    delta = np.einsum("il,il->i", dO, out)

    dQ = np.zeros((n_q, d))
    dK = np.zeros((n_k, d))
    dV = np.zeros((n_k, d_v))
    colsum = np.zeros(n_k)
    for qa in range(0, n_q, block):
        qb = slice(qa, min(n_q, qa + block))
        for ka in range(0, n_k, block):
            kb = slice(ka, min(n_k, ka + block))
            P = Qs[qb] @ K[kb].T
            np.subtract(P, ell[qb, None], out=P)
            np.exp(P, out=P)
            colsum[kb] += P.sum(axis=0)
            dV[kb] += P.T @ dO[qb]
            dS = dO[qb] @ V[kb].T
            np.subtract(dS, delta[qb, None], out=dS)
            np.multiply(dS, P, out=dS)
            dQ[qb] += dS @ K[kb]
            dK[kb] += dS.T @ Q[qb]
    dQ *= s
    dK *= s

    # Certificate (docstring steps 1-4).
    u = UNIT_ROUNDOFF
    n_b = -(-n_k // block) if n_k else 0
    q_norm = float(np.sqrt(np.einsum("ij,ij->i", Q, Q).max(initial=0.0)))
    k_norm = float(np.sqrt(np.einsum("ij,ij->i", K, K).max(initial=0.0)))
    R = abs(s) * q_norm * k_norm * (1 + 4 * u)
    lam_max = float(np.abs(ell).max(initial=0.0))
    lam = _gamma(d + 2) * R + (n_b + 1) * (2 * R + 3) * u + _gamma(n_k + 2 * n_b) + 2 * u * (lam_max + 1)
    tau = _gamma(d + 2) * R + lam + u * (R + lam_max) + 2 * u
    eps_p = math.expm1(tau)
    eps_o = math.expm1(2 * tau) + _gamma(n_k + 2 * n_b + 2)
    v_max = float(np.abs(V).max(initial=0.0))
    do_l1 = np.abs(dO).sum(axis=1)
    dl = do_l1 * v_max * (eps_o + _gamma(d_v)) * (1 + eps_o)
    h = do_l1 * v_max + np.abs(delta)
    kappa = (eps_p + _gamma(d_v + 3)) * (1 + eps_p) * h + (1 + eps_p) * dl
    g_q = _gamma(n_k + n_b + 2)
    g_k = _gamma(n_q + n_b + 2)
    k_max = np.abs(K).max(axis=0) if n_k else np.zeros(d)
    q_max = np.abs(Q).max(axis=0) if n_q else np.zeros(d)
    row_q = kappa + g_q * (1 + eps_p) * (h + kappa)
    row_k = kappa + g_k * (1 + eps_p) * (h + kappa)
    c_max = float(colsum.max(initial=0.0)) * (1 + eps_p) * (1 + g_k)
    infl = 1 + 8 * u
    b_q = abs(s) * float(k_max.max(initial=0.0)) * float(row_q.max(initial=0.0)) * infl
    b_k = abs(s) * float(q_max.max(initial=0.0)) * c_max * float(row_k.max(initial=0.0)) * infl
    b_v = (eps_p + g_k) * (1 + eps_p) * c_max * float(np.abs(dO).max(initial=0.0)) * infl
    bounds = {"dQ": b_q, "dK": b_k, "dV": b_v}
    stats = {"score_radius": R, "log_normaliser_error": lam, "relative_P_error": eps_p, "key_blocks": n_b}
    return _finite(GradResult(dQ, dK, dV, max(bounds.values()), bounds, "exact", stats))


# ------------------------------------------------------------------------------------------------------------
# shared assembly of the reduction
# ------------------------------------------------------------------------------------------------------------


def _row_values(V: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``X_row = [V | K | V_l K_a]`` (the ``(l, a)`` block in row-major order)."""
    n, d_v = V.shape
    d = K.shape[1]
    return np.concatenate([V, K, (V[:, :, None] * K[:, None, :]).reshape(n, d_v * d)], axis=1)


def _col_values(dO: np.ndarray, Q: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``X_col = [dO | dO_l Q_a | delta Q_a]``."""
    n, d_v = dO.shape
    d = Q.shape[1]
    return np.concatenate([dO, (dO[:, :, None] * Q[:, None, :]).reshape(n, d_v * d), delta[:, None] * Q], axis=1)


def _delta(dO: np.ndarray, out: np.ndarray, err_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``delta = rowsum(dO o O)`` and a bound on its error from ``|O^ - O| <= err_out``."""
    delta = np.einsum("il,il->i", dO, out)
    d_v = dO.shape[1]
    err = np.einsum("il,il->i", np.abs(dO), err_out) * (1 + _gamma(d_v)) + _gamma(d_v) * np.einsum(
        "il,il->i", np.abs(dO), np.abs(out) + err_out)
    return delta, err


def _assemble(s, V, dO, row, row_err, delta, delta_err, col, col_err, d):
    """``dQ, dK, dV`` and their entrywise bounds from ``P X_row`` and ``P^T X_col`` with entrywise errors.

    Triangle inequality on the formulas of the module docstring: for ``dQ = s (sum_l dO_l F_l - delta PK)``
    the error is ``|s| (sum_l |dO_l| errF_l + |delta| errPK + Dl (|PK| + errPK))`` plus ``gamma_{d_v + 2}``
    times the absolute sum (rounding of this contraction); ``dK`` likewise. ``col``'s error already includes
    the effect of ``delta``'s error on its last ``d`` columns.
    """
    n_q, d_v = dO.shape
    n_k = V.shape[0]
    g = _gamma(d_v + 3)
    PK, ePK = row[:, d_v : d_v + d], row_err[:, d_v : d_v + d]
    F = row[:, d_v + d :].reshape(n_q, d_v, d)
    eF = row_err[:, d_v + d :].reshape(n_q, d_v, d)
    adO = np.abs(dO)
    dQ = s * (np.einsum("il,ila->ia", dO, F) - delta[:, None] * PK)
    abs_q = np.einsum("il,ila->ia", adO, np.abs(F) + eF) + (np.abs(delta) + delta_err)[:, None] * (np.abs(PK) + ePK)
    err_q = abs(s) * (np.einsum("il,ila->ia", adO, eF) + np.abs(delta)[:, None] * ePK
                      + delta_err[:, None] * (np.abs(PK) + ePK) + g * abs_q)
    dV, err_v = col[:, :d_v], col_err[:, :d_v]
    G1 = col[:, d_v : d_v + d_v * d].reshape(n_k, d_v, d)
    eG1 = col_err[:, d_v : d_v + d_v * d].reshape(n_k, d_v, d)
    G2, eG2 = col[:, d_v + d_v * d :], col_err[:, d_v + d_v * d :]
    aV = np.abs(V)
    dK = s * (np.einsum("jl,jla->ja", V, G1) - G2)
    abs_k = np.einsum("jl,jla->ja", aV, np.abs(G1) + eG1) + np.abs(G2) + eG2
    err_k = abs(s) * (np.einsum("jl,jla->ja", aV, eG1) + eG2 + g * abs_k)
    infl = 1 + 8 * UNIT_ROUNDOFF
    bounds = {name: float(e.max(initial=0.0)) * infl for name, e in (("dQ", err_q), ("dK", err_k), ("dV", err_v))}
    return dQ, dK, np.array(dV), bounds


# ------------------------------------------------------------------------------------------------------------
# any temperature
# ------------------------------------------------------------------------------------------------------------


def anytemp_grad(Q, K, V, dO, *, scale: float | None = None, eps: float = DEFAULT_ANYTEMP_EPS,
                 **anytemp_options) -> GradResult:
    r"""Attention gradients for any entry size through three calls of the any-temperature forward (GHSXY25).

    The gradient part of Gupta et al.'s Theorem 1.1 ("a similar running time for attention gradient
    computation") realised as a reduction to :func:`~finegrained.attention.anytemp.anytemp` (see the module
    docstring for the identities):

    1. ``P K`` (``d`` value columns), for the Gibbs shift ``c_i = s q_i . (P K)_i``;
    2. the row side ``P [V | K | V_l K_a]`` with one extra key of score ``c_i`` (dimension ``d + 1``), which also
       yields ``log D_i``;
    3. the column side ``P^T [dO | dO_l Q_a | delta Q_a]`` as a forward call with queries ``[K, 1]``, keys
       ``[Q, -log D / s]`` and one zero key (dimension ``d + 1``).

    Each call has ``O(d d_v)`` value columns (``O(d)`` calls of one column each for ``d_v = 1``); everything else
    is ``O(n d d_v)``. Tree dimension is ``d + 1``, so ``d <= 3`` keeps every call on the tree
    (:data:`~finegrained.attention.anytemp.MAX_TREE_DIM` is 4); for larger ``d`` (and for ``scale = 0``) the
    result is :func:`exact_grad`'s, with ``stats["reason"]`` saying so.

    **Certificate**, from the per-row bounds ``beta`` of the forward calls (``|Y^ - Y| <= beta`` entrywise):

    * step 2: ``(PX)_i = Y_i / (1 - z_i)`` is within ``beta_i (1 + max|X|) / (1 - z^_i - beta_i)`` per column, and
      ``|ell^_i - log D_i| <= -log(1 - beta_i / z^_i) - log(1 - beta_i / (1 - z^_i))`` plus ``u |ell_i|`` terms
      for the rounding of ``c_i`` and of ``ell_i / s``;
    * step 3: with ``w_j`` the indicator column and ``E_j <= 1 / (w^_j - beta_j) - 1``, ``(P~^T X)_j`` is within
      ``beta_j (1 + E_j max|X|) / (w^_j - beta_j)``; ``P~ = P e^{log D - ell'}`` differs from ``P`` by at most a
      factor ``e^{lam}``, adding ``(e^{lam} - 1) E_j max|X|``; the error of ``delta`` adds
      ``e^{lam} E_j max_i(Ddelta_i |Q_ia|)`` to the last ``d`` columns;
    * :func:`_assemble` propagates these through the final contractions.

    A :class:`~instances.errors.NumericalError` is raised when a denominator of these bounds is not positive
    (the forward accuracy ``eps`` is too coarse for ``n``); the column call runs at ``eps / (n_q + 1)`` because
    its outputs are divided by ``w_j >= 1 / (1 + n_q)``.

    Parameters
    ----------
    Q, K, V, dO, scale
        As in :func:`exact_grad`.
    eps : float
        Additive accuracy of the forward calls (their own certificates are used, not ``eps``).
    **anytemp_options
        Passed to every :func:`~finegrained.attention.anytemp.anytemp` call (``degree``, ``leaf_size``, ...).

    Returns
    -------
    GradResult
        ``stats`` has the three forward certificates and the worst log-normaliser error.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K = rng.uniform(-50, 50, (200, 1)), rng.uniform(-50, 50, (200, 1))
    >>> V, dO = rng.normal(size=(200, 1)), rng.normal(size=(200, 1))
    >>> g, ref = anytemp_grad(Q, K, V, dO, scale=1.0), exact_grad(Q, K, V, dO, scale=1.0)
    >>> err = max(np.abs(g.dQ - ref.dQ).max(), np.abs(g.dK - ref.dK).max(), np.abs(g.dV - ref.dV).max())
    >>> bool(err <= g.error_bound + ref.error_bound), g.error_bound < 1e-2
    (True, True)
    """
    Q, K, V, dO, s = _check_grad_inputs(Q, K, V, dO, scale)
    try:
        # real_number: strings, bools and complex numbers are refused, not converted or truncated
        eps = real_number("eps", eps, finite=False)
    except ParameterError:
        raise ParameterError(f"eps must lie in (0, 1), got {short_repr(eps)}") from None
    if not (np.isfinite(eps) and 0 < eps < 1):
        raise ParameterError(f"eps must lie in (0, 1), got {eps}")
    n_q, d = Q.shape
    n_k, d_v = V.shape
    if s == 0 or n_q == 0 or d + 1 > MAX_TREE_DIM:
        # Uniform attention or nothing to do (the exact tiled gradient is then cheap), or a tree dimension the
        # forward would itself hand to exact attention (whose rounding it does not certify): use exact_grad.
        res = exact_grad(Q, K, V, dO, scale=s)
        reason = "trivial" if s == 0 or n_q == 0 else f"tree dimension d + 1 = {d + 1} > {MAX_TREE_DIM}"
        return GradResult(res.dQ, res.dK, res.dV, res.error_bound, res.bounds, "anytemp",
                          {"reason": reason, "forward_calls": 0})
    u = UNIT_ROUNDOFF

    # Call 1: P K, for the Gibbs shift c_i in [log D_i - log n_k, log D_i] (up to the call's error).
    r1 = anytemp(Q, K, K, eps=eps, scale=s, **anytemp_options)
    c = s * np.einsum("ia,ia->i", Q, _to_float(r1.output)[0])
    t = c / s

    # Call 2: the row side with an extra key of score a_i = s t_i (exactly, in real arithmetic).
    X_row = _row_values(V, K)
    c_row = X_row.shape[1]
    Q2 = np.concatenate([Q, t[:, None]], axis=1)
    K2 = np.zeros((n_k + 1, d + 1))
    K2[:n_k, :d] = K
    K2[n_k, d] = 1.0
    W2 = np.zeros((n_k + 1, c_row + 1))
    W2[:n_k, :c_row] = X_row
    W2[n_k, c_row] = 1.0
    Y, Y_err, r2 = _forward(Q2, K2, W2, eps, s, anytemp_options)
    beta = Y_err[:, c_row]
    z = Y[:, c_row]
    one_minus = 1.0 - z
    den_row = one_minus - beta
    if not ((z - beta > 0).all() and (den_row > 0).all()):
        raise NumericalError(
            f"anytemp_grad: the forward certificate (max {beta.max():.3g}) is too coarse to recover the row "
            f"normalisers (indicator column as low as {min(z.min(), one_minus.min()):.3g}); lower eps")
    x_max = np.abs(X_row).max(axis=0)
    row = Y[:, :c_row] / one_minus[:, None]
    row_err = (Y_err[:, :c_row] + beta[:, None] * x_max[None, :]) / den_row[:, None] + 2 * u * np.abs(row)
    a = s * t
    ell = a + np.log(one_minus) - np.log(z)
    lam = (-np.log1p(-beta / z) - np.log1p(-beta / one_minus) + 2 * u * np.abs(a)
           + 4 * u * (np.abs(ell) + 2.0))
    out, err_out = row[:, :d_v], row_err[:, :d_v]
    delta, delta_err = _delta(dO, out, err_out)

    # Call 3: the column side, keys [Q, -ell/s] plus a zero key, queries [K, 1].
    tau = ell / s
    lam = lam + 2 * u * np.abs(ell)  # |s tau - ell| <= u |ell| (1 + u)
    X_col = _col_values(dO, Q, delta)
    c_col = X_col.shape[1]
    K3 = np.zeros((n_q + 1, d + 1))
    K3[:n_q, :d] = Q
    K3[:n_q, d] = -tau
    W3 = np.zeros((n_q + 1, c_col + 1))
    W3[:n_q, :c_col] = X_col
    W3[n_q, c_col] = 1.0
    Q3 = np.concatenate([K, np.ones((n_k, 1))], axis=1)
    Z, Z_err, r3 = _forward(Q3, K3, W3, eps / (n_q + 1), s, anytemp_options)
    beta3 = Z_err[:, c_col]
    w = Z[:, c_col]
    den_col = w - beta3
    if not (den_col > 0).all():
        raise NumericalError(
            f"anytemp_grad: the column-side certificate (max {beta3.max():.3g}) exceeds the indicator column "
            f"(min {w.min():.3g}); lower eps")
    E_hi = 1.0 / den_col - 1.0
    xc_max = np.abs(X_col).max(axis=0)
    col = Z[:, :c_col] / w[:, None]
    lam_max = float(lam.max(initial=0.0))
    grow = math.expm1(lam_max)
    col_err = ((Z_err[:, :c_col] + beta3[:, None] * E_hi[:, None] * xc_max[None, :]) / den_col[:, None]
               + grow * E_hi[:, None] * xc_max[None, :] + 2 * u * np.abs(col))
    dd = np.abs(Q) * delta_err[:, None]
    col_err[:, c_col - d :] += math.exp(lam_max) * E_hi[:, None] * dd.max(axis=0)[None, :]

    dQ, dK, dV, bounds = _assemble(s, V, dO, row, row_err, delta, delta_err, col, col_err, d)
    stats = {
        "forward_calls": 3,
        "forward_bounds": [r1.error_bound, r2.error_bound, r3.error_bound],
        "forward_methods": [r1.method, r2.method, r3.method],
        "log_normaliser_error": lam_max,
        "value_columns": [d, c_row + 1, c_col + 1],
    }
    return _finite(GradResult(dQ, dK, dV, max(bounds.values()), bounds, "anytemp", stats))


# ------------------------------------------------------------------------------------------------------------
# polynomial method
# ------------------------------------------------------------------------------------------------------------


def poly_grad(Q, K, V, dO, *, scale: float | None = None, eps: float = DEFAULT_POLY_EPS, B: float | None = None,
              max_memory: int = DEFAULT_MAX_MEMORY) -> GradResult:
    r"""Attention gradients by the polynomial method for bounded entries (Alman & Song 2024, on Algorithm 1).

    The rank-``r`` factorisation ``A~ = U1 U2^T = P_g(s Q K^T)`` of :func:`~finegrained.attention.poly.poly`
    (``r = C(g + d, d)``, ``|A~ - A| <= eps_A A`` entrywise on ``[-R, R]``) replaces ``A`` in both products of
    the reduction (module docstring): the row side is ``D~^{-1} U1 (U2^T X_row)`` with ``D~ = U1 (U2^T 1)``, the
    column side ``U2 (U1^T (D~^{-1} X_col))``. Time ``O(n r d d_v)``, memory ``O(r d d_v + block r)``.

    **Certificate.** ``P~ = D~^{-1} A~`` satisfies ``|P~_ij / P_ij - 1| <= 2 eps_A / (1 - eps_A)``.

    * Row side: ``(P X)_i`` within ``(2 eps_A + 2 eps_r / (1 - eps_A - eps_r)) max|X|`` (the bound of
      :func:`~finegrained.attention.poly.poly`, whose ``eps_r = gamma_m S e^R`` covers float64 rounding,
      ``S = sum_k |c_k| R^k``, ``m = n_q + n_k + r + 4g + 16``).
    * Column side: the computed ``(P^T X)_j`` is within ``theta c_j max|X| + gamma_m S max|X| sum_i 1/D^_i``,
      ``theta = (1 + eps_A)(1 + u) / (1 - eps_A - eps_r) - 1``: the first term compares ``A~_ij / D^_i`` with
      ``A_ij / D_i`` (``D^`` the computed row sums, within ``(eps_A + eps_r) D``), the second bounds the
      rounding of the two products by the absolute sum ``sum_alpha |U1_i,alpha U2_j,alpha| <= S``. The true
      column sums satisfy ``c_j <= (c^_j + rho_j) / (1 - theta)`` with ``rho_j`` the rounding term for ``X = 1``,
      which needs ``theta < 1`` (``3 eps_A + 2 eps_r < 1``): otherwise the call raises NumericalError.
    * :func:`_assemble` propagates these.

    Parameters
    ----------
    Q, K, V, dO, scale
        As in :func:`exact_grad`.
    eps : float
        Relative accuracy ``eps_A`` of the polynomial, in ``(0, 1)``.
    B : float, optional
        Bound on ``|Q_ij|, |K_ij|``, validated against the data (:class:`ParameterError` if violated).
    max_memory : int
        Bytes; larger plans raise :class:`~instances.errors.ResourceLimitError` before allocating.

    Returns
    -------
    GradResult
        ``stats`` has the degree, the rank, ``eps_A`` and ``eps_r``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V, dO = (rng.uniform(-1, 1, (300, 2)) for _ in range(4))
    >>> g, ref = poly_grad(Q, K, V, dO), exact_grad(Q, K, V, dO)
    >>> err = max(np.abs(g.dQ - ref.dQ).max(), np.abs(g.dK - ref.dK).max(), np.abs(g.dV - ref.dV).max())
    >>> bool(err <= g.error_bound + ref.error_bound < 1e-5), g.stats["rank"]
    (True, 55)
    """
    Q, K, V, dO, s = _check_grad_inputs(Q, K, V, dO, scale)
    try:
        # real_number: strings, bools and complex numbers are refused, not converted or truncated
        eps = real_number("eps", eps, finite=False)
    except ParameterError:
        raise ParameterError(f"eps must lie in (0, 1), got {short_repr(eps)}") from None
    if not 0.0 < eps < 1.0:
        raise ParameterError(f"eps must lie in (0, 1), got {eps}")
    if B is not None:
        big = max(float(np.abs(Q).max(initial=0.0)), float(np.abs(K).max(initial=0.0)))
        if big > B:
            raise ParameterError(f"entries of Q and K must satisfy |x| <= B = {B}, but one has |x| = {big:g}")
    n_q, d = Q.shape
    n_k, d_v = V.shape
    radius = score_radius(Q, K, s)
    # S = sum_k |c_k| R^k >= P(R) >= (1 - eps_A) e^R, so eps_r >= gamma_m e^{2R} / 2: when that reaches 1/4 the
    # certificate below is void whatever the degree; refuse before building a high-degree polynomial.
    if 2 * radius + math.log(_gamma(n_q + n_k + 16)) >= math.log(0.5):
        raise NumericalError(
            f"poly_grad: scores reach |s q.k| = {radius:.4g}; the monomial basis cancels terms ~e^{radius:.3g} and "
            f"float64 rounding voids any certificate (bounded entries need R below about "
            f"{0.5 * (math.log(0.5) - math.log(_gamma(n_q + n_k + 16))):.1f}); use anytemp_grad or exact_grad")
    approx = exp_polynomial(radius, eps)
    g = approx.degree
    # the rank is C(g + d, d); the index enumerating those monomials is built only after the memory check
    r = math.comb(g + d, d)
    c_row = d_v + d + d_v * d + 1
    c_col = d_v + d_v * d + d + 1
    block = max(1, min(max(n_q, n_k, 1), _POLY_BLOCK_BYTES // (8 * r)))
    need = 8 * (r * (c_row + c_col) + block * (r + c_row + c_col) + (n_q + n_k) * (c_row + c_col))
    if need > max_memory:
        raise ResourceLimitError(
            f"poly_grad needs about {need / 2**20 if need < 2**1000 else float('inf'):.1f} MiB (rank r = C({g} + {d}, "
            f"{d}) = {f'about 2^{r.bit_length()}' if r > 10**30 else r}) but max_memory is "
            f"{max_memory / 2**20:.1f} MiB")
    index = MonomialIndex.build(d, g)
    if index.rank != r:
        raise NumericalError(f"poly_grad: the monomial index has rank {index.rank}, expected C({g} + {d}, {d}) = {r}")
    eps_a = approx.bound
    gam = _gamma(n_q + n_k + r + 4 * g + 16)
    eps_r = gam * approx.abs_sum * math.exp(radius)
    if not eps_a + eps_r < 0.5:
        raise NumericalError(
            f"poly_grad: scores in [-{radius:.4g}, {radius:.4g}] make the rounding of the monomial basis "
            f"(relative {eps_r:.3g}) void the certificate")
    u = UNIT_ROUNDOFF
    # theta of the docstring, (1 + eps_A)(1 + u) / (1 - eps_A - eps_r) - 1, rounded up: 1 + u is exactly 1.0 in
    # float64, so its u is added as the 3u it is at most (1 + eps_A <= 3/2, denominator >= 1/2), and the float64
    # evaluation of the quotient minus 1 loses at most 13u more: 32u covers both.
    theta = (1 + eps_a) / (1 - eps_a - eps_r) - 1 + 32 * u
    if not theta < 1:
        # c_j <= (c^_j + rho_j) / (1 - theta) bounds the column sums only for theta < 1 (3 eps_A + 2 eps_r < 1)
        raise NumericalError(
            f"poly_grad: eps_A = {eps_a:.3g} with rounding {eps_r:.3g} gives theta = {theta:.6g} >= 1, so the "
            f"column sums are not bounded; ask for a smaller eps")
    col_coef = approx.coefficients * s ** np.arange(len(approx.coefficients))
    col_coef = col_coef[index.degree] * index.weight

    X_row = np.concatenate([_row_values(V, K), np.ones((n_k, 1))], axis=1)
    KX = np.zeros((r, c_row))
    for a in range(0, n_k, block):
        KX += index.monomials(K[a : a + block]).T @ X_row[a : a + block]
    num = np.empty((n_q, c_row))
    for a in range(0, n_q, block):
        U1 = index.monomials(Q[a : a + block])
        U1 *= col_coef
        num[a : a + block] = U1 @ KX
    den = num[:, -1]
    if not (np.isfinite(num).all() and (den > 0).all()):
        raise NumericalError("poly_grad: a computed row sum is not positive and finite; the computation lost precision")
    row = num[:, :-1] / den[:, None]
    x_max = np.abs(X_row[:, :-1]).max(axis=0)
    row_err = (2 * eps_a + 2 * eps_r / (1 - eps_a - eps_r)) * x_max[None, :] * (1 + 2 * u) + u * np.abs(row)
    out, err_out = row[:, :d_v], row_err[:, :d_v]
    delta, delta_err = _delta(dO, out, err_out)

    X_col = np.concatenate([_col_values(dO, Q, delta), np.ones((n_q, 1))], axis=1)
    Y = X_col / den[:, None]
    QY = np.zeros((r, c_col))
    for a in range(0, n_q, block):
        U1 = index.monomials(Q[a : a + block])
        U1 *= col_coef
        QY += U1.T @ Y[a : a + block]
    colv = np.empty((n_k, c_col))
    for a in range(0, n_k, block):
        colv[a : a + block] = index.monomials(K[a : a + block]) @ QY
    if not np.isfinite(colv).all():
        raise NumericalError("poly_grad: the column-side products overflow float64")
    inv_sum = float((1.0 / den).sum()) * (1 + _gamma(n_q + 1))
    rho = gam * approx.abs_sum * inv_sum * (1 + 4 * u)  # 1 + 4u: 1 + u would round to 1 and inflate nothing
    c_hi = (np.maximum(colv[:, -1], 0.0) + rho) / (1 - theta)
    xc_max = np.abs(X_col[:, :-1]).max(axis=0, initial=0.0)  # initial: n_q = 0 has no rows
    col = colv[:, :-1]
    col_err = (theta * c_hi[:, None] + rho) * xc_max[None, :]
    col_err[:, c_col - 1 - d :] += c_hi[:, None] * (np.abs(Q) * delta_err[:, None]).max(axis=0, initial=0.0)[None, :]

    dQ, dK, dV, bounds = _assemble(s, V, dO, row, row_err, delta, delta_err, col, col_err, d)
    stats = {"degree": g, "rank": r, "poly_error": eps_a, "rounding_error": eps_r, "radius": radius,
             "method": approx.method}
    return _finite(GradResult(dQ, dK, dV, max(bounds.values()), bounds, "poly", stats))


__all__ = ["GradResult", "anytemp_grad", "exact_grad", "poly_grad"]
