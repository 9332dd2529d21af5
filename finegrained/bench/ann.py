"""Benchmark of Gap-ANN deciders (``finegrained bench ann``): popcount, GEMM, Hamming ball, attention route.

On planted balanced instances (:func:`instances.gap_ann_builders.planted`) with ``n`` queries and ``n`` data
vectors, ``n = 2^a .. 2^b`` and ``d`` in ``--dims``, two regimes:

* ``wide``: ``eps = 0.5`` and the largest feasible ``t`` (``(1+eps) t = T_max``), the regime of Lemma 4.7 Case 2;
  the Hamming ball is far too large there and is skipped;
* ``narrow``: ``t = --narrow-t`` (default 3) and ``eps = 1``, Lemma 4.7 Case 1, where the ball can win.

Every method's answer is checked against the planted ground truth. The attention route (Gap-ANN -> AAttC ->
exact oracle, :func:`finegrained.ann_chain.run_ann_chain`) is ``O(n^2 d)`` in float64 on ``2n x 2d`` matrices and
runs only for ``n <= 2^--attention-max-log2-n``. The table also shows which method the cost model picks.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from finegrained.ann_chain import run_ann_chain
from finegrained.argtypes import finite_float, list_of, memory_size, nonneg_int, pos_float, pos_int
from finegrained.gap_ann_solvers import DEFAULT_COST_MODEL, METHODS, solve_gap_ann
from finegrained.resources import check_memory
from instances.errors import ParameterError
from instances.gap_ann_builders import max_far_distance, planted


def _nonneg_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log2-n-min", type=nonneg_int, default=10)
    parser.add_argument("--log2-n-max", type=nonneg_int, default=14)
    parser.add_argument("--dims", type=list_of(pos_int), default="64,128,256,512",
                        help="comma-separated dimensions (even)")
    parser.add_argument("--attention-max-log2-n", type=nonneg_int, default=12,
                        help="largest n for the attention route")
    parser.add_argument("--narrow-t", type=pos_float, default=3.0, help="threshold of the narrow (small t) regime")
    parser.add_argument("--no-narrow", action="store_true", help="skip the narrow regime")
    parser.add_argument("--ball-max-seconds", type=_nonneg_float, default=20.0,
                        help="skip the Hamming ball where the cost model expects more than this")
    parser.add_argument("--seed", type=nonneg_int, default=0)
    parser.add_argument("--max-memory", type=memory_size, default=None,
                        help="refuse sizes needing more memory than this (e.g. 8G; default: half of RAM)")


def memory_bytes(n: int, d: int, attention: bool) -> int:
    """Rough peak memory of one size: the 0/1 instance and its float32 copies, the deciders' score tiles and,
    on the attention route, float64 ``2n x 2d`` matrices and the oracle's score tiles."""
    base = n * d * 2 * (1 + 4 + 8) + 2**28
    return int(base + (2 * n * 2 * d * 8 * 4 + 2**28 if attention else 0))


def check_arguments(args: argparse.Namespace) -> list[int]:
    """The list of dimensions; :class:`ParameterError` (one line) for an empty or infeasible grid."""
    dims = args.dims
    if isinstance(dims, str):  # a programmatic caller
        try:
            dims = list_of(pos_int)(dims)
        except argparse.ArgumentTypeError as exc:
            raise ParameterError(f"--dims: {exc}") from None
    odd = [d for d in dims if d % 2]
    if odd:
        raise ParameterError(f"--dims must be even (balanced vectors of weight d/2), got {odd}")
    if args.log2_n_min > args.log2_n_max:
        raise ParameterError(f"--log2-n-min ({args.log2_n_min}) must be at most --log2-n-max ({args.log2_n_max})")
    if not (math.isfinite(args.narrow_t) and args.narrow_t > 0):
        raise ParameterError(f"--narrow-t must be a finite positive number, got {args.narrow_t}")
    n, d = 2**args.log2_n_max, max(dims)
    check_memory(memory_bytes(n, d, n <= 2**args.attention_max_log2_n), getattr(args, "max_memory", None),
                 f"bench ann at n = 2^{args.log2_n_max}, d = {d}")
    return dims


def _case(n: int, d: int, regime: str, narrow_t: float, seed: int) -> tuple:
    if regime == "wide":
        eps = 0.5
        t = max_far_distance(n, d) / (1 + eps)
    else:
        eps, t = 1.0, narrow_t
    t0 = time.perf_counter()
    built = planted(n, d, t, eps, max(1, n // 16), seed)
    return built, time.perf_counter() - t0


def measure(n: int, d: int, regime: str, args: argparse.Namespace) -> dict:
    built, build_s = _case(n, d, regime, args.narrow_t, args.seed)
    inst = built.instance
    est = DEFAULT_COST_MODEL.estimate(n, n, d, inst.t, even_only=True)
    row: dict = {"n": n, "d": d, "regime": regime, "t": inst.t, "eps": inst.eps, "build_seconds": build_s,
                 "auto": min(METHODS, key=lambda m: est[m]), "estimates": est}
    truth = built.expected_yes
    for m in METHODS:
        if m == "ball" and est["ball"] > args.ball_max_seconds:
            row[m] = None
            continue
        sol = solve_gap_ann(inst, m)
        row[m] = sol.seconds
        row[f"{m}_correct"] = bool(np.array_equal(sol.yes, truth))
    row["attention"] = row["attention_oracle"] = None
    if n <= 2**args.attention_max_log2_n:
        t0 = time.perf_counter()
        res = run_ann_chain(inst, expected=truth, direct_method="gemm")
        row["attention"] = time.perf_counter() - t0
        row["attention_oracle"] = res.timings["oracle"]
        row["attention_agrees"] = bool(res.agree_with_direct and res.ground_truth_agrees)
    done = [m for m in METHODS if row[m] is not None]
    row["fastest"] = min(done, key=lambda m: row[m])
    return row


def run(args: argparse.Namespace) -> dict:
    dims = check_arguments(args)
    rows = []
    regimes = ["wide"] + ([] if args.no_narrow else ["narrow"])
    for regime in regimes:
        for d in dims:
            for k in range(args.log2_n_min, args.log2_n_max + 1):
                rows.append(measure(2**k, d, regime, args))
    result = {"rows": rows}
    if not getattr(args, "json", False):
        print(format_table(result))
    return result


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def format_table(result: dict) -> str:
    """The result of :func:`run` as a Markdown table (seconds; ✓ = every row matches the planted answer)."""
    lines = ["| regime | n | d | t | build | popcount | gemm | ball | attention (oracle) | auto | fastest |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        def mark(m: str, r: dict = r) -> str:
            if r[m] is None:
                return "—"
            return _s(r[m]) + (" ✓" if r.get(f"{m}_correct", r.get(f"{m}_agrees")) else " ✗")

        att = "—" if r["attention"] is None else (
            f"{r['attention']:.2f} ({r['attention_oracle']:.2f})" + (" ✓" if r["attention_agrees"] else " ✗"))
        lines.append(f"| {r['regime']} | 2^{int(np.log2(r['n']))} | {r['d']} | {r['t']:.4g} | {r['build_seconds']:.2f} "
                     f"| {mark('popcount')} | {mark('gemm')} | {mark('ball')} | {att} | {r['auto']} | {r['fastest']} |")
    return "\n".join(lines)
