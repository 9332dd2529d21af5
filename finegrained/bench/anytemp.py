"""Benchmark of any-temperature attention (``finegrained bench anytemp``).

For every key law, head dimension ``d`` and entry size ``B`` (``Q``, ``K``, ``V`` uniform in ``[-B, B]``, score
scale ``s = 1``, so scores reach ``d B^2``), and ``n = 2^min .. 2^max`` queries and keys, one run measures:

* the time of :func:`~finegrained.attention.anytemp.anytemp` with ``eps = eps_rel * ||V||_inf``;
* the error against :func:`~finegrained.attention.exact.exact` on ``rows`` random query rows (exact on
  ``Q[rows]``), next to the certified bound of those rows (``ok`` says error <= bound on every sampled row);
* the exact-attention time: measured on all rows while ``n <= 2^exact_full_max``, else measured on the sampled
  rows and scaled by ``n / rows``;
* the tree statistics: nodes visited, straddling the window boundary (crossing) and accepted per query, and the
  mean polynomial degree of the accepted (query, node) pairs;
* Algorithm 1 of Alman & Song, planned by :func:`~finegrained.attention.poly.poly_plan` at the same ``n, d, B``
  (its degree and rank, and whether it beats exact in flops): the polynomial method's cost grows with ``B``.

Key laws: ``uniform`` (keys uniform in the cube) and ``sphere`` (keys on the sphere of radius ``B`` in ``R^d``,
``d >= 2``: every key is extreme for some query direction, the worst case for the maximum search).
Exponents are least-squares slopes of ``log time`` against ``log n`` over the largest half of the sizes.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from finegrained.argtypes import list_of, memory_size, nonneg_int, pos_float, pos_int
from finegrained.attention.anytemp import anytemp
from finegrained.attention.exact import exact
from finegrained.resources import check_memory
from instances.errors import ParameterError

#: Key laws of :func:`make_inputs`.
LAWS = ("uniform", "sphere")


def law(text: str) -> str:
    """argparse type: one of :data:`LAWS`."""
    if text not in LAWS:
        raise argparse.ArgumentTypeError(f"expected a key law ({', '.join(LAWS)}), got {text!r}")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-log2-n", type=nonneg_int, default=10)
    parser.add_argument("--max-log2-n", type=nonneg_int, default=16,
                        help="largest n = 2^k (default fits ~8 minutes)")
    parser.add_argument("--dims", type=list_of(pos_int), default="1,2,3", help="comma-separated head dimensions")
    parser.add_argument("--bs", type=list_of(pos_float), default="1,10,100,1000",
                        help="comma-separated entry bounds B > 0")
    parser.add_argument("--laws", type=list_of(law), default="uniform,sphere",
                        help=f"comma-separated key laws: {', '.join(LAWS)}")
    parser.add_argument("--eps-rel", type=pos_float, default=1e-6, help="eps = eps_rel * max|V|")
    parser.add_argument("--rows", type=pos_int, default=64, help="query rows checked against exact attention")
    parser.add_argument("--exact-full-max", type=nonneg_int, default=13,
                        help="time exact on all rows up to n = 2^this")
    parser.add_argument("--seed", type=nonneg_int, default=0)
    parser.add_argument("--max-memory", type=memory_size, default=None,
                        help="refuse sizes needing more memory than this (e.g. 8G; default: half of RAM)")



def _parsed(value, item, option: str) -> list:
    """A list option as parsed by argparse, or a comma-separated string from a programmatic caller."""
    if isinstance(value, (list, tuple)):
        return list(value)
    try:
        return list_of(item)(str(value))
    except argparse.ArgumentTypeError as exc:
        raise ParameterError(f"{option}: {exc}") from None


def check_arguments(args: argparse.Namespace) -> tuple[list[int], list[float], list[str]]:
    """The grid (dims, bounds, laws); :class:`ParameterError` (one line) if it is invalid or empty."""
    dims = _parsed(args.dims, pos_int, "--dims")
    bs = _parsed(args.bs, pos_float, "--bs")
    laws = _parsed(args.laws, law, "--laws")
    if args.min_log2_n > args.max_log2_n:
        raise ParameterError(f"--min-log2-n ({args.min_log2_n}) must be at most --max-log2-n ({args.max_log2_n})")
    if not (math.isfinite(args.eps_rel) and args.eps_rel > 0) or args.rows < 1:
        raise ParameterError(f"need --eps-rel > 0 and --rows >= 1, got {args.eps_rel} and {args.rows}")
    if not any(lw != "sphere" or d >= 2 for lw in laws for d in dims):
        raise ParameterError("the sphere law needs d >= 2 and no other law was asked for: add a dimension >= 2 "
                             "to --dims or the uniform law to --laws")
    n, d = 2**args.max_log2_n, max(dims)
    check_memory(memory_bytes(n, d), getattr(args, "max_memory", None),
                 f"bench anytemp at n = 2^{args.max_log2_n}, d = {d}")
    return dims, bs, laws


def memory_bytes(n: int, d: int) -> int:
    """Rough peak memory of one case: ``Q``, ``K``, ``V``, the output and the key tree (a few float64 copies of
    the ``n x (d + 1)`` inputs), plus the exact reference's score tiles."""
    return int(8 * n * 8 * (d + 1)) + 2**28


def make_inputs(law: str, n: int, d: int, B: float, rng: np.random.Generator):
    """``Q, K, V`` of one case; see the module docstring for the laws."""
    Q = rng.uniform(-B, B, (n, d))
    V = rng.uniform(-B, B, (n, 1))
    if law == "uniform":
        K = rng.uniform(-B, B, (n, d))
    elif law == "sphere":
        K = rng.normal(size=(n, d))
        K *= B / np.linalg.norm(K, axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown key law {law!r}")
    return Q, K, V


def _plan(n: int, d: int, B: float, eps: float) -> dict:
    """Algorithm 1's planner at the same size, or an explanation of why it is unavailable."""
    try:
        from finegrained.attention.poly import poly_plan

        p = poly_plan(n, d, float(B), min(eps, 0.5), scale=1.0, d_v=1)
        return {"degree": int(p.degree), "log10_rank": float(p.log10_rank), "beats_exact": bool(p.beats_exact),
                "flops_ratio": float(p.poly_flops / p.exact_flops) if p.log10_rank < 300 else math.inf}
    except Exception as exc:  # the planner belongs to another module; report rather than abort the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}


def one_case(law: str, n: int, d: int, B: float, eps_rel: float, rows: int, exact_full_max: int,
             rng: np.random.Generator) -> dict:
    Q, K, V = make_inputs(law, n, d, B, rng)
    eps = eps_rel * float(np.abs(V).max())
    t0 = time.perf_counter()
    res = anytemp(Q, K, V, eps=eps, scale=1.0)
    t_any = time.perf_counter() - t0
    sample = rng.choice(n, size=min(rows, n), replace=False)
    t0 = time.perf_counter()
    ref = exact(Q[sample], K, V, scale=1.0).to_float()
    t_sample = time.perf_counter() - t0
    if n <= 2**exact_full_max:
        t0 = time.perf_counter()
        exact(Q, K, V, scale=1.0)
        t_exact, extrapolated = time.perf_counter() - t0, False
    else:
        t_exact, extrapolated = t_sample * n / sample.size, True
    err_rows = np.abs(res.output.to_float()[sample] - ref).max(axis=1)
    st = res.stats
    return {
        "law": law, "n": n, "d": d, "B": B, "eps": eps, "seconds": t_any, "exact_seconds": t_exact,
        "exact_extrapolated": extrapolated, "max_error": float(err_rows.max()),
        "bound_sampled": float(res.row_bounds[sample].max()), "bound": res.error_bound,
        "ok": bool(np.all(err_rows <= res.row_bounds[sample])), "window": res.window, "degree": res.degree,
        "visited": st["visited_mean"], "crossing": st["crossing_mean"], "crossing_max": st["crossing_max"],
        "exact_keys": st["exact_keys_mean"], "search_visits": st["search_visits_mean"],
        "accepted": st["accepted_mean"], "degree_used": st["degree_mean"],
        "plan": _plan(n, d, B, eps_rel),
    }


def _slope(rows: list[dict], key: str) -> float | None:
    fit = rows[len(rows) // 2:]
    if len(fit) < 2:
        return None
    return float(np.polyfit(np.log([r["n"] for r in fit]), np.log([r[key] for r in fit]), 1)[0])


def run(args: argparse.Namespace) -> dict:
    dims, bs, laws = check_arguments(args)
    rng = np.random.default_rng(args.seed)
    cases, fits = [], []
    for law in laws:
        for d in dims:
            if law == "sphere" and d < 2:
                continue
            for B in bs:
                series = [one_case(law, 2**k, d, B, args.eps_rel, args.rows, args.exact_full_max, rng)
                          for k in range(args.min_log2_n, args.max_log2_n + 1)]
                cases += series
                fits.append({"law": law, "d": d, "B": B, "exponent": _slope(series, "seconds"),
                             "exact_exponent": _slope(series, "exact_seconds"),
                             "seconds_at_max_n": series[-1]["seconds"]})
    result = {"eps_rel": args.eps_rel, "cases": cases, "fits": fits,
              "all_within_bound": all(c["ok"] for c in cases)}
    if not getattr(args, "json", False):
        print(format_tables(result))
    return result


def format_tables(res: dict) -> str:
    """The result of :func:`run` as Markdown tables."""
    lines = ["| law | d | B | n | anytemp (s) | exact (s) | max err (sampled) | bound (sampled) | ok | visited "
             "| crossing (mean/max) | accepted (mean degree) | exact keys | max-search visits "
             "| Alg. 1: g, log10 rank, beats exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in res["cases"]:
        p = c["plan"]
        plan = (f"{p['degree']}, {p['log10_rank']:.1f}, {'yes' if p['beats_exact'] else 'no'}" if "degree" in p
                else p.get("error", "-"))
        ex = f"{c['exact_seconds']:.3g}{'*' if c['exact_extrapolated'] else ''}"
        lines.append(f"| {c['law']} | {c['d']} | {c['B']:g} | {c['n']} | {c['seconds']:.3g} | {ex} "
                     f"| {c['max_error']:.2e} | {c['bound_sampled']:.2e} | {'yes' if c['ok'] else 'NO'} "
                     f"| {c['visited']:.1f} | {c['crossing']:.1f}/{c['crossing_max']} "
                     f"| {c['accepted']:.1f} ({c['degree_used']:.1f}) | {c['exact_keys']:.1f} "
                     f"| {c['search_visits']:.1f} | {plan} |")
    lines += ["", "`*`: exact time extrapolated from the sampled rows (time on the rows x n / rows).", "",
              "| law | d | B | exponent of anytemp time in n | exponent of exact time | anytemp (s) at max n |",
              "|---|---|---|---|---|---|"]
    for f in res["fits"]:
        e = "-" if f["exponent"] is None else f"{f['exponent']:.2f}"
        ee = "-" if f["exact_exponent"] is None else f"{f['exact_exponent']:.2f}"
        lines.append(f"| {f['law']} | {f['d']} | {f['B']:g} | {e} | {ee} | {f['seconds_at_max_n']:.3g} |")
    lines += ["", f"every sampled row within its certified bound: {res['all_within_bound']}"]
    return "\n".join(lines)
