"""The chain's attention oracle against a bare float64 ``Q @ K.T`` of the same shapes.

For each N, a seeded random 3-SAT formula at clause ratio 4.26 is pushed through k-SAT -> OV -> Gap-ANN ->
AAttC; then, in the same run and alternately, the oracle call on the reduction's (Q, K, V) and a bare
``Q @ K.T`` are timed (best of ``--repeat``), and their ratio is reported. For the exact oracle the run also
times it with ``dedupe=False``: merging identical keys and queries (the padding rows of Lemma 4.7 are all
alike) halves both sides of the product, so the plain variant is the one that measures the oracle's overhead
over the scores. The bare product of the full shapes computes the scores and nothing else.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from instances.errors import ParameterError
from instances.generators import random_ksat
from reductions import path

from ..argtypes import memory_size, nonneg_int, pos_float, pos_int
from ..attention.exact import exact
from ..chain import resolve_oracle
from ..resources import chain_memory_bytes, check_memory

#: Clause width of the random formulas: N must be at least this (each clause has K distinct variables).
K = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-min", type=pos_int, default=12,
                        help=f"smallest number of variables N, at least {K} (default 12)")
    parser.add_argument("--n-max", type=pos_int, default=24, help="largest number of variables N (default 24)")
    parser.add_argument("--step", type=pos_int, default=2, help="step in N (default 2)")
    parser.add_argument("--ratio", type=pos_float, default=4.26, help="clauses per variable (default 4.26)")
    parser.add_argument("--params", default="tight", choices=("tight", "paper"))
    parser.add_argument("--oracle", default="exact")
    parser.add_argument("--repeat", type=pos_int, default=7,
                        help="timings are the best of this many alternating runs")
    parser.add_argument("--seed", type=nonneg_int, default=0)
    parser.add_argument("--max-memory", type=memory_size, default=None,
                        help="refuse N whose chain needs more memory than this (e.g. 8G; default: half of RAM)")



def check_arguments(args: argparse.Namespace) -> None:
    """Raise :class:`ParameterError` (one line) for a grid that is empty or cannot be built; refuse sizes whose
    chain would not fit in memory (half of RAM) before anything is allocated."""
    if args.n_min < K:
        raise ParameterError(f"--n-min must be at least {K} (random {K}-SAT needs {K} distinct variables per "
                             f"clause), got {args.n_min}")
    if args.n_min > args.n_max:
        raise ParameterError(f"--n-min ({args.n_min}) must be at most --n-max ({args.n_max})")
    if args.step < 1 or args.repeat < 1:
        raise ParameterError(f"--step and --repeat must be positive, got {args.step} and {args.repeat}")
    if not (math.isfinite(args.ratio) and args.ratio > 0):
        raise ParameterError(f"--ratio must be a finite positive number, got {args.ratio}")
    if round(args.ratio * args.n_min) < 1:
        raise ParameterError(f"--ratio {args.ratio:g} gives no clauses at N = {args.n_min}; use a larger ratio")
    n_top = max(range(args.n_min, args.n_max + 1, args.step))
    m_top = round(args.ratio * n_top)
    check_memory(chain_memory_bytes(n_top, m_top), getattr(args, "max_memory", None),
                 f"bench chain at N = {n_top}, m = {m_top}")


def best_interleaved(fns, repeat: int) -> list[float]:
    """Best time of each callable over ``repeat`` rounds, running them alternately so that both see the same
    machine noise (shared machines drift by tens of percent within seconds)."""
    best = [float("inf")] * len(fns)
    for _ in range(max(1, repeat)):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def run(args: argparse.Namespace) -> dict:
    check_arguments(args)
    name, oracle = resolve_oracle(args.oracle)
    chain = path("k-SAT", "AAttC", mode=args.params)
    rows = []
    for n in range(args.n_min, args.n_max + 1, args.step):
        f = random_ksat(n, round(args.ratio * n), 3, seed=args.seed + n)
        att = chain.forward(f)
        Q, K, V = att.Q, att.K, att.V
        fns = [lambda: oracle(Q, K, V, scale=att.scale), lambda: Q @ K.T]  # noqa: B023
        if oracle is exact:
            fns.append(lambda: exact(Q, K, V, scale=att.scale, dedupe=False))  # noqa: B023
        times = best_interleaved(fns, args.repeat)
        row = {"N": n, "m": f.num_clauses, "n_q": att.n_q, "n_k": att.n_k, "d": att.dim,
               "oracle_s": times[0], "gemm_s": times[1], "ratio": times[0] / times[1]}
        if len(times) > 2:
            row.update({"oracle_no_dedupe_s": times[2], "ratio_no_dedupe": times[2] / times[1]})
        rows.append(row)
        if not args.json:
            plain = "ratio_no_dedupe" in row
            if len(rows) == 1:
                print(f"bench chain: oracle {name!r} vs bare float64 Q @ K.T (best of {args.repeat}, alternating), "
                      f"params {args.params}")
                print(f"{'N':>3} {'m':>4} {'n_q':>6} {'n_k':>6} {'d':>5} {'oracle s':>9} {'Q@K.T s':>9} {'ratio':>6}"
                      + (f" {'no-dedupe s':>11} {'ratio':>6}" if plain else ""))
            print(f"{row['N']:>3} {row['m']:>4} {row['n_q']:>6} {row['n_k']:>6} {row['d']:>5} "
                  f"{row['oracle_s']:>9.4f} {row['gemm_s']:>9.4f} {row['ratio']:>6.2f}"
                  + (f" {row['oracle_no_dedupe_s']:>11.4f} {row['ratio_no_dedupe']:>6.2f}" if plain else ""),
                  flush=True)
    result = {"benchmark": "chain", "oracle": name, "params": args.params, "repeat": args.repeat,
              "rows": rows,
              "max_ratio": max((r["ratio"] for r in rows), default=float("nan")),
              "geomean_ratio": float(np.exp(np.mean([np.log(r["ratio"]) for r in rows]))) if rows else None}
    return result
