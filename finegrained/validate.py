r"""Validate the threshold test of Lemma 4.7 row by row: ``u_i >= 2 t~`` against brute-force ground truth.

For a Gap-ANN instance (Definition 4.5) the corrected Lemma 4.7 (``docs/errata.md``) builds ``Q, K, V``, an
oracle answers ``u = D^{-1} A V``, and row ``i`` is decided YES iff ``log u_i >= log 2 t~``. This module checks
every link of that argument on a concrete instance:

* **ground truth** by brute force: ``H_i = min_j ||a_i - b_j||_0``; YES (Case 1) iff ``H_i < t``, NO (Case 2)
  iff ``H_i >= (1+eps) t``, otherwise the row is outside the promise and either answer is correct;
* **the decision** of the threshold test on the oracle's answer and its margin ``log u_i - log 2t~`` in nats;
* **the proof's per-row bounds** on the *exact* ``u_i`` at the row's own distance ``H_i``: Case 2a
  ``u_i > e^{beta/4 (1 - H_i/d)} / (2 n tau)`` for YES rows, Case 2b ``u_i < e^{beta/4 (1 - H_i/d)} / tau`` for NO
  rows (:meth:`~reductions.gap_ann_to_attention.Lemma47Parameters.case_2a_log_lower`, ``case_2b_log_upper``);
* **robustness**: the largest error ``eps`` at which an omniscient adversary
  (:func:`finegrained.attention.adversarial.adversarial`) still flips no decision, found by bisection in
  ``log eps`` and compared with ``log t~`` and ``log eps_a`` (the slack in nats).

:func:`beta_sweep` repeats the decision for ``beta`` on a log grid around ``beta_min`` (the gap condition of E5).
Everything is computed in log space; nothing of size ``exp(-10^4)`` is ever exponentiated.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import mpmath
import numpy as np

from instances.cnf import CNFFormula
from instances.errors import ParameterError, ResourceLimitError, real_number
from instances.gap_ann import NO, OUTSIDE_PROMISE, YES, GapANNInstance
from instances.logspace import LogArray
from instances.ov import OVInstance
from instances.solutions import GapANNAnswer
from reductions import Chain, GapANNToAAttC, Lemma47Parameters, ov_to_attention, path
from reductions.base import expect
from reductions.ov_to_attention import DEFAULT_FACTOR, OVToAttention

from .attention import resolve_oracle
from .attention.adversarial import adversarial, analytic_log_slack, max_tolerated_log_eps
from .attention.exact import exact, exact_oracle
from .attention.reference import DEFAULT_DPS, log_relative_error, reference
from .chain import chain_memory_bytes
from .pipeline import decide
from .resources import check_memory

SCHEMA = "finegrained.validate/1"
SWEEP_SCHEMA = "finegrained.validate.sweep/1"
#: Most points a beta sweep takes.
MAX_SWEEP_POINTS = 1000
_STATUS = {YES: "YES", NO: "NO", OUTSIDE_PROMISE: "outside"}
#: Rounding allowance (relative, in nats) when comparing an exact ``log u_i`` with its proven bound: the bounds
#: are strict in exact arithmetic, but e.g. Case 2b's slack ``log(1 + e^{-beta/2})`` is far below float64.
_BOUND_RTOL = 1e-9


def _float_value(u: LogArray) -> np.ndarray:
    """``u`` as float64, with ``+-inf`` where ``|u|`` overflows (a huge adversarial push), without a warning: the
    library never prints, and the JSON report turns those entries into null."""
    with np.errstate(over="ignore"):
        return u.sign * np.exp(u.log_abs)


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _rows_json(rows: dict[str, np.ndarray]) -> dict:
    """The row columns as JSON lists: non-finite floats as null, ``in_bound`` as true/false (null for -1: no bound)."""
    out = {}
    for key, col in rows.items():
        if col.dtype.kind == "f":
            out[key] = [_finite_or_none(x) for x in col.tolist()]
        elif key == "in_bound":
            out[key] = [None if x < 0 else bool(x) for x in col.tolist()]
        else:
            out[key] = col.tolist()
    return out


def _row_summary(r: dict[str, np.ndarray], certification: str, certificate: dict) -> dict:
    """The summary entries both routes share: row counts, wrong rows, the closest margins, rows outside a bound."""
    yes_rows, no_rows = r["status"] == "YES", r["status"] == "NO"
    wrong = np.flatnonzero(~r["correct"])
    return {
        "rows": int(r["index"].size),
        "yes_rows": int(yes_rows.sum()),
        "no_rows": int(no_rows.sum()),
        "outside_promise_rows": int((r["status"] == "outside").sum()),
        "all_correct": bool(wrong.size == 0),
        "certified_rows": int(r["certified"].sum()) if "certified" in r else None,
        "certification": certification,
        "certificate": certificate.get("description"),
        "wrong_rows": wrong.tolist(),
        "min_yes_margin": _finite_or_none(r["margin"][yes_rows].min()) if yes_rows.any() else None,
        "min_abs_no_margin": _finite_or_none((-r["margin"][no_rows]).min()) if no_rows.any() else None,
        "rows_outside_bound": np.flatnonzero(r["in_bound"] == 0).tolist(),
    }


@dataclass
class ValidationReport:
    """Per-row threshold-test validation of one Gap-ANN instance (see the module docstring).

    Attributes
    ----------
    source : str
        Where the instance came from (a file name or a description).
    oracle : str
        The oracle whose answer was decided.
    parameters : Lemma47Parameters
    rows : dict of numpy arrays
        One array per column, one entry per real query row: ``index``, ``min_distance``, ``status``
        (``"YES"``/``"NO"``/``"outside"``), ``truth`` (``H_i < t``), ``sign_u`` and ``log_u`` (the oracle's
        answer), ``log_u_exact``, ``decision``, ``margin`` (nats), ``correct``, ``bound_case`` (``"2a"``,
        ``"2b"`` or ``""``), ``log_bound``, ``bound_slack`` (nats, positive = inside) and ``in_bound``.
    log_eps_adv : float or None
        The adversary's ``log eps`` when the oracle is adversarial.
    max_tolerated_log_eps : float
        Bisection result: the largest ``log eps`` an omniscient adversary can add to the exact answer without
        flipping a decision.
    analytic_log_slack : float
        The same quantity in closed form, ``log min_i |u_i - 2 t~|`` (a cross-check of the bisection).
    timings : dict
        Seconds for ``reduction``, ``oracle``, ``exact``, ``bisection``.
    certificate : dict
        What the oracle certified; the row column ``certified`` says which rows its certificate decides.
    certification : {"certified", "uncertified", "undecided"}
        The status :func:`finegrained.pipeline.decide` gives the whole answer.
    reason : str
        Why it is not certified (empty when it is).
    """

    source: str
    oracle: str
    parameters: Lemma47Parameters
    rows: dict[str, np.ndarray]
    log_eps_adv: float | None
    max_tolerated_log_eps: float
    analytic_log_slack: float
    timings: dict = field(default_factory=dict)
    certificate: dict = field(default_factory=dict)
    certification: str = "certified"
    reason: str = ""

    @property
    def summary(self) -> dict:
        """Counts, the closest margins, rows outside their bound and the robustness slack (all in nats)."""
        p = self.parameters
        L = self.max_tolerated_log_eps
        return {
            **_row_summary(self.rows, self.certification, self.certificate),
            "log_threshold": p.log_threshold,
            "log_t_tilde": p.log_t_tilde,
            "log_eps_a": p.log_eps_a,
            "log_eps_adv": self.log_eps_adv,
            "max_tolerated_log_eps": _finite_or_none(L),
            "analytic_log_slack": _finite_or_none(self.analytic_log_slack),
            "slack_vs_t_tilde": _finite_or_none(L - p.log_t_tilde),
            "slack_vs_eps_a": _finite_or_none(L - p.log_eps_a),
        }

    def _repr_markdown_(self) -> str:
        """The summary as a table, for Jupyter."""
        s = self.summary
        keys = ("rows", "yes_rows", "no_rows", "outside_promise_rows", "all_correct", "certified_rows",
                "min_yes_margin", "min_abs_no_margin", "max_tolerated_log_eps", "slack_vs_t_tilde")
        lines = [f"**Validation of {self.source}** (oracle `{self.oracle}`, params `{self.parameters.mode}`)", "",
                 "| quantity | value |", "| --- | --- |"]
        for k in keys:
            v = s.get(k)
            lines.append(f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |")
        if s["wrong_rows"]:
            lines.append(f"\nwrong rows: {s['wrong_rows'][:20]}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The JSON object of ``finegrained validate --json`` (schema ``finegrained.validate/1``)."""
        return {
            "schema": SCHEMA,
            "route": "aattc",
            "source": self.source,
            "oracle": self.oracle,
            "params": self.parameters.mode,
            "parameters": self.parameters.as_dict(),
            "summary": self.summary,
            "rows": _rows_json(self.rows),
            "timings": self.timings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _build_oracle(
    oracle: str | Callable[..., object], params: Lemma47Parameters | dict, log_eps_adv: float | None, cache: dict,
    truth: np.ndarray, constrained: np.ndarray,
) -> tuple[str, Callable[..., object], float | None]:
    """Resolve ``oracle``; ``"adversarial"`` (or any ``log_eps_adv``) wraps a base oracle in the adversary.

    The adversary pushes every row away from its true answer (``truth``, from brute force; rows outside the
    promise towards the threshold). When its base is the exact oracle, the exact answer is kept in
    ``cache["exact"]`` so that the exact ``u`` needed for the bounds is not computed twice. ``params`` is Lemma
    4.7's record or the attention route's parameter dict; either gives ``log_eps_a`` and ``log_threshold``.
    """
    get = params.get if isinstance(params, dict) else lambda key: getattr(params, key)
    if oracle == "adversarial":
        name, base = "exact", exact_oracle
    else:
        name, base = resolve_oracle(oracle)
    if oracle != "adversarial" and log_eps_adv is None:
        return name, base, None
    le = get("log_eps_a") if log_eps_adv is None else real_number("log_eps_adv", log_eps_adv, finite=False)
    inner = base
    if base is exact_oracle:
        def inner(Q, K, V, *, scale=None):
            cache["exact"] = exact_oracle(Q, K, V, scale=scale)
            return cache["exact"]
        inner.__name__ = name  # the adversary is named after its base
    adv = adversarial(inner, log_eps=le, log_threshold=get("log_threshold"), truth=truth, constrained=constrained)
    return f"adversarial({name})", adv, le


def validate_gap_ann(
    instance: GapANNInstance,
    *,
    params: str = "tight",
    safety: float | None = None,
    beta: float | None = None,
    oracle: str | Callable[..., LogArray] = "exact",
    log_eps_adv: float | None = None,
    source: str = "<Gap-ANN instance>",
) -> ValidationReport:
    """Run Lemma 4.7 on a Gap-ANN instance and validate the threshold test ``u_i >= 2 t~`` row by row.

    Parameters
    ----------
    instance : GapANNInstance
        Balanced vectors (Remark 4.4), as Lemma 4.7 requires.
    params : {"tight", "paper"}
        Lemma 4.7 constants.
    safety : float, optional
        Factor on ``beta_min`` in tight mode.
    beta : float, optional
        Override ``beta`` (then ``eps_a = t~`` and no gap check is enforced, so decisions may fail).
    oracle : str or callable
        A name from :data:`finegrained.attention.ORACLES`, ``"adversarial"`` (the exact answer pushed by
        ``eps_a`` towards ``2 t~``) or any oracle callable.
    log_eps_adv : float, optional
        Make the oracle adversarial with this ``log eps`` (its base is ``oracle``, or exact for
        ``"adversarial"``).
    source : str
        A label for reports.

    Examples
    --------
    >>> from reductions import path
    >>> from instances import CNFFormula
    >>> gap = path("k-SAT", "Gap-ANN").forward(CNFFormula([[1, 2], [-1, 2], [1, -2]]))
    >>> rep = validate_gap_ann(gap, oracle="adversarial")
    >>> rep.summary["all_correct"], rep.summary["yes_rows"], rep.summary["rows_outside_bound"]
    (True, 1, [])
    >>> rep.rows["status"].tolist(), rep.rows["decision"].tolist()
    (['NO', 'YES'], [False, True])
    """
    chain = Chain([GapANNToAAttC(mode=params, beta=beta, check=beta is None, safety=safety)])
    reduced = chain.reduce(instance)
    p = reduced.steps[-1].parameters
    status_code = instance.row_status()
    truth, constrained = status_code == YES, status_code != OUTSIDE_PROMISE
    cache: dict[str, object] = {}
    name, solve, le = _build_oracle(oracle, p, log_eps_adv, cache, truth, constrained)

    dec = decide(chain, instance, solve, reduced=reduced)
    timings = {"reduction": dec.reduced.seconds[0], "oracle": dec.timings["oracle"]}
    att, out = dec.reduced.target, dec.answer.output
    t0 = time.perf_counter()
    if solve is exact_oracle:
        ex = out
    elif "exact" in cache:
        ex = cache["exact"].output
    else:
        ex = exact(att.Q, att.K, att.V, scale=att.scale)
    timings["exact"] = time.perf_counter() - t0

    n_a = instance.n_a
    u, u_exact = out[:n_a, 0], ex[:n_a, 0]
    rows = _row_table(instance, p, dec.rows, u, u_exact)

    t0 = time.perf_counter()
    constrained = rows["status"] != "outside"
    L = max_tolerated_log_eps(u_exact, rows["truth"], p.log_threshold, constrained=constrained,
                              log_eps_start=p.log_eps_a)
    slack = analytic_log_slack(u_exact, rows["truth"], p.log_threshold, constrained)
    timings["bisection"] = time.perf_counter() - t0
    return ValidationReport(source=source, oracle=name, parameters=p,
                            rows=rows, log_eps_adv=le, max_tolerated_log_eps=L, analytic_log_slack=slack,
                            timings=timings, certificate=dec.answer.certificate.to_dict(),
                            certification=dec.status, reason=dec.reason)


def _row_table(instance: GapANNInstance, p: Lemma47Parameters, answer: GapANNAnswer, u: LogArray,
               u_exact: LogArray) -> dict:
    dist = instance.min_distances()
    status_code = np.where(dist < instance.t, YES, np.where(dist >= (1 + instance.eps) * instance.t, NO,
                                                             OUTSIDE_PROMISE))
    truth = dist < instance.t
    decision, margin = answer.yes, answer.margin
    correct = (decision == truth) | (status_code == OUTSIDE_PROMISE)
    lower = p.case_2a_log_lower(dist)
    upper = p.case_2b_log_upper(dist)
    is_yes, is_no = status_code == YES, status_code == NO
    log_bound = np.where(is_yes, lower, np.where(is_no, upper, np.nan))
    ue = np.where(u_exact.sign > 0, u_exact.log_abs, -np.inf)
    with np.errstate(invalid="ignore"):
        bound_slack = np.where(is_yes, ue - lower, np.where(is_no, upper - ue, np.nan))
    tol = _BOUND_RTOL * np.maximum(1.0, np.abs(np.nan_to_num(log_bound)))
    # 1 inside, 0 outside, -1 no bound (outside the promise)
    in_bound = np.where(is_yes | is_no, (bound_slack >= -tol).astype(np.int8), -1).astype(np.int8)
    return {
        "index": np.arange(instance.n_a),
        "min_distance": dist,
        "status": np.array([_STATUS[int(s)] for s in status_code], dtype=object),
        "truth": truth,
        "sign_u": u.sign.astype(np.int64),
        "log_u": u.log_abs,
        "log_u_exact": u_exact.log_abs,
        "decision": decision,
        "margin": margin,
        "correct": correct,
        "bound_case": np.where(is_yes, "2a", np.where(is_no, "2b", "")).astype(object),
        "log_bound": log_bound,
        "bound_slack": bound_slack,
        "in_bound": in_bound,
        "certified": answer.decided.copy(),
    }


def gap_ann_of_cnf(cnf: CNFFormula, *, max_memory: int | None = None) -> GapANNInstance:
    """The Gap-ANN instance of the chain (k-SAT -> OV -> Gap-ANN), after the chain's memory guard."""
    check_memory(chain_memory_bytes(cnf.num_vars, cnf.num_clauses), max_memory,
                 f"the chain on {cnf.num_vars} variables and {cnf.num_clauses} clauses")
    return path("k-SAT", "Gap-ANN").forward(cnf)


def validate_cnf(cnf: CNFFormula, *, max_memory: int | None = None, source: str = "<CNF formula>",
                 **options) -> ValidationReport:
    """:func:`validate_gap_ann` on the Gap-ANN instance the chain builds from ``cnf`` (same keyword options).

    Examples
    --------
    >>> rep = validate_cnf(CNFFormula([[1], [-1]]), params="paper")  # UNSAT: every row is NO
    >>> rep.summary["all_correct"], rep.summary["yes_rows"], rep.summary["slack_vs_eps_a"] > 0
    (True, 0, True)
    """
    return validate_gap_ann(gap_ann_of_cnf(cnf, max_memory=max_memory), source=source, **options)


#: Refuse reference certification above this many multiprecision multiply-adds (``n_q n_k d``): ~1 minute.
MAX_REFERENCE_WORK = 10**8


def certify_exact(instance: GapANNInstance, *, params: str = "tight", safety: float | None = None,
                  beta: float | None = None, dps: int = DEFAULT_DPS) -> dict:
    """Measure the exact float64 oracle's error on the Lemma 4.7 attention instance against mpmath.

    The reference (:func:`finegrained.attention.reference.reference`, ``dps`` digits) is the exact attention
    of the same float64 ``Q, K, V``. Reported:

    * ``max_log_rel_error``: ``max_i |log u_i - log u_i^ref|`` over all ``n_q`` output rows, the relative error
      ``delta`` in nats (``max_log_rel_error_real_rows``: over the ``n_a`` decoded rows);
    * ``log_max_abs_error``: an upper bound on ``log max_i |u_i - u_i^ref|`` over the decoded rows,
      ``log|u_i^ref| + log(e^{delta_i} - 1)``, and its distance to ``log t~`` and ``log eps_a`` (negative: the
      absolute error is below that bound);
    * ``min_margin``: the smallest ``|log u_i - log 2 t~|`` over the real rows. A relative error ``delta`` moves
      ``log u_i`` by about ``delta`` nats, so the decisions are certified whenever ``delta < min_margin``.

    Raises :class:`~instances.errors.ResourceLimitError` when the instance is too large for mpmath.
    """
    reduced = GapANNToAAttC(mode=params, beta=beta, check=beta is None, safety=safety).reduce(instance)
    p, att = reduced.parameters, reduced.target
    work = att.n_q * att.n_k * att.dim
    if work > MAX_REFERENCE_WORK:
        raise ResourceLimitError(
            f"the mpmath reference would need {work:.3g} multiprecision operations (n_q n_k d); the limit is "
            f"{MAX_REFERENCE_WORK:.0e}: use an instance with at most about 10 variables"
        )
    t0 = time.perf_counter()
    ex = exact(att.Q, att.K, att.V, scale=att.scale)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = reference(att.Q, att.K, att.V, scale=att.scale, dps=dps)
    t_ref = time.perf_counter() - t0
    rel = log_relative_error(ex, ref)[:, 0]
    real = slice(0, instance.n_a)
    # |u - u_ref| = |u_ref| |e^{+-rel} - 1| <= |u_ref| (e^rel - 1): an upper bound on the absolute error.
    with np.errstate(divide="ignore"):
        log_abs_err = ref.log_abs[real, 0] + np.log(np.expm1(np.minimum(rel[real], 700.0)))
    margins = np.abs(ref.log_abs[real, 0] - p.log_threshold)
    worst = float(log_abs_err.max()) if log_abs_err.size else -math.inf
    return {
        "params": p.mode,
        "dps": int(dps),
        "n_q": att.n_q,
        "n_k": att.n_k,
        "d": att.dim,
        "max_log_rel_error": float(rel.max()),
        "max_log_rel_error_real_rows": float(rel[real].max()) if instance.n_a else 0.0,
        "log_max_abs_error": _finite_or_none(worst),
        "log_t_tilde": p.log_t_tilde,
        "log_eps_a": p.log_eps_a,
        "abs_error_vs_t_tilde": _finite_or_none(worst - p.log_t_tilde),
        "abs_error_vs_eps_a": _finite_or_none(worst - p.log_eps_a),
        "min_margin": float(margins.min()) if instance.n_a else None,
        "decisions_certified": bool(instance.n_a == 0 or rel[real].max() < margins.min()),
        "seconds_exact": t_exact,
        "seconds_reference": t_ref,
    }


@dataclass
class SweepResult:
    """Fraction of rows decided correctly as ``beta`` varies (exact oracle and adversary at ``eps = t~(beta)``)."""

    mode: str
    beta_min: float
    beta_mode: float
    beta: np.ndarray
    frac_exact: np.ndarray
    frac_adversarial: np.ndarray
    gap_condition: np.ndarray
    rows: int
    source: str = ""
    #: Per class (issue 15): fractions of YES rows / NO rows decided correctly by each oracle, and the exact
    #: answer's smallest margin in nats on the right side of ``2t~`` (``log u_i - log 2t~`` over YES rows,
    #: ``log 2t~ - log u_i`` over NO rows; negative: some row is on the wrong side).
    frac_yes_exact: np.ndarray | None = None
    frac_no_exact: np.ndarray | None = None
    frac_yes_adversarial: np.ndarray | None = None
    frac_no_adversarial: np.ndarray | None = None
    min_margin_yes: np.ndarray | None = None
    min_margin_no: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {
            "schema": SWEEP_SCHEMA,
            "source": self.source,
            "params": self.mode,
            "rows": self.rows,
            "beta_min": self.beta_min,
            "beta_mode": self.beta_mode,
            "beta": self.beta.tolist(),
            "beta_over_beta_min": (self.beta / self.beta_min).tolist(),
            "frac_correct_exact": self.frac_exact.tolist(),
            "frac_correct_adversarial": self.frac_adversarial.tolist(),
            "gap_condition": self.gap_condition.tolist(),
            **{k: getattr(self, k).tolist() for k in _SWEEP_CLASS_FIELDS if getattr(self, k) is not None},
        }


_SWEEP_CLASS_FIELDS = ("frac_yes_exact", "frac_no_exact", "frac_yes_adversarial", "frac_no_adversarial",
                       "min_margin_yes", "min_margin_no")


def beta_sweep(
    instance: GapANNInstance,
    *,
    params: str = "tight",
    points: int = 25,
    low: float = 1 / 32,
    high: float = 4.0,
    source: str = "<Gap-ANN instance>",
) -> SweepResult:
    """Fraction of correctly decided rows for ``beta`` on a log grid ``[low, high] * beta_min``.

    At each ``beta`` the construction of Lemma 4.7 is rebuilt with that ``beta`` (so ``t~``, ``tau`` and the
    threshold ``2 t~`` follow it) and decided twice: on the exact answer, and on the answer of the omniscient
    adversary with ``eps = t~(beta)``, the largest error the corrected proof tolerates (E6), pushing every row
    away from its true answer (so a NO row whose exact ``u`` already exceeds ``t~`` is caught). The theory
    guarantees both are 100% correct for ``beta >= beta_min = 4 d ln(6n)/(eps t)``; below it, it guarantees
    nothing, and the sweep shows where real instances start to fail. Only the real query rows are sent to the
    oracle (attention rows are independent; the padding rows are never decoded).

    Examples
    --------
    >>> from instances import CNFFormula
    >>> gap = gap_ann_of_cnf(CNFFormula([[1, 2], [-1, 2], [1, -2]]))
    >>> s = beta_sweep(gap, points=3, low=1.0, high=2.0)
    >>> s.frac_exact.tolist(), s.frac_adversarial.tolist(), s.gap_condition.tolist()
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [True, True, True])
    """
    if not 2 <= points <= MAX_SWEEP_POINTS:
        raise ParameterError(f"a sweep takes 2 to {MAX_SWEEP_POINTS} points (each rebuilds the instance and calls "
                             f"the oracle twice), got {points}")
    if not (0 < low < high and math.isfinite(high)):
        raise ParameterError(f"need 0 < low < high for the beta grid, got low={low}, high={high}")
    base = GapANNToAAttC(mode=params).reduce(instance).parameters
    status = instance.row_status()
    truth = status == YES
    constrained = status != OUTSIDE_PROMISE
    n_a = instance.n_a
    grid = base.beta_min * np.geomspace(low, high, points)
    frac_exact, frac_adv, gap_ok = [], [], []
    per_class: dict[str, list[float]] = {k: [] for k in _SWEEP_CLASS_FIELDS}
    yes_rows, no_rows = truth & constrained, ~truth & constrained
    for b in grid:
        chain = Chain([GapANNToAAttC(mode=params, beta=float(b), check=False)])
        cache: dict[str, object] = {}

        def exact_once(Q, K, V, *, scale=None, _cache=cache):
            if "exact" not in _cache:
                _cache["exact"] = exact(Q, K, V, scale=scale)
            return _cache["exact"]

        exact_once.__wrapped__ = exact  # still exact's bare output: the adversary keeps its certificate
        plain = decide(chain, instance, exact_once)
        p = plain.parameters
        adv = adversarial(exact_once, log_eps=p.log_t_tilde, log_threshold=p.log_threshold, truth=truth,
                          constrained=constrained)
        pushed = decide(chain, instance, adv)
        for target, dec in ((frac_exact, plain), (frac_adv, pushed)):
            target.append(float(((dec.rows.yes == truth) | ~constrained).mean()) if n_a else 1.0)
        for name, dec in (("exact", plain), ("adversarial", pushed)):
            for cls, sel in (("yes", yes_rows), ("no", no_rows)):
                # a class with no rows is decided correctly everywhere (NaN would reach the JSON)
                per_class[f"frac_{cls}_{name}"].append(float((dec.rows.yes[sel] == truth[sel]).mean())
                                                       if sel.any() else 1.0)
        margin = np.asarray(plain.rows.margin, dtype=float)
        for cls, sel, sign in (("yes", yes_rows, 1.0), ("no", no_rows, -1.0)):
            # -inf margins (u_i <= 0) stay finite for the JSON: clip to a large negative number of nats
            m = sign * margin[sel]
            per_class[f"min_margin_{cls}"].append(float(np.clip(m.min(), -1e300, 1e300)) if sel.any() else 0.0)
        gap_ok.append(p.gap_condition_holds)
    return SweepResult(mode=params, beta_min=base.beta_min, beta_mode=base.beta, beta=grid,
                       frac_exact=np.array(frac_exact), frac_adversarial=np.array(frac_adv),
                       gap_condition=np.array(gap_ok), rows=n_a, source=source,
                       **{k: np.array(v) for k, v in per_class.items()})


# --------------------------------------------------------------------------------------------- the attention route
#: Rounding allowance of the attention route's exact checks, relative to the size of the terms (2^-44, about 1000
#: ulps): the gadget's NO bound ``1/(c+1)`` is attained for every ``n`` (``x = n e^{-lambda/2} = 1/c``) and the YES
#: bound at ``n = 1``, so the last bit of the float ``lambda`` decides the side of an exact comparison; a wrong
#: constant moves a bound by whole percent.
_ATT_ROUNDING = 2.0 ** -44


class _AttentionRows(OVToAttention):
    """The Theorem 1.5 gadget whose way back keeps the per-row answers.

    Validation compares every row with brute force instead of decoding one orthogonal pair, so a YES row without
    a partner is reported as a wrong row rather than raised (:meth:`OVToAttention.extract` raises).
    """

    def extract(self, reduced, target_solution) -> GapANNAnswer:
        if isinstance(target_solution, GapANNAnswer):
            return target_solution
        return self.decide_rows(reduced, target_solution)


#: Most bit operations :func:`orthogonal_partners` does (distinct rows of A x distinct rows of B x dimension):
#: 2^34, a few seconds of BLAS; beyond it the brute-force ground truth is refused up front.
MAX_PARTNER_WORK = 2**34


def orthogonal_partners(A: np.ndarray, B: np.ndarray, tile: int | None = None, *,
                        max_work: int | None = None) -> np.ndarray:
    """``out[i]``: how many ``b_j`` are orthogonal to ``a_i`` (brute force, one BLAS product per tile of rows).

    Only distinct rows are compared (split and list repeats rows a lot): the work is ``distinct(A) x distinct(B)
    x m`` bit operations, and more than ``max_work`` (default :data:`MAX_PARTNER_WORK`) raises
    :class:`~instances.errors.ResourceLimitError` before any product is formed. ``tile`` rows at a time (default:
    as many as keep each product at ``2^24`` entries, 128 MiB).

    Examples
    --------
    >>> orthogonal_partners(np.array([[1, 0], [1, 1]]), np.array([[1, 1], [0, 1], [0, 0]])).tolist()
    [2, 1]
    """
    A, B = np.asarray(A), np.asarray(B)
    if A.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    m = A.shape[1]
    # 0/1 rows packed to bytes: np.unique on the packed rows finds the distinct vectors cheaply
    ua, inv = np.unique(np.packbits(A != 0, axis=1), axis=0, return_inverse=True)
    ub, counts = (np.unique(np.packbits(B != 0, axis=1), axis=0, return_counts=True) if B.shape[0]
                  else (np.zeros((0, ua.shape[1]), dtype=np.uint8), np.zeros(0, dtype=np.int64)))
    work = ua.shape[0] * ub.shape[0] * max(m, 1)
    max_work = MAX_PARTNER_WORK if max_work is None else max_work
    if work > max_work:
        raise ResourceLimitError(f"brute-force ground truth needs {ua.shape[0]} distinct rows of A x {ub.shape[0]} "
                                 f"of B x dimension {m} = {work} bit operations, above the limit {max_work} (2^"
                                 f"{math.log2(max_work):g})")
    Au = np.unpackbits(ua, axis=1, count=m).astype(np.float64)
    Bt = np.ascontiguousarray(np.unpackbits(ub, axis=1, count=m).T, dtype=np.float64)
    w = counts.astype(np.float64)
    out = np.zeros(Au.shape[0], dtype=np.int64)
    tile = tile or max(1, 2**24 // max(Bt.shape[1], 1))
    for start in range(0, out.size, tile):
        # 0/1 inner products are small integers: exact in float64; each distinct b_j counts its multiplicity
        out[start:start + tile] = ((Au[start:start + tile] @ Bt) == 0) @ w
    return out[inv.reshape(-1)]


@dataclass
class AttentionValidationReport:
    """Per-row validation of Gupta et al.'s k-SAT -> OV -> Attention route (Theorem 1.5 gadget, ``u_i >= 1/2``).

    Attributes
    ----------
    source, oracle : str
        Where the formula came from, and the oracle whose answer was decided.
    parameters : dict
        ``lambda`` and ``factor`` (``lambda = 2 ln(c n_b)``, ``c = factor``), ``log_threshold`` (``log 1/2``),
        ``log_eps_a`` (``log 1/4``), ``log_eps_needed`` (the certified accuracy asked of the oracle),
        ``yes_lower`` and ``no_upper`` (:func:`reductions.ov_to_attention.gadget_bounds`), and the OV sizes
        ``n_a``, ``n_b``, ``m``.
    rows : dict of numpy arrays
        One entry per query row (every row is decoded): ``index``, ``partners`` (orthogonal ``b_j``, brute force),
        ``status`` (``"YES"``/``"NO"``), ``truth``, ``sign_u``, ``log_u``, ``u`` (the oracle's answer),
        ``log_u_exact``, ``decision``, ``margin`` (``log u_i - log 1/2``, nats), ``correct``, ``bound_case``
        (``">= c/(c+1)"`` or ``"<= 1/(c+1)"``), ``log_bound``, ``bound_slack`` (nats, positive: the exact ``u_i``
        is inside), ``in_bound`` (1 or 0) and ``certified``.
    log_eps_adv, max_tolerated_log_eps, analytic_log_slack, timings, certificate, certification, reason
        As in :class:`ValidationReport`, with the threshold ``1/2``.
    """

    source: str
    oracle: str
    parameters: dict
    rows: dict[str, np.ndarray]
    log_eps_adv: float | None
    max_tolerated_log_eps: float
    analytic_log_slack: float
    timings: dict = field(default_factory=dict)
    certificate: dict = field(default_factory=dict)
    certification: str = "certified"
    reason: str = ""
    route: str = "attention"

    @property
    def summary(self) -> dict:
        """Counts, the closest margins, rows outside the gadget bounds and the robustness slack (nats)."""
        p = self.parameters
        L = self.max_tolerated_log_eps
        # the largest error the gadget bounds tolerate on a point answer: min(c/(c+1) - 1/2, 1/2 - 1/(c+1))
        log_gap = math.log(min(p["yes_lower"] - 0.5, 0.5 - p["no_upper"]))
        return {
            **_row_summary(self.rows, self.certification, self.certificate),
            "threshold": 0.5,
            "log_threshold": p["log_threshold"],
            "log_eps_a": p["log_eps_a"],
            "log_eps_needed": p["log_eps_needed"],
            "log_eps_adv": self.log_eps_adv,
            "yes_lower": p["yes_lower"],
            "no_upper": p["no_upper"],
            "lambda": p["lambda"],
            "max_tolerated_log_eps": _finite_or_none(L),
            "analytic_log_slack": _finite_or_none(self.analytic_log_slack),
            "slack_vs_eps_a": _finite_or_none(L - p["log_eps_a"]),
            "slack_vs_gadget_gap": _finite_or_none(L - log_gap),
        }

    def to_dict(self) -> dict:
        """The JSON object of ``finegrained validate --route attention --json`` (schema ``finegrained.validate/1``)."""
        return {"schema": SCHEMA, "route": self.route, "source": self.source, "oracle": self.oracle, "params": None,
                "parameters": dict(self.parameters), "summary": self.summary, "rows": _rows_json(self.rows),
                "timings": self.timings}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def ov_of_cnf(cnf: CNFFormula, *, max_memory: int | None = None) -> OVInstance:
    """The OV instance of split-and-list (k-SAT -> OV), after the chain's memory guard."""
    check_memory(chain_memory_bytes(cnf.num_vars, cnf.num_clauses), max_memory,
                 f"the chain on {cnf.num_vars} variables and {cnf.num_clauses} clauses")
    return path("k-SAT", "OV").forward(cnf)


def attention_parameters(reduced) -> dict:
    """The attention route's parameters of one :class:`~reductions.base.Reduced` OV -> Attention step, with the
    gadget bounds and the OV sizes (the ``parameters`` of :class:`AttentionValidationReport`)."""
    ov, p = reduced.source, dict(reduced.parameters)
    yes_lo, no_hi = ov_to_attention.gadget_bounds(p["factor"])
    return {**p, "yes_lower": yes_lo, "no_upper": no_hi, "n_a": ov.n_a, "n_b": ov.n_b, "m": ov.dim}


def validate_attention_route(
    cnf: CNFFormula | OVInstance,
    *,
    oracle: str | Callable[..., object] = "exact",
    log_eps_adv: float | None = None,
    factor: float = DEFAULT_FACTOR,
    max_memory: int | None = None,
    source: str = "<CNF formula>",
) -> AttentionValidationReport:
    """Validate the attention route k-SAT -> OV -> Attention (Gupta et al., Theorem 1.5 gadget) row by row.

    The gadget (:class:`reductions.ov_to_attention.OVToAttention`) gives every row ``u_i >= c/(c+1)`` when ``a_i``
    has an orthogonal partner and ``u_i <= 1/(c+1)`` when it has none (``8/9`` and ``1/9`` at the default
    ``c = 8``); the rule is ``u_i >= 1/2``. Each row's decision on the oracle's answer is compared with brute
    force on the OV instance, and the *exact* ``u_i`` with its gadget bound.

    Parameters
    ----------
    cnf : CNFFormula or OVInstance
        A formula (split and list builds the OV instance) or an OV instance.
    oracle : str or callable
        As for :func:`validate_gap_ann`; ``"adversarial"`` pushes the exact answer by ``eps_a = 1/4`` away from
        each row's true answer, towards ``1/2``.
    log_eps_adv : float, optional
        Make the oracle adversarial with this ``log eps``.
    factor : float
        The ``c`` of ``lambda = 2 ln(c n)``.
    max_memory : int, optional
        Refuse formulas whose chain needs more memory than this many bytes.
    source : str
        A label for reports.

    Examples
    --------
    >>> rep = validate_attention_route(CNFFormula([[1, 2], [-1, 2], [1, -2]]), oracle="adversarial")
    >>> rep.rows["status"].tolist(), rep.rows["decision"].tolist(), rep.summary["all_correct"]
    (['NO', 'YES'], [False, True], True)
    >>> rep.summary["yes_lower"], rep.summary["no_upper"], rep.summary["rows_outside_bound"]
    (0.8888888888888888, 0.1111111111111111, [])
    """
    t0 = time.perf_counter()
    if isinstance(cnf, OVInstance):
        ov = cnf
        # Q and K in float64, the oracle's copies, its score tile and the brute-force product tile (128 MiB each)
        check_memory(3 * 8 * (ov.n_a + ov.n_b + 1) * (ov.dim + 1) + 2 * 128 * 2**20, max_memory,
                     f"the attention route on {ov.n_a} x {ov.n_b} vectors of dimension {ov.dim}")
    else:
        ov = ov_of_cnf(cnf, max_memory=max_memory)
    t_ov = time.perf_counter() - t0
    partners = orthogonal_partners(ov.A, ov.B)  # first: it refuses too much work before anything is built
    chain = Chain([_AttentionRows(factor)])
    reduced = chain.reduce(ov)
    p = attention_parameters(reduced.steps[-1])
    truth = partners > 0
    cache: dict[str, object] = {}
    name, solve, le = _build_oracle(oracle, p, log_eps_adv, cache, truth, np.ones_like(truth))

    dec = decide(chain, ov, solve, reduced=reduced)
    timings = {"sat_to_ov": t_ov, "ov_to_attention": dec.reduced.seconds[0], "oracle": dec.timings["oracle"]}
    att, out = dec.reduced.target, dec.answer.output
    t0 = time.perf_counter()
    if solve is exact_oracle:
        ex = out
    elif "exact" in cache:
        ex = cache["exact"].output
    else:
        ex = exact(att.Q, att.K, att.V, scale=att.scale)
    timings["exact"] = time.perf_counter() - t0
    u, u_exact = out[:, 0], ex[:, 0]

    yes_lo, no_hi = p["yes_lower"], p["no_upper"]
    log_bound = np.where(truth, math.log(yes_lo), math.log(no_hi))
    ue = np.where(u_exact.sign > 0, u_exact.log_abs, -np.inf)
    bound_slack = np.where(truth, ue - log_bound, log_bound - ue)
    # the bounds are attained (module docstring of reductions.ov_to_attention): allow float rounding of lambda
    tol = 1e-12 * np.maximum(1.0, np.abs(log_bound))
    rows = {
        "index": np.arange(ov.n_a),
        "partners": partners,
        "status": np.where(truth, "YES", "NO").astype(object),
        "truth": truth,
        "sign_u": u.sign.astype(np.int64),
        "log_u": u.log_abs,
        "u": _float_value(u),  # the value itself: in [0, 1] for a correct answer, +-inf when it overflows
        "log_u_exact": u_exact.log_abs,
        "decision": dec.rows.yes,
        "margin": dec.rows.margin,
        "correct": dec.rows.yes == truth,
        "bound_case": np.where(truth, ">= c/(c+1)", "<= 1/(c+1)").astype(object),
        "log_bound": log_bound,
        "bound_slack": bound_slack,
        "in_bound": (bound_slack >= -tol).astype(np.int8),
        "certified": dec.rows.decided.copy(),
    }
    t0 = time.perf_counter()
    constrained = np.ones_like(truth)
    L = max_tolerated_log_eps(u_exact, truth, p["log_threshold"], constrained=constrained,
                              log_eps_start=p["log_eps_a"])
    slack = analytic_log_slack(u_exact, truth, p["log_threshold"], constrained)
    timings["bisection"] = time.perf_counter() - t0
    return AttentionValidationReport(source=source, oracle=name, parameters=p, rows=rows, log_eps_adv=le,
                                     max_tolerated_log_eps=L, analytic_log_slack=slack, timings=timings,
                                     certificate=dec.answer.certificate.to_dict(), certification=dec.status,
                                     reason=dec.reason)


def _rounding_check(name: str, statement: str, reference: str, closed, code: float, scale: float):
    """``|code - closed| <= 2^-44 (|scale| + 1)``: the code's float is its closed form up to float rounding."""
    import sympy as sp

    from .proof import Check, certified_sign, to_rational

    tol = sp.Rational(math.ceil(abs(scale)) + 1, 2**44)
    diff = to_rational(code) - closed
    lo_sign, lo_how, lo_val = certified_sign(tol + diff)
    hi_sign, hi_how, hi_val = certified_sign(tol - diff)
    sign, value = min(lo_sign, hi_sign), min(lo_val, hi_val)
    how = f"|code - closed form| <= {float(tol):.3g}; {hi_how if hi_sign <= lo_sign else lo_how}"
    return Check(name, statement, reference, tol - sp.Abs(diff), False, sign, how, float(value),
                 mpmath.nstr(value, 6))


def attention_proof_checks(ov: OVInstance, *, factor: float = DEFAULT_FACTOR):
    """Exact (sympy) checks of the Theorem 1.5 gadget's constants, on the numbers the reduction uses.

    The instance is built by :class:`~reductions.ov_to_attention.OVToAttention` (``factor`` is its ``c``); its
    ``lambda``, bounds (:func:`~reductions.ov_to_attention.gadget_bounds`), threshold and ``eps_a`` enter as the
    exact rationals of the floats the code uses (:func:`finegrained.proof.to_rational`), and each slack's sign is
    decided by :func:`finegrained.proof.certified_sign`. The checks (slacks in nats unless stated):

    ``Q, K, V = gadget(lambda)``
        every entry of the built matrices is the gadget's at the code's ``lambda`` (slack: minus the number of
        entries that differ).
    ``lambda = 2 ln(c n)``, ``yes bound = c/(c+1)``, ``no bound = 1/(c+1)``, ``threshold = 1/2``, ``eps_a = 1/4``
        the code's numbers are their closed forms (:func:`~reductions.ov_to_attention.lambda_expr` at ``n_b``) up
        to float rounding.
    ``factor > 3``
        :func:`~reductions.ov_to_attention.check_gadget_factor`'s condition ``1/(c+1) < 1/4``.
    ``YES rows: u >= c/(c+1)``, ``NO rows: u <= 1/(c+1)``
        at the code's ``lambda`` and scale, a row with a partner has ``S_i >= 1`` and
        ``u_i >= 1/(1 + e^{-lambda/2})``; a row without has ``S_i <= n e^{-lambda}`` and
        ``u_i <= n e^{-lambda}/(e^{-lambda/2} + n e^{-lambda})``; each compared with the code's bound, within a
        rounding allowance of ``2^-44 (lambda + 1)`` nats (both bounds are attained).
    ``YES decision``, ``NO decision``
        ``c/(c+1) - eps_a >= 1/2`` and ``1/(c+1) + eps_a < 1/2``: any answer within ``eps_a`` is decided right.
    ``certified YES``, ``certified NO``
        ``c/(c+1) - 2 eps_needed > 1/2`` and ``1/(c+1) + 2 eps_needed < 1/2``: an answer within the accuracy the
        pipeline asks for, with a certificate of that width, is decided (its interval misses ``1/2``).

    Returns
    -------
    finegrained.proof.ProofReport
        ``mode = "attention"``.

    Examples
    --------
    >>> from instances.ov import OVInstance
    >>> rep = attention_proof_checks(OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1]]))
    >>> rep.passed, len(rep.checks)
    (True, 13)
    """
    import sympy as sp

    from reductions.sizes import symbol

    from .proof import Check, ProofReport, certified_sign, to_rational

    def _check(name: str, statement: str, reference: str, slack: sp.Expr, strict: bool) -> Check:
        sign, how, value = certified_sign(slack)
        return Check(name, statement, reference, slack, strict, sign, how, float(value), mpmath.nstr(value, 6))

    reduced = OVToAttention(factor).reduce(expect(ov, OVInstance, "the OV instance"))
    att, p = reduced.target, attention_parameters(reduced)
    n, m = ov.n_b, ov.dim
    lam_code = float(att.meta["lambda"])
    # the matrices the reduction built, against the gadget at the code's lambda (exact float comparison)
    want_Q = np.empty((ov.n_a, m + 1))
    want_Q[:, :m], want_Q[:, m] = -lam_code * ov.A, -lam_code / 2
    want_K = np.zeros((n + 1, m + 1))
    want_K[:n, :m], want_K[n, m] = ov.B, 1.0
    want_V = np.zeros((n + 1, 1))
    want_V[:n] = 1.0
    wrong = sum(int((np.asarray(got) != want).sum()) if np.shape(got) == want.shape else want.size
                for got, want in ((att.Q, want_Q), (att.K, want_K), (att.V, want_V)))
    checks = [Check("Q, K, V = gadget(lambda)", "q_i = (-lambda a_i, -lambda/2), k_j = (b_j, 0), dummy (0, 1), "
                    "V = (1, ..., 1, 0)", "Thm 1.5 gadget", sp.Integer(-wrong), False, -1 if wrong else 0,
                    f"{wrong} of {want_Q.size + want_K.size + want_V.size} entries differ (exact float comparison)",
                    float(-wrong), str(-wrong))]
    c = to_rational(p["factor"])
    lam, s = to_rational(lam_code), to_rational(att.scale)
    yes_lo, no_hi = to_rational(p["yes_lower"]), to_rational(p["no_upper"])
    log_thr, log_ea = to_rational(p["log_threshold"]), to_rational(p["log_eps_a"])
    log_need = to_rational(p["log_eps_needed"])
    lam_closed = ov_to_attention.lambda_expr(p["factor"]).subs(symbol("n_b"), n)
    checks += [
        _rounding_check("lambda = 2 ln(c n)", "the code's lambda is 2 ln(c max(n_b, 1))", "Thm 1.5 gadget",
                        lam_closed, lam_code, lam_code),
        _rounding_check("yes bound = c/(c+1)", "gadget_bounds()[0] is c/(c+1)", "gadget bound", c / (c + 1),
                        p["yes_lower"], 1.0),
        _rounding_check("no bound = 1/(c+1)", "gadget_bounds()[1] is 1/(c+1)", "gadget bound", 1 / (c + 1),
                        p["no_upper"], 1.0),
        _rounding_check("threshold = 1/2", "the code's log threshold is log(1/2)", "rule u_i >= 1/2",
                        sp.log(sp.Rational(1, 2)), p["log_threshold"], 1.0),
        _rounding_check("eps_a = 1/4", "the code's log eps_a is log(1/4)", "target instance",
                        sp.log(sp.Rational(1, 4)), p["log_eps_a"], 1.0),
        _check("factor > 3", "c > 3, so 1/(c+1) < 1/4", "check_gadget_factor", sp.log(c / 3), True),
    ]
    allowance = sp.Rational(math.ceil(abs(lam_code)) + 1, 2**44)
    dummy = sp.exp(-s * lam / 2)  # the dummy key's weight; real keys weigh e^{-s lambda <a_i, b_j>}
    u_yes = -sp.log(1 + dummy)  # log 1/(1 + e^{-s lambda/2}): S_i >= 1
    u_no = sp.log(n) - s * lam - sp.log(dummy + n * sp.exp(-s * lam))  # S_i <= n e^{-s lambda}
    thr, ea, need = sp.exp(log_thr), sp.exp(log_ea), sp.exp(log_need)
    checks += [
        _check("YES rows: u >= c/(c+1)", "S_i >= 1 gives u_i >= 1/(1 + e^(-lambda/2)) >= c/(c+1) (up to rounding)",
               "Thm 1.5 gadget", u_yes - sp.log(yes_lo) + allowance, False),
        _check("NO rows: u <= 1/(c+1)", "S_i <= n e^(-lambda) gives u_i <= n e^(-lambda)/(e^(-lambda/2) + "
               "n e^(-lambda)) <= 1/(c+1) (up to rounding)", "Thm 1.5 gadget", sp.log(no_hi) - u_no + allowance,
               False),
        _check("YES decision", "c/(c+1) - eps_a >= 1/2", "rule u_i >= 1/2", sp.log(yes_lo) - sp.log(thr + ea),
               False),
        _check("NO decision", "1/(c+1) + eps_a < 1/2", "rule u_i >= 1/2", log_thr - sp.log(no_hi + ea), True),
        _check("certified YES", "c/(c+1) - 2 eps_needed > 1/2", "certified decisions",
               sp.log(yes_lo) - sp.log(thr + 2 * need), True),
        _check("certified NO", "1/(c+1) + 2 eps_needed < 1/2", "certified decisions",
               log_thr - sp.log(no_hi + 2 * need), True),
    ]
    inputs = {"n_a": ov.n_a, "n_b": n, "m": m, "factor": p["factor"], "lambda": lam_code, "scale": att.scale,
              "yes_lower": p["yes_lower"], "no_upper": p["no_upper"], "log_threshold": p["log_threshold"],
              "log_eps_a": p["log_eps_a"], "log_eps_needed": p["log_eps_needed"]}
    return ProofReport(mode="attention", inputs=inputs, checks=checks)
