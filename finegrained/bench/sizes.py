"""Calibration of the declared size maps against real runs of the chain (``finegrained bench sizes``).

For each number of variables ``N``, a seeded random 3-SAT formula at the given clause ratio goes through one route
to attention (``aattc``: k-SAT -> OV -> Gap-ANN -> AAttC, the default; ``attention``: k-SAT -> OV -> Attention,
whose last step declares ``n_q = n_a``, ``n_k = n_b + 1``, ``d = m + 1``, ``B = lambda = 2 ln(8 n_b)``). Every
instance of the trace is measured (:func:`reductions.sizes.measure`) and compared with the composed map the
reductions declare (:func:`reductions.sizes.compose`) evaluated at that ``N`` and ``m``; then the attention oracle
is timed on the chain's ``(Q, K, V)`` (best of ``repeat``).

Reported: every measured size against its declared value, the largest relative mismatch (integer sizes must
match exactly; real sizes such as ``B`` and ``beta`` are float64 computations and agree to rounding), and the
least-squares exponent of oracle time against ``n_q * n_k * d~``, the work of the score matrix, over all ``N`` and
over the largest half (small ``N`` are dominated by fixed overheads). An exponent near 1 is what the declared
sizes predict for an oracle that computes every score. The exact oracle merges identical keys and queries, and
the chain's instances have many (the padding rows of Lemma 4.7, and split-and-list vectors that coincide when a
half-assignment satisfies the same clauses), so for it the run also times ``dedupe=False``: that variant computes
every score and is the one whose time the declared sizes predict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from instances.errors import ParameterError
from instances.generators import random_ksat
from reductions.sizes import measure

from ..attention import resolve_oracle
from ..attention.exact import exact
from .chain import check_arguments as chain_grid
from .chain import route_chain
from .timing import Progress, best_of, fit_exponent, fit_upper_half

#: Clause width of the random formulas: N must be at least this.
K = 3
#: A real size whose declared and measured values differ by more than this (relative) is a counterexample, the
#: tolerance :func:`reductions.sizes.size_mismatches` uses in ``check_reduction``.
REAL_TOLERANCE = 1e-9


def _relative(declared: float, measured: float) -> float:
    if declared == measured:
        return 0.0
    return abs(declared - measured) / max(abs(declared), abs(measured))


@dataclass
class SizesBenchResult:
    """Rows ``{N, m, n_q, n_k, d, work, oracle_s[, plain_s], max_mismatch_integer, max_mismatch_real, sizes}``.

    ``sizes`` maps ``"problem.name"`` to ``[declared, measured]`` for every size of every stage. ``exponent`` and
    ``exponent_upper_half`` are the fitted exponents of ``oracle_s`` against ``work = n_q n_k d``;
    ``exponent_plain*`` those of ``plain_s``, the exact oracle without merging identical rows (exact oracle only).
    """

    oracle: str
    params: str | None
    ratio: float
    repeat: int
    rows: list[dict] = field(default_factory=list)
    exponent: float | None = None
    exponent_upper_half: float | None = None
    exponent_plain: float | None = None
    exponent_plain_upper_half: float | None = None
    benchmark: str = "sizes"
    route: str = "aattc"

    @property
    def max_mismatch_integer(self) -> float:
        """The largest relative mismatch of an integer size over every run (0 when the maps are right)."""
        return max((r["max_mismatch_integer"] for r in self.rows), default=0.0)

    @property
    def max_mismatch_real(self) -> float:
        """The largest relative mismatch of a real size (float64 rounding when the maps are right)."""
        return max((r["max_mismatch_real"] for r in self.rows), default=0.0)

    @property
    def consistent(self) -> bool:
        """Whether every measured size equals its declared value (integers exactly, reals to 1e-9)."""
        return self.max_mismatch_integer == 0 and self.max_mismatch_real <= REAL_TOLERANCE

    def to_dict(self) -> dict:
        return {**asdict(self), "max_mismatch_integer": self.max_mismatch_integer,
                "max_mismatch_real": self.max_mismatch_real, "consistent": self.consistent}


def check_arguments(*, vars_min: int, vars_max: int, step: int, ratio: float, repeat: int, params: str,
                    max_memory: int | None) -> list[int]:
    """The grid of N, checked as ``bench chain`` checks it (:func:`finegrained.bench.chain.check_arguments`),
    plus the parameter mode."""
    if params not in ("tight", "paper"):
        raise ParameterError(f"--params must be tight or paper, got {params!r}")
    return chain_grid(vars_min=vars_min, vars_max=vars_max, step=step, ratio=ratio, repeat=repeat,
                      max_memory=max_memory)


def run(*, vars_min: int = 4, vars_max: int = 16, step: int = 1, ratio: float = 4.26, params: str = "tight",
        oracle: str = "exact", repeat: int = 3, seed: int = 0, max_memory: int | None = None,
        progress: Progress | None = None, route: str = "aattc") -> SizesBenchResult:
    """Measure every stage's sizes against the declared map and time the oracle, for ``N = vars_min..vars_max``
    on ``route`` (``aattc`` or ``attention``, :data:`finegrained.chain.ROUTES`)."""
    grid = check_arguments(vars_min=vars_min, vars_max=vars_max, step=step, ratio=ratio, repeat=repeat,
                           params=params, max_memory=max_memory)
    chain = route_chain(route, params)
    name, fn = resolve_oracle(oracle)
    stages = chain.sizes
    result = SizesBenchResult(oracle=name, params=params if route == "aattc" else None, ratio=ratio, repeat=repeat,
                              route=route)
    for i, n in enumerate(grid):
        f = random_ksat(n, round(ratio * n), K, seed=seed + n)
        trace = chain.forward_trace(f)
        sizes: dict[str, list[float]] = {}
        worst = {"integer": 0.0, "real": 0.0}
        for stage, instance in zip(stages, trace):
            declared = stage.at({"N": f.num_vars, "m": f.num_clauses})
            measured = measure(instance)
            for key, want in declared.items():
                if key not in measured:
                    raise ParameterError(f"declared size {stage.problem}.{key} is not measured on the chain's "
                                         f"{type(instance).__name__}")
                got = measured[key]
                sizes[f"{stage.problem}.{key}"] = [want, got]
                kind = "integer" if isinstance(want, int) else "real"
                worst[kind] = max(worst[kind], _relative(float(want), float(got)))
        att = trace[-1]
        seconds, _ = best_of(lambda: fn(att.Q, att.K, att.V, scale=att.scale), repeat=repeat)  # noqa: B023
        row = {"N": n, "m": f.num_clauses, "n_q": att.n_q, "n_k": att.n_k, "d": att.dim,
               "work": att.n_q * att.n_k * att.dim, "oracle_s": seconds}
        if name == "exact":  # resolve_oracle wraps the function, so compare names
            row["plain_s"], _ = best_of(lambda: exact(att.Q, att.K, att.V, scale=att.scale,  # noqa: B023
                                                      dedupe=False), repeat=repeat)
        row.update({"max_mismatch_integer": worst["integer"], "max_mismatch_real": worst["real"], "sizes": sizes})
        result.rows.append(row)
        if progress is not None:
            progress(i + 1, len(grid))
    work = [r["work"] for r in result.rows]
    times = [r["oracle_s"] for r in result.rows]
    result.exponent = fit_exponent(work, times)
    result.exponent_upper_half = fit_upper_half(work, times)
    if all("plain_s" in r for r in result.rows):
        plain = [r["plain_s"] for r in result.rows]
        result.exponent_plain = fit_exponent(work, plain)
        result.exponent_plain_upper_half = fit_upper_half(work, plain)
    return result
