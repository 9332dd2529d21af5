"""Run the SETH chain of Alman & Song end to end: k-SAT -> OV -> Gap-ANN -> AAttC -> oracle -> answer.

The attention oracle is a black box: it receives ``Q``, ``K``, ``V`` and the scale, nothing else. Its answer goes
back through every reduction's backward map: the threshold test ``u_i >= 2 t~`` gives Gap-ANN answers, a linear
scan turns a YES row into an orthogonal pair, and the pair is a satisfying assignment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from instances.aattc import AAttCInstance
from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.logspace import LogArray
from reductions import GapANNToAAttC, path, threshold_test

from .attention import ORACLES
from .resources import chain_memory_bytes, check_memory

SCHEMA = "finegrained.chain/1"


@dataclass
class ChainResult:
    """What :func:`run_chain` found, with everything needed to audit it.

    Attributes
    ----------
    satisfiable : bool
        The chain's answer.
    assignment : list of int or None
        DIMACS literals ``±1..±N`` of a satisfying assignment when satisfiable.
    verified : bool
        Whether the answer was confirmed independently: a SAT answer by evaluating the assignment on every clause,
        an UNSAT answer by pysat's CDCL solver (when ``cdcl`` ran).
    cdcl_satisfiable : bool or None
        pysat's answer, or None if the cross-check was switched off.
    stages : list of dict
        One entry per problem with ``problem``, ``n``, ``d`` and the problem's other sizes.
    parameters : dict
        Lemma 4.7 quantities (``beta``, ``B``, ``log_tau``, ``log_t_tilde``, ``log_eps_a``, ...).
    decision : dict
        Threshold-test summary: YES rows and the margins closest to the threshold, in nats.
    timings : dict
        Seconds per step; ``oracle`` is the attention call alone.
    trace : list
        The instances of every stage and the oracle output (not serialised).
    """

    satisfiable: bool
    assignment: list[int] | None
    verified: bool
    cdcl_satisfiable: bool | None
    oracle: str
    params: str
    stages: list[dict]
    parameters: dict
    decision: dict
    timings: dict
    trace: list = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "satisfiable": self.satisfiable,
            "assignment": self.assignment,
            "verified": self.verified,
            "cdcl_satisfiable": self.cdcl_satisfiable,
            "oracle": self.oracle,
            "params": self.params,
            "stages": self.stages,
            "parameters": self.parameters,
            "decision": self.decision,
            "timings": self.timings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def resolve_oracle(oracle: str | Callable[..., LogArray]) -> tuple[str, Callable[..., LogArray]]:
    """Look up an oracle by name in :data:`finegrained.attention.ORACLES`, or accept a callable."""
    if callable(oracle):
        return getattr(oracle, "__name__", "custom"), oracle
    if oracle not in ORACLES:
        raise ParameterError(f"unknown oracle {oracle!r}; available: {', '.join(sorted(ORACLES))}")
    return oracle, ORACLES[oracle]


def call_oracle(name: str, solve: Callable[..., LogArray], att: AAttCInstance) -> tuple[LogArray, float]:
    """Ask the oracle for ``D^{-1} exp(scale Q K^T) V`` on an AAttC instance; its answer and the seconds it took.

    Anything but a LogArray with one row per query is refused with a :class:`ParameterError` naming the oracle.
    """
    t0 = time.perf_counter()
    out = solve(att.Q, att.K, att.V, scale=att.scale)
    seconds = time.perf_counter() - t0
    if not isinstance(out, LogArray) or len(out.shape) != 2 or out.shape[0] != att.n_q:
        raise ParameterError(f"oracle {name!r} returned {type(out).__name__} of the wrong shape; "
                             f"expected a LogArray of shape ({att.n_q}, {att.V.shape[1]})")
    return out, seconds


def stage_sizes(trace: list) -> list[dict]:
    """Integer sizes of every stage of a k-SAT -> AAttC trace."""
    f, ov, gap, att = trace[:4]
    return [
        {"problem": "k-SAT", "n": f.num_vars, "d": f.num_clauses, "num_vars": f.num_vars,
         "num_clauses": f.num_clauses, "k": f.k},
        {"problem": "OV", "n": max(ov.n_a, ov.n_b), "d": ov.dim, "n_a": ov.n_a, "n_b": ov.n_b},
        {"problem": "Gap-ANN", "n": max(gap.n_a, gap.n_b), "d": gap.dim, "n_a": gap.n_a, "n_b": gap.n_b,
         "t": gap.t, "eps": gap.eps},
        {"problem": "AAttC", "n": max(att.n_q, att.n_k), "d": att.dim, "n_q": att.n_q, "n_k": att.n_k,
         "d_v": int(att.V.shape[1]), "B": att.B},
    ]


def run_chain(
    cnf: CNFFormula,
    *,
    oracle: str | Callable[..., LogArray] = "exact",
    params: str = "tight",
    safety: float | None = None,
    max_memory: int | None = None,
    cdcl: bool = True,
) -> ChainResult:
    """Decide a CNF formula through the Alman–Song chain and an attention oracle.

    Parameters
    ----------
    cnf : CNFFormula
    oracle : str or callable
        A name from :data:`finegrained.attention.ORACLES` or any ``oracle(Q, K, V, *, scale) -> LogArray``.
    params : {"tight", "paper"}
        Constants for Lemma 4.7 (see :mod:`reductions.gap_ann_to_attention`).
    safety : float, optional
        Factor on ``beta_min`` in tight mode (default 1.25).
    max_memory : int, optional
        Refuse instances whose estimated peak memory exceeds this many bytes (default: half of RAM).
    cdcl : bool
        Cross-check the answer with pysat's CDCL solver.

    Examples
    --------
    >>> from instances import CNFFormula
    >>> r = run_chain(CNFFormula([[1, 2], [-1, 2], [1, -2]]))
    >>> r.satisfiable, r.assignment, r.verified
    (True, [1, 2], True)
    >>> run_chain(CNFFormula([[1], [-1]]), params="paper").satisfiable
    False
    """
    name, solve = resolve_oracle(oracle)
    if params == "paper" and safety is not None:
        raise ParameterError(
            "a safety factor applies to the tight parameters only; the paper mode fixes beta by Eq. (9)"
        )
    check_memory(chain_memory_bytes(cnf.num_vars, cnf.num_clauses), max_memory,
                 f"the chain on {cnf.num_vars} variables and {cnf.num_clauses} clauses")
    chain = path("k-SAT", "AAttC", mode=params, safety=safety)
    timings: dict[str, float] = {}
    trace = [cnf]
    for step, key in zip(chain.steps, ("sat_to_ov", "ov_to_gap_ann", "gap_ann_to_aattc")):
        t0 = time.perf_counter()
        trace.append(step.forward(trace[-1]))
        timings[key] = time.perf_counter() - t0
    att = trace[-1]

    out, timings["oracle"] = call_oracle(name, solve, att)
    trace.append(out)

    t0 = time.perf_counter()
    gap_step: GapANNToAAttC = chain.steps[-1]  # type: ignore[assignment]
    lemma = gap_step.derive(trace[2])
    yes, margin = threshold_test(lemma, out[: trace[2].n_a, 0])  # reported margins; backward decides
    assignment = chain.backward(cnf, out, trace[:4])
    timings["decode"] = time.perf_counter() - t0

    satisfiable = assignment is not None
    cdcl_sat = None
    t0 = time.perf_counter()
    if cdcl:
        cdcl_sat = cnf.solve_cdcl() is not None
        timings["cdcl"] = time.perf_counter() - t0
    verified = cnf.is_satisfied_by(assignment) if satisfiable else cdcl_sat is False
    timings["total"] = float(sum(timings.values()))

    decision = {
        "rows": int(yes.size),
        "yes_rows": int(yes.sum()),
        "min_yes_margin": float(margin[yes].min()) if yes.any() else None,
        "max_no_margin": float(margin[~yes].max()) if (~yes).any() and np.isfinite(margin[~yes]).any() else None,
    }
    return ChainResult(
        satisfiable=satisfiable,
        assignment=assignment,
        verified=bool(verified),
        cdcl_satisfiable=cdcl_sat,
        oracle=name,
        params=params,
        stages=stage_sizes(trace),
        parameters=lemma.as_dict(),
        decision=decision,
        timings=timings,
        trace=trace,
    )
