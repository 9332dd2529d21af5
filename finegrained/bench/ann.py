"""Benchmark of Gap-ANN deciders (``finegrained bench ann``): popcount, GEMM, Hamming ball, attention route.

On planted balanced instances (:func:`instances.gap_ann_builders.planted`) with ``n`` queries and ``n`` data
vectors, ``n = 2^log2_n_min .. 2^log2_n_max`` and ``d`` in ``dims``, two regimes:

* ``wide``: ``eps = 0.5`` and the largest feasible ``t`` (``(1+eps) t = T_max``), the regime of Lemma 4.7 Case 2;
  the Hamming ball is far too large there and is skipped;
* ``narrow``: ``t = narrow_t`` (default 3) and ``eps = 1``, Lemma 4.7 Case 1, where the ball can win.

Every method's answer is checked against the planted ground truth. The attention route (Gap-ANN -> AAttC ->
exact oracle, :func:`finegrained.ann_chain.run_ann_chain`) is ``O(n^2 d)`` in float64 on ``2n x 2d`` matrices and
runs only for ``n <= 2^attention_max_log2_n``. Each row also names the method the cost model picks.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from instances.errors import ParameterError
from instances.gap_ann_builders import max_far_distance, planted

from ..gap_ann_solvers import DEFAULT_COST_MODEL, METHODS, solve_gap_ann
from ..resources import check_memory
from .timing import Progress


@dataclass
class AnnBenchResult:
    """One row per ``(regime, d, n)`` with each method's seconds (None when skipped) and correctness."""

    rows: list[dict] = field(default_factory=list)
    benchmark: str = "ann"

    def to_dict(self) -> dict:
        return asdict(self)


def memory_bytes(n: int, d: int, attention: bool) -> int:
    """Rough peak memory of one size: the 0/1 instance and its float32 copies, the deciders' score tiles and,
    on the attention route, float64 ``2n x 2d`` matrices and the oracle's score tiles."""
    base = n * d * 2 * (1 + 4 + 8) + 2**28
    return int(base + (2 * n * 2 * d * 8 * 4 + 2**28 if attention else 0))


def check_arguments(*, dims: list[int], log2_n_min: int, log2_n_max: int, narrow_t: float,
                    ball_max_seconds: float, attention_max_log2_n: int, repeat: int,
                    max_memory: int | None) -> None:
    """:class:`ParameterError` (one line) for an empty or infeasible grid; the memory limit before any work."""
    if not dims:
        raise ParameterError("--dims needs at least one dimension")
    odd = [d for d in dims if d % 2]
    if odd:
        raise ParameterError(f"--dims must be even (balanced vectors of weight d/2), got {odd}")
    if log2_n_min > log2_n_max:
        raise ParameterError(f"--log2-n-min ({log2_n_min}) must be at most --log2-n-max ({log2_n_max})")
    if not (math.isfinite(narrow_t) and narrow_t > 0):
        raise ParameterError(f"--narrow-t must be a finite positive number, got {narrow_t}")
    if not (math.isfinite(ball_max_seconds) and ball_max_seconds >= 0):
        raise ParameterError(f"--ball-max-seconds must be a finite number >= 0, got {ball_max_seconds}")
    if repeat < 1:
        raise ParameterError(f"--repeat must be positive, got {repeat}")
    n, d = 2**log2_n_max, max(dims)
    check_memory(memory_bytes(n, d, n <= 2**attention_max_log2_n), max_memory,
                 f"bench ann at n = 2^{log2_n_max}, d = {d}")


def _case(n: int, d: int, regime: str, narrow_t: float, seed: int) -> tuple:
    if regime == "wide":
        eps = 0.5
        t = max_far_distance(n, d) / (1 + eps)
    else:
        eps, t = 1.0, narrow_t
    t0 = time.perf_counter()
    built = planted(n, d, t, eps, max(1, n // 16), seed)
    return built, time.perf_counter() - t0


def measure(n: int, d: int, regime: str, *, narrow_t: float = 3.0, ball_max_seconds: float = 20.0,
            attention_max_log2_n: int = 12, repeat: int = 1, seed: int = 0) -> dict:
    """One row of the benchmark: every method on one planted instance."""
    from ..ann_chain import run_ann_chain

    built, build_s = _case(n, d, regime, narrow_t, seed)
    inst = built.instance
    est = DEFAULT_COST_MODEL.estimate(n, n, d, inst.t, even_only=True)
    row: dict = {"n": n, "d": d, "regime": regime, "t": inst.t, "eps": inst.eps, "build_seconds": build_s,
                 "auto": min(METHODS, key=lambda m: est[m]), "estimates": est}
    truth = built.expected_yes
    for m in METHODS:
        if m == "ball" and est["ball"] > ball_max_seconds:
            row[m] = None
            continue
        sols = [solve_gap_ann(inst, m) for _ in range(max(1, repeat))]
        row[m] = min(s.seconds for s in sols)
        row[f"{m}_correct"] = all(bool(np.array_equal(s.yes, truth)) for s in sols)
    row["attention"] = row["attention_oracle"] = None
    if n <= 2**attention_max_log2_n:
        t0 = time.perf_counter()
        res = run_ann_chain(inst, expected=truth, direct_method="gemm")
        row["attention"] = time.perf_counter() - t0
        row["attention_oracle"] = res.timings["oracle"]
        row["attention_agrees"] = bool(res.agree_with_direct and res.ground_truth_agrees)
    done = [m for m in METHODS if row[m] is not None]
    row["fastest"] = min(done, key=lambda m: row[m])
    return row


def run(*, log2_n_min: int = 10, log2_n_max: int = 14, dims: list[int] | tuple[int, ...] = (64, 128, 256, 512),
        attention_max_log2_n: int = 12, narrow_t: float = 3.0, narrow: bool = True,
        ball_max_seconds: float = 20.0, repeat: int = 1, seed: int = 0, max_memory: int | None = None,
        progress: Progress | None = None) -> AnnBenchResult:
    """Every decider on the grid ``regime x d x n``."""
    dims = list(dims)
    check_arguments(dims=dims, log2_n_min=log2_n_min, log2_n_max=log2_n_max, narrow_t=narrow_t,
                    ball_max_seconds=ball_max_seconds, attention_max_log2_n=attention_max_log2_n, repeat=repeat,
                    max_memory=max_memory)
    regimes = ["wide"] + (["narrow"] if narrow else [])
    grid = [(r, d, 2**k) for r in regimes for d in dims for k in range(log2_n_min, log2_n_max + 1)]
    result = AnnBenchResult()
    for i, (regime, d, n) in enumerate(grid):
        result.rows.append(measure(n, d, regime, narrow_t=narrow_t, ball_max_seconds=ball_max_seconds,
                                   attention_max_log2_n=attention_max_log2_n, repeat=repeat, seed=seed))
        if progress is not None:
            progress(i + 1, len(grid))
    return result
