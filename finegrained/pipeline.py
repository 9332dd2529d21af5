r"""One decision pipeline: reduce, call the oracle once, run the certified threshold test, extract, verify, time.

:func:`decide` is the only place where a chain of reductions meets an attention oracle. Every route that decides
something through attention (:func:`finegrained.run_chain`, the Gap-ANN route, validation, the benchmarks) calls
it, so the rules below hold everywhere:

* the oracle is asked for the accuracy the instance needs (Lemma 4.7: additive ``min(eps_a, t~/2)``, see
  :attr:`~reductions.gap_ann_to_attention.Lemma47Parameters.log_eps_needed`), and its answer is trusted only as
  far as its :class:`~finegrained.attention.protocol.Certificate` goes;
* a row is decided only when its certified interval lies on one side of ``2 t~``;
* a positive answer (SAT, an orthogonal pair) is *certified* when the extracted solution checks out on the
  source instance, whatever the oracle's certificate; a negative answer (UNSAT, no pair, a NO row) is certified
  only when every row it rests on was decided;
* an oracle that certifies nothing still gets an answer, marked ``status = "uncertified"``; an oracle whose
  certificate is too coarse for this instance gets ``status = "undecided"``, and
  :meth:`Decision.require_certified` turns that into one :class:`~instances.errors.UncertifiedError` line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instances.cnf import CNFFormula
from instances.errors import ParameterError, UncertifiedError
from instances.logspace import LOG_TINY
from instances.ov import OVInstance
from instances.solutions import GapANNAnswer, OrthogonalPair
from reductions.base import Chain, ChainReduced

from .attention import resolve_oracle
from .attention.protocol import OracleAnswer, call_oracle

STATUSES = ("certified", "uncertified", "undecided")


def _fmt_e(x: float) -> str:
    return f"e^{x:.6g}" if math.isfinite(x) else ("0" if x < 0 else "inf")


@dataclass
class Decision:
    """Everything :func:`decide` found.

    Attributes
    ----------
    solution : object
        The source solution: DIMACS literals or None for k-SAT, an OrthogonalPair or None for OV, a
        GapANNAnswer for Gap-ANN.
    status : {"certified", "uncertified", "undecided"}
        ``certified``: the answer is proved (verified positive answer, or every row certified NO);
        ``uncertified``: the oracle certifies nothing and this is its point answer; ``undecided``: the oracle's
        certificate is too coarse to decide the rows the answer rests on.
    verified : bool
        A positive answer was checked on the source instance.
    rows : GapANNAnswer
        The per-row threshold decisions of Lemma 4.7 (point answer, undecided rows, margins).
    answer : OracleAnswer
        The oracle's output and certificate.
    reduced : ChainReduced
        Every instance of the chain.
    parameters : object
        What the last reduction derived (Lemma 4.7's parameter record).
    log_eps_requested : float or None
        The accuracy asked of the oracle (natural log of an additive error).
    reason : str
        One line saying why the answer is not certified (empty when it is).
    timings : dict
        Seconds: one entry per reduction step (``reduce:<source>-><target>``), ``oracle``, ``decode``.
    """

    solution: Any
    status: str
    verified: bool
    rows: GapANNAnswer
    answer: OracleAnswer
    oracle: str
    reduced: ChainReduced
    parameters: Any
    log_eps_requested: float | None
    reason: str = ""
    timings: dict = field(default_factory=dict)

    @property
    def certified(self) -> bool:
        return self.status == "certified"

    def require_certified(self) -> Decision:
        """Return ``self`` unless the oracle's certificate was too coarse; then raise UncertifiedError."""
        if self.status == "undecided":
            raise UncertifiedError(self.reason)
        return self

    def row_summary(self) -> dict:
        """Counts and closest margins (nats) of the per-row decisions, for reports."""
        r = self.rows
        yes, margin = r.yes, r.margin if r.margin is not None else np.full(r.yes.shape, np.nan)
        no = ~yes
        finite_no = margin[no & np.isfinite(margin)]
        return {
            "rows": int(yes.size),
            "yes_rows": int(yes.sum()),
            "undecided_rows": int(r.undecided.sum()) if r.certified else None,
            "certified_rows": int(r.decided.sum()),
            "min_yes_margin": float(margin[yes].min()) if yes.any() else None,
            # NO rows whose output is <= 0 have margin -inf; JSON says "-inf" rather than null, which would
            # read as "no NO rows".
            "max_no_margin": (float(finite_no.max()) if finite_no.size else "-inf") if no.any() else None,
            "nonpositive_rows": int((self.answer.output.sign[: yes.size, 0] <= 0).sum()) if yes.size else 0,
        }


def _param(params: Any, key: str) -> Any:
    """A derived parameter from a parameter record or a dict (None when the reduction derives no such thing)."""
    if isinstance(params, dict):
        return params.get(key)
    return getattr(params, key, None)


def _verify(source: Any, solution: Any) -> bool:
    """Whether a positive answer checks out on the source instance (False for a negative answer)."""
    if solution is None:
        return False
    if isinstance(source, CNFFormula):
        return bool(source.is_satisfied_by(solution))
    if isinstance(source, OVInstance) and isinstance(solution, OrthogonalPair):
        return int(np.dot(source.A[solution.i].astype(np.int64), source.B[solution.j].astype(np.int64))) == 0
    return False


def decide(chain: Chain, instance: Any, oracle: str | Callable[..., Any] = "exact", *,
           log_eps: float | None = None, reduced: ChainReduced | None = None) -> Decision:
    """Decide ``instance`` through ``chain`` (ending in Lemma 4.7's AAttC) and one call of ``oracle``.

    Parameters
    ----------
    chain : Chain
        A path of the reduction graph ending in attention: Lemma 4.7 (``path("k-SAT", "AAttC")``) or the
        Theorem 1.5 gadget (``path("k-SAT", "Attention")``); its last step decides rows (``decide_rows``).
    instance : object
        A source instance of ``chain``.
    oracle : str or callable
        A name, ``package.module:function``, or a callable following
        :class:`~finegrained.attention.protocol.Oracle`.
    log_eps : float, optional
        The accuracy to ask of the oracle (natural log of an additive error); default: what the instance needs.
    reduced : ChainReduced, optional
        ``chain.reduce(instance)`` if the caller already has it (e.g. to build an omniscient adversary from the
        derived parameters before the oracle call); it is not recomputed.

    Returns
    -------
    Decision

    Examples
    --------
    >>> from reductions import path
    >>> d = decide(path("k-SAT", "AAttC"), CNFFormula([[1, 2], [-1, 2], [1, -2]]))
    >>> d.solution, d.status, d.verified
    ([1, 2], 'certified', True)
    >>> d = decide(path("k-SAT", "AAttC"), CNFFormula([[1], [-1]]), "lev")
    >>> d.solution, d.status
    (None, 'uncertified')
    """
    name, solve = resolve_oracle(oracle)
    timings: dict[str, float] = {}
    if reduced is None:
        reduced = chain.reduce(instance)
    elif reduced.source is not instance:
        raise ParameterError("the reduced chain given to decide() was built from another instance")
    elif [r.reduction for r in reduced.steps] != list(chain.steps):
        raise ParameterError("the reduced chain given to decide() was built by other reductions than `chain`")
    for step, seconds in zip(chain.steps, reduced.seconds):
        timings[f"reduce:{step.source}->{step.target}"] = seconds
    last = reduced.steps[-1]
    params = last.parameters
    att = last.target
    if not hasattr(last.reduction, "decide_rows"):
        raise ParameterError(f"decide() needs a chain ending in attention; {chain.target} is decided by no oracle")
    needed = _param(params, "log_eps_needed")
    ask = needed if log_eps is None else float(log_eps)

    answer, timings["oracle"] = call_oracle(name, solve, att.Q, att.K, att.V, scale=att.scale, log_eps=ask)

    t0 = time.perf_counter()
    log_threshold = _param(params, "log_threshold")
    if answer.from_float and log_threshold is not None and log_threshold < answer.float_log_tiny:
        formats = "every float format" if log_threshold < LOG_TINY else "the range of the oracle's float type"
        raise UncertifiedError(
            f"oracle {name!r} returned float values, but this instance needs log-space outputs of magnitude "
            f"{_fmt_e(log_threshold)} (the threshold 2t~), below {formats}: a float kernel reads them "
            "as 0. Return a LogArray/OracleAnswer, or use the float-decidable route (k-SAT -> OV -> Attention)"
        )
    bounds = answer.bounds()
    rows: GapANNAnswer = last.reduction.decide_rows(last, bounds)
    solution = last.extract(rows)
    for step in reversed(reduced.steps[:-1]):
        solution = step.extract(solution)
    timings["decode"] = time.perf_counter() - t0

    source = reduced.source
    verified = _verify(source, solution)
    cert = answer.certificate
    # a negative answer (UNSAT, no pair, a NO row) rests on every row: one undecided row leaves it unproved
    if verified:
        status, reason = "certified", ""
    elif not cert.certified:
        status = "uncertified"
        reason = f"oracle {name!r} certifies no error bound, so this answer is its point answer, not a proof"
    elif _param(params, "gap_condition_holds") is False:
        status = "uncertified"
        reason = ("the gap condition of Lemma 4.7 fails at this beta (beta < beta_min), so no row can be "
                  "certified")
    elif rows.undecided.any():
        status = "undecided"
        k = int(rows.undecided.sum())
        need = _fmt_e(needed) if needed is not None else "a smaller error"
        reason = (f"oracle {name!r} certifies {cert.describe()}, but this instance needs additive error <= "
                  f"{need}: {k} of {rows.yes.size} rows are undecided, so no certified answer")
    else:
        status, reason = "certified", ""
    return Decision(solution=solution, status=status, verified=verified, rows=rows, answer=answer, oracle=name,
                    reduced=reduced, parameters=params, log_eps_requested=ask, reason=reason, timings=timings)


__all__ = ["STATUSES", "Decision", "decide"]
