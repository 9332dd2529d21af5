"""``finegrained bench chain``."""

from __future__ import annotations

import argparse

from ..argtypes import add_alias, add_max_memory, add_repeat, add_seed, pos_float, pos_int

DESCRIPTION = ("The chain's attention oracle against a bare float64 Q @ K.T of the same shapes. For each number of "
               "variables N, a seeded random 3-SAT formula at the given clause ratio goes through k-SAT -> OV -> "
               "Gap-ANN -> AAttC (--route attention: k-SAT -> OV -> Attention); then the oracle call and a bare "
               "Q @ K.T are timed alternately (best of --repeat) and their ratio is reported. For the exact oracle "
               "the run also times it without merging identical rows (the plain variant measures the oracle's "
               "overhead over the scores).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...bench.chain import K

    parser.add_argument("--vars-min", type=pos_int, default=12, metavar="N",
                        help=f"smallest number of variables N, at least {K} (attention sizes about 2^(N/2))")
    parser.add_argument("--vars-max", type=pos_int, default=24, metavar="N", help="largest number of variables N")
    parser.add_argument("--step", type=pos_int, default=2, help="step in N")
    parser.add_argument("--ratio", type=pos_float, default=4.26, help="clauses per variable")
    parser.add_argument("--route", choices=("aattc", "attention"), default="aattc",
                        help="aattc: k-SAT -> OV -> Gap-ANN -> AAttC (Lemma 4.7); attention: Gupta et al.'s "
                        "k-SAT -> OV -> Attention (Thm 1.5 gadget, no Lemma 4.7 constants)")
    parser.add_argument("--params", default=None, choices=("tight", "paper"),
                        help="Lemma 4.7 constants, --route aattc only (default: tight)")
    parser.add_argument("--oracle", default="exact", help="attention oracle")
    add_repeat(parser, 7)
    add_seed(parser)
    add_max_memory(parser, "refuse N whose chain needs more memory than this, e.g. 8G (default: half of RAM)")
    add_alias(parser, "--n-min", "--vars-min", pos_int)
    add_alias(parser, "--n-max", "--vars-max", pos_int)


def run(args: argparse.Namespace, progress):
    from ...bench.chain import run as bench

    return bench(vars_min=args.vars_min, vars_max=args.vars_max, step=args.step, ratio=args.ratio,
                 params=route_params(args), oracle=args.oracle, repeat=args.repeat, seed=args.seed,
                 max_memory=args.max_memory, progress=progress, route=args.route)


def route_params(args: argparse.Namespace) -> str:
    """``--params`` (default tight), refused with one line on ``--route attention``, whose gadget has none."""
    from instances.errors import ParameterError

    if args.route == "attention" and args.params is not None:
        raise ParameterError("--params sets Lemma 4.7's constants; --route attention has none")
    return args.params or "tight"


def describe_route(result) -> str:
    """``route aattc, params tight`` or ``route attention`` for a report's first line."""
    route = getattr(result, "route", "aattc")
    return f"route {route}" + (f", params {result.params}" if route == "aattc" else "")


def format_text(result) -> str:
    """One row per N: sizes, seconds of the oracle and of Q @ K.T, and their ratio."""
    plain = any("ratio_no_dedupe" in r for r in result.rows)
    lines = [f"bench chain: oracle {result.oracle!r} vs bare float64 Q @ K.T (best of {result.repeat}, "
             f"alternating), {describe_route(result)}",
             f"{'N':>3} {'m':>4} {'n_q':>6} {'n_k':>6} {'d':>5} {'oracle s':>9} {'Q@K.T s':>9} {'ratio':>6}"
             + (f" {'no-dedupe s':>11} {'ratio':>6}" if plain else "")]
    for row in result.rows:
        lines.append(f"{row['N']:>3} {row['m']:>4} {row['n_q']:>6} {row['n_k']:>6} {row['d']:>5} "
                     f"{row['oracle_s']:>9.4f} {row['gemm_s']:>9.4f} {row['ratio']:>6.2f}"
                     + (f" {row['oracle_no_dedupe_s']:>11.4f} {row['ratio_no_dedupe']:>6.2f}"
                        if "ratio_no_dedupe" in row else ""))
    return "\n".join(lines)
