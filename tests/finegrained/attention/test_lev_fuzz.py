"""Recall fuzz test of LevAttention at p = 2 (issue 11, "Done when"): adversarial classes of keys and queries.

LevAttention certifies no attention error, but its p = 2 guarantee is exact: every entry ``A_ij >= eps`` of
``A = rownormalise((Q K^T)^2)`` is found by ``heavy_entries`` and its key is in ``universal_set`` and
``streaming_universal_set``. The reference is ``dense_scores`` on the same inputs (all ``n_q x n`` scores in
log space). Each class is one the implementation could get wrong: keys that are copies of one key up to a
relative 1e-12..1e-10, huge and tiny scales (1e300, 1e-320 and powers of two near the float64 limits), ties at
the maximum (identical keys and the queries that maximise them), low rank, heavy tails and zero rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from finegrained.attention.lev import (
    dense_scores,
    heavy_entries_with_values,
    leverage_scores,
    numerical_rank,
    streaming_universal_set,
    universal_set,
)

CLASSES = ["near_degenerate", "near_degenerate_multi", "huge_scale", "tiny_scale", "ties_at_max", "low_rank",
           "heavy_tail", "zero_rows"]
#: relative margin around eps inside which an entry may go either way (a score and the leverage bounding it
#: are computed by different float64 formulas)
MARGIN = 1e-6


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def _instance(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(Q, K) of one adversarial class; Q holds random queries and queries aimed at the hard keys."""
    d = int(rng.integers(2, 9))
    n = int(rng.integers(20, 1500))
    if kind in ("near_degenerate", "near_degenerate_multi"):
        k0 = rng.normal(size=d)
        free = int(rng.integers(0, d))  # a coordinate the copies do not use, or a generic direction
        coordinate = bool(rng.integers(2))
        if coordinate:
            k0[free] = 0.0
        K = np.tile(k0, (n, 1)) * 10.0 ** float(rng.uniform(-3, 3))
        aims = []
        for j in rng.choice(n, size=1 if kind == "near_degenerate" else min(d - 1, 3), replace=False):
            if coordinate and not aims:
                e = np.eye(d)[free]
            else:
                e = rng.normal(size=d)
                e -= (e @ k0) / (k0 @ k0) * k0
                e = _unit(e)
            K[j] = K[j] + 10.0 ** float(rng.uniform(-12, -10)) * np.linalg.norm(K[j]) * e
            aims.append(e)
        return np.vstack([rng.normal(size=(10, d)), np.array(aims)]), K
    if kind in ("huge_scale", "tiny_scale"):
        K = rng.standard_t(2.0, size=(n, d))
        Q = np.vstack([rng.normal(size=(10, d)), _maximisers(K)[:: max(1, n // 40)]])
        sq, sk = (float(rng.choice([1e300, 2.0**1000, 1e150, 1.0])) for _ in range(2)) if kind == "huge_scale" \
            else (float(rng.choice([1e-320, 2.0**-1060, 1e-300, 1.0])) for _ in range(2))
        return Q * sq, K * sk
    if kind == "ties_at_max":  # groups of identical keys; their maximising queries tie on the whole group
        base = rng.normal(size=(int(rng.integers(2, d + 2)), d))
        K = np.repeat(base, rng.integers(1, 6, size=base.shape[0]), axis=0)
        K = np.vstack([K, 1e-3 * rng.normal(size=(n // 10, d))])
        return np.vstack([rng.normal(size=(10, d)), _maximisers(K)]), K
    if kind == "low_rank":
        r = int(rng.integers(1, d))
        K = rng.normal(size=(n, r)) @ rng.normal(size=(r, d))
    elif kind == "heavy_tail":
        K = rng.standard_t(1.2, size=(n, d)) * np.abs(rng.standard_cauchy(size=(n, 1)))
    else:  # zero rows, and queries orthogonal to every key
        K = np.hstack([rng.normal(size=(n, d - 1)), np.zeros((n, 1))])
        K[:: int(rng.integers(2, 7))] = 0.0
        return np.vstack([rng.normal(size=(10, d)), np.eye(d)[-1:], _maximisers(K)[:: max(1, n // 40)]]), K
    return np.vstack([rng.normal(size=(10, d)), _maximisers(K)[:: max(1, n // 40)]]), K


def _maximisers(K: np.ndarray) -> np.ndarray:
    """Queries attaining A_yj = tau_j (the Cauchy-Schwarz equality case), from numpy's own SVD."""
    U, s, Vt = np.linalg.svd(K, full_matrices=False)
    r = int(np.count_nonzero(s > s[0] * 1e-13)) if s.size and s[0] > 0 else 0
    return (U[:, :r] / s[:r]) @ Vt[:r]


@pytest.mark.parametrize("kind", CLASSES)
def test_every_heavy_entry_is_found(kind: str) -> None:
    rng = np.random.default_rng(CLASSES.index(kind) + 3300)
    checked = 0
    for _ in range(8):
        Q, K = _instance(kind, rng)
        A = dense_scores(Q, K)
        assert np.isfinite(A).all()
        for eps in (0.02, 0.3, 0.9):
            pairs, vals = heavy_entries_with_values(Q, K, eps)
            found = {tuple(map(int, ij)) for ij in pairs}
            heavy = {(int(i), int(j)) for i, j in zip(*np.nonzero(A >= eps * (1 + MARGIN)), strict=True)}
            assert heavy <= found, f"missed {sorted(heavy - found)[:5]}"
            # what is reported is a real entry near or above eps, with its value
            assert np.all(A[pairs[:, 0], pairs[:, 1]] >= eps * (1 - 1e-3)) if len(pairs) else True
            np.testing.assert_allclose(vals, A[pairs[:, 0], pairs[:, 1]], rtol=1e-3)
            cols = sorted({j for _, j in heavy})
            U = universal_set(K, eps)
            assert set(cols) <= set(U.tolist())
            assert len(U) <= numerical_rank(K) / eps * (1 + 1e-9)
            checked += len(heavy)
        chunks = [K[s:s + 333] for s in range(0, K.shape[0], 333)]
        streamed = set(streaming_universal_set(chunks, 0.3).tolist())
        assert {int(j) for j in np.nonzero(A >= 0.3 * (1 + MARGIN))[1]} <= streamed
        tau = leverage_scores(K)
        assert np.all(tau >= 0) and np.all(tau <= 1 + 1e-9)
    assert checked > 0  # every class has heavy entries to find
