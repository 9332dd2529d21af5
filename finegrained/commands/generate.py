"""Write seeded instances to files: planted balanced Gap-ANN to ``.npz``, random or planted k-SAT to DIMACS.

The same arguments and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import time

from instances.errors import FinegrainedError, ParameterError
from instances.gap_ann_builders import planted, save_gap_ann
from instances.generators import planted_ksat, random_ksat

from ..argtypes import memory_size, nonneg_int, pos_float, pos_int
from ..resources import check_memory

HELP = "write a seeded instance (planted Gap-ANN .npz, random/planted k-SAT DIMACS)"


_MEMORY_HELP = "refuse instances needing more memory than this (e.g. 8G; default: half of RAM)"



def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    g = sub.add_parser("gap-ann", help="planted balanced Hamming Gap-ANN instance (.npz)",
                       description="Balanced vectors (weight d/2); PLANTED rows of A have a partner in B at distance "
                       "< t, every other pair is at distance >= (1+eps)t (verified). See docs/gap_ann.md.")
    g.add_argument("--n", type=pos_int, required=True, help="number of query vectors (rows of A)")
    g.add_argument("--n-b", type=pos_int, default=None, help="number of data vectors (rows of B; default n)")
    g.add_argument("--d", type=pos_int, required=True, help="dimension (even, positive)")
    g.add_argument("--t", type=pos_float, required=True, help="Gap-ANN threshold t > 0")
    g.add_argument("--eps", type=pos_float, required=True, help="Gap-ANN gap eps > 0")
    g.add_argument("--planted", type=nonneg_int, required=True, help="number of rows with a near partner")
    g.add_argument("--seed", type=nonneg_int, required=True, help="non-negative integer seed")
    g.add_argument("-o", "--output", required=True, help="output file (.npz)")
    g.add_argument("--json", action="store_true", help="print a JSON summary")
    g.add_argument("--max-memory", type=memory_size, default=None, help=_MEMORY_HELP)
    k = sub.add_parser("ksat", help="uniform random or planted-satisfiable k-SAT (DIMACS)",
                       description="Uniform random k-SAT (k distinct variables per clause), or with --planted only "
                       "clauses satisfied by a hidden random assignment.")
    k.add_argument("--n", type=pos_int, required=True, help="number of variables")
    k.add_argument("--m", type=nonneg_int, required=True, help="number of clauses (>= 0)")
    k.add_argument("--k", type=pos_int, default=3, help="clause width (default 3)")
    k.add_argument("--seed", type=nonneg_int, required=True, help="non-negative integer seed")
    k.add_argument("--planted", action="store_true", help="planted-satisfiable formula")
    k.add_argument("-o", "--output", required=True, help="output file (.cnf)")
    k.add_argument("--json", action="store_true", help="print a JSON summary")
    k.add_argument("--max-memory", type=memory_size, default=None, help=_MEMORY_HELP)


def gap_ann_memory_bytes(n: int, n_b: int, d: int) -> int:
    """Rough peak memory of :func:`instances.gap_ann_builders.planted`: the 0/1 matrices with their shuffled
    copies and float32 copies, per-row int64 bookkeeping and the verification scan's score tiles."""
    return int((n + n_b) * d * (2 + 4) + n_b * d * 4 + (n + n_b) * 8 * 8) + 2**27


def ksat_memory_bytes(n: int, m: int, k: int) -> int:
    """Rough peak memory of a random or planted k-SAT formula: clauses as Python lists of ints and their text."""
    return int(m * (k * 40 + 120) + n * 16)


def _gap_ann(args: argparse.Namespace) -> dict:
    n_b = args.n if args.n_b is None else args.n_b
    check_memory(gap_ann_memory_bytes(args.n, n_b, args.d), getattr(args, "max_memory", None),
                 f"generate gap-ann with n = {args.n}, n_b = {n_b}, d = {args.d}")
    t0 = time.perf_counter()
    built = planted(args.n, args.d, args.t, args.eps, args.planted, args.seed, n_b=args.n_b)
    seconds = time.perf_counter() - t0
    save_gap_ann(args.output, built.instance, built.meta)
    inst = built.instance
    return {"kind": "gap-ann", "file": args.output, "n": inst.n_a, "n_b": inst.n_b, "d": inst.dim, "t": inst.t,
            "eps": inst.eps, "planted": int(built.planted_rows.size), "planted_distance": built.planted_distance,
            "seed": args.seed, "redraw_rounds": built.rounds, "redrawn_rows": built.redrawn, "seconds": seconds}


def _ksat(args: argparse.Namespace) -> dict:
    check_memory(ksat_memory_bytes(args.n, args.m, args.k), getattr(args, "max_memory", None),
                 f"generate ksat with n = {args.n}, m = {args.m}, k = {args.k}")
    if args.planted:
        formula, hidden = planted_ksat(args.n, args.m, args.k, seed=args.seed)
    else:
        formula, hidden = random_ksat(args.n, args.m, args.k, seed=args.seed), None
    try:
        formula.write(args.output)
    except OSError as exc:
        raise FinegrainedError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    return {"kind": "ksat", "file": args.output, "num_vars": args.n, "num_clauses": args.m, "k": args.k,
            "seed": args.seed, "planted": bool(args.planted), "hidden_assignment": hidden}


def run(args: argparse.Namespace) -> int:
    if args.kind == "gap-ann":
        summary = _gap_ann(args)
        line = (f"wrote {summary['file']}: Gap-ANN n = {summary['n']}, n_b = {summary['n_b']}, d = {summary['d']}, "
                f"t = {summary['t']:g}, eps = {summary['eps']:g}, {summary['planted']} planted rows at distance "
                f"{summary['planted_distance']}, seed {summary['seed']} ({summary['redraw_rounds']} redraw rounds, "
                f"{summary['seconds']:.2f} s)")
    elif args.kind == "ksat":
        summary = _ksat(args)
        line = (f"wrote {summary['file']}: {'planted' if summary['planted'] else 'random'} {summary['k']}-SAT, "
                f"{summary['num_vars']} variables, {summary['num_clauses']} clauses, seed {summary['seed']}")
    else:  # argparse restricts KIND; a programmatic caller may not
        raise ParameterError(f"unknown instance kind {args.kind!r}; expected gap-ann or ksat")
    print(json.dumps(summary, indent=2) if args.json else line)
    return 0
