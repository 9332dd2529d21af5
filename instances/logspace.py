"""Signed log-space arrays: a real array ``x`` stored as ``sign(x)`` and ``log|x|``.

The reduction of Lemma 4.7 produces attention outputs near ``exp(-10**4)``, far below the smallest positive float64
(about ``exp(-745)``). Every such quantity is carried as a :class:`LogArray`, and every comparison happens on the
logarithms. Converting back to plain floats is allowed only when the values are representable; otherwise a
:class:`~instances.errors.NumericalError` is raised rather than silently returning 0 or inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import NumericalError, ParameterError, real_number, short_repr

#: log of the smallest positive normal float64; below it a float loses relative precision.
LOG_TINY = float(np.log(np.finfo(np.float64).tiny))
#: log of the largest finite float64.
LOG_HUGE = float(np.log(np.finfo(np.float64).max))


@dataclass(frozen=True)
class LogArray:
    """A real array represented as ``sign * exp(log_abs)``.

    Attributes
    ----------
    sign : numpy.ndarray of int8
        -1, 0 or +1 for each entry. Entries with sign 0 have ``log_abs == -inf``.
    log_abs : numpy.ndarray of float64
        Natural logarithm of the absolute value; ``-inf`` for zeros, never NaN or ``+inf``.

    Examples
    --------
    >>> x = LogArray.from_float(np.array([2.0, 0.0, -0.5]))
    >>> x.sign.tolist(), np.round(x.log_abs, 4).tolist()
    ([1, 0, -1], [0.6931, -inf, -0.6931])
    >>> LogArray(np.array([1], dtype=np.int8), np.array([-1e4])).to_float()
    Traceback (most recent call last):
    ...
    instances.errors.NumericalError: cannot convert to float64: a value of magnitude exp(-10000) underflows ...
    """

    sign: np.ndarray
    log_abs: np.ndarray

    def __post_init__(self) -> None:
        sign = np.asarray(self.sign, dtype=np.int8)
        log_abs = np.asarray(self.log_abs, dtype=np.float64)
        if sign.shape != log_abs.shape:
            raise ValueError(f"sign shape {sign.shape} differs from log_abs shape {log_abs.shape}")
        if sign.size and (np.abs(np.asarray(self.sign)) > 1).any():
            raise NumericalError("log-space array has a sign outside -1, 0, +1")
        if np.isnan(log_abs).any() or np.isposinf(log_abs).any():
            raise NumericalError("log-space array contains NaN or +inf in log|x|")
        if np.any((sign == 0) != np.isneginf(log_abs)):
            raise NumericalError("log-space array is inconsistent: sign 0 must pair with log|x| = -inf")
        object.__setattr__(self, "sign", sign)
        object.__setattr__(self, "log_abs", log_abs)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.log_abs.shape

    def __getitem__(self, index) -> LogArray:
        return LogArray(self.sign[index], self.log_abs[index])

    @classmethod
    def from_float(cls, x: np.ndarray) -> LogArray:
        """Exact conversion from finite floats."""
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).all():
            raise NumericalError("cannot convert a non-finite float array to log space")
        with np.errstate(divide="ignore"):
            return cls(np.sign(x).astype(np.int8), np.log(np.abs(x)))

    def to_float(self) -> np.ndarray:
        """Convert to float64, refusing values that would underflow to a subnormal/zero or overflow to inf."""
        nz = self.sign != 0
        if np.any(self.log_abs[nz] > LOG_HUGE):
            worst = float(self.log_abs[nz].max())
            raise NumericalError(f"cannot convert to float64: a value of magnitude exp({worst:.6g}) overflows")
        if np.any(self.log_abs[nz] < LOG_TINY):
            worst = float(self.log_abs[nz].min())
            raise NumericalError(
                f"cannot convert to float64: a value of magnitude exp({worst:.6g}) underflows "
                f"(smallest normal float64 is exp({LOG_TINY:.1f})); compare in log space instead"
            )
        return self.sign * np.exp(self.log_abs)

    def add_scalar_error(self, log_delta: float, direction: np.ndarray) -> LogArray:
        """Return ``self + direction * exp(log_delta)`` computed in log space.

        ``direction`` holds +1 or -1 per entry (broadcastable). Used to perturb exact answers by an exact amount
        without ever leaving log space.
        """
        log_delta = real_number("log_delta", log_delta, finite=False)
        raw = np.asarray(direction)
        # checked before the int8 cast, which would truncate -1.5 to -1 and raise a raw OverflowError for 256
        if raw.dtype.kind not in "biuf" or not np.isin(raw, (-1, 1)).all():
            raise ParameterError(f"direction must hold +1 or -1 per entry, got {short_repr(direction)}")
        try:
            direction = np.broadcast_to(raw.astype(np.int8), self.shape)
        except ValueError:
            raise ParameterError(f"direction of shape {raw.shape} does not broadcast to {self.shape}") from None
        other_sign = direction
        other_log = np.full(self.shape, log_delta)
        return log_add(self, LogArray(other_sign, other_log))


def log_add(x: LogArray, y: LogArray) -> LogArray:
    """Sum of two signed log-space arrays, ``x + y``, without leaving log space.

    Same-sign terms combine by log-sum-exp; opposite-sign terms by ``log(a) + log(1 - exp(log b - log a))`` with
    ``a >= b``, through ``expm1`` when the terms nearly cancel, so the result is exact up to the rounding of the
    stored logs (amplified by the cancellation) and exactly zero only when ``log a == log b``.
    """
    xs, xl = np.broadcast_arrays(x.sign, x.log_abs)
    ys, yl = np.broadcast_arrays(y.sign, y.log_abs)
    big = xl >= yl
    hi_l = np.where(big, xl, yl)
    lo_l = np.where(big, yl, xl)
    hi_s = np.where(big, xs, ys)
    lo_s = np.where(big, ys, xs)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = lo_l - hi_l  # <= 0, or nan when both are -inf
        diff = np.where(np.isneginf(hi_l), -np.inf, diff)
        same = hi_s == lo_s
        # log(1 - e^diff): log(-expm1(diff)) keeps full relative precision when the terms nearly cancel
        # (diff near 0, where 1 - exp(diff) would round to 0); log1p(-exp(diff)) is accurate below -ln 2.
        cancel = np.where(diff > -np.log(2.0), np.log(-np.expm1(diff)), np.log1p(-np.exp(diff)))
        out_l = np.where(same, hi_l + np.log1p(np.exp(diff)), hi_l + cancel)
    out_l = np.where(np.isneginf(hi_l) | (lo_s == 0), hi_l, out_l)
    out_l = np.where(np.isnan(out_l), -np.inf, out_l)
    out_s = np.where(np.isneginf(out_l), 0, np.where(hi_s == 0, lo_s, hi_s)).astype(np.int8)
    return LogArray(out_s, out_l)


def logsumexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(sum(exp(a), axis))`` without overflow or underflow; ``-inf`` for an all ``-inf`` (or empty) slice."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape[axis] == 0:
        return np.full(np.delete(a.shape, axis if axis >= 0 else a.ndim + axis), -np.inf)
    m = np.max(a, axis=axis, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - m_safe), axis=axis, keepdims=True)) + m_safe
    return np.squeeze(out, axis=axis)
