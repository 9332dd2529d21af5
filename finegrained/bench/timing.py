"""Helpers shared by every benchmark: best-of timing, log-log exponent fits, machine metadata.

Benchmarks report ratios measured within one run and the best of several repetitions, because absolute times on
shared machines are noisy (they drift by tens of percent within seconds).
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: ``progress(done, total)`` callback a benchmark calls after each step; the CLI turns it into a progress bar.
Progress = Callable[[int, int], None]


def best_of(fn: Callable[[], T], *, repeat: int = 1, min_seconds: float | None = None) -> tuple[float, T]:
    """Best wall time of up to ``repeat`` calls of ``fn`` and the last result.

    With ``min_seconds``, stops early once that much time has been spent (at least one call always runs).
    """
    best, spent, result = math.inf, 0.0, None
    for _ in range(max(1, int(repeat))):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if min_seconds is not None and spent >= min_seconds:
            break
    return best, result  # type: ignore[return-value]


def best_interleaved(fns: Sequence[Callable[[], object]], repeat: int) -> list[float]:
    """Best time of each callable over ``repeat`` rounds, run alternately so that all see the same machine noise."""
    best = [math.inf] * len(fns)
    for _ in range(max(1, int(repeat))):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def fit_exponent(ns: Sequence[float], times: Sequence[float]) -> float | None:
    """Least-squares slope ``a`` of ``log t = a log n + c``; None with fewer than two usable points.

    Points with a non-positive or non-finite time are dropped (a log of them is meaningless).

    Examples
    --------
    >>> fit_exponent([2, 4, 8], [1.0, 4.0, 16.0])
    2.0
    >>> fit_exponent([2], [1.0]) is None
    True
    """
    pts = [(float(n), float(t)) for n, t in zip(ns, times, strict=True)
           if n > 0 and t is not None and math.isfinite(t) and t > 0]
    if len({n for n, _ in pts}) < 2:
        return None
    slope, _ = np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)
    return round(float(slope), 12)


def fit_upper_half(ns: Sequence[float], times: Sequence[float]) -> float | None:
    """:func:`fit_exponent` over the largest half of the sizes (at least two): the asymptotic slope."""
    k = len(ns)
    start = min(k // 2, max(k - 2, 0))
    return fit_exponent(list(ns)[start:], list(times)[start:])


def _blas() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info

        return [{"library": i.get("internal_api"), "version": i.get("version"), "threads": i.get("num_threads")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # threadpoolctl inspects loaded shared libraries; report nothing rather than fail a run
        return []


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Where the numbers come from: CPU, core count, BLAS (via threadpoolctl), numpy and Python versions."""
    return {"cpu": _cpu(), "machine": platform.machine(), "cores": os.cpu_count(), "blas": _blas(),
            "numpy": np.__version__, "python": platform.python_version(), "platform": platform.platform()}


def gemm_rate(size: int = 384, repeat: int = 3) -> float:
    """Measured float64 matrix-product rate of this machine in flop/s (best of ``repeat`` ``size^3`` products)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)), rng.random((size, size))
    t, _ = best_of(lambda: a @ b, repeat=repeat)
    return 2.0 * size**3 / max(t, 1e-9)
