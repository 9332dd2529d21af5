r"""Arbitrary-precision reference attention (mpmath), to certify the float64 oracles.

Computes Definition 1.2's ``T = D^{-1} exp(s Q K^T) V`` for the *given* float64 matrices with every operation in
mpmath at ``dps`` significant decimal digits. Each float64 entry converts to an mpmath number exactly, the scores
``s <q_i, k_j>`` are dot products at working precision (``mpmath.fdot``), and mpmath's exponent range is
unbounded, so ``exp(-10^4)`` is an ordinary number here: nothing underflows and no log-sum-exp is needed.

With ``p`` = working precision in bits and scores bounded by ``S`` in absolute value, each score carries a
relative error of a few ``2^-p`` units, which ``exp`` turns into an absolute error of about ``S 2^-p`` in
``log A_ij``; the normalised output ``T_ij`` then has a relative error of order ``(S + log n_k) 2^-p``. At the
default 50 digits that is about ``10^-45`` for the scores of Lemma 4.7 (``S = beta/2 < 10^5``), 30 orders of
magnitude below float64's unit roundoff, so the difference between :func:`~.exact.exact` and this function is the
float64 oracle's own error.

The cost is ``n_q n_k d`` multiprecision operations in pure Python: use it for small instances only (the chain
up to ``N = 10`` variables takes seconds).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from instances.errors import ParameterError, ResourceLimitError
from instances.logspace import LogArray

from .exact import check_attention_inputs

DEFAULT_DPS = 50
#: Largest ``n_q * n_k * d`` the reference accepts by default; mpmath does about 10^5-10^6 such operations a second.
DEFAULT_MAX_WORK = 2 * 10**7


def reference(
    Q,
    K,
    V,
    *,
    scale: float | None = None,
    dps: int = DEFAULT_DPS,
    return_mp: bool = False,
    max_work: int = DEFAULT_MAX_WORK,
) -> LogArray | tuple[LogArray, np.ndarray]:
    """Attention ``D^{-1} exp(scale Q K^T) V`` in mpmath at ``dps`` decimal digits.

    Parameters
    ----------
    Q : array_like, shape (n_q, d)
    K : array_like, shape (n_k, d)
    V : array_like, shape (n_k, d_v)
    scale : float, optional
        Multiplies every score; defaults to ``1/d`` as in :func:`~.exact.exact`.
    dps : int
        Working precision in significant decimal digits (at least 15).
    return_mp : bool
        Also return the output as an object array of ``mpmath.mpf``.
    max_work : int
        Refuse (with :class:`~instances.errors.ResourceLimitError`) inputs with ``n_q * n_k * (d + d_v)`` above
        this: arbitrary precision is for certifying small instances, not for running large ones.

    Returns
    -------
    LogArray, shape (n_q, d_v)
        ``sign`` and ``log|.|`` (rounded to float64) of every entry; with ``return_mp`` also the mpf array.

    Examples
    --------
    >>> Q = np.array([[1.0, 0.0], [0.0, 1.0]]); V = np.array([[1.0], [-1.0]])
    >>> np.round(reference(Q, Q, V, scale=1.0).to_float().ravel(), 6).tolist()  # (e - 1)/(e + 1)
    [0.462117, -0.462117]
    >>> out, mp_out = reference(3000 * Q, Q, V[:, :1] * [[1.0], [0.0]], scale=1.0, return_mp=True)
    >>> round(float(out.log_abs[1, 0]), 6)  # exp(-3000)/(1 + exp(-3000)): far below float64
    -3000.0
    >>> mpmath.nstr(mp_out[1, 0], 8)
    '1.307839e-1303'
    """
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    if int(dps) < 15:
        raise ParameterError(f"dps must be at least 15 (float64 precision), got {dps}")
    work = Q.shape[0] * K.shape[0] * (Q.shape[1] + V.shape[1])
    if work > max_work:
        raise ResourceLimitError(
            f"reference: {Q.shape[0]} x {K.shape[0]} attention in dimension {Q.shape[1]} is {work:.3g} "
            f"multiprecision operations, over the limit of {max_work:.3g} (minutes to hours); it certifies small "
            "instances (e.g. chains up to N = 10) — pass max_work to force it"
        )
    n_q, d_v = Q.shape[0], V.shape[1]
    sign = np.zeros((n_q, d_v), dtype=np.int8)
    log_abs = np.full((n_q, d_v), -math.inf)
    mp_out = np.empty((n_q, d_v), dtype=object)
    with mpmath.workdps(int(dps)):
        s = mpmath.mpf(scale)
        # mpf(float) is exact, so the inputs enter at full value and only the arithmetic rounds.
        Kmp = [[mpmath.mpf(x) for x in row] for row in K.tolist()]
        Vmp = [[mpmath.mpf(x) for x in row] for row in V.tolist()]
        for i, qrow in enumerate(Q.tolist()):
            q = [mpmath.mpf(x) for x in qrow]
            weights = [mpmath.exp(s * mpmath.fdot(q, k)) for k in Kmp]
            den = mpmath.fsum(weights)
            for c in range(d_v):
                val = mpmath.fdot(weights, [v[c] for v in Vmp]) / den
                mp_out[i, c] = val
                if val != 0:
                    sign[i, c] = 1 if val > 0 else -1
                    log_abs[i, c] = float(mpmath.log(abs(val)))
    out = LogArray(sign, log_abs)
    return (out, mp_out) if return_mp else out


def log_relative_error(approx: LogArray, ref: LogArray) -> np.ndarray:
    """``|log|approx| - log|ref||`` per entry, the relative error in nats (``inf`` where the signs differ).

    For small errors this is ``|approx - ref| / |ref|``; a threshold test in log space moves by at most this much.
    """
    same = approx.sign == ref.sign
    both_zero = same & (ref.sign == 0)
    with np.errstate(invalid="ignore"):
        diff = np.abs(approx.log_abs - ref.log_abs)
    return np.where(both_zero, 0.0, np.where(same, diff, np.inf))
