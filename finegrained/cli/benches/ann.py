"""``finegrained bench ann``."""

from __future__ import annotations

import argparse

import numpy as np

from ..argtypes import add_dims, add_max_memory, add_repeat, add_seed, add_sizes, nonneg_float, nonneg_int, pos_float

DESCRIPTION = ("Gap-ANN deciders (popcount, GEMM, Hamming ball, and the attention route Gap-ANN -> AAttC -> exact "
               "oracle) on planted balanced instances with n queries and n data vectors, in two regimes: wide "
               "(eps = 0.5 and the largest feasible t; the Hamming ball is skipped there) and narrow (t = "
               "--narrow-t and eps = 1, where the ball can win). Every answer is checked against the planted "
               "ground truth; the table also shows which method the cost model picks.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, 10, 14)
    add_dims(parser, "64,128,256,512", "dimensions (even)")
    parser.add_argument("--attention-max-log2-n", type=nonneg_int, default=12, metavar="K",
                        help="largest n = 2^K for the attention route")
    parser.add_argument("--narrow-t", type=pos_float, default=3.0, help="threshold of the narrow (small t) regime")
    parser.add_argument("--no-narrow", action="store_true", help="skip the narrow regime")
    parser.add_argument("--ball-max-seconds", type=nonneg_float, default=20.0,
                        help="skip the Hamming ball where the cost model expects more than this")
    add_repeat(parser, 1)
    add_seed(parser)
    add_max_memory(parser)


def run(args: argparse.Namespace, progress):
    from ...bench.ann import run as bench

    return bench(log2_n_min=args.log2_n_min, log2_n_max=args.log2_n_max, dims=args.dims,
                 attention_max_log2_n=args.attention_max_log2_n, narrow_t=args.narrow_t,
                 narrow=not args.no_narrow, ball_max_seconds=args.ball_max_seconds, repeat=args.repeat,
                 seed=args.seed, max_memory=args.max_memory, progress=progress)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def format_text(result) -> str:
    """A Markdown table (seconds; ok = every row matches the planted answer)."""
    lines = ["| regime | n | d | t | build | popcount | gemm | ball | attention (oracle) | auto | fastest |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        def mark(m: str, r: dict = r) -> str:
            if r[m] is None:
                return "-"
            return _s(r[m]) + (" ok" if r.get(f"{m}_correct", r.get(f"{m}_agrees")) else " WRONG")

        att = "-" if r["attention"] is None else (
            f"{r['attention']:.2f} ({r['attention_oracle']:.2f})" + (" ok" if r["attention_agrees"] else " WRONG"))
        lines.append(f"| {r['regime']} | 2^{int(np.log2(r['n']))} | {r['d']} | {r['t']:.4g} | {r['build_seconds']:.2f} "
                     f"| {mark('popcount')} | {mark('gemm')} | {mark('ball')} | {att} | {r['auto']} | {r['fastest']} |")
    return "\n".join(lines)


def exit_status(result) -> int:
    """1 when any method answered some row wrongly: a benchmark never reports a wrong answer as a success."""
    bad = any(r.get(f"{m}_correct") is False for r in result.rows for m in ("popcount", "gemm", "ball"))
    bad = bad or any(r.get("attention_agrees") is False for r in result.rows)
    return 1 if bad else 0
