"""The chain's attention oracle against a bare float64 ``Q @ K.T`` of the same shapes.

For each N, a seeded random 3-SAT formula at clause ratio 4.26 is pushed through k-SAT -> OV -> Gap-ANN ->
AAttC; then, in the same run, the oracle call on the reduction's (Q, K, V) and a bare ``Q @ K.T`` are timed
(best of ``--repeat``), and their ratio is reported. The bare product is a lower bound for any exact oracle: it
computes the scores and nothing else.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from instances.generators import random_ksat
from reductions import path

from ..chain import resolve_oracle


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-min", type=int, default=12, help="smallest number of variables N (default 12)")
    parser.add_argument("--n-max", type=int, default=24, help="largest number of variables N (default 24)")
    parser.add_argument("--step", type=int, default=2, help="step in N (default 2)")
    parser.add_argument("--ratio", type=float, default=4.26, help="clauses per variable (default 4.26)")
    parser.add_argument("--params", default="tight", choices=("tight", "paper"))
    parser.add_argument("--oracle", default="exact")
    parser.add_argument("--repeat", type=int, default=7, help="timings are the best of this many alternating runs")
    parser.add_argument("--seed", type=int, default=0)


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
    name, oracle = resolve_oracle(args.oracle)
    chain = path("k-SAT", "AAttC", mode=args.params)
    rows = []
    for n in range(args.n_min, args.n_max + 1, args.step):
        f = random_ksat(n, round(args.ratio * n), 3, seed=args.seed + n)
        att = chain.forward(f)
        Q, K, V = att.Q, att.K, att.V
        t_oracle, t_gemm = best_interleaved(
            [lambda: oracle(Q, K, V, scale=att.scale), lambda: Q @ K.T], args.repeat  # noqa: B023
        )
        rows.append({"N": n, "m": f.num_clauses, "n_q": att.n_q, "n_k": att.n_k, "d": att.dim,
                     "oracle_s": t_oracle, "gemm_s": t_gemm, "ratio": t_oracle / t_gemm})
        if not args.json:
            r = rows[-1]
            if len(rows) == 1:
                print(f"bench chain: oracle {name!r} vs bare float64 Q @ K.T (best of {args.repeat}), "
                      f"params {args.params}")
                print(f"{'N':>3} {'m':>4} {'n_q':>6} {'n_k':>6} {'d':>5} {'oracle s':>9} {'Q@K.T s':>9} {'ratio':>6}")
            print(f"{r['N']:>3} {r['m']:>4} {r['n_q']:>6} {r['n_k']:>6} {r['d']:>5} "
                  f"{r['oracle_s']:>9.4f} {r['gemm_s']:>9.4f} {r['ratio']:>6.2f}", flush=True)
    result = {"benchmark": "chain", "oracle": name, "params": args.params, "repeat": args.repeat,
              "rows": rows,
              "max_ratio": max((r["ratio"] for r in rows), default=float("nan")),
              "geomean_ratio": float(np.exp(np.mean([np.log(r["ratio"]) for r in rows]))) if rows else None}
    if args.json:
        import json

        print(json.dumps(result, indent=2))
    return result
