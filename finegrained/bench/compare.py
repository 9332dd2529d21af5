"""Every attention algorithm on the same inputs: time against n, error against exact, fitted exponents.

Inputs are i.i.d. uniform in ``[-B, B]`` with the paper's scale ``1/d``, so ``B`` small is the easy side of the
Alman-Song threshold. For each ``n`` the algorithms run one after the other (best of ``repeat``); the error is the
largest ``|out - exact|`` over a sample of query rows (all rows when ``n <= 2^12``). Algorithms that refuse an
input (for example ``poly`` when its rank would not fit) are reported as refused, with the reason.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from instances.errors import FinegrainedError, ParameterError

from ..attention import ORACLES, as_answer, exact
from ..resources import check_memory
from .timing import Progress, fit_exponent

DEFAULT_ALGORITHMS = ("exact", "poly", "anytemp", "lev", "random_features")
#: Exact attention on all rows is skipped above this n (it is timed on sampled rows and extrapolated).
FULL_EXACT_MAX_N = 2**14
SAMPLE_ROWS = 256


@dataclass
class CompareResult:
    """One ``(d, B, eps)`` case: per-``n`` rows of times, errors and refusals, and fitted exponents."""

    d: int
    B: float
    eps: float
    algorithms: list[str]
    rows: list[dict] = field(default_factory=list)
    exponents: dict[str, float | None] = field(default_factory=dict)
    repeat: int = 1
    benchmark: str = "compare"

    def to_dict(self) -> dict:
        return asdict(self)


def memory_bytes(n: int, d: int) -> int:
    """Rough peak memory at one size: ``Q``, ``K``, ``V``, a few outputs and copies (float64 ``n x d``), and the
    exact reference's score tiles; the oracles that need more refuse on their own (reported as refused)."""
    return int(8 * n * d * 12) + 2**28


def _call(name: str, eps: float):
    oracle = ORACLES[name]
    if name in ("poly", "anytemp"):
        return lambda Q, K, V: oracle(Q, K, V, eps=eps)
    return lambda Q, K, V: oracle(Q, K, V)


def run(*, d: int = 2, B: float = 1.0, eps: float = 1e-6, log2_n_min: int = 10, log2_n_max: int = 15,
        algorithms: list[str] | tuple[str, ...] = DEFAULT_ALGORITHMS, repeat: int = 3, seed: int = 0,
        max_memory: int | None = None, progress: Progress | None = None) -> CompareResult:
    """Time every algorithm of ``algorithms`` for ``n = 2^log2_n_min .. 2^log2_n_max`` at one ``(d, B, eps)``."""
    names = list(algorithms)
    unknown = [a for a in names if a not in ORACLES]
    if unknown or not names:
        raise ParameterError(f"unknown algorithm(s) {', '.join(unknown) or '(none given)'}; available: "
                             f"{', '.join(sorted(ORACLES))}")
    if (d < 1 or not (math.isfinite(B) and B > 0) or not 0 < eps < 1 or log2_n_min > log2_n_max
            or repeat < 1):
        raise ParameterError("need d >= 1, B > 0, 0 < eps < 1, --repeat >= 1 and --log2-n-min <= --log2-n-max")
    check_memory(memory_bytes(2**log2_n_max, d), max_memory, f"bench compare at n = 2^{log2_n_max}, d = {d}")
    rng = np.random.default_rng(seed)
    result = CompareResult(d=d, B=B, eps=eps, algorithms=names, repeat=repeat)
    steps = log2_n_max - log2_n_min + 1
    for k in range(log2_n_min, log2_n_max + 1):
        n = 2**k
        Q, K, V = (rng.uniform(-B, B, (n, d)) for _ in range(3))
        sample = np.arange(n) if n <= 2**12 else np.sort(rng.choice(n, SAMPLE_ROWS, replace=False))
        ref = exact(Q[sample], K, V).to_float()
        times: dict[str, float | None] = {}
        errors: dict[str, float | None] = {}
        refused: dict[str, str] = {}
        for name in names:
            fn = _call(name, eps)
            if name == "exact" and n > FULL_EXACT_MAX_N:
                t0 = time.perf_counter()
                exact(Q[sample], K, V)
                times[name] = (time.perf_counter() - t0) * n / sample.size
                errors[name] = 0.0
                continue
            best, out = math.inf, None
            try:
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    out = fn(Q, K, V)
                    best = min(best, time.perf_counter() - t0)
            except FinegrainedError as exc:
                times[name] = errors[name] = None
                refused[name] = str(exc).splitlines()[0][:160]
                continue
            times[name] = best
            errors[name] = float(np.abs(as_answer(out, name).output[sample].to_float() - ref).max())
        result.rows.append({"n": n, "times": times, "errors": errors, "refused": refused,
                            "exact_extrapolated": n > FULL_EXACT_MAX_N})
        if progress is not None:
            progress(k - log2_n_min + 1, steps)
    for nm in names:
        pts = [(r["n"], r["times"][nm]) for r in result.rows if r["times"][nm] is not None and r["n"] >= 2**12]
        result.exponents[nm] = fit_exponent([p[0] for p in pts], [p[1] for p in pts])
    return result
