"""Benchmark of the polynomial method (Alman-Song Algorithm 1) against exact attention and random features.

For every ``d``, ``B``, ``eps`` of the grid and ``n = 2^min ... 2^max`` it draws ``Q, K, V`` with entries
uniform in ``[-B, B]`` and the paper's scale ``1/d`` (so Lemma 3.3 bounds every score by ``B^2``), and reports

* the time of :func:`~finegrained.attention.poly.poly` and of :func:`~finegrained.attention.exact.exact`;
  above ``--exact-cap-log2`` exact runs on ``--sample-rows`` random query rows only, and its full time
  (marked ``~``) is the smaller of the linear extrapolation in the rows and the quadratic extrapolation from
  the largest full run;
* the measured max error of poly against exact (on the sampled rows where sampling is used), the certified
  bound, and the error of positive random features of the same rank;
* per case: the least-squares exponent of poly's time in ``n`` and the crossover ``n*``, the smallest grid
  ``n`` from which poly is faster than exact at every larger grid size.

Cases whose plan needs more than ``--max-memory`` bytes or more than ``--max-poly-flops`` flops are skipped
and reported as such. ``--scaling`` runs only the issue's target case (``d = 4``, ``B = 1``, ``eps = 1e-6``)
up to ``2^--scaling-max-log2-n``; ``--plot FILE.png`` draws the planned ``g`` and ``r`` against ``B``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

from finegrained.argtypes import list_of, nonneg_int, pos_float, pos_int, unit_float
from finegrained.attention.exact import exact
from finegrained.attention.poly import poly, poly_plan
from finegrained.attention.random_features import random_features
from finegrained.plots import pyplot, save_figure
from instances.errors import FinegrainedError, ParameterError

_GIB = 2**30
#: First n = 2^this of the --scaling run.
SCALING_MIN_LOG2_N = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``finegrained bench poly``. List options take space- or comma-separated values."""
    parser.add_argument("--ds", type=list_of(pos_int), nargs="+", default=[2, 4, 8], help="key dimensions d")
    parser.add_argument("--Bs", type=list_of(pos_float), nargs="+", default=[0.5, 1.0, 2.0],
                        help="entry bounds B > 0")
    parser.add_argument("--epss", type=list_of(unit_float), nargs="+", default=[1e-3, 1e-6],
                        help="polynomial accuracies, each in (0, 1)")
    parser.add_argument("--min-log2-n", type=nonneg_int, default=10)
    parser.add_argument("--max-log2-n", type=nonneg_int, default=16, help="largest n = 2^this")
    parser.add_argument("--max-memory", type=pos_float, default=24.0, help="GiB; larger plans are skipped")
    parser.add_argument("--max-poly-flops", type=pos_float, default=5e10, help="skip poly above this many flops")
    parser.add_argument("--exact-cap-log2", type=nonneg_int, default=14, help="exact on all rows up to n = 2^this")
    parser.add_argument("--sample-rows", type=pos_int, default=256, help="query rows for exact above the cap")
    parser.add_argument("--rf-max-rank", type=nonneg_int, default=20000,
                        help="random features only up to this rank")
    parser.add_argument("--seed", type=nonneg_int, default=0)
    parser.add_argument("--scaling", action="store_true", help="only d=4, B=1, eps=1e-6, to a larger n")
    parser.add_argument("--scaling-max-log2-n", type=nonneg_int, default=18,
                        help=f"largest n = 2^this of --scaling (at least {SCALING_MIN_LOG2_N})")
    parser.add_argument("--plot", metavar="FILE.png", help="plot planned g, r against B (matplotlib)")
    parser.add_argument("--plot-log2-n", type=pos_int, default=16, help="n = 2^this for --plot")


def _flat(values) -> list:
    """``[[2, 4], [8]] -> [2, 4, 8]``: ``nargs="+"`` of comma lists; plain values pass through."""
    out = []
    for v in values if isinstance(values, (list, tuple)) else [values]:
        out.extend(v if isinstance(v, (list, tuple)) else [v])
    return out


def check_arguments(args: argparse.Namespace) -> None:
    """Normalise the list options and raise :class:`ParameterError` (one line) for an empty or invalid grid."""
    args.ds, args.Bs, args.epss = _flat(args.ds), _flat(args.Bs), _flat(args.epss)
    if not (args.ds and args.Bs and args.epss):
        raise ParameterError("--ds, --Bs and --epss each need at least one value")
    bad = ([f"d = {d}" for d in args.ds if int(d) != d or d < 1]
           + [f"B = {B}" for B in args.Bs if not (math.isfinite(B) and B > 0)]
           + [f"eps = {e}" for e in args.epss if not (math.isfinite(e) and 0 < e < 1)])
    if bad:
        raise ParameterError(f"need integers d >= 1, finite B > 0 and 0 < eps < 1; got {', '.join(bad)}")
    if args.scaling:
        if args.scaling_max_log2_n < SCALING_MIN_LOG2_N:
            raise ParameterError(f"--scaling-max-log2-n must be at least {SCALING_MIN_LOG2_N} (the scaling run "
                                 f"starts at n = 2^{SCALING_MIN_LOG2_N}), got {args.scaling_max_log2_n}")
    elif args.min_log2_n > args.max_log2_n:
        raise ParameterError(f"--min-log2-n ({args.min_log2_n}) must be at most --max-log2-n ({args.max_log2_n})")
    if args.plot:
        parent = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(parent):
            raise FinegrainedError(f"cannot write {args.plot}: directory {parent} does not exist")


def _timed(fn, min_seconds: float = 0.3, max_repeats: int = 5):
    """Best wall time of up to ``max_repeats`` calls, stopping once ``min_seconds`` have been spent."""
    best, spent, result = math.inf, 0.0, None
    for _ in range(max_repeats):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent >= min_seconds:
            break
    return best, result


def fit_exponent(ns: list[int], times: list[float]) -> float | None:
    """Least-squares slope of ``log t`` against ``log n``; None with fewer than two points."""
    if len(ns) < 2:
        return None
    slope, _ = np.polyfit(np.log(ns), np.log(times), 1)
    return float(slope)


def crossover(ns: list[int], t_poly: list[float], t_exact: list[float]) -> int | None:
    """Smallest grid ``n`` from which poly is faster than exact at every larger grid ``n``; None if never."""
    best = None
    for n, tp, te in sorted(zip(ns, t_poly, t_exact, strict=True), reverse=True):
        if tp < te:
            best = n
        else:
            break
    return best


def _run_case(d: int, B: float, eps: float, log2_ns: range, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng([args.seed, d, int(B * 1000), int(-math.log10(eps) * 100)])
    rows_out = []
    max_memory = int(args.max_memory * _GIB)
    full_exact: tuple[int, float] | None = None  # (n, time) of the largest exact run on all rows
    for lg in log2_ns:
        n = 2**lg
        plan = poly_plan(n, d, B, eps, d_v=d, max_memory=max_memory)
        row = {"n": n, "degree": plan.degree, "rank": plan.rank, "planned_memory": plan.memory_bytes}
        if not plan.fits:
            rows_out.append({**row, "skipped": f"planned memory {plan.memory_bytes / _GIB:.3g} GiB"})
            continue
        if plan.poly_flops > args.max_poly_flops:
            rows_out.append({**row, "skipped": f"planned {plan.poly_flops:.2g} flops"})
            continue
        Q, K, V = (rng.uniform(-B, B, size=(n, d)) for _ in range(3))
        t_poly, res = _timed(lambda Q=Q, K=K, V=V: poly(Q, K, V, eps=eps, B=B, max_memory=max_memory))
        approx = res.output.to_float()
        if n <= 2**args.exact_cap_log2:
            rows = np.arange(n)
            t_exact, ref = _timed(lambda Q=Q, K=K, V=V: exact(Q, K, V))
            sampled = False
            full_exact = (n, t_exact)
        else:
            rows = np.sort(rng.choice(n, size=min(n, args.sample_rows), replace=False))
            t_rows, ref = _timed(lambda Q=Q, K=K, V=V, rows=rows: exact(Q[rows], K, V))
            # Two extrapolations: linear in the rows from the sample, quadratic from the last full run. The
            # smaller is used, so per-call overheads of small samples cannot inflate exact's time.
            t_exact = t_rows * n / len(rows)
            if full_exact is not None:
                t_exact = min(t_exact, full_exact[1] * (n / full_exact[0]) ** 2)
            sampled = True
        ref = ref.to_float()
        err = float(np.abs(approx[rows] - ref).max())
        rf_err = None
        if res.rank <= args.rf_max_rank:
            rf = random_features(Q[rows], K, V, rank=res.rank, seed=args.seed).to_float()
            rf_err = float(np.abs(rf - ref).max())
        rows_out.append({
            **row, "degree": res.degree, "rank": res.rank, "t_poly": t_poly, "t_exact": t_exact,
            "exact_sampled": sampled, "error": err, "error_bound": res.error_bound,
            "rounding_error": res.rounding_error, "rf_error": rf_err, "radius": res.interval[1],
        })
    timed = [r for r in rows_out if "t_poly" in r]
    ns = [r["n"] for r in timed]
    fit_ns = [r["n"] for r in timed if r["n"] >= 2**12] or ns
    fit_ts = [r["t_poly"] for r in timed if r["n"] in fit_ns]
    return {
        "d": d, "B": B, "eps": eps, "rows": rows_out,
        "exponent": fit_exponent(fit_ns, fit_ts),
        "exponent_range": [min(fit_ns), max(fit_ns)] if fit_ns else None,
        "crossover": crossover(ns, [r["t_poly"] for r in timed], [r["t_exact"] for r in timed]),
        "bound_holds": all(r["error"] <= r["error_bound"] for r in timed),
    }


def _format_case(case: dict) -> list[str]:
    head = f"d={case['d']} B={case['B']:g} eps={case['eps']:g}"
    lines = []
    for r in case["rows"]:
        prefix = f"{head:<22} n=2^{int(math.log2(r['n'])):<2} g={r['degree']:<3} r={r['rank']:<9}"
        if "skipped" in r:
            lines.append(f"{prefix} skipped ({r['skipped']})")
            continue
        te = ("~" if r["exact_sampled"] else " ") + f"{r['t_exact']:.3g}"
        rf = "-" if r["rf_error"] is None else f"{r['rf_error']:.2e}"
        lines.append(
            f"{prefix} poly {r['t_poly']:8.3g}s exact {te:>9}s ratio {r['t_exact'] / r['t_poly']:8.3g}  "
            f"err {r['error']:.2e} <= bound {r['error_bound']:.2e}  rf err {rf}"
        )
    exp = "-" if case["exponent"] is None else f"{case['exponent']:.3f}"
    cross = "never" if case["crossover"] is None else f"2^{int(math.log2(case['crossover']))}"
    lines.append(f"{head:<22} time exponent {exp}, poly faster from n* = {cross}")
    return lines


def machine() -> str:
    """A one-line description of the machine the numbers come from."""
    return f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, numpy {np.__version__}"


def plot_degree_rank(path: str, log2_n: int, eps: float, ds: list[int]) -> dict:
    """Plot the planned degree ``g`` and rank ``r`` against ``B`` at ``n = 2^log2_n``, marking sqrt(ln n)."""
    plt = pyplot()
    n = 2**log2_n
    Bs = np.linspace(0.1, 4.0, 79)
    data = {}
    fig, (ax_g, ax_r) = plt.subplots(1, 2, figsize=(10, 4))
    for d in ds:
        plans = [poly_plan(n, d, float(B), eps) for B in Bs]
        data[d] = {"B": Bs.tolist(), "g": [p.degree for p in plans], "log10_r": [p.log10_rank for p in plans]}
        ax_g.plot(Bs, data[d]["g"], label=f"d={d}")
        ax_r.plot(Bs, data[d]["log10_r"], label=f"d={d}")
    threshold = math.sqrt(math.log(n))
    ax_r.axhline(math.log10(n), color="grey", ls=":", lw=1, label="r = n")
    for ax in (ax_g, ax_r):
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"B = sqrt(ln n) = {threshold:.2f}")
        ax.set_xlabel("entry bound B (scores in [-B^2, B^2])")
        ax.legend()
    ax_g.set_ylabel("degree g (independent of d)")
    ax_r.set_ylabel("log10 rank r = log10 C(g + d, d)")
    fig.suptitle(f"Polynomial method: planned degree and rank, n = 2^{log2_n}, eps = {eps:g}")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    return {"path": path, "n": n, "eps": eps, "threshold_B": threshold, "series": data}


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark; print a table unless ``args.json``; return the results."""
    as_json = getattr(args, "json", False)
    check_arguments(args)
    if args.scaling:
        grid = [(4, 1.0, 1e-6, range(SCALING_MIN_LOG2_N, args.scaling_max_log2_n + 1))]
    else:
        ns = range(args.min_log2_n, args.max_log2_n + 1)
        grid = [(d, B, eps, ns) for d in args.ds for B in args.Bs for eps in args.epss]
    cases = []
    for d, B, eps, ns in grid:
        case = _run_case(d, B, eps, ns, args)
        cases.append(case)
        if not as_json:
            print("\n".join(_format_case(case)), flush=True)
    result = {"machine": machine(), "scale": "1/d", "cases": cases}
    if args.plot:
        result["plot"] = plot_degree_rank(args.plot, args.plot_log2_n, args.epss[-1], args.ds)
        if not as_json:
            print(f"wrote {args.plot}")
    return result


if __name__ == "__main__":  # the same as `finegrained bench poly ...`, errors included
    import sys

    from finegrained.cli import main

    sys.exit(main(["bench", "poly", *sys.argv[1:]]))
