"""``finegrained bench anytemp``."""

from __future__ import annotations

import argparse

from ..argtypes import (
    add_alias,
    add_B,
    add_dims,
    add_eps,
    add_max_memory,
    add_repeat,
    add_seed,
    add_sizes,
    choice_of,
    list_of,
    nonneg_int,
    pos_float,
    pos_int,
    single,
)
from ..formatting import fmt

DESCRIPTION = ("Any-temperature attention against exact attention. For every key law, head dimension d and entry "
               "bound B (Q, K, V uniform in [-B, B], score scale 1, so scores reach d B^2) and n = 2^K queries and "
               "keys: the time of anytemp with eps = (--eps) x max|V|, its error against exact attention on "
               "--rows sampled query rows next to the certified bound of those rows, the time of exact attention "
               "(extrapolated from the sampled rows above n = 2^--exact-full-max), the key tree's statistics, and "
               "the degree and rank the polynomial method (Alman-Song Algorithm 1) would need at the same size. "
               "Key laws: uniform (keys uniform in the cube) and sphere (keys on the sphere of radius B, d >= 2: "
               "the worst case for the maximum search).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...bench.anytemp import LAWS

    add_sizes(parser, 10, 16)
    add_dims(parser, "1,2,3")
    add_B(parser, "1,10,100,1000")
    parser.add_argument("--laws", type=list_of(choice_of(*LAWS)), default=",".join(LAWS), metavar="LAW[,LAW...]",
                        help=f"comma-separated key laws: {', '.join(LAWS)}")
    add_eps(parser, "1e-6", "relative accuracy: eps = this x max|V| (one value)", pos_float)
    parser.add_argument("--rows", type=pos_int, default=64, help="query rows checked against exact attention")
    parser.add_argument("--exact-full-max", type=nonneg_int, default=13, metavar="K",
                        help="time exact attention on all rows up to n = 2^K")
    add_repeat(parser, 1)
    add_seed(parser)
    add_max_memory(parser)
    add_alias(parser, "--min-log2-n", "--log2-n-min", nonneg_int)
    add_alias(parser, "--max-log2-n", "--log2-n-max", nonneg_int)
    add_alias(parser, "--bs", "--B", list_of(pos_float))
    add_alias(parser, "--eps-rel", "--eps", list_of(pos_float))


def run(args: argparse.Namespace, progress):
    from ...bench.anytemp import run as bench

    return bench(log2_n_min=args.log2_n_min, log2_n_max=args.log2_n_max, dims=args.dims, B=args.B, laws=args.laws,
                 eps_rel=single(args.eps, "--eps"), rows=args.rows, exact_full_max=args.exact_full_max,
                 repeat=args.repeat, seed=args.seed, max_memory=args.max_memory, progress=progress)


def format_text(res) -> str:
    """Markdown tables: every case, then the fitted exponents."""
    lines = ["| law | d | B | n | anytemp (s) | exact (s) | max err (sampled) | bound (sampled) | ok | visited "
             "| crossing (mean/max) | accepted (mean degree) | exact keys | max-search visits "
             "| Alg. 1: g, log10 rank, beats exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in res.cases:
        p = c["plan"]
        plan = (f"{p['degree']}, {p['log10_rank']:.1f}, {'yes' if p['beats_exact'] else 'no'}" if "degree" in p
                else p.get("error", "-"))
        ex = f"{c['exact_seconds']:.3g}{'*' if c['exact_extrapolated'] else ''}"
        lines.append(f"| {c['law']} | {c['d']} | {c['B']:g} | {c['n']} | {c['seconds']:.3g} | {ex} "
                     f"| {c['max_error']:.2e} | {c['bound_sampled']:.2e} | {'yes' if c['ok'] else 'NO'} "
                     f"| {fmt(c['visited'], '.1f')} | {fmt(c['crossing'], '.1f')}/{fmt(c['crossing_max'], 'd')} "
                     f"| {fmt(c['accepted'], '.1f')} ({fmt(c['degree_used'], '.1f')}) | {fmt(c['exact_keys'], '.1f')} "
                     f"| {fmt(c['search_visits'], '.1f')} | {plan} |")
    lines += ["", "`*`: exact time extrapolated from the sampled rows (time on the rows x n / rows).", "",
              "| law | d | B | exponent of anytemp time in n | exponent of exact time | anytemp (s) at max n |",
              "|---|---|---|---|---|---|"]
    for f in res.fits:
        e = "-" if f["exponent"] is None else f"{f['exponent']:.2f}"
        ee = "-" if f["exact_exponent"] is None else f"{f['exact_exponent']:.2f}"
        lines.append(f"| {f['law']} | {f['d']} | {f['B']:g} | {e} | {ee} | {f['seconds_at_max_n']:.3g} |")
    lines += ["", f"every sampled row within its certified bound: {res.all_within_bound}"]
    return "\n".join(lines)


def exit_status(res) -> int:
    """1 when a sampled row's error exceeds its certified bound."""
    return 0 if res.all_within_bound else 1
