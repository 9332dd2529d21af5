"""Benchmark of the attention gradients (``finegrained bench grad``).

For every method (:func:`~finegrained.attention.grad.exact_grad`, :func:`~finegrained.attention.grad.anytemp_grad`,
:func:`~finegrained.attention.grad.poly_grad`), head dimension ``d``, entry bound ``B`` and ``n = 2^log2_n_min ..
2^log2_n_max`` it draws ``Q, K`` uniform in ``[-B, B]^{n x d}`` and ``V, dO`` standard normal (``d_v = 1``, scale
``1/d``), and reports

* the best-of-``repeat`` time, with the least-squares exponent of ``time ~ n^a`` over the largest half of the sizes
  per ``(method, d, B)``;
* the measured max error against ``exact_grad`` (``exact_grad``'s own bound is listed; for ``exact_grad`` itself
  the error column is empty), the certified ``error_bound`` and whether ``error <= bound + exact bound``.

Cases a method refuses (``poly_grad`` beyond bounded entries raises :class:`~instances.errors.NumericalError`) are
listed as refused with the reason. Memory is checked before each size is drawn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from instances.errors import FinegrainedError, ParameterError

from ..attention.grad import anytemp_grad, exact_grad, poly_grad
from ..resources import check_memory, default_memory_limit
from .timing import Progress, best_of, fit_upper_half

METHODS = {"exact": exact_grad, "anytemp": anytemp_grad, "poly": poly_grad}


@dataclass
class GradBenchResult:
    """Rows ``{method, d, B, n, seconds, error, bound, exact_bound, within, refused}`` and one fit per case."""

    rows: list[dict] = field(default_factory=list)
    fits: list[dict] = field(default_factory=list)
    benchmark: str = "grad"

    def to_dict(self) -> dict:
        return asdict(self)


def run(*, log2_n_min: int = 8, log2_n_max: int = 12, dims: tuple[int, ...] = (1, 2, 3),
        B: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0), methods: tuple[str, ...] = ("exact", "anytemp", "poly"),
        repeat: int = 1, seed: int = 0, max_memory: int | None = None,
        progress: Progress | None = None) -> GradBenchResult:
    """Time and error of every method on the ``(d, B, n)`` grid (see the module docstring)."""
    if not 1 <= log2_n_min <= log2_n_max <= 24:
        raise ParameterError(f"need 1 <= log2_n_min <= log2_n_max <= 24, got {log2_n_min}, {log2_n_max}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ParameterError(f"unknown methods {unknown}; choose from {sorted(METHODS)}")
    if any(int(d) < 1 for d in dims) or any(not float(b) > 0 for b in B):
        raise ParameterError("dims must be >= 1 and B > 0")
    ns = [2**k for k in range(log2_n_min, log2_n_max + 1)]
    check_memory(8 * 2 * max(ns) * (4 * max(dims) + 4) * 6 + 2**25, max_memory, "bench grad at the largest n")
    # poly_grad plans its own feature matrices: it gets the same limit, and refuses before allocating
    limit = default_memory_limit() if max_memory is None else int(max_memory)
    rng = np.random.default_rng(seed)
    out = GradBenchResult()
    total = len(dims) * len(B) * len(ns)
    done = 0
    for d in dims:
        for b in B:
            for n in ns:
                Q, K = rng.uniform(-b, b, (n, d)), rng.uniform(-b, b, (n, d))
                V, dO = rng.normal(size=(n, 1)), rng.normal(size=(n, 1))
                t_ref, ref = best_of(lambda a=(Q, K, V, dO): exact_grad(*a), repeat=repeat)
                for m in methods:
                    row = {"method": m, "d": d, "B": b, "n": n, "seconds": None, "error": None,
                           "bound": None, "exact_bound": ref.error_bound, "within": None, "refused": None}
                    if m == "exact":
                        row.update(seconds=t_ref, bound=ref.error_bound, within=True)
                    else:
                        try:
                            kw = {"max_memory": limit} if m == "poly" else {}
                            t, res = best_of(lambda f=METHODS[m], a=(Q, K, V, dO), kw=kw: f(*a, **kw),
                                             repeat=repeat)
                        except FinegrainedError as exc:
                            row["refused"] = f"{type(exc).__name__}: {exc}"[:200]
                        else:
                            err = max(float(np.abs(getattr(res, x) - getattr(ref, x)).max())
                                      for x in ("dQ", "dK", "dV"))
                            row.update(seconds=t, error=err, bound=res.error_bound,
                                       within=bool(err <= res.error_bound + ref.error_bound))
                    scale = max(float(np.abs(getattr(ref, x)).max()) for x in ("dQ", "dK", "dV"))
                    row["grad_max"] = scale
                    out.rows.append(row)
                done += 1
                if progress is not None:
                    progress(done, total)
            for m in methods:
                pts = [(r["n"], r["seconds"]) for r in out.rows
                       if r["method"] == m and r["d"] == d and r["B"] == b and r["seconds"] is not None]
                # the upper half of at least 3 sizes holds at least 2 points: fewer is no fit at all
                a = fit_upper_half([p[0] for p in pts], [p[1] for p in pts]) if len(pts) >= 3 else None
                out.fits.append({"method": m, "d": d, "B": b, "exponent": a,
                                 "fit_n": [pts[len(pts) // 2][0], pts[-1][0]] if len(pts) >= 3 else None})
    return out


__all__ = ["GradBenchResult", "run"]
