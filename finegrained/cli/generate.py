"""``finegrained generate``: seeded instances, planted balanced Gap-ANN to ``.npz``, random or planted k-SAT to DIMACS.

The same arguments and seed give byte-identical files. Files are written atomically.
"""

from __future__ import annotations

import argparse

from .argtypes import add_max_memory, nonneg_int, pos_float, pos_int
from .formatting import STDOUT, emit, json_report, write_atomic, write_atomic_path

HELP = "write a seeded instance (planted Gap-ANN .npz, random/planted k-SAT DIMACS)"
DESCRIPTION = ("Write a seeded instance: a planted balanced Gap-ANN instance (.npz) or a random or planted k-SAT "
               "formula (DIMACS). The same arguments and seed give byte-identical files.")
_MEMORY_HELP = "refuse instances needing more memory than this, e.g. 8G (default: half of RAM)"
_WRITE_ERROR = "{path}: cannot write: {reason}"


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
    g.add_argument("-o", "--output", required=True, metavar="FILE.npz", help="output file, written exactly")
    g.add_argument("--json", action="store_true", help="print a JSON summary")
    add_max_memory(g, _MEMORY_HELP)
    k = sub.add_parser("ksat", help="uniform random or planted-satisfiable k-SAT (DIMACS)",
                       description="Uniform random k-SAT (k distinct variables per clause), or with --planted only "
                       "clauses satisfied by a hidden random assignment.")
    k.add_argument("--n", type=pos_int, required=True, help="number of variables")
    k.add_argument("--m", type=nonneg_int, required=True, help="number of clauses (>= 0)")
    k.add_argument("--k", type=pos_int, default=3, help="clause width")
    k.add_argument("--seed", type=nonneg_int, required=True, help="non-negative integer seed")
    k.add_argument("--planted", action="store_true", help="planted-satisfiable formula")
    k.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file, written exactly ('-': standard output)")
    k.add_argument("--json", action="store_true", help="print a JSON summary")
    add_max_memory(k, _MEMORY_HELP)


def _limit(args: argparse.Namespace) -> int:
    from ..resources import default_memory_limit

    return default_memory_limit() if args.max_memory is None else args.max_memory


def _gap_ann(args: argparse.Namespace) -> dict:
    import time

    from instances.errors import ParameterError
    from instances.gap_ann_builders import planted, planted_memory_bytes, save_gap_ann

    from ..resources import check_memory

    if args.output == STDOUT:
        raise ParameterError("generate gap-ann writes a binary .npz file: give it a file name with -o")
    n_b = args.n if args.n_b is None else args.n_b
    check_memory(planted_memory_bytes(args.n, args.d, n_b), args.max_memory,
                 f"generate gap-ann with n = {args.n}, n_b = {n_b}, d = {args.d}")
    t0 = time.perf_counter()
    built = planted(args.n, args.d, args.t, args.eps, args.planted, args.seed, n_b=args.n_b,
                    max_memory=_limit(args))
    seconds = time.perf_counter() - t0
    write_atomic_path(args.output, lambda tmp: save_gap_ann(tmp, built.instance, built.meta), _WRITE_ERROR)
    inst = built.instance
    return {"kind": "gap-ann", "file": args.output, "n": inst.n_a, "n_b": inst.n_b, "d": inst.dim, "t": inst.t,
            "eps": inst.eps, "planted": int(built.planted_rows.size), "planted_distance": built.planted_distance,
            "seed": args.seed, "redraw_rounds": built.rounds, "redrawn_rows": built.redrawn, "seconds": seconds}


def _ksat(args: argparse.Namespace) -> tuple[dict, str]:
    from instances.generators import estimate_memory, planted_ksat, random_ksat

    from ..resources import check_memory

    check_memory(estimate_memory(args.n, args.m, args.k, planted=args.planted), args.max_memory,
                 f"generate ksat with n = {args.n}, m = {args.m}, k = {args.k}")
    if args.planted:
        formula, hidden = planted_ksat(args.n, args.m, args.k, seed=args.seed, max_memory=_limit(args))
    else:
        formula, hidden = random_ksat(args.n, args.m, args.k, seed=args.seed, max_memory=_limit(args)), None
    text = formula.to_dimacs()
    if args.output != STDOUT:
        write_atomic(args.output, text, _WRITE_ERROR)
    return ({"kind": "ksat", "file": args.output, "num_vars": args.n, "num_clauses": args.m, "k": args.k,
             "seed": args.seed, "planted": bool(args.planted), "hidden_assignment": hidden}, text)


def run(args: argparse.Namespace) -> int:
    from instances.errors import ParameterError

    if args.kind == "ksat" and args.output == STDOUT and args.json:
        raise ParameterError("-o - writes the formula to standard output; --json would mix a summary in")
    if args.kind == "gap-ann":
        summary = _gap_ann(args)
        schema = "finegrained.generate.gap-ann/1"
        line = (f"wrote {summary['file']}: Gap-ANN n = {summary['n']}, n_b = {summary['n_b']}, d = {summary['d']}, "
                f"t = {summary['t']:g}, eps = {summary['eps']:g}, {summary['planted']} planted rows at distance "
                f"{summary['planted_distance']}, seed {summary['seed']} ({summary['redraw_rounds']} redraw rounds, "
                f"{summary['seconds']:.2f} s)")
    elif args.kind == "ksat":
        summary, text = _ksat(args)
        schema = "finegrained.generate.ksat/1"
        if args.output == STDOUT:
            emit(text.rstrip("\n"))
            return 0
        line = (f"wrote {summary['file']}: {'planted' if summary['planted'] else 'random'} {summary['k']}-SAT, "
                f"{summary['num_vars']} variables, {summary['num_clauses']} clauses, seed {summary['seed']}")
    else:  # argparse restricts KIND; a programmatic caller may not
        raise ParameterError(f"unknown instance kind {args.kind!r}; expected gap-ann or ksat")
    # the one-line summary is generate's report (like --json), so it goes to standard output
    emit(json_report(summary, schema=schema) if args.json else line)
    return 0
