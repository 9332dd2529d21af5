"""The ``finegrained`` command line.

Every error raised on purpose (:class:`~instances.errors.FinegrainedError`) becomes one line on stderr and exit
status 2; there are no tracebacks for bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from instances.cnf import CNFFormula
from instances.errors import FinegrainedError
from instances.examples import DEFAULT_EXAMPLE, example_path, list_examples
from reductions import CertificateError

from . import bench as bench_pkg
from .argtypes import memory_size
from .attention import ORACLES
from .chain import ChainResult, run_chain
from .resources import chain_memory_bytes


def _add_chain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chain",
        help="decide a CNF formula through k-SAT -> OV -> Gap-ANN -> AAttC -> attention oracle",
        description="Run the Alman-Song SETH chain end to end on a DIMACS CNF formula (default: a shipped "
        f"20-variable random 3-SAT example, {DEFAULT_EXAMPLE!r}).",
    )
    p.add_argument("file", nargs="?", help="DIMACS CNF file (default: the shipped example)")
    p.add_argument("--example", choices=list_examples(), help="run a shipped example instead of a file")
    p.add_argument("--oracle", default="exact", help=f"attention oracle, one of: {', '.join(sorted(ORACLES))}")
    p.add_argument("--params", default="tight", choices=("tight", "paper"), help="Lemma 4.7 constants")
    p.add_argument("--safety", type=float, default=None, help="factor on beta_min in tight mode (default 1.25)")
    p.add_argument("--max-memory", type=memory_size, default=None,
                   help="refuse instances needing more memory than this (e.g. 8G; default: half of RAM)")
    p.add_argument("--no-cdcl", action="store_true", help="skip the cross-check with pysat's CDCL solver")
    p.add_argument("--ann", metavar="FILE.npz", default=None,
                   help="run Gap-ANN -> AAttC -> oracle on a Gap-ANN instance instead (see docs/gap_ann.md)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (schema in docs/cli.md)")


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark", description="Run a benchmark; see docs/benchmarks.md.")
    bsub = p.add_subparsers(dest="bench", metavar="NAME", required=True)
    for name in bench_pkg.BENCHES:
        mod = bench_pkg.load(name)
        bp = bsub.add_parser(name, help=(mod.__doc__ or name).strip().splitlines()[0],
                             description=(mod.__doc__ or "").strip())
        mod.add_arguments(bp)
        bp.add_argument("--json", action="store_true", help="print the results as JSON")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2), like every other error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


#: Further subcommands: name -> module with ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``
#: (exit status). Errors derived from FinegrainedError raised by ``run`` become one line on stderr.
COMMANDS: dict[str, str] = {
    "graph": "finegrained.commands.graph",
    "explain": "finegrained.commands.explain",
    "validate": "finegrained.commands.validate",
    "generate": "finegrained.commands.generate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="finegrained",
        description="Executable fine-grained hardness reductions (Alman & Song, Fast Attention Requires "
        "Bounded Entries).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_chain(sub)
    _add_bench(sub)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        cp = sub.add_parser(name, help=mod.HELP, description=(mod.__doc__ or mod.HELP).strip())
        mod.add_arguments(cp)
    return parser


def _fmt_log(x: float) -> str:
    return f"{x:.6g}"


def format_chain(result: ChainResult, source: str) -> str:
    """The human-readable report of ``finegrained chain``."""
    s = {st["problem"]: st for st in result.stages}
    p = result.parameters
    sat, ov, gap, att = s["k-SAT"], s["OV"], s["Gap-ANN"], s["AAttC"]
    lines = [
        f"finegrained chain: {source}   (params: {result.params}, oracle: {result.oracle})",
        "",
        f"  k-SAT    N = {sat['num_vars']} variables, m = {sat['num_clauses']} clauses, k = {sat['k']}",
        f"  OV       split and list (Williams): n_a = {ov['n_a']}, n_b = {ov['n_b']}, d = {ov['d']}",
        f"  Gap-ANN  gadget 1+2xy, Remark 4.4: n = {gap['n_a']}, d = {gap['d']}, t = {gap['t']:g}, "
        f"eps = {gap['eps']:.6g}",
        f"  AAttC    Lemma 4.7: n_q = {att['n_q']}, n_k = {att['n_k']}, d = {att['d']}, d_v = {att['d_v']}",
        f"           beta = {p['beta']:.6g} (beta_min = {p['beta_min']:.6g}, x{p['safety']:.3g}), "
        f"B = sqrt(beta) = {p['B']:.6g}",
        f"           log tau = {_fmt_log(p['log_tau'])}, log t~ = {_fmt_log(p['log_t_tilde'])}, "
        f"log eps_a = {_fmt_log(p['log_eps_a'])}, log 2t~ = {_fmt_log(p['log_threshold'])}",
        "",
        f"  oracle   {result.oracle}: {result.timings['oracle']:.3f} s",
    ]
    d = result.decision
    margins = []
    if d["min_yes_margin"] is not None:
        margins.append(f"closest YES margin {d['min_yes_margin']:+.4g} nats")
    if d["max_no_margin"] is not None:
        margins.append(f"closest NO margin {d['max_no_margin']:+.4g} nats")
    lines.append(f"  decode   {d['yes_rows']} of {d['rows']} rows have u_i >= 2t~"
                 + (f" ({', '.join(margins)})" if margins else ""))
    lines.append("")
    if result.satisfiable:
        lines.append("  answer   SATISFIABLE")
        lines.append("  assignment  " + " ".join(map(str, result.assignment or [])))
        check = "satisfies every clause" if result.verified else "DOES NOT satisfy the formula"
        lines.append(f"  verified    the assignment {check}")
    else:
        lines.append("  answer   UNSATISFIABLE")
    if result.cdcl_satisfiable is not None:
        agree = result.cdcl_satisfiable == result.satisfiable
        verdict = "SAT" if result.cdcl_satisfiable else "UNSAT"
        lines.append(f"  pysat CDCL: {verdict} ({'agrees' if agree else 'DISAGREES'})")
    t = result.timings
    lines.append("  time     " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
    return "\n".join(lines)


def _run_chain(args: argparse.Namespace) -> int:
    if getattr(args, "ann", None):
        from .ann_chain import run_cli as run_ann_cli

        return run_ann_cli(args)
    if args.file and args.example:
        raise FinegrainedError("give either a FILE or --example, not both")
    path = args.file or str(example_path(args.example or DEFAULT_EXAMPLE))
    cnf = CNFFormula.read(path)
    try:
        result = run_chain(cnf, oracle=args.oracle, params=args.params, safety=args.safety,
                           max_memory=args.max_memory, cdcl=not args.no_cdcl)
    except CertificateError as exc:
        # The oracle marked rows YES that have no partner: a wrong answer, not bad input.
        print(f"finegrained: wrong answer from the oracle: {exc}", file=sys.stderr)
        return 1
    if args.json:
        out = result.to_dict()
        out["input"] = {"file": path, "num_vars": cnf.num_vars, "num_clauses": cnf.num_clauses,
                        "estimated_memory_bytes": chain_memory_bytes(cnf.num_vars, cnf.num_clauses)}
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(format_chain(result, path))
    # A wrong answer is never a success: an unverified assignment, or an answer pysat contradicts.
    if (result.satisfiable and not result.verified) or (
        result.cdcl_satisfiable is not None and result.cdcl_satisfiable != result.satisfiable
    ):
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already reported on one line
        return int(exc.code or 0)
    try:
        if args.command == "chain":
            return _run_chain(args)
        if args.command == "bench":
            result = bench_pkg.load(args.bench).run(args)
            if args.json:
                print(json.dumps(result, indent=2))
            return 0
        if args.command in COMMANDS:
            return int(importlib.import_module(COMMANDS[args.command]).run(args))
    except FinegrainedError as exc:
        print(f"finegrained: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("finegrained: interrupted", file=sys.stderr)
        return 130
    except MemoryError as exc:
        print(f"finegrained: error: out of memory ({exc or 'an allocation failed'}); try a smaller instance",
              file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
