"""Regenerate every figure the docs embed: ``python -m finegrained.cli.docs_figures [DIR]`` (default ``docs/img``).

* ``stages/*.png`` -- the five stage figures of :func:`finegrained.cli.figures.stage_figures` on ``tiny4``
  (tutorial, docs/chain.md);
* ``graph.png`` -- the reduction graph with the chain k-SAT -> AAttC highlighted (docs/chain.md);
* ``as_printed.png`` -- Lemma 4.7 as printed against corrected on ``tiny4`` (docs/errata.md);
* ``margins_tiny4.png`` and ``beta_sweep_tiny4.png`` -- the validation plots on ``tiny4`` (tutorial).

With ``--full`` it also redraws ``margins.png`` and ``beta_sweep.png`` of docs/validation.md on the shipped
20-variable example (about 30 s). ``tests/docs/test_figures_current.py`` regenerates the fast set into a
temporary directory and compares it with the committed files. matplotlib's PNG metadata carries no date, and
``svg.hashsalt`` is fixed, so a rerun with the same matplotlib writes the same bytes.
"""

from __future__ import annotations

import argparse
import os
import sys

#: The figures of the fast set (tiny4), relative to the output directory.
FAST = ("stages/1_split_and_list.png", "stages/2_ov.png", "stages/3_hamming.png", "stages/4_log_A.png",
        "stages/5_threshold.png", "graph.png", "as_printed.png", "margins_tiny4.png", "beta_sweep_tiny4.png")
FULL = ("margins.png", "beta_sweep.png")


def generate(directory: str, *, full: bool = False) -> list[str]:
    """Write the docs figures into ``directory``; returns the paths written (see the module docstring)."""
    import matplotlib

    from instances import CNFFormula, example_path
    from reductions.registry import reduction_graph

    from ..chain import run_chain
    from ..validate import beta_sweep, gap_ann_of_cnf, validate_gap_ann
    from .figures import stage_figures
    from .graph import highlighted_edges
    from .plots import plot_as_printed, plot_graph, plot_margins, plot_sweep

    matplotlib.rcParams["svg.hashsalt"] = "finegrained"
    written = list(stage_figures(run_chain(CNFFormula.read(example_path("tiny4")), cdcl=False),
                                 os.path.join(directory, "stages")))
    g = reduction_graph()
    plot_graph(g, highlighted_edges(g, ["k-SAT", "AAttC"]), os.path.join(directory, "graph.png"))
    tiny = gap_ann_of_cnf(CNFFormula.read(example_path("tiny4")))
    plot_as_printed(tiny, os.path.join(directory, "as_printed.png"))
    plot_margins(validate_gap_ann(tiny, source="tiny4"), os.path.join(directory, "margins_tiny4.png"))
    plot_sweep(beta_sweep(tiny, points=25, source="tiny4"), os.path.join(directory, "beta_sweep_tiny4.png"))
    written += [os.path.join(directory, name) for name in FAST[5:]]
    if full:
        big = gap_ann_of_cnf(CNFFormula.read(example_path("random3sat-n20")))
        plot_margins(validate_gap_ann(big, source="random3sat-n20.cnf"), os.path.join(directory, "margins.png"))
        plot_sweep(beta_sweep(big, points=25, source="random3sat-n20.cnf"), os.path.join(directory, "beta_sweep.png"))
        written += [os.path.join(directory, name) for name in FULL]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finegrained.cli.docs_figures", description=__doc__.split("\n")[0])
    parser.add_argument("directory", nargs="?", default=os.path.join("docs", "img"))
    parser.add_argument("--full", action="store_true", help="also the 20-variable figures of docs/validation.md")
    args = parser.parse_args(argv)
    for path in generate(args.directory, full=args.full):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
