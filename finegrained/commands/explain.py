"""Walk through the chain on a tiny formula, printing every object the proof talks about (see finegrained.explain)."""

from __future__ import annotations

import argparse

from instances.cnf import CNFFormula
from instances.examples import example_path
from instances.generators import random_ksat

from ..argtypes import nonneg_int, pos_int
from ..explain import DEFAULT_MAX_VARS, explain
from ..resources import write_text

HELP = "step-by-step walkthrough of the chain on a tiny formula"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="DIMACS CNF file (default: the shipped 4-variable example 'tiny4')")
    parser.add_argument("--random", type=nonneg_int, metavar="N",
                        help="explain a random 3-SAT formula with N variables")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="seed for --random")
    parser.add_argument("--params", choices=("tight", "paper"), default="tight")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    parser.add_argument("--max-vars", type=pos_int, default=DEFAULT_MAX_VARS, help="refuse larger formulas (default 6)")


def run(args: argparse.Namespace) -> int:
    if args.random is not None:
        n = args.random
        cnf = random_ksat(n, max(1, round(4.26 * n)), min(3, max(n, 1)), seed=args.seed) if n > 0 else CNFFormula([])
    else:
        cnf = CNFFormula.read(args.file or example_path("tiny4"))
    w = explain(cnf, params=args.params, max_vars=args.max_vars)
    text = w.to_markdown() if args.format == "markdown" else w.to_text()
    if args.output:
        write_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0
