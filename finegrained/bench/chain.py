"""The chain's attention oracle against a bare float64 ``Q @ K.T`` of the same shapes (``finegrained bench chain``).

For each number of variables ``N``, a seeded random 3-SAT formula at clause ratio 4.26 is pushed through one
route to attention (:data:`finegrained.chain.ROUTES`: ``aattc``, k-SAT -> OV -> Gap-ANN -> AAttC, by default, or
``attention``, Gupta et al.'s k-SAT -> OV -> Attention); then, in the same run and alternately, the oracle call
on the reduction's ``(Q, K, V)`` and a bare ``Q @ K.T`` are timed (best of ``repeat``), and their ratio is
reported. For the exact oracle the run also times it with ``dedupe=False``: merging identical keys and queries
(the padding rows of Lemma 4.7 are all alike) halves both sides of the product, so the plain variant is the one
that measures the oracle's overhead over the scores.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from instances.errors import ParameterError, short_repr
from instances.generators import random_ksat
from reductions import path

from ..attention import resolve_oracle
from ..attention.exact import exact, exact_oracle
from ..chain import ROUTES, chain_memory_bytes
from ..resources import check_memory
from .timing import Progress, best_interleaved

#: Clause width of the random formulas: N must be at least this (each clause has K distinct variables).
K = 3


@dataclass
class ChainBenchResult:
    """Rows ``{N, m, n_q, n_k, d, oracle_s, gemm_s, ratio[, oracle_no_dedupe_s, ratio_no_dedupe]}``."""

    oracle: str
    params: str | None
    repeat: int
    rows: list[dict] = field(default_factory=list)
    benchmark: str = "chain"
    route: str = "aattc"

    @property
    def max_ratio(self) -> float | None:
        return max((r["ratio"] for r in self.rows), default=None)

    @property
    def geomean_ratio(self) -> float | None:
        return float(np.exp(np.mean([np.log(r["ratio"]) for r in self.rows]))) if self.rows else None

    def to_dict(self) -> dict:
        return {**asdict(self), "max_ratio": self.max_ratio, "geomean_ratio": self.geomean_ratio}


# m = round(ratio * N) is exact only while ratio * N is an integer-spaced float64
MAX_CLAUSES = 2**53


def clause_count(ratio: float, n: int) -> int:
    """The number of clauses ``round(ratio * n)`` of the random formula at ``n`` variables.

    Raises :class:`ParameterError` for a ratio that is not finite and positive, or whose clause count at ``n`` is
    not a finite number below 2^53 (beyond it ``round`` is no longer exact, and at inf it has no value).

    Examples
    --------
    >>> clause_count(4.26, 20)
    85
    """
    try:
        r = float(ratio)
    except (TypeError, ValueError, OverflowError):
        r = math.nan
    if isinstance(ratio, (str, bytes, bool)) or not (math.isfinite(r) and r > 0):
        raise ParameterError(f"--ratio must be a finite positive number, got {short_repr(ratio)}")
    m = r * n
    if not m < MAX_CLAUSES:
        raise ParameterError(f"--ratio {r:g} gives {m:.3g} clauses at N = {n}; at most 2^53 are supported")
    return round(m)


def check_arguments(*, vars_min: int, vars_max: int, step: int, ratio: float, repeat: int,
                    max_memory: int | None) -> list[int]:
    """The grid of N; :class:`ParameterError` for one that is empty or cannot be built, and
    :class:`~instances.errors.ResourceLimitError` for a largest N whose chain would not fit in memory."""
    if vars_min < K:
        raise ParameterError(f"--vars-min must be at least {K} (random {K}-SAT needs {K} distinct variables per "
                             f"clause), got {vars_min}")
    if vars_min > vars_max:
        raise ParameterError(f"--vars-min ({vars_min}) must be at most --vars-max ({vars_max})")
    if step < 1 or repeat < 1:
        raise ParameterError(f"--step and --repeat must be positive, got {step} and {repeat}")
    if clause_count(ratio, vars_min) < 1:
        raise ParameterError(f"--ratio {float(ratio):g} gives no clauses at N = {vars_min}; use a larger ratio")
    grid = list(range(vars_min, vars_max + 1, step))
    n_top = grid[-1]
    m_top = clause_count(ratio, n_top)
    check_memory(chain_memory_bytes(n_top, m_top), max_memory, f"bench chain at N = {n_top}, m = {m_top}")
    return grid


def route_chain(route: str, params: str = "tight"):
    """The chain of ``route`` (:data:`finegrained.chain.ROUTES`); Lemma 4.7's ``params`` apply to ``aattc`` only.

    Raises :class:`ParameterError` for an unknown route, or for ``params`` other than ``tight`` on ``attention``
    (whose gadget has no such constants).
    """
    if route not in ROUTES:
        raise ParameterError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)}")
    if route == "aattc":
        return path(*ROUTES[route], mode=params)
    if params != "tight":
        raise ParameterError("--params sets Lemma 4.7's constants; the attention route has none")
    return path(*ROUTES[route])


def run(*, vars_min: int = 12, vars_max: int = 24, step: int = 2, ratio: float = 4.26, params: str = "tight",
        oracle: str = "exact", repeat: int = 7, seed: int = 0, max_memory: int | None = None,
        progress: Progress | None = None, route: str = "aattc") -> ChainBenchResult:
    """Time the oracle against ``Q @ K.T`` for ``N = vars_min, vars_min + step, ..., vars_max`` on ``route``."""
    chain = route_chain(route, params)
    grid = check_arguments(vars_min=vars_min, vars_max=vars_max, step=step, ratio=ratio, repeat=repeat,
                           max_memory=max_memory)
    name, fn = resolve_oracle(oracle)
    result = ChainBenchResult(oracle=name, params=params if route == "aattc" else None, repeat=repeat, route=route)
    for i, n in enumerate(grid):
        f = random_ksat(n, clause_count(ratio, n), K, seed=seed + n)
        att = chain.forward(f)
        Q, Km, V = att.Q, att.K, att.V
        fns = [lambda: fn(Q, Km, V, scale=att.scale), lambda: Q @ Km.T]  # noqa: B023
        if fn is exact or fn is exact_oracle:
            fns.append(lambda: exact(Q, Km, V, scale=att.scale, dedupe=False))  # noqa: B023
        times = best_interleaved(fns, repeat)
        row = {"N": n, "m": f.num_clauses, "n_q": att.n_q, "n_k": att.n_k, "d": att.dim,
               "oracle_s": times[0], "gemm_s": times[1], "ratio": times[0] / times[1]}
        if len(times) > 2:
            row.update({"oracle_no_dedupe_s": times[2], "ratio_no_dedupe": times[2] / times[1]})
        result.rows.append(row)
        if progress is not None:
            progress(i + 1, len(grid))
    return result
