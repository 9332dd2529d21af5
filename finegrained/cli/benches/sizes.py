"""``finegrained bench sizes``."""

from __future__ import annotations

import argparse

from ..argtypes import add_max_memory, add_repeat, add_seed, pos_float, pos_int
from .chain import describe_route

DESCRIPTION = ("Calibration of the declared size maps. For each number of variables N, a seeded random 3-SAT "
               "formula at the given clause ratio goes through k-SAT -> OV -> Gap-ANN -> AAttC (--route attention: "
               "k-SAT -> OV -> Attention); every stage's "
               "measured sizes are compared with the composed map the reductions declare, evaluated at that N and "
               "m, and the attention oracle is timed on the chain's instance (best of --repeat). Reports the "
               "largest relative mismatch of measured against declared sizes (integer sizes must match exactly, "
               "real ones to 1e-9; exit status 1 otherwise) and the fitted exponent of oracle time against "
               "n_q n_k d, the work of the score matrix.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...bench.sizes import K

    parser.add_argument("--vars-min", type=pos_int, default=4, metavar="N",
                        help=f"smallest number of variables N, at least {K}")
    parser.add_argument("--vars-max", type=pos_int, default=16, metavar="N",
                        help="largest number of variables N (the documented run goes to 24)")
    parser.add_argument("--step", type=pos_int, default=1, help="step in N")
    parser.add_argument("--ratio", type=pos_float, default=4.26, help="clauses per variable")
    parser.add_argument("--route", choices=("aattc", "attention"), default="aattc",
                        help="aattc: k-SAT -> OV -> Gap-ANN -> AAttC (Lemma 4.7); attention: Gupta et al.'s "
                        "k-SAT -> OV -> Attention (Thm 1.5 gadget, no Lemma 4.7 constants)")
    parser.add_argument("--params", default=None, choices=("tight", "paper"),
                        help="Lemma 4.7 constants, --route aattc only (default: tight)")
    parser.add_argument("--oracle", default="exact", help="attention oracle")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot oracle time against n_q n_k d and the declared against measured n_q "
                             "(.png, .pdf or .svg; matplotlib)")
    add_repeat(parser, 3)
    add_seed(parser)
    add_max_memory(parser, "refuse N whose chain needs more memory than this, e.g. 8G (default: half of RAM)")


def run(args: argparse.Namespace, progress):
    from ...bench.sizes import run as bench
    from ..bench import Extended
    from ..plots import check_figure_path
    from .chain import route_params

    params = route_params(args)
    if args.plot:
        check_figure_path(args.plot)
    result = bench(vars_min=args.vars_min, vars_max=args.vars_max, step=args.step, ratio=args.ratio,
                   params=params, oracle=args.oracle, repeat=args.repeat, seed=args.seed,
                   max_memory=args.max_memory, progress=progress, route=args.route)
    if args.plot:
        plot_sizes(result, args.plot)
        return Extended(result, {"plot": args.plot})
    return result


def plot_sizes(result, path: str) -> None:
    """Two panels: oracle seconds against ``n_q n_k d`` (log-log, with the fitted exponent and a slope-1 guide),
    and each stage's declared ``n`` against N with the measured values on top."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    rows = result.rows
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.0, 4.0), dpi=100)
    work = [r["work"] for r in rows]
    secs = [r["oracle_s"] for r in rows]
    label = f"{result.oracle} oracle"
    if result.exponent_upper_half is not None:
        label += f" (fit, upper half: {result.exponent_upper_half:.2f})"
    ax.loglog(work, secs, "o-", ms=3, label=label)
    if result.exponent_plain_upper_half is not None:
        ax.loglog(work, [r["plain_s"] for r in rows], "s-", ms=3,
                  label=f"exact, dedupe=False (fit, upper half: {result.exponent_plain_upper_half:.2f})")
    if rows:
        top_w, top_t = work[-1], rows[-1].get("plain_s", secs[-1])
        ax.loglog([work[0], top_w], [top_t * work[0] / top_w, top_t], "k--", lw=0.8, label="slope 1")
    ax.set_xlabel(r"$n_q \cdot n_k \cdot \tilde d$ (declared)")
    ax.set_ylabel(f"oracle seconds (best of {result.repeat})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ns = [r["N"] for r in rows]
    route = getattr(result, "route", "aattc")
    keys = (("OV.n_a", "Gap-ANN.d", "AAttC.n_q", "AAttC.d") if route == "aattc"
            else ("OV.n_a", "OV.d", "Attention.n_q", "Attention.d"))
    for key, marker in zip(keys, "os^v"):
        declared = [r["sizes"][key][0] for r in rows]
        measured = [r["sizes"][key][1] for r in rows]
        line, = bx.semilogy(ns, declared, "-", lw=1, label=f"{key} declared")
        bx.semilogy(ns, measured, marker, ms=4, mfc="none", color=line.get_color(), label=f"{key} measured")
    bx.set_xlabel("N (variables)")
    bx.set_ylabel("size")
    bx.set_title(f"max relative mismatch: integer {result.max_mismatch_integer:g}, "
                 f"real {result.max_mismatch_real:.1e}", fontsize=9)
    bx.grid(True, which="both", alpha=0.3)
    bx.legend(fontsize=7, ncol=2)
    target = "AAttC" if route == "aattc" else "Attention"
    fig.suptitle(f"bench sizes: k-SAT -> {target}, {describe_route(result)}, ratio {result.ratio:g}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=150)


def format_text(result) -> str:
    """One row per N: the attention sizes, the work n_q n_k d, the oracle seconds and the size mismatches."""
    plain = bool(result.rows) and all("plain_s" in r for r in result.rows)
    lines = [f"bench sizes: declared size maps against the chain's instances, oracle {result.oracle!r} "
             f"(best of {result.repeat}), {describe_route(result)}, ratio {result.ratio:g}",
             f"{'N':>3} {'m':>4} {'n_q':>6} {'n_k':>6} {'d':>5} {'n_q n_k d':>12} {'oracle s':>10} "
             + (f"{'no-dedupe s':>11} " if plain else "") + f"{'int mismatch':>12} {'real mismatch':>13}"]
    for r in result.rows:
        lines.append(f"{r['N']:>3} {r['m']:>4} {r['n_q']:>6} {r['n_k']:>6} {r['d']:>5} {r['work']:>12.4g} "
                     f"{r['oracle_s']:>10.4g} " + (f"{r['plain_s']:>11.4g} " if plain else "")
                     + f"{r['max_mismatch_integer']:>12g} {r['max_mismatch_real']:>13.2g}")

    def fits(full, upper) -> str:
        return " and ".join(f"{x:.3f} ({what})" for x, what in ((full, "all N"), (upper, "largest half of N"))
                            if x is not None) or "-"

    lines.append("fitted exponent of oracle time against n_q n_k d: "
                 f"{fits(result.exponent, result.exponent_upper_half)}")
    if plain:
        lines.append("  the same for the exact oracle with dedupe=False (every score computed): "
                     f"{fits(result.exponent_plain, result.exponent_plain_upper_half)}")
    lines.append(f"max relative mismatch of measured against declared sizes: integer {result.max_mismatch_integer:g}, "
                 f"real {result.max_mismatch_real:.2g} ({'consistent' if result.consistent else 'MISMATCH'})")
    if "plot" in getattr(result, "extra", {}):
        lines.append(f"plot: {result.extra['plot']}")
    return "\n".join(lines)


def exit_status(result) -> int:
    """1 when a measured size disagrees with its declared value (a counterexample to the declared map).

    Examples
    --------
    >>> from finegrained.bench.sizes import SizesBenchResult
    >>> row = {"max_mismatch_integer": 0.0, "max_mismatch_real": 1e-12}
    >>> exit_status(SizesBenchResult("exact", "tight", 4.26, 1, rows=[row]))
    0
    >>> exit_status(SizesBenchResult("exact", "tight", 4.26, 1, rows=[{**row, "max_mismatch_integer": 0.25}]))
    1
    """
    return 0 if result.consistent else 1
