"""``finegrained bench kernels``."""

from __future__ import annotations

import argparse

from ..argtypes import add_max_memory, add_repeat, add_seed, choice_of, list_of, pos_float, pos_int

DESCRIPTION = ("Every attention kernel on hard instances of both routes to attention. For each number of "
               "variables N, a seeded random 3-SAT formula at the given clause ratio goes through the aattc route "
               "(k-SAT -> OV -> Gap-ANN -> AAttC, threshold far below every float format) and the attention route "
               "(k-SAT -> OV -> Attention, decided by u >= 1/2, which float32 can do). Each kernel - the built-in "
               "oracles, torch's scaled_dot_product_attention at each dtype and torch_exact when torch is "
               "installed, and any --oracle package.module:function plug-ins - is called on the same Q, K, V and "
               "reports its decision accuracy per query row against brute force on the OV instance, whether the "
               "answer is certified, uncertified, undecided, refused (and why: underflow, too coarse, resource "
               "limit) or rejected (a YES row disproved), and its time (best of --repeat) relative to a bare "
               "float64 Q @ K.T of the same shape measured in the same run. The reference oracle runs only at "
               "the smallest N.")


def _str(text: str) -> str:
    return text


_str.__name__ = "str"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...bench.kernels import BUILTIN, SDPA_DTYPES
    from ...chain import ROUTES

    parser.add_argument("--vars-min", type=pos_int, default=8, metavar="N", help="smallest number of variables N")
    parser.add_argument("--vars-max", type=pos_int, default=16, metavar="N",
                        help="largest number of variables N (the documented run goes to 20)")
    parser.add_argument("--step", type=pos_int, default=4, help="step in N")
    parser.add_argument("--ratio", type=pos_float, default=4.26, help="clauses per variable")
    parser.add_argument("--routes", type=list_of(choice_of(*ROUTES)), default=list(ROUTES), metavar="R[,R...]",
                        help=f"comma-separated routes among {', '.join(ROUTES)} (default: both)")
    names = BUILTIN + ("torch_exact", "sdpa")
    parser.add_argument("--kernels", type=list_of(choice_of(*names)), default=None, metavar="K[,K...]",
                        help=f"comma-separated built-in kernels among {', '.join(names)} (default: all; the torch "
                             "ones when torch is installed)")
    parser.add_argument("--dtypes", type=list_of(choice_of(*SDPA_DTYPES)), default=list(SDPA_DTYPES),
                        metavar="DT[,DT...]", help="comma-separated dtypes of scaled_dot_product_attention "
                                                   f"(default: {','.join(SDPA_DTYPES)})")
    parser.add_argument("--oracle", type=list_of(_str), action="append", default=[], metavar="MOD:FN[,MOD:FN...]",
                        help="comma-separated plug-in oracles (package.module:function or an entry-point name), "
                             "measured with the built-ins; may be repeated (default: none)")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot accuracy and time relative to Q @ K.T against N for each route "
                             "(.png, .pdf or .svg; matplotlib)")
    add_repeat(parser, 3)
    add_seed(parser)
    add_max_memory(parser, "refuse N whose chain needs more memory than this, e.g. 8G (default: half of RAM)")


def run(args: argparse.Namespace, progress):
    from ...bench.kernels import run as bench
    from ..bench import Extended
    from ..plots import check_figure_path

    if args.plot:
        check_figure_path(args.plot)
    plugins = tuple(spec for group in args.oracle for spec in group)
    result = bench(vars_min=args.vars_min, vars_max=args.vars_max, step=args.step, ratio=args.ratio,
                   routes=tuple(args.routes), kernels=None if args.kernels is None else tuple(args.kernels),
                   dtypes=tuple(args.dtypes), plugins=plugins, repeat=args.repeat, seed=args.seed,
                   max_memory=args.max_memory, progress=progress)
    if args.plot:
        plot_kernels(result, args.plot)
        return Extended(result, {"plot": args.plot})
    return result


def plot_kernels(result, path: str) -> None:
    """Per route (one column each): accuracy against N (top) and seconds / (Q @ K.T seconds) against N (bottom).

    Refused kernels have no point on the time panel and are listed in the legend as refused."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    routes = result.routes
    colors = plt.get_cmap("tab20")
    fig, axes = plt.subplots(2, len(routes), figsize=(5.5 * len(routes), 7.0), dpi=100, squeeze=False)
    for col, route in enumerate(routes):
        ax, bx = axes[0][col], axes[1][col]
        for i, kern in enumerate(result.kernels):
            rs = [r for r in result.rows if r["route"] == route and r["kernel"] == kern]
            if not rs:
                continue
            marker = "osv^<>Dpx*h+"[i % 12]
            style = {"color": colors(i % 20), "ms": 4, "lw": 1}  # one colour per kernel on both panels
            acc = [(r["N"], r["accuracy"]) for r in rs if r["accuracy"] is not None]
            tim = [(r["N"], r["ratio"]) for r in rs if r["ratio"] is not None]
            refused = sorted({r["reason_kind"] for r in rs if r["status"] in ("refused", "rejected")})
            label = kern + (f" ({', '.join(refused)})" if refused else "")
            if acc:
                ax.plot(*zip(*acc), marker + "-", label=label, **style)
            else:
                ax.plot([], [], marker, label=label, **style)
            if tim:
                bx.semilogy(*zip(*tim), marker + "-", label=kern, **style)
        ax.set_title(f"route {route}", fontsize=10)
        ax.set_ylabel("row decision accuracy")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
        bx.set_xlabel("N (variables)")
        bx.set_ylabel(f"seconds / bare float64 Q @ K.T (best of {result.repeat})")
        bx.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"bench kernels: random 3-SAT at ratio {result.ratio:g}, seeds {result.seed} + N", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=150)


def _num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def format_text(result) -> str:
    """One row per (route, N, kernel), then the summary per (route, kernel).

    Examples
    --------
    >>> from finegrained.bench.kernels import KernelsResult
    >>> row = {"route": "attention", "N": 8, "m": 34, "n_q": 16, "n_k": 17, "d": 35, "kernel": "exact",
    ...        "status": "certified", "reason_kind": "", "reason": "", "rows": 16, "correct": 16, "accuracy": 1.0,
    ...        "seconds": 0.002, "gemm_s": 1e-5, "ratio": 200.0, "satisfiable": True, "log_threshold": -0.69}
    >>> res = KernelsResult(repeat=1, ratio=4.26, seed=0, routes=["attention"], kernels=["exact"], rows=[row])
    >>> print(format_text(res).splitlines()[2])
    attention  8   16   17   35 exact              certified                    100.0%    0.002     1e-05      200
    """
    lines = [f"bench kernels: random 3-SAT at ratio {result.ratio:g} (best of {result.repeat})"
             + (f", torch {result.torch}" if result.torch else ", no torch"),
             f"{'route':<9} {'N':>2} {'n_q':>4} {'n_k':>4} {'d':>4} {'kernel':<18} {'status':<11} {'why':<14} "
             f"{'accuracy':>8} {'seconds':>8} {'Q@K.T s':>9} {'ratio':>8}"]
    for r in result.rows:
        acc = "-" if r["accuracy"] is None else f"{100 * r['accuracy']:.1f}%"
        lines.append(f"{r['route']:<9} {r['N']:>2} {r['n_q']:>4} {r['n_k']:>4} {r['d']:>4} {r['kernel']:<18} "
                     f"{r['status']:<11} {r['reason_kind']:<14} {acc:>8} {_num(r['seconds'], '.3g'):>8} "
                     f"{r['gemm_s']:>9.2g} {_num(r['ratio'], '.3g'):>8}")
    lines.append("summary (accuracy over every scored row; median ratio over N):")
    for s in result.summary():
        acc = "-" if s["accuracy"] is None else f"{100 * s['accuracy']:.1f}%"
        lines.append(f"  {s['route']:<9} {s['kernel']:<18} {acc:>7} of {s['rows']:>5} rows  "
                     f"{'/'.join(s['statuses']):<24} median ratio {_num(s['median_ratio'], '.3g')}")
    lines.extend(f"skipped: {s}" for s in result.skipped)
    if "plot" in getattr(result, "extra", {}):
        lines.append(f"plot: {result.extra['plot']}")
    seen = set()
    for r in result.rows:  # one line per kernel and kind of refusal, so the table stays readable
        key = (r["route"], r["kernel"], r["reason_kind"])
        if r["status"] in ("refused", "rejected") and key not in seen:
            seen.add(key)
            lines.append(f"{r['status']}: {r['route']} {r['kernel']} at N = {r['N']}: {r['reason']}")
    return "\n".join(lines)
