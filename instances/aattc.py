"""Approximate attention computation, AAttC(n, d, B, eps_a) (Alman & Song, Definition 1.2).

Given ``Q`` (``n_q x d``), ``K`` (``n_k x d``), ``V`` (``n_k x d_v``) with entries bounded by ``B``, output ``T``
with ``||T - D^{-1} A V||_inf <= eps_a``, where ``A = exp(scale Q K^T)`` and ``D = diag(A 1)``. The paper has
square ``n x d`` matrices and ``scale = 1/d``; rectangular shapes are the same problem with ``n = max(n_q, n_k)``.
``eps_a`` is held as its logarithm because it is far below the float64 range in the reduction of Lemma 4.7.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import NumericalError, ParameterError
from .logspace import LogArray, log_add, logsumexp

#: Largest ``n_q * n_k`` the dense reference solver accepts.
BRUTE_FORCE_MAX_ENTRIES = 2**24


@dataclass(frozen=True)
class AAttCInstance:
    """An AAttC instance with its entry bound ``B`` and additive accuracy ``exp(log_eps_a)``."""

    Q: np.ndarray
    K: np.ndarray
    V: np.ndarray
    B: float
    log_eps_a: float
    scale: float
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("Q", "K", "V"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 2:
                raise ParameterError(f"{name} must be 2-D, got shape {arr.shape}")
            if not np.isfinite(arr).all():
                raise NumericalError(f"{name} contains NaN or infinite entries")
            object.__setattr__(self, name, arr)
        if self.Q.shape[1] != self.K.shape[1] or self.V.shape[0] != self.K.shape[0]:
            raise ParameterError(f"inconsistent shapes Q{self.Q.shape}, K{self.K.shape}, V{self.V.shape}")

    @property
    def n_q(self) -> int:
        return self.Q.shape[0]

    @property
    def n_k(self) -> int:
        return self.K.shape[0]

    @property
    def dim(self) -> int:
        return self.Q.shape[1]

    def entries_bounded(self) -> bool:
        """Whether ``||Q||_inf, ||K||_inf, ||V||_inf <= B`` (up to float rounding of ``B``)."""
        bound = self.B * (1 + 1e-12)
        return all(float(np.abs(m).max(initial=0.0)) <= bound for m in (self.Q, self.K, self.V))

    def brute_force_solve(self) -> LogArray:
        """Dense reference: materialise all scores and combine them by log-sum-exp (small instances only).

        Examples
        --------
        >>> inst = AAttCInstance([[1.0], [0.0]], [[1.0], [0.0]], [[1.0], [-1.0]], B=1.0, log_eps_a=-30.0, scale=1.0)
        >>> out = inst.brute_force_solve()   # row 0: (e - 1)/(e + 1); row 1: (1 - 1)/2 = 0, an exact zero
        >>> out.sign[:, 0].tolist(), round(float(np.exp(out.log_abs[0, 0])), 6), float(out.log_abs[1, 0])
        ([1, 0], 0.462117, -inf)
        """
        if self.n_k == 0:
            # the softmax's normaliser is an empty sum: 0/0 has no value (exact refuses the same input)
            raise ParameterError("attention needs at least one key; this instance has none")
        if self.n_q * self.n_k > BRUTE_FORCE_MAX_ENTRIES:
            raise ParameterError(
                f"dense AAttC solve limited to {BRUTE_FORCE_MAX_ENTRIES} scores, instance has {self.n_q * self.n_k}"
            )
        S = self.scale * (self.Q @ self.K.T)
        log_d = logsumexp(S, axis=1)
        with np.errstate(divide="ignore"):
            lp = logsumexp(S[:, :, None] + np.log(np.maximum(self.V, 0.0))[None], axis=1)
            ln = logsumexp(S[:, :, None] + np.log(np.maximum(-self.V, 0.0))[None], axis=1)
        out = log_add(LogArray(np.where(np.isneginf(lp), 0, 1), lp), LogArray(np.where(np.isneginf(ln), 0, -1), ln))
        return LogArray(out.sign, np.where(out.sign == 0, -np.inf, out.log_abs - log_d[:, None]))
