"""``finegrained bench poly``."""

from __future__ import annotations

import argparse
import math

from ..argtypes import (
    add_alias,
    add_B,
    add_dims,
    add_eps,
    add_max_memory,
    add_repeat,
    add_seed,
    add_sizes,
    list_of,
    nonneg_int,
    pos_float,
    pos_int,
    unit_float,
)

DESCRIPTION = ("The polynomial method (Alman-Song Algorithm 1) against exact attention and random features. For "
               "every d, B and eps of the grid and n = 2^K it draws Q, K, V uniform in [-B, B] with scale 1/d (so "
               "every score is at most B^2 in magnitude) and reports the times of poly and exact attention (above "
               "n = 2^--exact-cap-log2 exact runs on --sample-rows rows and its time is extrapolated, marked ~), "
               "the measured error of poly against the certified bound, the error of random features of the same "
               "rank, and per case the exponent of poly's time in n and the crossover n* from which poly is faster. "
               "Plans needing more than --max-memory or --max-poly-flops are skipped. --scaling runs only the case "
               "d = 4, B = 1, eps = 1e-6 from n = 2^12 to 2^--scaling-log2-n-max.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...bench.poly import SCALING_MIN_LOG2_N

    add_sizes(parser, 10, 16)
    add_dims(parser, "2,4,8", "key dimensions d")
    add_B(parser, "0.5,1,2")
    add_eps(parser, "1e-3,1e-6", "polynomial accuracies, each in (0, 1)")
    add_max_memory(parser, "skip plans needing more memory than this, e.g. 8G (default: half of RAM)")
    parser.add_argument("--max-poly-flops", type=pos_float, default=5e10, help="skip poly above this many flops")
    parser.add_argument("--exact-cap-log2", type=nonneg_int, default=14, metavar="K",
                        help="exact attention on all rows up to n = 2^K")
    parser.add_argument("--sample-rows", type=pos_int, default=256, help="query rows for exact above the cap")
    parser.add_argument("--rf-max-rank", type=nonneg_int, default=20000, help="random features only up to this rank")
    add_repeat(parser, 5)
    add_seed(parser)
    parser.add_argument("--scaling", action="store_true", help="only d = 4, B = 1, eps = 1e-6, to a larger n")
    parser.add_argument("--scaling-log2-n-max", type=nonneg_int, default=18, metavar="K",
                        help=f"largest n = 2^K of --scaling (at least {SCALING_MIN_LOG2_N})")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot the planned degree g and rank r against B (.png, .pdf or .svg; matplotlib)")
    parser.add_argument("--plot-log2-n", type=pos_int, default=16, metavar="K", help="n = 2^K for --plot")
    add_alias(parser, "--ds", "--dims", list_of(pos_int))
    add_alias(parser, "--Bs", "--B", list_of(pos_float))
    add_alias(parser, "--epss", "--eps", list_of(unit_float))
    add_alias(parser, "--min-log2-n", "--log2-n-min", nonneg_int)
    add_alias(parser, "--max-log2-n", "--log2-n-max", nonneg_int)
    add_alias(parser, "--scaling-max-log2-n", "--scaling-log2-n-max", nonneg_int)


def run(args: argparse.Namespace, progress):
    from ...bench.poly import run as bench
    from ..bench import Extended
    from ..plots import check_figure_path, plot_degree_rank

    if args.plot:
        check_figure_path(args.plot)
    result = bench(dims=args.dims, B=args.B, eps=args.eps, log2_n_min=args.log2_n_min, log2_n_max=args.log2_n_max,
                   max_memory=args.max_memory, max_poly_flops=args.max_poly_flops,
                   exact_cap_log2=args.exact_cap_log2, sample_rows=args.sample_rows, rf_max_rank=args.rf_max_rank,
                   repeat=args.repeat, seed=args.seed, scaling=args.scaling,
                   scaling_log2_n_max=args.scaling_log2_n_max, progress=progress)
    extra = {}
    if args.plot:
        extra["plot"] = plot_degree_rank(args.plot, args.plot_log2_n, args.eps[-1], args.dims)
    return Extended(result, extra)


def format_case(case: dict) -> list[str]:
    """The lines of one ``(d, B, eps)`` case."""
    head = f"d={case['d']} B={case['B']:g} eps={case['eps']:g}"
    lines = []
    for r in case["rows"]:
        prefix = f"{head:<22} n=2^{int(math.log2(r['n'])):<2} g={r['degree']:<3} r={r['rank']:<9}"
        if "skipped" in r:
            lines.append(f"{prefix} skipped ({r['skipped']})")
            continue
        te = ("~" if r["exact_sampled"] else " ") + f"{r['t_exact']:.3g}"
        rf = "-" if r["rf_error"] is None else f"{r['rf_error']:.2e}"
        lines.append(
            f"{prefix} poly {r['t_poly']:8.3g}s exact {te:>9}s ratio {r['t_exact'] / r['t_poly']:8.3g}  "
            f"err {r['error']:.2e} <= bound {r['error_bound']:.2e}  rf err {rf}"
        )
    exp = "-" if case["exponent"] is None else f"{case['exponent']:.3f}"
    cross = "never" if case["crossover"] is None else f"2^{int(math.log2(case['crossover']))}"
    lines.append(f"{head:<22} time exponent {exp}, poly faster from n* = {cross}")
    return lines


def format_text(result) -> str:
    lines = [line for case in result.cases for line in format_case(case)]
    if "plot" in result.extra:
        lines.append(f"plot: {result.extra['plot']['path']}")
    return "\n".join(lines)


def exit_status(result) -> int:
    """1 when a measured error exceeds poly's certified bound."""
    return 0 if all(case["bound_holds"] for case in result.cases) else 1
