r"""Worst-case Gap-ANN instances for Lemma 4.7: every NO row sits at distance exactly ``(1 + eps) t``.

Case 2b of Lemma 4.7 bounds a NO row's exact output by ``u_i < e^{beta/4 (1 - (1+eps) t/d)} / tau``, using only
that every key is at distance ``>= (1 + eps) t``. When *every* key is at distance exactly ``(1 + eps) t``, the
output is ``u_i = x / (x + tau)`` with ``x = e^{beta/4 (1 - (1+eps) t/d)}``, which equals the bound up to a factor
``1 - x/tau`` far below float64 precision. So at ``beta = beta_min`` such a row meets ``u_i = t~`` to within
rounding, and an adversary adding ``eps_a = t~`` puts it exactly at ``2 t~``: below ``beta_min`` it is decided
wrongly, at ``beta >= beta_min (1 + 1e-9)`` it is decided rightly. This is how the validation tests check that the
gap condition of errata E5 is sharp.
"""

from __future__ import annotations

import numpy as np

from .errors import ParameterError
from .gap_ann import GapANNInstance


def worst_case_gap_ann(n: int, d: int, t: float, eps: float, *, yes_rows: int = 1, no_rows: int = 2,
                       yes_distance: int | None = None) -> GapANNInstance:
    """A balanced Gap-ANN instance whose NO rows are at distance exactly ``(1 + eps) t`` from every key.

    Parameters
    ----------
    n : int
        Number of keys (all equal to one balanced vector ``b``).
    d : int
        Dimension, even.
    t, eps : float
        Gap-ANN parameters; ``(1 + eps) t`` must be an even integer ``<= d``.
    yes_rows, no_rows : int
        How many YES queries (at distance ``yes_distance`` from ``b``) and NO queries (at ``(1 + eps) t``).
    yes_distance : int, optional
        Even distance ``< t`` of the YES queries (default: the largest even integer below ``t``).

    Examples
    --------
    >>> g = worst_case_gap_ann(4, 20, 5.0, 0.2)
    >>> g.min_distances().tolist(), g.row_status().tolist(), g.is_balanced()
    ([4.0, 6.0, 6.0], [1, 0, 0], True)
    """
    far = (1 + eps) * t
    if d <= 0 or d % 2:
        raise ParameterError(f"d must be even and positive, got {d}")
    if not (n >= 1 and yes_rows >= 0 and no_rows >= 0):
        raise ParameterError("need n >= 1 keys and non-negative row counts")
    if abs(far - round(far)) > 1e-9 or round(far) % 2 or not 0 < round(far) <= d:
        raise ParameterError(f"(1 + eps) t = {far:g} must be an even integer in (0, d] for balanced vectors")
    near = yes_distance if yes_distance is not None else int(np.ceil(t) - 1) // 2 * 2
    if near < 0 or near % 2 or near >= t or near > d:
        raise ParameterError(f"the YES distance must be an even integer in [0, t), got {near}")
    half = d // 2

    def at_distance(h: int) -> np.ndarray:
        # swap h/2 ones of b's first half with h/2 zeros of its second half: still d/2 ones, distance h
        v = np.zeros(d, dtype=np.uint8)
        v[:half] = 1
        v[: h // 2] = 0
        v[half: half + h // 2] = 1
        return v

    b = at_distance(0)
    A = np.array([at_distance(near)] * yes_rows + [at_distance(int(round(far)))] * no_rows, dtype=np.uint8)
    B = np.array([b] * n, dtype=np.uint8)
    return GapANNInstance(A.reshape(yes_rows + no_rows, d), B, t=float(t), eps=float(eps))
