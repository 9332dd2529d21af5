"""Benchmark of the polynomial method (Alman-Song Algorithm 1) against exact attention and random features.

For every ``d``, ``B``, ``eps`` of the grid and ``n = 2^log2_n_min ... 2^log2_n_max`` it draws ``Q, K, V`` with
entries uniform in ``[-B, B]`` and the paper's scale ``1/d`` (so Lemma 3.3 bounds every score by ``B^2``), and
reports

* the time of :func:`~finegrained.attention.poly.poly` and of :func:`~finegrained.attention.exact.exact`
  (best of ``repeat``, stopping after 0.3 s); above ``exact_cap_log2`` exact runs on ``sample_rows`` random query
  rows only, and its full time (marked ``~``) is the smaller of the linear extrapolation in the rows and the
  quadratic extrapolation from the largest full run;
* the measured max error of poly against exact (on the sampled rows where sampling is used), the certified
  bound, and the error of positive random features of the same rank;
* per case: the least-squares exponent of poly's time in ``n`` and the crossover ``n*``, the smallest grid
  ``n`` from which poly is faster than exact at every larger grid size.

Cases whose plan needs more than ``max_memory`` bytes or more than ``max_poly_flops`` flops are skipped and
reported as such. ``scaling=True`` runs only the case ``d = 4``, ``B = 1``, ``eps = 1e-6`` from ``n = 2^12`` up
to ``2^scaling_log2_n_max``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from instances.errors import ParameterError

from ..attention.exact import exact
from ..attention.poly import poly, poly_plan
from ..attention.random_features import random_features
from ..resources import default_memory_limit, format_bytes
from .timing import Progress, best_of, fit_exponent

#: First n = 2^this of the scaling run.
SCALING_MIN_LOG2_N = 12
#: The case of the scaling run: d, B, eps.
SCALING_CASE = (4, 1.0, 1e-6)


@dataclass
class PolyBenchResult:
    """One dict per ``(d, B, eps)`` case with its rows, exponent and crossover."""

    cases: list[dict] = field(default_factory=list)
    scale: str = "1/d"
    benchmark: str = "poly"

    def to_dict(self) -> dict:
        return asdict(self)


def _timed(repeat: int, fn):
    """Best wall time of up to ``repeat`` calls, stopping once 0.3 s have been spent."""
    return best_of(fn, repeat=repeat, min_seconds=0.3)


def check_arguments(*, dims: list[int], B: list[float], eps: list[float], log2_n_min: int, log2_n_max: int,
                    scaling: bool, scaling_log2_n_max: int, repeat: int) -> None:
    """:class:`ParameterError` (one line) for an empty or invalid grid."""
    if not (dims and B and eps):
        raise ParameterError("--dims, --B and --eps each need at least one value")
    bad = ([f"d = {d}" for d in dims if int(d) != d or d < 1]
           + [f"B = {b}" for b in B if not (math.isfinite(b) and b > 0)]
           + [f"eps = {e}" for e in eps if not (math.isfinite(e) and 0 < e < 1)])
    if bad:
        raise ParameterError(f"need integers d >= 1, finite B > 0 and 0 < eps < 1; got {', '.join(bad)}")
    if repeat < 1:
        raise ParameterError(f"--repeat must be positive, got {repeat}")
    if scaling:
        if scaling_log2_n_max < SCALING_MIN_LOG2_N:
            raise ParameterError(f"--scaling-log2-n-max must be at least {SCALING_MIN_LOG2_N} (the scaling run "
                                 f"starts at n = 2^{SCALING_MIN_LOG2_N}), got {scaling_log2_n_max}")
    elif log2_n_min > log2_n_max:
        raise ParameterError(f"--log2-n-min ({log2_n_min}) must be at most --log2-n-max ({log2_n_max})")


def crossover(ns: list[int], t_poly: list[float], t_exact: list[float]) -> int | None:
    """Smallest grid ``n`` from which poly is faster than exact at every larger grid ``n``; None if never."""
    best = None
    for n, tp, te in sorted(zip(ns, t_poly, t_exact, strict=True), reverse=True):
        if tp < te:
            best = n
        else:
            break
    return best


def _run_case(d: int, B: float, eps: float, log2_ns: range, *, seed: int, max_memory: int, max_poly_flops: float,
              exact_cap_log2: int, sample_rows: int, rf_max_rank: int, repeat: int) -> dict:
    """One ``(d, B, eps)`` case over the sizes ``2^log2_ns``."""
    rng = np.random.default_rng([seed, d, int(B * 1000), int(-math.log10(eps) * 100)])
    rows_out = []
    full_exact: tuple[int, float] | None = None  # (n, time) of the largest exact run on all rows
    for lg in log2_ns:
        n = 2**lg
        plan = poly_plan(n, d, B, eps, d_v=d, max_memory=max_memory)
        row = {"n": n, "degree": plan.degree, "rank": plan.rank, "planned_memory": plan.memory_bytes}
        if not plan.fits:
            rows_out.append({**row, "skipped": f"planned memory {format_bytes(plan.memory_bytes)}"})
            continue
        if plan.poly_flops > max_poly_flops:
            rows_out.append({**row, "skipped": f"planned {plan.poly_flops:.2g} flops"})
            continue
        Q, K, V = (rng.uniform(-B, B, size=(n, d)) for _ in range(3))
        t_poly, res = _timed(repeat, lambda Q=Q, K=K, V=V: poly(Q, K, V, eps=eps, B=B, max_memory=max_memory))
        approx = res.output.to_float()
        if n <= 2**exact_cap_log2:
            rows = np.arange(n)
            t_exact, ref = _timed(repeat, lambda Q=Q, K=K, V=V: exact(Q, K, V))
            sampled = False
            full_exact = (n, t_exact)
        else:
            rows = np.sort(rng.choice(n, size=min(n, sample_rows), replace=False))
            t_rows, ref = _timed(repeat, lambda Q=Q, K=K, V=V, rows=rows: exact(Q[rows], K, V))
            # Two extrapolations: linear in the rows from the sample, quadratic from the last full run. The
            # smaller is used, so per-call overheads of small samples cannot inflate exact's time.
            t_exact = t_rows * n / len(rows)
            if full_exact is not None:
                t_exact = min(t_exact, full_exact[1] * (n / full_exact[0]) ** 2)
            sampled = True
        ref = ref.to_float()
        err = float(np.abs(approx[rows] - ref).max())
        rf_err = None
        if res.rank <= rf_max_rank:
            rf = random_features(Q[rows], K, V, rank=res.rank, seed=seed).to_float()
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


def run(*, dims: list[int] | tuple[int, ...] = (2, 4, 8), B: list[float] | tuple[float, ...] = (0.5, 1.0, 2.0),
        eps: list[float] | tuple[float, ...] = (1e-3, 1e-6), log2_n_min: int = 10, log2_n_max: int = 16,
        max_memory: int | None = None, max_poly_flops: float = 5e10, exact_cap_log2: int = 14,
        sample_rows: int = 256, rf_max_rank: int = 20000, repeat: int = 5, seed: int = 0, scaling: bool = False,
        scaling_log2_n_max: int = 18, progress: Progress | None = None) -> PolyBenchResult:
    """Run the grid ``d x B x eps`` (or the scaling case); plans over ``max_memory`` bytes are skipped."""
    dims, B, eps = list(dims), list(B), list(eps)
    check_arguments(dims=dims, B=B, eps=eps, log2_n_min=log2_n_min, log2_n_max=log2_n_max, scaling=scaling,
                    scaling_log2_n_max=scaling_log2_n_max, repeat=repeat)
    limit = default_memory_limit() if max_memory is None else int(max_memory)
    if scaling:
        d, b, e = SCALING_CASE
        grid = [(d, b, e, range(SCALING_MIN_LOG2_N, scaling_log2_n_max + 1))]
    else:
        ns = range(log2_n_min, log2_n_max + 1)
        grid = [(d, b, e, ns) for d in dims for b in B for e in eps]
    result = PolyBenchResult()
    for i, (d, b, e, ns) in enumerate(grid):
        result.cases.append(_run_case(d, b, e, ns, seed=seed, max_memory=limit, max_poly_flops=max_poly_flops,
                                      exact_cap_log2=exact_cap_log2, sample_rows=sample_rows,
                                      rf_max_rank=rf_max_rank, repeat=repeat))
        if progress is not None:
            progress(i + 1, len(grid))
    return result
