"""Every attention algorithm on the same inputs: time against n, error against exact, fitted exponents.

Inputs are i.i.d. uniform in ``[-B, B]`` with the paper's scale ``1/d``, so ``B`` small is the easy side of the
Alman–Song threshold. For each ``n`` the algorithms run alternately (best of ``--repeat``); the error is the
largest ``|out - exact|`` over a sample of query rows (all rows when ``n <= 2^12``). Algorithms that refuse an
input (for example ``poly`` when its rank would not fit) are reported as refused, with the reason. ``--plot``
saves time against n (``finegrained[plot]``).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from instances.errors import FinegrainedError, ParameterError

from ..argtypes import memory_size, nonneg_int, pos_float, pos_int, unit_float
from ..attention import ORACLES, exact
from ..resources import check_memory

DEFAULT_ALGORITHMS = ("exact", "poly", "anytemp", "lev", "random_features")
#: Exact attention on all rows is skipped above this n (it is timed on sampled rows and extrapolated).
FULL_EXACT_MAX_N = 2**14
SAMPLE_ROWS = 256



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--d", type=pos_int, default=2, help="head dimension (default 2)")
    parser.add_argument("--B", type=pos_float, default=1.0, help="entries uniform in [-B, B] (default 1)")
    parser.add_argument("--eps", type=unit_float, default=1e-6,
                        help="accuracy asked of poly and anytemp, in (0, 1) (default 1e-6)")
    parser.add_argument("--min-log2-n", type=nonneg_int, default=10)
    parser.add_argument("--max-log2-n", type=nonneg_int, default=15)
    parser.add_argument("--algorithms", default=",".join(DEFAULT_ALGORITHMS),
                        help=f"comma-separated oracle names (default {','.join(DEFAULT_ALGORITHMS)})")
    parser.add_argument("--repeat", type=pos_int, default=3)
    parser.add_argument("--seed", type=nonneg_int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save time against n")
    parser.add_argument("--max-memory", type=memory_size, default=None,
                        help="refuse sizes needing more memory than this (e.g. 8G; default: half of RAM)")


def memory_bytes(n: int, d: int) -> int:
    """Rough peak memory at one size: ``Q``, ``K``, ``V``, a few outputs and copies (float64 ``n x d``), and the
    exact reference's score tiles; the oracles that need more refuse on their own (reported as refused)."""
    return int(8 * n * d * 12) + 2**28


def _call(name: str, eps: float):
    oracle = ORACLES[name]
    if name in ("poly", "anytemp"):
        return lambda Q, K, V: oracle(Q, K, V, eps=eps)
    return lambda Q, K, V: oracle(Q, K, V)


def _fit(ns: list[int], ts: list[float]) -> float | None:
    if len(ns) < 2:
        return None
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def run(args: argparse.Namespace) -> dict:
    names = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = [a for a in names if a not in ORACLES]
    if unknown:
        raise ParameterError(f"unknown algorithm(s) {', '.join(unknown)}; available: {', '.join(sorted(ORACLES))}")
    if (args.d < 1 or not (math.isfinite(args.B) and args.B > 0) or not 0 < args.eps < 1
            or args.min_log2_n > args.max_log2_n):
        raise ParameterError("need d >= 1, B > 0, 0 < eps < 1 and --min-log2-n <= --max-log2-n")
    if args.plot and not os.path.isdir(os.path.dirname(os.path.abspath(args.plot))):
        raise FinegrainedError(f"cannot write {args.plot}: directory "
                               f"{os.path.dirname(os.path.abspath(args.plot))} does not exist")
    check_memory(memory_bytes(2**args.max_log2_n, args.d), getattr(args, "max_memory", None),
                 f"bench compare at n = 2^{args.max_log2_n}, d = {args.d}")
    rng = np.random.default_rng(args.seed)
    rows = []
    for k in range(args.min_log2_n, args.max_log2_n + 1):
        n = 2**k
        Q, K, V = (rng.uniform(-args.B, args.B, (n, args.d)) for _ in range(3))
        sample = np.arange(n) if n <= 2**12 else np.sort(rng.choice(n, SAMPLE_ROWS, replace=False))
        ref = exact(Q[sample], K, V).to_float()
        times: dict[str, float | None] = {}
        errors: dict[str, float | None] = {}
        refused: dict[str, str] = {}
        for name in names:
            fn = _call(name, args.eps)
            if name == "exact" and n > FULL_EXACT_MAX_N:
                t0 = time.perf_counter()
                exact(Q[sample], K, V)
                times[name] = (time.perf_counter() - t0) * n / sample.size
                errors[name] = 0.0
                continue
            best, out = float("inf"), None
            try:
                for _ in range(max(1, args.repeat)):
                    t0 = time.perf_counter()
                    out = fn(Q, K, V)
                    best = min(best, time.perf_counter() - t0)
            except FinegrainedError as exc:
                times[name] = errors[name] = None
                refused[name] = str(exc).splitlines()[0][:160]
                continue
            times[name] = best
            errors[name] = float(np.abs(out[sample].to_float() - ref).max())
        rows.append({"n": n, "times": times, "errors": errors, "refused": refused,
                     "exact_extrapolated": n > FULL_EXACT_MAX_N})
        if not args.json:
            if len(rows) == 1:
                print(f"bench compare: d = {args.d}, B = {args.B:g}, eps = {args.eps:g}, best of {args.repeat}")
                print(f"{'n':>8} " + " ".join(f"{nm:>16}" for nm in names) + "   (seconds / max error)")
            cells = []
            for nm in names:
                t, e = times[nm], errors[nm]
                cells.append(f"{'refused':>16}" if t is None else f"{t:>8.3g}/{e:<7.1e}")
            mark = "  (exact: sampled rows, extrapolated)" if n > FULL_EXACT_MAX_N else ""
            print(f"{n:>8} " + " ".join(cells) + mark, flush=True)
    exponents = {}
    for nm in names:
        pts = [(r["n"], r["times"][nm]) for r in rows if r["times"][nm] is not None and r["n"] >= 2**12]
        exponents[nm] = _fit([p[0] for p in pts], [p[1] for p in pts])
    result = {"benchmark": "compare", "d": args.d, "B": args.B, "eps": args.eps, "algorithms": names,
              "rows": rows, "exponents": exponents}
    if not args.json:
        print("fitted exponents of time in n (n >= 2^12): "
              + ", ".join(f"{nm} {e:.2f}" for nm, e in exponents.items() if e is not None))
        for nm in names:
            reasons = {r["refused"][nm] for r in rows if nm in r["refused"]}
            for why in reasons:
                print(f"  {nm} refused: {why}")
    if args.plot:
        from ..plots import plot_times

        plot_times(result, args.plot)
        if not args.json:
            print(f"wrote {args.plot}")
    return result
