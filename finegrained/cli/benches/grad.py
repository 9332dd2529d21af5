"""``finegrained bench grad``."""

from __future__ import annotations

import argparse

from ..argtypes import add_B, add_dims, add_max_memory, add_repeat, add_seed, add_sizes, choice_of, list_of

DESCRIPTION = ("Attention gradients (dQ, dK, dV of L = <dO, Att(Q, K, V)>) by exact_grad, anytemp_grad and "
               "poly_grad. For every head dimension d, entry bound B (Q, K uniform in [-B, B], V and dO standard "
               "normal, scale 1/d) and n = 2^K queries and keys: the time of each method with the fitted exponent "
               "of time against n over the largest half of the sizes, the measured error against exact_grad and the "
               "certified error bound. poly_grad refuses entries beyond its bounded-entry range.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_sizes(parser, 8, 12)
    add_dims(parser, "1,2,3")
    add_B(parser, "1,10,100,1000")
    parser.add_argument("--methods", type=list_of(choice_of("exact", "anytemp", "poly")), default="exact,anytemp,poly",
                        metavar="M[,M...]", help="comma-separated methods: exact, anytemp, poly")
    add_repeat(parser, 1)
    add_seed(parser)
    add_max_memory(parser)


def run(args: argparse.Namespace, progress):
    from ...bench.grad import run as bench

    return bench(log2_n_min=args.log2_n_min, log2_n_max=args.log2_n_max, dims=tuple(args.dims), B=tuple(args.B),
                 methods=tuple(args.methods), repeat=args.repeat, seed=args.seed, max_memory=args.max_memory,
                 progress=progress)


def format_text(res) -> str:
    """One table of timings and errors, then the fitted exponents."""
    lines = ["| method | d | B | n | seconds | error vs exact | certified bound | within | max abs grad |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res.rows:
        if r["refused"]:
            lines.append(f"| {r['method']} | {r['d']} | {r['B']:g} | {r['n']} | refused | - | - | - | - |")
            continue
        err = "-" if r["error"] is None else f"{r['error']:.2e}"
        lines.append(f"| {r['method']} | {r['d']} | {r['B']:g} | {r['n']} | {r['seconds']:.4f} | {err} "
                     f"| {r['bound']:.2e} | {r['within']} | {r['grad_max']:.3g} |")
    lines += ["", "| method | d | B | exponent a (time ~ n^a) | fitted over n |", "|---|---|---|---|---|"]
    for f in res.fits:
        a = "-" if f["exponent"] is None else f"{f['exponent']:.2f}"
        span = "-" if f["fit_n"] is None else f"{f['fit_n'][0]}..{f['fit_n'][1]}"
        lines.append(f"| {f['method']} | {f['d']} | {f['B']:g} | {a} | {span} |")
    return "\n".join(lines)
