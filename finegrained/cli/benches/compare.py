"""``finegrained bench compare``."""

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
    list_of,
    nonneg_int,
    pos_int,
)

DESCRIPTION = ("Every attention algorithm on the same inputs: time against n, error against exact attention, and "
               "fitted exponents. Inputs are uniform in [-B, B] with scale 1/d, so small B is the easy side of the "
               "bounded-entry threshold. The error is the largest |out - exact| over a sample of query rows (all "
               "rows when n <= 2^12). Algorithms that refuse an input (for example poly when its rank would not "
               "fit) are reported as refused, with the reason. One case per combination of --dims, --B and --eps.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...bench.compare import DEFAULT_ALGORITHMS

    add_sizes(parser, 10, 15)
    add_dims(parser, "2")
    add_B(parser, "1", "entry bounds: entries uniform in [-B, B]")
    add_eps(parser, "1e-6", "accuracies asked of poly and anytemp, each in (0, 1)")
    parser.add_argument("--algorithms", default=",".join(DEFAULT_ALGORITHMS), help="comma-separated oracle names")
    add_repeat(parser, 3)
    add_seed(parser)
    parser.add_argument("--plot", metavar="FILE.png", help="save time against n (.png, .pdf or .svg; one case only)")
    add_max_memory(parser)
    add_alias(parser, "--d", "--dims", list_of(pos_int))
    add_alias(parser, "--min-log2-n", "--log2-n-min", nonneg_int)
    add_alias(parser, "--max-log2-n", "--log2-n-max", nonneg_int)


class CompareCases:
    """Several :class:`~finegrained.bench.compare.CompareResult` (one per ``(d, B, eps)``)."""

    def __init__(self, cases: list) -> None:
        self.cases = cases

    def to_dict(self) -> dict:
        if len(self.cases) == 1:  # one case: the result itself, as it always was
            return self.cases[0].to_dict()
        return {"benchmark": "compare", "cases": [c.to_dict() for c in self.cases]}


def run(args: argparse.Namespace, progress):
    from instances.errors import ParameterError

    from ...bench.compare import run as bench
    from ..plots import check_figure_path, plot_times

    combos = [(d, b, e) for d in args.dims for b in args.B for e in args.eps]
    if args.plot:
        if len(combos) > 1:
            raise ParameterError("--plot draws one case: give one value each of --dims, --B and --eps")
        check_figure_path(args.plot)
    names = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    cases = []
    for i, (d, b, e) in enumerate(combos):
        def step(done: int, total: int, i: int = i) -> None:
            if progress is not None:
                progress(i * total + done, len(combos) * total)

        cases.append(bench(d=d, B=b, eps=e, log2_n_min=args.log2_n_min, log2_n_max=args.log2_n_max,
                           algorithms=names, repeat=args.repeat, seed=args.seed, max_memory=args.max_memory,
                           progress=step))
    if args.plot:
        plot_times(cases[0].to_dict(), args.plot)
    return CompareCases(cases)


def _format_case(r) -> list[str]:
    names = r.algorithms
    lines = [f"bench compare: d = {r.d}, B = {r.B:g}, eps = {r.eps:g}, best of {r.repeat}",
             f"{'n':>8} " + " ".join(f"{nm:>16}" for nm in names) + "   (seconds / max error)"]
    for row in r.rows:
        cells = []
        for nm in names:
            t, e = row["times"][nm], row["errors"][nm]
            cells.append(f"{'refused':>16}" if t is None else f"{t:>8.3g}/{e:<7.1e}")
        mark = "  (exact: sampled rows, extrapolated)" if row["exact_extrapolated"] else ""
        lines.append(f"{row['n']:>8} " + " ".join(cells) + mark)
    lines.append("fitted exponents of time in n (n >= 2^12): "
                 + ", ".join(f"{nm} {e:.2f}" for nm, e in r.exponents.items() if e is not None))
    for nm in names:
        for why in sorted({row["refused"][nm] for row in r.rows if nm in row["refused"]}):
            lines.append(f"  {nm} refused: {why}")
    return lines


def format_text(result: CompareCases) -> str:
    return "\n\n".join("\n".join(_format_case(c)) for c in result.cases)
