r"""Lemma 4.7 as printed: run the paper's literal statements next to the corrected ones, erratum by erratum.

Each erratum of ``docs/errata.md`` that changes a number is replayed on a concrete Gap-ANN instance: the
construction or the threshold is built the way the paper states it, the rows are decided, and the rows decided
wrongly (against brute force, inside the promise) are counted. The corrected construction decides every row
(it is the toolkit's), so every wrong row is the erratum's doing.

* **E2** ``tau := e^beta``: the threshold ``2 t~`` with ``t~ = e^{beta/4 (1 - t/d)} / (6 n tau)`` uses the
  printed ``tau``, ``e^{beta/2}`` times too small, so NO rows pass it.
* **E3** bottom-left block ``0``: it enters only the row sums of padding queries, which are never decoded.
* **E4** the printed ``t~ = (1/6n) exp(-0.75 beta - 0.25 beta t/d)``: the same number as E2's.
* **E5** ``e^{beta eps t/4d} > 4n`` suffices: with the lemma's accuracy ``eps_a = t~`` it does not; ``beta`` is
  set to the printed condition's minimum ``4 d ln(4n)/(eps t)`` and the omniscient adversary answers with error
  ``t~``.
* **E8** ``log n`` with ``n = 1``: ``beta = C_b^2 log n = 0`` (only instances with one key are affected).
* **E10** Case 2b's ``/d``: scores ``beta <a, b>/d`` (scale ``1/d`` instead of ``1/d~``), decided with the
  printed ``t~``.

Examples
--------
>>> from instances.worst_case import worst_case_gap_ann
>>> rows = as_printed(worst_case_gap_ann(8, 20, 5.0, 0.2, yes_rows=1, no_rows=2))
>>> [(r["id"], r["wrong_rows"]) for r in rows]
[('E2', 2), ('E3', 0), ('E4', 2), ('E5', 2), ('E8', 0), ('E10', 2)]
"""

from __future__ import annotations

import math

import numpy as np

from instances.gap_ann import OUTSIDE_PROMISE, YES, GapANNInstance
from instances.logspace import LogArray
from reductions import Chain, GapANNToAAttC

from .attention.adversarial import adversarial
from .attention.exact import exact
from .pipeline import decide

#: (id, the paper's statement, the correction) for every replayed erratum.
STATEMENTS: list[tuple[str, str, str]] = [
    ("E2", "tau := exp(beta) (Eq. 5)", "tau = exp(beta/2)"),
    ("E3", "bottom-left block of A is 0", "it is all ones"),
    ("E4", "t~ = (1/6n) exp(-0.75 beta - 0.25 beta t/d)", "t~ = (1/6n) exp(-0.25 beta - 0.25 beta t/d)"),
    ("E5", "exp(beta eps t / 4d) > 4n suffices (Eq. 13) with error t~", "needs >= 6n at eps_a = t~"),
    ("E8", "beta = C_b^2 log n, also for n = 1", "log max(n, 2)"),
    ("E10", "Case 2b: beta <a, b> / d", "beta <a, b> / d~"),
]


def _wrong(yes: np.ndarray, truth: np.ndarray, constrained: np.ndarray) -> int:
    return int(((yes != truth) & constrained).sum())


def _decide_log(u: LogArray, log_threshold: float) -> np.ndarray:
    return (u.sign > 0) & (u.log_abs >= log_threshold)


def as_printed(instance: GapANNInstance, *, params: str = "tight") -> list[dict]:
    """For each replayed erratum: ``id``, ``statement``, ``correction``, ``wrong_rows`` (in-promise rows decided
    wrongly under the printed statement), ``rows`` and ``note``; see the module docstring."""
    status = instance.row_status()
    truth, constrained = status == YES, status != OUTSIDE_PROMISE
    n_a, n, d, t, eps = instance.n_a, instance.n_b, instance.dim, instance.t, instance.eps
    chain = Chain([GapANNToAAttC(mode=params)])
    reduced = chain.reduce(instance)
    p, att = reduced.steps[-1].parameters, reduced.target
    u = exact(att.Q[:n_a], att.K, att.V, scale=att.scale)[:, 0]
    out: dict[str, tuple[int, str]] = {}

    printed_t = 0.25 * p.beta * (1 - t / d) - math.log(6 * n) - p.beta  # t~ with tau = e^beta
    wrong_tau = _wrong(_decide_log(u, math.log(2) + printed_t), truth, constrained)
    out["E2"] = (wrong_tau, "the printed tau makes 2t~ e^{beta/2} times too small: NO rows pass the threshold")
    out["E3"] = (0, "the block enters only padding rows' sums; they are never decoded")
    paper_t = -math.log(6 * n) - 0.75 * p.beta - 0.25 * p.beta * t / d
    out["E4"] = (_wrong(_decide_log(u, math.log(2) + paper_t), truth, constrained),
                 "the printed t~ equals E2's (it follows from tau = e^beta)")

    beta_4n = 4 * d * math.log(4 * n) / (eps * t)
    chain_4n = Chain([GapANNToAAttC(beta=beta_4n, check=False)])
    red_4n = chain_4n.reduce(instance)
    p4 = red_4n.steps[-1].parameters
    adv = adversarial(exact, log_eps=p4.log_t_tilde, log_threshold=p4.log_threshold, truth=truth,
                      constrained=constrained)
    dec = decide(chain_4n, instance, adv, reduced=red_4n)
    out["E5"] = (_wrong(dec.rows.yes, truth, constrained),
                 f"beta = 4d ln(4n)/(eps t) = {beta_4n:.6g} < beta_min = {p.beta_min:.6g}; adversary at eps_a = t~")

    if n == 1:
        # log n = 0 gives beta = 0: Q = K = 0, every score is 0, so u_i = 1/2 (one real key of two), while
        # t~ = 1/(6n) puts the threshold at 1/3: every row reads YES.
        yes0 = np.full(n_a, math.log(0.5) >= math.log(2) - math.log(6 * n))
        out["E8"] = (_wrong(yes0, truth, constrained), "n = 1: beta = C_b^2 log 1 = 0, every row reads YES")
    else:
        out["E8"] = (0, f"only instances with one key are affected (this one has n = {n})")

    u_d = exact(att.Q[:n_a], att.K, att.V, scale=1.0 / d)[:, 0]
    out["E10"] = (_wrong(_decide_log(u_d, math.log(2) + paper_t), truth, constrained),
                  "scores beta <a, b>/d with the printed t~")
    return [{"id": i, "statement": s, "correction": c, "wrong_rows": out[i][0], "rows": int(n_a),
             "note": out[i][1]} for i, s, c in STATEMENTS]


__all__ = ["STATEMENTS", "as_printed"]
