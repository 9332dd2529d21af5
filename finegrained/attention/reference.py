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

from .protocol import Certificate, OracleAnswer, check_attention_inputs

DEFAULT_DPS = 50
#: Most digits :func:`reference` works with (far beyond what any certificate here needs).
MAX_DPS = 20000
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
        Working precision in significant decimal digits, from 15 to :data:`MAX_DPS`; the work limit counts the
        cost of the digits (about ``(dps/50)^1.6`` per operation).
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
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
        raise ParameterError(f"dps must be an integer number of digits, got {dps!r}")
    if not 15 <= int(dps) <= MAX_DPS:
        raise ParameterError(f"dps must be between 15 (float64 precision) and {MAX_DPS}, got {dps}")
    # An operation at p digits costs about (p/50)^1.6 operations at the default 50 (Karatsuba-range
    # multiplication), so the work limit counts digits too: dps = 10^8 on a tiny instance is refused at once.
    work = Q.shape[0] * K.shape[0] * (Q.shape[1] + V.shape[1]) * max(1.0, (int(dps) / DEFAULT_DPS) ** 1.6)
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


def reference_oracle(Q, K, V, *, scale: float | None = None, log_eps: float | None = None,
                     dps: int = DEFAULT_DPS, max_work: int = DEFAULT_MAX_WORK) -> OracleAnswer:
    """The ``"reference"`` oracle: :func:`reference` with a ``"log"`` certificate.

    At ``p = dps`` digits every mpmath operation has relative error ``<= 10^{1-p}``. A score ``s <q, k>`` of size
    ``S`` then enters ``exp`` with absolute error ``<= (d + 2) S 10^{1-p}``, each sum of ``n_k`` terms adds
    ``n_k 10^{1-p}`` relatively, and a numerator whose terms have both signs amplifies its relative error by
    ``kappa = sum |w v| / |sum w v|``. The float64 rounding of ``log|T|`` adds ``2^-53 |log|T||``. The bound is
    the sum, doubled; entries that come out exactly zero from terms of both signs are not certifiable (the
    certificate is then ``"none"``).

    Examples
    --------
    >>> ans = reference_oracle(np.eye(2), np.eye(2), np.array([[1.0], [0.0]]), scale=1.0)
    >>> ans.certificate.kind, bool(ans.certificate.worst_log_bound < -30)
    ('log', True)
    """
    Qc, Kc, Vc, scale = check_attention_inputs(Q, K, V, scale)
    out = reference(Qc, Kc, Vc, scale=scale, dps=dps, max_work=max_work)
    n_k, d = Kc.shape[0], Kc.shape[1]
    smax = abs(scale) * float(np.abs(Qc).max(initial=0.0)) * float(np.abs(Kc).max(initial=0.0)) * max(d, 1)
    unit = 10.0 ** (1 - int(dps))
    mixed = (Vc > 0).any(axis=0) & (Vc < 0).any(axis=0)
    # kappa per entry: |V| weights against the signed sum (only needed where a column has both signs).
    exact_abs = reference(Qc, Kc, np.abs(Vc), scale=scale, dps=dps, max_work=max_work) if mixed.any() else out
    with np.errstate(invalid="ignore"):
        log_kappa = np.where(mixed[None, :], exact_abs.log_abs - out.log_abs, 0.0)
    if (mixed[None, :] & (out.sign == 0) & (exact_abs.sign != 0)).any():
        return OracleAnswer(out, Certificate("none", detail="an output cancelled to exactly zero"))
    log_kappa = np.where(out.sign == 0, 0.0, log_kappa)
    rel = ((d + 2) * smax + 2 * n_k + 20) * unit * np.exp(np.minimum(log_kappa, 700.0))
    bound = 2 * (rel + 2.0**-53 * np.where(out.sign == 0, 0.0, np.abs(out.log_abs)))
    if not np.isfinite(bound).all() or (rel >= 0.5).any():
        return OracleAnswer(out, Certificate("none", detail=f"cancellation beyond {dps} digits"))
    with np.errstate(divide="ignore"):
        return OracleAnswer(out, Certificate("log", np.log(bound), detail=f"mpmath at {dps} digits"))


def log_relative_error(approx: LogArray, ref: LogArray) -> np.ndarray:
    """``|log|approx| - log|ref||`` per entry, the relative error in nats (``inf`` where the signs differ).

    For small errors this is ``|approx - ref| / |ref|``; a threshold test in log space moves by at most this much.
    """
    same = approx.sign == ref.sign
    both_zero = same & (ref.sign == 0)
    with np.errstate(invalid="ignore"):
        diff = np.abs(approx.log_abs - ref.log_abs)
    return np.where(both_zero, 0.0, np.where(same, diff, np.inf))
