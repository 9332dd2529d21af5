"""Benchmark of LevAttention (``finegrained bench lev``).

Four measurements, one run each:

1. **Scaling.** Time of :func:`~finegrained.attention.lev.heavy_entries` with ``n`` queries and ``n`` keys,
   for ``n = 2^log2_n_min .. 2^log2_n_max`` at fixed ``d`` and ``eps``, with the least-squares exponent of
   ``time ~ n^a`` over the largest half of the sizes; dense brute force is timed while ``n <= 2^12``.
   ``log2_n_max`` must lie in ``[2, 24]``; the grid starts at ``2^(log2_n_max - 1)`` at the latest so the fit has
   two sizes, and sizes whose estimated memory exceeds the limit are refused before anything is allocated.
2. **Universal-set size** ``|U|`` against the bound ``rank/eps`` for several ``(d, eps)`` and key laws.
3. **p != 2.** Recall of the Lewis-weight universal set against brute force, ``|U|``, the proven bound
   ``c_p rank / eps`` and the number of distinct heavy columns actually hit.
4. **Softmax heuristic.** Error of ``lev_attention(kind="softmax")`` against exact attention on sampled
   query rows, as a function of ``|U|``, next to a uniformly random key subset of the same size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from instances.errors import ParameterError

from ..attention.exact import exact
from ..attention.lev import (
    dense_scores,
    heavy_entries,
    lev_attention_with_keys,
    lewis_weights,
    numerical_rank,
    sensitivity_factor,
    universal_set,
)
from ..resources import check_memory
from .timing import Progress, best_of, fit_upper_half

#: Smallest n = 2^k of the scaling run (when log2_n_max allows it).
MIN_LOG2_N = 10
#: Bounds of log2_n_max: the fit needs two sizes (2^1, 2^2); 2^24 queries and keys is already minutes and GiB.
MAX_LOG2_N_RANGE = (2, 24)


@dataclass
class LevResult:
    """The four measurements (see the module docstring), each as plain dicts."""

    scaling: dict
    universal_sizes: list[dict] = field(default_factory=list)
    lewis: list[dict] = field(default_factory=list)
    softmax: list[dict] = field(default_factory=list)
    benchmark: str = "lev"

    def to_dict(self) -> dict:
        return asdict(self)


def scaling_memory_bytes(n: int, d: int, eps: float) -> int:
    """Conservative peak memory of one scaling step: ``Q``, ``K`` and the SVD factors (about four ``n x d``
    float64 matrices) plus the heavy entries found (at most ``1/eps`` per query row, as row and column indices
    and the concatenated pairs)."""
    return int(8 * n * (4 * d + 4 / eps)) + 2**26


def check_arguments(*, log2_n_max: int, d: int, eps: float, repeat: int = 1, max_memory: int | None = None,
                    log2_n_min: int = MIN_LOG2_N) -> None:
    """Raise :class:`ParameterError` (or :class:`~instances.errors.ResourceLimitError`) for a scaling run that
    cannot run."""
    lo, hi = MAX_LOG2_N_RANGE
    if not lo <= log2_n_max <= hi:
        raise ParameterError(f"--log2-n-max must be between {lo} and {hi} (n = 2^k queries and keys), "
                             f"got {log2_n_max}")
    if log2_n_min < 1:
        raise ParameterError(f"--log2-n-min must be at least 1, got {log2_n_min}")
    if d < 1 or repeat < 1:
        raise ParameterError(f"--dims and --repeat must be positive integers, got {d} and {repeat}")
    if not 0 < eps <= 1:
        raise ParameterError(f"--eps must lie in (0, 1] (attention scores are at most 1), got {eps}")
    check_memory(scaling_memory_bytes(2**log2_n_max, d, eps), max_memory,
                 f"bench lev at n = 2^{log2_n_max}, d = {d}, eps = {eps:g}")


def _lev_with_indices(Q, K, V, eps, scale):
    """``lev_attention`` and its universal set."""
    return lev_attention_with_keys(Q, K, V, eps=eps, scale=scale)


def _keys(kind: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gauss":
        return rng.normal(size=(n, d))
    if kind == "student2":
        return rng.standard_t(2.0, size=(n, d))
    if kind == "cauchy_rows":  # Gaussian directions, Cauchy-distributed norms
        return rng.normal(size=(n, d)) * np.abs(rng.standard_cauchy(size=(n, 1)))
    raise ParameterError(f"unknown key law {kind!r}")


def scaling(*, log2_n_max: int, d: int, eps: float, rng: np.random.Generator, repeat: int = 1,
            log2_n_min: int = MIN_LOG2_N, max_memory: int | None = None,
            progress: Progress | None = None) -> dict:
    """Measurement 1: time of ``heavy_entries`` against ``n``, with the fitted exponent."""
    check_arguments(log2_n_max=log2_n_max, d=d, eps=eps, repeat=repeat, max_memory=max_memory,
                    log2_n_min=log2_n_min)
    rows = []
    ks = range(min(log2_n_min, log2_n_max - 1), log2_n_max + 1)
    for i, k in enumerate(ks):
        n = 2**k
        K, Q = _keys("student2", n, d, rng), rng.normal(size=(n, d))
        t, pairs = best_of(lambda Q=Q, K=K: heavy_entries(Q, K, eps), repeat=repeat)
        row = {"n": n, "seconds": t, "us_per_query": 1e6 * t / n, "U": int(len(universal_set(K, eps))),
               "entries": int(len(pairs)), "brute_seconds": None}
        if k <= 12:
            tb, A = best_of(lambda Q=Q, K=K: dense_scores(Q, K))
            brute = int(np.count_nonzero(A >= eps))
            if brute != len(pairs):  # a wrong answer is never reported as a timing
                raise ParameterError(f"heavy_entries found {len(pairs)} entries >= eps at n = {n}, brute force "
                                     f"{brute}")
            row["brute_seconds"] = tb
        rows.append(row)
        if progress is not None:
            progress(i + 1, len(ks))
    start = min(len(rows) // 2, len(rows) - 2)  # the largest half, and at least two sizes
    slope = fit_upper_half([r["n"] for r in rows], [r["seconds"] for r in rows])
    return {"d": d, "eps": eps, "keys": "student-t(2)", "rows": rows, "exponent": slope,
            "fit_n": [rows[start]["n"], rows[-1]["n"]]}


def universal_sizes(rng: np.random.Generator, n: int = 2**14) -> list[dict]:
    rows = []
    for d in (4, 16, 64):
        for eps in (0.1, 0.03, 0.01):
            row = {"d": d, "eps": eps, "bound": d / eps}
            for kind in ("gauss", "student2", "cauchy_rows"):
                row[kind] = int(len(universal_set(_keys(kind, n, d, rng), eps)))
            rows.append(row)
    return rows


def lewis_recall(rng: np.random.Generator, n: int = 2000, d: int = 8, eps: float = 0.05) -> list[dict]:
    rows = []
    K = _keys("student2", n, d, rng)
    Q = rng.normal(size=(n, d))
    r = numerical_rank(K)
    for p in (1.0, 3.0, 4.0):
        t, w = best_of(lambda p=p: lewis_weights(K, p))
        U = universal_set(K, eps, p)
        A = dense_scores(Q, K, p)
        _, hj = np.nonzero(A >= eps)
        recall = float(np.isin(hj, U).mean()) if hj.size else 1.0
        rows.append({"p": p, "n": n, "d": d, "eps": eps, "U": int(len(U)),
                     "bound": sensitivity_factor(p, r) * r / eps, "heavy_columns": int(len(np.unique(hj))),
                     "heavy_entries": int(hj.size), "recall": recall, "sum_w": float(w.sum()),
                     "lewis_seconds": t})
    return rows


def softmax_error(rng: np.random.Generator, n: int = 4096, d: int = 16, rows: int = 256) -> list[dict]:
    out = []
    for kind in ("gauss", "cauchy_rows"):
        K, V = _keys(kind, n, d, rng), rng.normal(size=(n, 4))
        K = K * np.sqrt(d / np.median(np.sum(K**2, axis=1)))  # typical key norm sqrt(d) for every law
        Q = rng.normal(size=(rows, d))
        for scale_name, scale in (("1/d", 1.0 / d), ("1/sqrt(d)", 1.0 / np.sqrt(d))):
            ref = exact(Q, K, V, scale=scale).to_float()
            for eps in (0.02, 0.01, 0.005, 0.004, 0.003):
                lev, U = _lev_with_indices(Q, K, V, eps, scale)
                R = np.sort(rng.choice(n, size=len(U), replace=False))
                rand = exact(Q, K[R], V[R], scale=scale).to_float()
                out.append({"keys": kind, "scale": scale_name, "eps": eps, "U": int(len(U)),
                            "lev_max_err": float(np.abs(lev.to_float() - ref).max()),
                            "lev_mean_err": float(np.abs(lev.to_float() - ref).mean()),
                            "random_max_err": float(np.abs(rand - ref).max()),
                            "random_mean_err": float(np.abs(rand - ref).mean())})
    return out


def run(*, log2_n_min: int = MIN_LOG2_N, log2_n_max: int = 18, d: int = 16, eps: float = 0.05, repeat: int = 3,
        seed: int = 0, max_memory: int | None = None, progress: Progress | None = None) -> LevResult:
    """All four measurements; the scaling run at ``d``, ``eps`` up to ``n = 2^log2_n_max``."""
    check_arguments(log2_n_max=log2_n_max, d=d, eps=eps, repeat=repeat, max_memory=max_memory,
                    log2_n_min=log2_n_min)
    rng = np.random.default_rng(seed)
    return LevResult(
        scaling=scaling(log2_n_max=log2_n_max, d=d, eps=eps, rng=rng, repeat=repeat, log2_n_min=log2_n_min,
                        max_memory=max_memory, progress=progress),
        universal_sizes=universal_sizes(rng),
        lewis=lewis_recall(rng),
        softmax=softmax_error(rng),
    )
