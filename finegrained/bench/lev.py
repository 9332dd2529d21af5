"""Benchmark of LevAttention (``finegrained bench lev``).

Four measurements, one run each:

1. **Scaling.** Time of :func:`~finegrained.attention.lev.heavy_entries` with ``n`` queries and ``n`` keys,
   for ``n = 2^10 .. 2^max_log2_n`` at fixed ``d`` and ``eps``, with the least-squares exponent of
   ``time ~ n^a`` over the largest half of the sizes; dense brute force is timed while ``n <= 2^12``.
   ``--max-log2-n`` must lie in ``[2, 24]``; below 11 the grid starts at ``2^(max_log2_n - 1)`` so the fit has
   two sizes, and sizes whose estimated memory exceeds half of RAM are refused before anything is allocated.
2. **Universal-set size** ``|U|`` against the bound ``rank/eps`` for several ``(d, eps)`` and key laws.
3. **p != 2.** Recall of the Lewis-weight universal set against brute force, ``|U|``, the proven bound
   ``c_p rank / eps`` and the number of distinct heavy columns actually hit.
4. **Softmax heuristic.** Error of ``lev_attention(kind="softmax")`` against exact attention on sampled
   query rows, as a function of ``|U|``, next to a uniformly random key subset of the same size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from finegrained.argtypes import memory_size, nonneg_int, pos_float, pos_int
from finegrained.attention.exact import exact
from finegrained.attention.lev import (
    dense_scores,
    heavy_entries,
    lev_attention,
    lewis_weights,
    numerical_rank,
    sensitivity_factor,
    universal_set,
)
from finegrained.resources import check_memory
from instances.errors import ParameterError

#: Smallest n = 2^k of the scaling run (when --max-log2-n allows it).
MIN_LOG2_N = 10
#: Bounds of --max-log2-n: the fit needs two sizes (2^1, 2^2); 2^24 queries and keys is already minutes and GiB.
MAX_LOG2_N_RANGE = (2, 24)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lo, hi = MAX_LOG2_N_RANGE
    parser.add_argument("--max-log2-n", type=pos_int, default=18,
                        help=f"largest n = 2^k of the scaling run, {lo}..{hi} (default 18)")
    parser.add_argument("--d", type=pos_int, default=16, help="head dimension of the scaling run")
    parser.add_argument("--eps", type=pos_float, default=0.05, help="threshold of the scaling run, in (0, 1]")
    parser.add_argument("--seed", type=nonneg_int, default=0)
    parser.add_argument("--repeats", type=pos_int, default=3, help="timings keep the fastest of this many runs")
    parser.add_argument("--max-memory", type=memory_size, default=None,
                        help="refuse a scaling run needing more memory than this (e.g. 8G; default: half of RAM)")



def scaling_memory_bytes(n: int, d: int, eps: float) -> int:
    """Conservative peak memory of one scaling step: ``Q``, ``K`` and the SVD factors (about four ``n x d``
    float64 matrices) plus the heavy entries found (at most ``1/eps`` per query row, as row and column indices
    and the concatenated pairs)."""
    return int(8 * n * (4 * d + 4 / eps)) + 2**26


def check_arguments(max_log2_n: int, d: int, eps: float, repeats: int = 1, max_memory: int | None = None) -> None:
    """Raise :class:`ParameterError` (or :class:`ResourceLimitError`) for a scaling run that cannot run."""
    lo, hi = MAX_LOG2_N_RANGE
    if not lo <= max_log2_n <= hi:
        raise ParameterError(f"--max-log2-n must be between {lo} and {hi} (n = 2^k queries and keys), "
                             f"got {max_log2_n}")
    if d < 1 or repeats < 1:
        raise ParameterError(f"--d and --repeats must be positive integers, got {d} and {repeats}")
    if not 0 < eps <= 1:
        raise ParameterError(f"--eps must lie in (0, 1] (attention scores are at most 1), got {eps}")
    n = 2**max_log2_n
    check_memory(scaling_memory_bytes(n, d, eps), max_memory,
                 f"bench lev at n = 2^{max_log2_n}, d = {d}, eps = {eps:g}")


def _keys(kind: str, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gauss":
        return rng.normal(size=(n, d))
    if kind == "student2":
        return rng.standard_t(2.0, size=(n, d))
    if kind == "cauchy_rows":  # Gaussian directions, Cauchy-distributed norms
        return rng.normal(size=(n, d)) * np.abs(rng.standard_cauchy(size=(n, 1)))
    raise ValueError(kind)


def _timed(f, repeats: int = 1) -> tuple[float, object]:
    """Fastest wall time of ``repeats`` calls (the machine is shared, so the minimum is the least noisy)."""
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t)
    return best, out


def scaling(max_log2_n: int, d: int, eps: float, rng: np.random.Generator, repeats: int) -> dict:
    check_arguments(max_log2_n, d, eps, repeats)
    rows = []
    for k in range(min(MIN_LOG2_N, max_log2_n - 1), max_log2_n + 1):
        n = 2**k
        K, Q = _keys("student2", n, d, rng), rng.normal(size=(n, d))
        t, pairs = _timed(lambda Q=Q, K=K: heavy_entries(Q, K, eps), repeats)
        row = {"n": n, "seconds": t, "us_per_query": 1e6 * t / n, "U": int(len(universal_set(K, eps))),
               "entries": int(len(pairs)), "brute_seconds": None}
        if k <= 12:
            tb, A = _timed(lambda Q=Q, K=K: dense_scores(Q, K))
            assert int(np.count_nonzero(A >= eps)) == len(pairs)
            row["brute_seconds"] = tb
        rows.append(row)
    fit = rows[min(len(rows) // 2, len(rows) - 2):]  # the largest half, and at least two sizes
    slope = float(np.polyfit(np.log([r["n"] for r in fit]), np.log([r["seconds"] for r in fit]), 1)[0])
    return {"d": d, "eps": eps, "keys": "student-t(2)", "rows": rows, "exponent": slope,
            "fit_n": [fit[0]["n"], fit[-1]["n"]]}


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
        t, w = _timed(lambda p=p: lewis_weights(K, p))
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
                lev, U = lev_attention(Q, K, V, eps, scale=scale, return_indices=True)
                R = np.sort(rng.choice(n, size=len(U), replace=False))
                rand = exact(Q, K[R], V[R], scale=scale).to_float()
                out.append({"keys": kind, "scale": scale_name, "eps": eps, "U": int(len(U)),
                            "lev_max_err": float(np.abs(lev.to_float() - ref).max()),
                            "lev_mean_err": float(np.abs(lev.to_float() - ref).mean()),
                            "random_max_err": float(np.abs(rand - ref).max()),
                            "random_mean_err": float(np.abs(rand - ref).mean())})
    return out


def run(args: argparse.Namespace) -> dict:
    check_arguments(args.max_log2_n, args.d, args.eps, args.repeats, getattr(args, "max_memory", None))
    rng = np.random.default_rng(args.seed)
    result = {
        "scaling": scaling(args.max_log2_n, args.d, args.eps, rng, max(1, args.repeats)),
        "universal_sizes": universal_sizes(rng),
        "lewis": lewis_recall(rng),
        "softmax": softmax_error(rng),
    }
    if not getattr(args, "json", False):
        print(format_tables(result))
    return result


def format_tables(res: dict) -> str:
    """The result of :func:`run` as Markdown tables."""
    s = res["scaling"]
    lines = [f"### Scaling: heavy_entries with n queries and n keys (d={s['d']}, eps={s['eps']}, "
             f"{s['keys']} keys)", "",
             "| n | seconds | us/query | abs(U) | entries | dense brute force (s) |",
             "|---|---|---|---|---|---|"]
    for r in s["rows"]:
        b = f"{r['brute_seconds']:.3f}" if r["brute_seconds"] is not None else "-"
        lines.append(f"| {r['n']} | {r['seconds']:.3f} | {r['us_per_query']:.2f} | {r['U']} | {r['entries']} "
                     f"| {b} |")
    lines += ["", f"Fitted exponent of time ~ n^a over n in [{s['fit_n'][0]}, {s['fit_n'][1]}]: "
              f"a = {s['exponent']:.3f}", "",
              "### Universal set size abs(U) (n = 16384) against the bound d/eps", "",
              "| d | eps | d/eps | gauss | student-t(2) | cauchy-norm rows |", "|---|---|---|---|---|---|"]
    for r in res["universal_sizes"]:
        lines.append(f"| {r['d']} | {r['eps']} | {r['bound']:.0f} | {r['gauss']} | {r['student2']} "
                     f"| {r['cauchy_rows']} |")
    lines += ["", "### p != 2: Lewis-weight universal set against brute force (student-t(2) keys)", "",
              "| p | n | d | eps | abs(U) | proven bound c_p r/eps | heavy columns | heavy entries | recall "
              "| sum w | Lewis time (s) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["lewis"]:
        lines.append(f"| {r['p']:g} | {r['n']} | {r['d']} | {r['eps']} | {r['U']} | {r['bound']:.0f} "
                     f"| {r['heavy_columns']} | {r['heavy_entries']} | {r['recall']:.3f} | {r['sum_w']:.6f} "
                     f"| {r['lewis_seconds']:.3f} |")
    lines += ["", "### Softmax heuristic: error against exact attention (n = 4096, d = 16, 256 sampled rows, "
              "V ~ N(0,1))", "",
              "| keys | scale | eps | abs(U) | lev max err | lev mean err | random max err "
              "| random mean err |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res["softmax"]:
        lines.append(f"| {r['keys']} | {r['scale']} | {r['eps']} | {r['U']} | {r['lev_max_err']:.3g} "
                     f"| {r['lev_mean_err']:.3g} | {r['random_max_err']:.3g} | {r['random_mean_err']:.3g} |")
    return "\n".join(lines)


if __name__ == "__main__":  # the same as `finegrained bench lev ...`, errors included
    import sys

    from finegrained.cli import main

    sys.exit(main(["bench", "lev", *sys.argv[1:]]))
