"""``finegrained bench lev``."""

from __future__ import annotations

import argparse

from ..argtypes import (
    add_alias,
    add_dims,
    add_eps,
    add_max_memory,
    add_repeat,
    add_seed,
    add_sizes,
    list_of,
    pos_float,
    pos_int,
    single,
)

DESCRIPTION = ("LevAttention in four measurements. 1: time of heavy_entries with n queries and n keys against n at "
               "one d and eps, with the fitted exponent over the largest half of the sizes (dense brute force is "
               "timed up to n = 2^12, and its count of heavy entries must match). 2: the universal-set size |U| "
               "against the bound rank/eps for several d, eps and key laws. 3: for p != 2, the recall of the "
               "Lewis-weight universal set against brute force. 4: the error of the softmax heuristic against exact "
               "attention next to a random key subset of the same size. --log2-n-max must lie in 2..24.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...bench.lev import MIN_LOG2_N

    add_sizes(parser, MIN_LOG2_N, 18)
    add_dims(parser, "16", "head dimension of the scaling run (one value)")
    add_eps(parser, "0.05", "threshold of the scaling run, in (0, 1] (one value)", pos_float)
    add_repeat(parser, 3)
    add_seed(parser)
    add_max_memory(parser, "refuse a scaling run needing more memory than this, e.g. 8G (default: half of RAM)")
    add_alias(parser, "--max-log2-n", "--log2-n-max", pos_int)
    add_alias(parser, "--d", "--dims", list_of(pos_int))
    add_alias(parser, "--repeats", "--repeat", pos_int)


def run(args: argparse.Namespace, progress):
    from ...bench.lev import run as bench

    return bench(log2_n_min=args.log2_n_min, log2_n_max=args.log2_n_max, d=single(args.dims, "--dims"),
                 eps=single(args.eps, "--eps"), repeat=args.repeat, seed=args.seed, max_memory=args.max_memory,
                 progress=progress)


def format_text(res) -> str:
    """The four measurements as Markdown tables."""
    s = res.scaling
    lines = [f"### Scaling: heavy_entries with n queries and n keys (d={s['d']}, eps={s['eps']}, "
             f"{s['keys']} keys)", "",
             "| n | seconds | us/query | abs(U) | entries | dense brute force (s) |",
             "|---|---|---|---|---|---|"]
    for r in s["rows"]:
        b = f"{r['brute_seconds']:.3f}" if r["brute_seconds"] is not None else "-"
        lines.append(f"| {r['n']} | {r['seconds']:.3f} | {r['us_per_query']:.2f} | {r['U']} | {r['entries']} "
                     f"| {b} |")
    exponent = "-" if s["exponent"] is None else f"{s['exponent']:.3f}"
    lines += ["", f"Fitted exponent of time ~ n^a over n in [{s['fit_n'][0]}, {s['fit_n'][1]}]: a = {exponent}", "",
              "### Universal set size abs(U) (n = 16384) against the bound d/eps", "",
              "| d | eps | d/eps | gauss | student-t(2) | cauchy-norm rows |", "|---|---|---|---|---|---|"]
    for r in res.universal_sizes:
        lines.append(f"| {r['d']} | {r['eps']} | {r['bound']:.0f} | {r['gauss']} | {r['student2']} "
                     f"| {r['cauchy_rows']} |")
    lines += ["", "### p != 2: Lewis-weight universal set against brute force (student-t(2) keys)", "",
              "| p | n | d | eps | abs(U) | proven bound c_p r/eps | heavy columns | heavy entries | recall "
              "| sum w | Lewis time (s) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res.lewis:
        lines.append(f"| {r['p']:g} | {r['n']} | {r['d']} | {r['eps']} | {r['U']} | {r['bound']:.0f} "
                     f"| {r['heavy_columns']} | {r['heavy_entries']} | {r['recall']:.3f} | {r['sum_w']:.6f} "
                     f"| {r['lewis_seconds']:.3f} |")
    lines += ["", "### Softmax heuristic: error against exact attention (n = 4096, d = 16, 256 sampled rows, "
              "V ~ N(0,1))", "",
              "| keys | scale | eps | abs(U) | lev max err | lev mean err | random max err "
              "| random mean err |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res.softmax:
        lines.append(f"| {r['keys']} | {r['scale']} | {r['eps']} | {r['U']} | {r['lev_max_err']:.3g} "
                     f"| {r['lev_mean_err']:.3g} | {r['random_max_err']:.3g} | {r['random_mean_err']:.3g} |")
    return "\n".join(lines)
