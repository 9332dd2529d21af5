"""Benchmark of any-temperature attention (``finegrained bench anytemp``).

For every key law, head dimension ``d`` and entry size ``B`` (``Q``, ``K``, ``V`` uniform in ``[-B, B]``, score
scale ``s = 1``, so scores reach ``d B^2``), and ``n = 2^log2_n_min .. 2^log2_n_max`` queries and keys, one run
measures:

* the time of :func:`~finegrained.attention.anytemp.anytemp` with ``eps = eps_rel * ||V||_inf`` (best of
  ``repeat``);
* the error against :func:`~finegrained.attention.exact.exact` on ``rows`` random query rows, next to the
  certified bound of those rows (``ok`` says error <= bound on every sampled row);
* the exact-attention time: measured on all rows while ``n <= 2^exact_full_max``, else measured on the sampled
  rows and scaled by ``n / rows``;
* the tree statistics: nodes visited, straddling the window boundary (crossing) and accepted per query, and the
  mean polynomial degree of the accepted (query, node) pairs;
* Algorithm 1 of Alman & Song, planned by :func:`~finegrained.attention.poly.poly_plan` at the same ``n, d, B``.

Key laws: ``uniform`` (keys uniform in the cube) and ``sphere`` (keys on the sphere of radius ``B`` in ``R^d``,
``d >= 2``: every key is extreme for some query direction, the worst case for the maximum search).
Exponents are least-squares slopes of ``log time`` against ``log n`` over the largest half of the sizes.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from instances.errors import ParameterError

from ..attention.anytemp import anytemp
from ..attention.exact import exact
from ..resources import check_memory
from .timing import Progress, best_of, fit_upper_half

#: Key laws of :func:`make_inputs`.
LAWS = ("uniform", "sphere")


@dataclass
class AnytempResult:
    """Every case (one dict per ``(law, d, B, n)``) and one exponent fit per ``(law, d, B)``."""

    eps_rel: float
    cases: list[dict] = field(default_factory=list)
    fits: list[dict] = field(default_factory=list)
    benchmark: str = "anytemp"

    @property
    def all_within_bound(self) -> bool:
        return all(c["ok"] for c in self.cases)

    def to_dict(self) -> dict:
        return {**asdict(self), "all_within_bound": self.all_within_bound}


def memory_bytes(n: int, d: int) -> int:
    """Rough peak memory of one case: ``Q``, ``K``, ``V``, the output and the key tree (a few float64 copies of
    the ``n x (d + 1)`` inputs), plus the exact reference's score tiles."""
    return int(8 * n * 8 * (d + 1)) + 2**28


def check_arguments(*, dims: list[int], B: list[float], laws: list[str], log2_n_min: int, log2_n_max: int,
                    eps_rel: float, rows: int, repeat: int, max_memory: int | None) -> None:
    """:class:`ParameterError` (one line) if the grid is invalid or empty; the memory limit before any work."""
    if not (dims and B and laws):
        raise ParameterError("--dims, --B and --laws each need at least one value")
    bad = [lw for lw in laws if lw not in LAWS]
    if bad:
        raise ParameterError(f"unknown key law(s) {', '.join(bad)}; expected {', '.join(LAWS)}")
    if log2_n_min > log2_n_max:
        raise ParameterError(f"--log2-n-min ({log2_n_min}) must be at most --log2-n-max ({log2_n_max})")
    if not (math.isfinite(eps_rel) and eps_rel > 0) or rows < 1 or repeat < 1:
        raise ParameterError(f"need --eps > 0, --rows >= 1 and --repeat >= 1, got {eps_rel}, {rows} and {repeat}")
    if any(not (math.isfinite(b) and b > 0) for b in B) or any(d < 1 for d in dims):
        raise ParameterError(f"need finite B > 0 and d >= 1, got B = {B}, d = {dims}")
    if not any(lw != "sphere" or d >= 2 for lw in laws for d in dims):
        raise ParameterError("the sphere law needs d >= 2 and no other law was asked for: add a dimension >= 2 "
                             "to --dims or the uniform law to --laws")
    check_memory(memory_bytes(2**log2_n_max, max(dims)), max_memory,
                 f"bench anytemp at n = 2^{log2_n_max}, d = {max(dims)}")


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
        raise ParameterError(f"unknown key law {law!r}; expected one of {', '.join(LAWS)}")
    return Q, K, V


def _plan(n: int, d: int, B: float, eps: float) -> dict:
    """Algorithm 1's planner at the same size, or an explanation of why it is unavailable."""
    try:
        from finegrained.attention.poly import poly_plan

        p = poly_plan(n, d, float(B), min(eps, 0.5), scale=1.0, d_v=1)
        return {"degree": int(p.degree), "log10_rank": float(p.log10_rank), "beats_exact": bool(p.beats_exact),
                "flops_ratio": float(p.poly_flops / p.exact_flops) if p.log10_rank < 300 else None}
    except Exception as exc:  # the planner belongs to another module; report rather than abort the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}


def one_case(law: str, n: int, d: int, B: float, eps_rel: float, rows: int, exact_full_max: int,
             rng: np.random.Generator, repeat: int = 1) -> dict:
    """One ``(law, n, d, B)`` case: anytemp's time, error and tree statistics, exact's time, Algorithm 1's plan."""
    Q, K, V = make_inputs(law, n, d, B, rng)
    eps = eps_rel * float(np.abs(V).max())
    t_any, res = best_of(lambda: anytemp(Q, K, V, eps=eps, scale=1.0), repeat=repeat)
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
        # above MAX_TREE_DIM anytemp scans the keys directly and has no tree statistics: None, not a KeyError
        "visited": st.get("visited_mean"), "crossing": st.get("crossing_mean"), "crossing_max": st.get("crossing_max"),
        "exact_keys": st.get("exact_keys_mean"), "search_visits": st.get("search_visits_mean"),
        "accepted": st.get("accepted_mean"), "degree_used": st.get("degree_mean"),
        "plan": _plan(n, d, B, eps_rel),
    }


def run(*, log2_n_min: int = 10, log2_n_max: int = 16, dims: list[int] | tuple[int, ...] = (1, 2, 3),
        B: list[float] | tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0),
        laws: list[str] | tuple[str, ...] = LAWS, eps_rel: float = 1e-6, rows: int = 64,
        exact_full_max: int = 13, repeat: int = 1, seed: int = 0, max_memory: int | None = None,
        progress: Progress | None = None) -> AnytempResult:
    """Run the grid ``law x d x B x n``; see the module docstring."""
    dims, B, laws = list(dims), list(B), list(laws)
    check_arguments(dims=dims, B=B, laws=laws, log2_n_min=log2_n_min, log2_n_max=log2_n_max, eps_rel=eps_rel,
                    rows=rows, repeat=repeat, max_memory=max_memory)
    rng = np.random.default_rng(seed)
    result = AnytempResult(eps_rel=eps_rel)
    series_grid = [(lw, d, b) for lw in laws for d in dims if not (lw == "sphere" and d < 2) for b in B]
    sizes = range(log2_n_min, log2_n_max + 1)
    total, done = len(series_grid) * len(sizes), 0
    for law, d, b in series_grid:
        series = []
        for k in sizes:
            series.append(one_case(law, 2**k, d, b, eps_rel, rows, exact_full_max, rng, repeat))
            done += 1
            if progress is not None:
                progress(done, total)
        result.cases += series
        ns = [c["n"] for c in series]
        result.fits.append({"law": law, "d": d, "B": b,
                            "exponent": fit_upper_half(ns, [c["seconds"] for c in series]),
                            "exact_exponent": fit_upper_half(ns, [c["exact_seconds"] for c in series]),
                            "seconds_at_max_n": series[-1]["seconds"]})
    return result
