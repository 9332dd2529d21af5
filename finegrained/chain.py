"""Run the SETH chain of Alman & Song end to end: k-SAT -> OV -> Gap-ANN -> AAttC -> oracle -> answer.

The attention oracle is a black box: it receives ``Q``, ``K``, ``V`` and the scale, nothing else. Its answer goes
back through every reduction's backward map: the threshold test ``u_i >= 2 t~`` gives Gap-ANN answers, a linear
scan turns a YES row into an orthogonal pair, and the pair is a satisfying assignment.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from instances.cnf import CNFFormula
from instances.errors import ParameterError, ResourceLimitError
from instances.solutions import GapANNAnswer
from reductions import path

from .pipeline import decide
from .resources import check_memory

SCHEMA = "finegrained.chain/1"
#: The two routes from k-SAT to attention (``run_chain(route=...)``, ``finegrained chain --route``).
ROUTES: dict[str, tuple[str, str]] = {"aattc": ("k-SAT", "AAttC"), "attention": ("k-SAT", "Attention")}


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
    status : {"certified", "uncertified"}
        ``certified``: SAT with a verified assignment, or UNSAT with every row certified NO by the oracle's
        certificate. ``uncertified``: the oracle certifies nothing; the answer is its point answer.
    certificate : dict
        What the oracle certified (``kind``, ``log_bound``, ``description``).
    reason : str
        Why the answer is not certified (empty when it is).
    oracle_info : dict
        What the oracle reported about its run (e.g. ``backend`` and ``workers`` of the exact oracle).
    trace : list
        The instances of every stage and the oracle output (not serialised).
    rows : GapANNAnswer
        The per-row threshold decisions with margins and undecided rows (not serialised).
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
    status: str = "certified"
    route: str = "aattc"
    oracle_info: dict = field(default_factory=dict)
    certificate: dict = field(default_factory=dict)
    reason: str = ""
    trace: list = field(default_factory=list, repr=False)
    rows: GapANNAnswer | None = field(default=None, repr=False)

    @property
    def certified(self) -> bool:
        """Whether the SAT/UNSAT answer is proved (see :attr:`status`)."""
        return self.status == "certified"

    @property
    def answer(self) -> str:
        """``"SAT"``, ``"UNSAT"``, or ``"UNSAT (uncertified)"``."""
        word = "SAT" if self.satisfiable else "UNSAT"
        return word if self.certified else f"{word} (uncertified)"

    def __repr__(self) -> str:
        n = self.stages[0]["num_vars"] if self.stages else "?"
        return (f"ChainResult({self.answer}, verified={self.verified}, route={self.route!r}, oracle={self.oracle!r}, "
                f"params={self.params!r}, N={n}, rows={self.decision.get('rows')}, "
                f"yes_rows={self.decision.get('yes_rows')})")

    def _repr_markdown_(self) -> str:
        """A compact report for Jupyter: the answer, the stages and the certificate."""
        p = self.parameters
        lines = [f"**{self.answer}**" + (" — assignment verified" if self.satisfiable and self.verified else ""),
                 "", "| stage | n | d |", "| --- | --- | --- |"]
        lines += [f"| {s['problem']} | {s['n']} | {s['d']} |" for s in self.stages]
        lines += ["", f"oracle `{self.oracle}` ({self.certificate.get('description', 'no certificate')}), "
                  f"route `{self.route}`, params `{self.params}`"]
        if "beta" in p:
            lines.append(f"β = {p['beta']:.6g}, B = {p['B']:.4g} (B/√ln n = {p.get('B_over_sqrt_ln_n', 0):.3g}), "
                         f"log t̃ = {p['log_t_tilde']:.6g}")
        if self.reason:
            lines.append(f"*{self.reason}*")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(f"<tr><td>{escape(s['problem'])}</td><td>{s['n']}</td><td>{s['d']}</td></tr>"
                       for s in self.stages)
        p = self.parameters
        extra = (f"<p>β = {p['beta']:.6g}, B = {p['B']:.4g} (B/√ln n = {p.get('B_over_sqrt_ln_n', 0):.3g}), "
                 f"log t̃ = {p['log_t_tilde']:.6g}</p>") if "beta" in p else ""
        reason = f"<p><em>{escape(self.reason)}</em></p>" if self.reason else ""
        verified = " (assignment verified)" if self.satisfiable and self.verified else ""
        return (f"<p><strong>{escape(self.answer)}</strong>{verified}</p>"
                f"<table><tr><th>stage</th><th>n</th><th>d</th></tr>{rows}</table>"
                f"<p>oracle <code>{escape(self.oracle)}</code> "
                f"({escape(self.certificate.get('description', 'no certificate'))}), route "
                f"<code>{self.route}</code>, params <code>{self.params}</code></p>{extra}{reason}")

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "satisfiable": self.satisfiable,
            "assignment": self.assignment,
            "verified": self.verified,
            "cdcl_satisfiable": self.cdcl_satisfiable,
            "certified": self.certified,
            "status": self.status,
            "route": self.route,
            "oracle_info": self.oracle_info,
            "certificate": self.certificate,
            "reason": self.reason,
            "oracle": self.oracle,
            "params": self.params,
            "stages": self.stages,
            "parameters": self.parameters,
            "decision": self.decision,
            "timings": self.timings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


#: Beyond this many variables the chain's size is not even estimated exactly (2^(N/2) vectors per half).
MAX_ESTIMATED_VARS = 4096


def chain_memory_bytes(num_vars: int, num_clauses: int) -> int:
    """Peak memory of the k-SAT -> AAttC chain with the exact oracle, as a conservative sum of live arrays.

    ``n_a = 2^ceil(N/2)`` and ``n_b = 2^floor(N/2)`` vectors; OV of dimension ``m`` (uint8 plus int32
    temporaries), Gap-ANN of dimension ``6m`` (uint8 plus the gadget's temporaries), float64 ``Q`` and ``K`` of
    dimension ``12m``, the oracle's scaled copies, and 256 MiB of headroom for its score tile (16 MiB by default)
    and BLAS workspaces.
    """
    if num_vars > MAX_ESTIMATED_VARS:
        raise ResourceLimitError(
            f"the chain on {num_vars} variables lists 2^{(num_vars + 1) // 2} assignments of one half: about "
            f"2^{(num_vars + 1) // 2 + math.log2(max(num_clauses, 1)) + 6:.0f} bytes, far beyond any memory"
        )
    n_a, n_b = 2 ** ((num_vars + 1) // 2), 2 ** (num_vars // 2)
    m = max(num_clauses, 1)
    ov = (n_a + n_b) * m * (1 + 8)
    gap = (n_a + n_b) * 6 * m * 4
    q_k = ((n_a + n_b) + 2 * n_b) * 12 * m * 8
    oracle = q_k + 2 * 128 * 2**20
    return int(ov + gap + 2 * q_k + oracle)


def stage_sizes(trace: list) -> list[dict]:
    """Integer sizes of every stage of a k-SAT -> AAttC (or k-SAT -> OV -> Attention) trace."""
    if len(trace) == 4:  # the attention route: formula, OV, attention instance, output
        f, ov, att = trace[:3]
        return [
            {"problem": "k-SAT", "n": f.num_vars, "d": f.num_clauses, "num_vars": f.num_vars,
             "num_clauses": f.num_clauses, "k": f.k},
            {"problem": "OV", "n": max(ov.n_a, ov.n_b), "d": ov.dim, "n_a": ov.n_a, "n_b": ov.n_b},
            {"problem": "Attention", "n": max(att.n_q, att.n_k), "d": att.dim, "n_q": att.n_q, "n_k": att.n_k,
             "d_v": int(att.V.shape[1]), "B": att.B},
        ]
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
    oracle: str | Callable[..., object] = "exact",
    params: str = "tight",
    safety: float | None = None,
    max_memory: int | None = None,
    cdcl: bool = True,
    route: str = "aattc",
) -> ChainResult:
    """Decide a CNF formula through the Alman–Song chain and an attention oracle.

    Parameters
    ----------
    cnf : CNFFormula
    oracle : str or callable
        A name from :data:`finegrained.attention.ORACLES`, ``package.module:function``, an entry-point name, or
        any callable following :class:`finegrained.attention.protocol.Oracle`.
    params : {"tight", "paper"}
        Constants for Lemma 4.7 (see :mod:`reductions.gap_ann_to_attention`).
    safety : float, optional
        Factor on ``beta_min`` in tight mode (default 1.25).
    max_memory : int, optional
        Refuse instances whose estimated peak memory exceeds this many bytes (default: half of RAM).
    cdcl : bool
        Cross-check the answer with pysat's CDCL solver.
    route : {"aattc", "attention"}
        ``aattc``: Alman & Song's k-SAT -> OV -> Gap-ANN -> AAttC (Lemma 4.7; outputs near ``e^{-2484}``, which
        only log-space oracles represent). ``attention``: Gupta et al.'s k-SAT -> OV -> Attention (Theorem 1.5
        gadget; entries ``O(log n)``, rows decided by ``u_i >= 1/2``, so float32 kernels decide it).

    Raises
    ------
    UncertifiedError
        The oracle's certified error is too large to decide the rows the answer rests on (one line naming the
        oracle, its certificate and the accuracy the instance needs).
    WrongAnswerError
        The oracle's answer is provably wrong (a YES row with no orthogonal partner).

    Examples
    --------
    >>> from instances import CNFFormula
    >>> r = run_chain(CNFFormula([[1, 2], [-1, 2], [1, -2]]))
    >>> r.satisfiable, r.assignment, r.verified
    (True, [1, 2], True)
    >>> run_chain(CNFFormula([[1], [-1]]), params="paper").satisfiable
    False
    """
    if params == "paper" and safety is not None:
        raise ParameterError(
            "a safety factor applies to the tight parameters only; the paper mode fixes beta by Eq. (9)"
        )
    check_memory(chain_memory_bytes(cnf.num_vars, cnf.num_clauses), max_memory,
                 f"the chain on {cnf.num_vars} variables and {cnf.num_clauses} clauses")
    if route not in ROUTES:
        raise ParameterError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)}")
    if route == "attention" and (params != "tight" or safety is not None):
        raise ParameterError("--params and --safety set Lemma 4.7's constants; the attention route has none")
    chain = path(*ROUTES[route], mode=params, safety=safety) if route == "aattc" else path(*ROUTES[route])
    d = decide(chain, cnf, oracle).require_certified()
    trace = d.reduced.instances + [d.answer.output]
    step_keys = ("sat_to_ov", "ov_to_gap_ann", "gap_ann_to_aattc") if route == "aattc" else (
        "sat_to_ov", "ov_to_attention")
    timings = {key: seconds for key, seconds in zip(step_keys, d.reduced.seconds)}
    timings["oracle"], timings["decode"] = d.timings["oracle"], d.timings["decode"]
    assignment = d.solution
    satisfiable = assignment is not None

    cdcl_sat = None
    t0 = time.perf_counter()
    if cdcl:
        cdcl_sat = cnf.solve_cdcl() is not None
        timings["cdcl"] = time.perf_counter() - t0
    verified = d.verified if satisfiable else cdcl_sat is False
    timings["total"] = float(sum(timings.values()))
    decision = {key: value for key, value in d.row_summary().items() if key != "certified_rows"}
    parameters = d.parameters.as_dict() if route == "aattc" else dict(d.parameters, B=trace[-2].B)
    # B against the theorem's sqrt(log n) scale, n the number of keys of the attention instance (errata: the
    # exact-gap gadget makes B = Theta(sqrt(m log n)), not Theta(sqrt(log n))).
    parameters["sqrt_ln_n"] = math.sqrt(math.log(max(trace[-2].n_k, 2)))
    parameters["B_over_sqrt_ln_n"] = parameters["B"] / parameters["sqrt_ln_n"]
    decision["log_eps_requested"] = d.log_eps_requested
    return ChainResult(
        satisfiable=satisfiable,
        assignment=assignment,
        verified=bool(verified),
        cdcl_satisfiable=cdcl_sat,
        oracle=d.oracle,
        params=params,
        stages=stage_sizes(trace),
        route=route,
        parameters=parameters,
        decision=decision,
        timings=timings,
        status=d.status,
        certificate=d.answer.certificate.to_dict(),
        reason=d.reason,
        trace=trace,
        rows=d.rows,
        oracle_info=_json_safe(d.answer.info),
    )


def _json_safe(info: dict) -> dict:
    """The JSON-representable part of an oracle's ``info`` (its backend, workers, chosen parameters)."""
    out = {}
    for key, value in (info or {}).items():
        if isinstance(value, (str, bool, int)) or value is None:
            out[key] = value
        elif isinstance(value, float) and math.isfinite(value):
            out[key] = value
    return out
