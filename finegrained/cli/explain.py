"""``finegrained explain``: walk through the chain on a tiny formula, showing every object the proof talks about."""

from __future__ import annotations

import argparse

from .argtypes import nonneg_int, pos_int
from .formatting import json_report, output_format, write_output

HELP = "step-by-step walkthrough of the chain on a tiny formula"
DESCRIPTION = ("Walk through k-SAT -> OV -> Gap-ANN -> AAttC on a tiny formula: every vector, the Hamming distances, "
               "Q and K with the padding block, the blocks of the attention matrix (symbolically and as logarithms), "
               "u_i against 2t~ row by row, and the decoded assignment.")

_EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".json": "json"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from instances.examples import list_examples

    from ..explain import DEFAULT_MAX_VARS
    from .inputs import add_input_arguments

    add_input_arguments(parser, list_examples(), "tiny4")
    parser.add_argument("--random", type=nonneg_int, metavar="N",
                        help="explain a random 3-SAT formula with N variables")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="seed for --random")
    parser.add_argument("--params", choices=("tight", "paper"), default="tight", help="Lemma 4.7 constants")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default=None,
                        help="output format (default: from the extension of -o, else text)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE ('-': standard output)")
    parser.add_argument("--max-vars", type=pos_int, default=DEFAULT_MAX_VARS, help="refuse larger formulas")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="also write the five stage figures (PNG, 1600 px wide) into DIR (needs "
                        "finegrained[plot])")
    parser.add_argument("--as-printed", action="store_true",
                        help="instead of the walkthrough, replay Lemma 4.7 with the paper's literal statements "
                        "(docs/errata.md) and count the rows each erratum decides wrongly; without FILE it runs "
                        "the chain's default example, and --max-vars does not apply (no vectors are printed); "
                        "with --plot DIR it also writes DIR/as_printed.png")


def walkthrough_dict(w) -> dict:
    """The JSON payload of a walkthrough: its sections and the chain's result."""
    return {"sections": [{"title": s.title, "cite": s.cite, "lines": list(s.lines), "latex": list(s.latex)}
                         for s in w.sections],
            "result": w.result.to_dict()}


def as_printed_text(rows: list[dict], source: str) -> str:
    """The table of ``explain --as-printed``: one line per replayed erratum, the rows it decides wrongly."""
    head = f"Lemma 4.7 as printed: {source}, {rows[0]['rows'] if rows else 0} query rows"
    w_id, w_st = 4, max([len(r["statement"]) for r in rows] + [len("as printed")])
    lines = [head, "", f"  {'id':<{w_id}} {'as printed':<{w_st}} {'wrong rows':>10}  note"]
    lines.append("  " + "-" * (w_id + w_st + 18))
    for r in rows:
        lines.append(f"  {r['id']:<{w_id}} {r['statement']:<{w_st}} {r['wrong_rows']:>10}  {r['note']}")
    broken = [r["id"] for r in rows if r["wrong_rows"]]
    lines += ["", "  errata that break the decision here: " + (", ".join(broken) if broken else "none")
              + "; the corrected construction (finegrained validate) decides every row"]
    return "\n".join(lines)


def _run_as_printed(args: argparse.Namespace, fmt: str) -> int:
    from instances.errors import ParameterError
    from instances.examples import DEFAULT_EXAMPLE

    from ..as_printed import as_printed
    from ..validate import gap_ann_of_cnf
    from .inputs import read_cnf

    if args.random is not None:
        raise ParameterError("--as-printed runs on a FILE or --example, not --random")
    cnf, source = read_cnf(args, DEFAULT_EXAMPLE)
    gap = gap_ann_of_cnf(cnf)  # the chain's memory guard comes before anything is built
    rows = as_printed(gap, params=args.params)
    if args.plot:
        import os

        from .formatting import note
        from .plots import plot_as_printed

        os.makedirs(args.plot, exist_ok=True)
        path = os.path.join(args.plot, "as_printed.png")
        plot_as_printed(gap, path, params=args.params)
        note(f"wrote {path}")
    if fmt == "json":
        text = json_report({"source": source, "params": args.params, "errata": rows},
                           schema="finegrained.explain.as_printed/1")
    elif fmt == "markdown":
        text = "\n".join(["| id | as printed | correction | wrong rows | note |", "| --- | --- | --- | ---: | --- |",
                          *(f"| {r['id']} | {r['statement']} | {r['correction']} | {r['wrong_rows']} of {r['rows']}"
                            f" | {r['note']} |" for r in rows)])
    else:
        text = as_printed_text(rows, source)
    write_output(args.output, text)
    return 0


def run(args: argparse.Namespace) -> int:
    from instances.cnf import CNFFormula
    from instances.errors import ParameterError
    from instances.generators import random_ksat

    from ..explain import check_size, explain
    from .inputs import read_cnf

    if args.json and args.format not in (None, "json"):
        raise ParameterError(f"--json contradicts --format {args.format}")
    fmt = output_format(args.output, "json" if args.json else args.format, _EXTENSIONS, "text")
    if args.as_printed:
        return _run_as_printed(args, fmt)
    if args.random is not None:
        n = args.random
        # the size check comes before the generator allocates anything
        try:
            check_size(n, args.max_vars)
        except ParameterError as exc:
            raise ParameterError(str(exc).replace("raise max_vars", "raise --max-vars")) from None
        cnf = random_ksat(n, max(1, round(4.26 * n)), min(3, max(n, 1)), seed=args.seed) if n > 0 else CNFFormula([])
    else:
        cnf, _ = read_cnf(args, "tiny4")
    try:
        w = explain(cnf, params=args.params, max_vars=args.max_vars)
    except ParameterError as exc:
        raise ParameterError(str(exc).replace("raise max_vars", "raise --max-vars")) from None
    if args.plot:
        from .figures import stage_figures
        from .formatting import note

        for path in stage_figures(w.result, args.plot):
            note(f"wrote {path}")
    if fmt == "json":
        text = json_report(walkthrough_dict(w), schema="finegrained.explain/1")
    else:
        text = w.to_markdown() if fmt == "markdown" else w.to_text()
    write_output(args.output, text.rstrip("\n"))
    return 0
