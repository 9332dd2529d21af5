r"""The attention route on Gap-ANN instances: Gap-ANN -> AAttC (Lemma 4.7) -> oracle -> per-row answers.

:func:`run_ann_chain` runs the last link of the SETH chain on its own, on any Gap-ANN instance (e.g. a planted one
from :func:`instances.gap_ann_builders.planted`), and checks every row against a direct solver
(:func:`finegrained.gap_ann_solvers.solve_gap_ann`). Inside the promise of Definition 4.5 a correct oracle must
agree on every row; rows outside the promise may go either way and are reported separately.

Unbalanced inputs are first balanced by Remark 4.4 (``v -> [v, 1 - v]``, threshold ``2t``), which keeps every
row's case.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from instances.errors import ParameterError
from instances.gap_ann import NO, OUTSIDE_PROMISE, YES, GapANNInstance, balance
from instances.solutions import GapANNAnswer
from reductions import Chain, GapANNToAAttC

from .attention import resolve_oracle
from .gap_ann_solvers import solve_gap_ann
from .pipeline import decide
from .resources import check_memory

SCHEMA = "finegrained.ann_chain/1"
#: At most this many disagreeing rows are listed one by one (all are counted).
MAX_LISTED = 100


def ann_chain_memory_bytes(n_a: int, n_b: int, d: int) -> int:
    """Peak memory of the attention route with the exact oracle: float64 ``Q`` (``(n_a + n_b) x 2d``) and ``K``
    (``2 n_b x 2d``), the oracle's scaled and reordered copies of both, and its score tiles."""
    qk = ((n_a + n_b) + 2 * n_b) * 2 * d * 8
    return int(3 * qk + 64 * 2**20)


def _balanced(instance: GapANNInstance) -> tuple[GapANNInstance, bool]:
    if instance.is_balanced():
        return instance, False
    return GapANNInstance(balance(instance.A), balance(instance.B), 2 * instance.t, instance.eps), True


@dataclass
class AnnChainResult:
    """What :func:`run_ann_chain` found.

    Attributes
    ----------
    yes : numpy.ndarray of bool
        The attention route's answer per row.
    direct_yes : numpy.ndarray of bool
        The direct solver's exact answer per row (``min distance < t``).
    status : numpy.ndarray of int
        Per row ``YES`` (1), ``NO`` (0) or ``OUTSIDE_PROMISE`` (-1) from the exact minimum distances.
    agree_with_direct : bool
        Whether the two answers agree on every row.
    disagreements : list of dict
        Up to :data:`MAX_LISTED` rows where they differ: ``row``, ``attention``, ``direct``, ``min_distance``,
        ``status`` and ``margin`` (``log u_i - log 2t~`` in nats).
    ground_truth_agrees : bool or None
        Agreement with a supplied expected answer (e.g. a planted instance's), if any.
    parameters : dict
        Lemma 4.7 quantities (:class:`reductions.gap_ann_to_attention.Lemma47Parameters`).
    timings : dict
        Seconds: ``reduction``, ``oracle`` (the attention call alone), ``decode``, ``direct``, ``total``.
    certification : {"certified", "uncertified"}
        Whether the oracle's certificate decides every row (``uncertified``: the oracle certifies nothing).
    certificate : dict
        What the oracle certified.
    reason : str
        Why the rows are not certified (empty when they are).
    """

    yes: np.ndarray
    direct_yes: np.ndarray
    status: np.ndarray
    margin: np.ndarray
    agree_with_direct: bool
    disagreements: list
    disagreement_count: int
    in_promise_errors: int
    ground_truth_agrees: bool | None
    oracle: str
    params: str
    direct_method: str
    instance: dict
    parameters: dict
    timings: dict
    certification: str = "certified"
    certificate: dict = field(default_factory=dict)
    reason: str = ""
    trace: list = field(default_factory=list, repr=False)

    @property
    def certified(self) -> bool:
        """Whether every row's answer is certified by the oracle's certificate (see :mod:`finegrained.pipeline`)."""
        return self.certification == "certified"

    @property
    def rows(self) -> int:
        return int(self.yes.size)

    def to_dict(self) -> dict:
        """The JSON object of ``finegrained chain --ann FILE --json`` (schema in ``docs/cli.md``), without ``input``."""
        finite_yes = self.margin[self.yes & np.isfinite(self.margin)]
        finite_no = self.margin[~self.yes & np.isfinite(self.margin)]
        return {
            "schema": SCHEMA,
            "rows": self.rows,
            "yes_rows": int(self.yes.sum()),
            "direct_yes_rows": int(self.direct_yes.sum()),
            "agree_with_direct": self.agree_with_direct,
            "disagreement_count": self.disagreement_count,
            "in_promise_errors": self.in_promise_errors,
            "outside_promise_rows": int((self.status == OUTSIDE_PROMISE).sum()),
            "disagreements": self.disagreements,
            "ground_truth_agrees": self.ground_truth_agrees,
            "certified": self.certified,
            "certification": self.certification,
            "certificate": self.certificate,
            "reason": self.reason,
            "oracle": self.oracle,
            "params": self.params,
            "direct_method": self.direct_method,
            "instance": self.instance,
            "parameters": self.parameters,
            "decision": {
                "min_yes_margin": float(finite_yes.min()) if finite_yes.size else None,
                "max_no_margin": float(finite_no.max()) if finite_no.size else None,
            },
            "timings": self.timings,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def run_ann_chain(
    instance: GapANNInstance,
    *,
    oracle: str | Callable[..., object] = "exact",
    params: str = "tight",
    safety: float | None = None,
    direct_method: str = "auto",
    expected: np.ndarray | None = None,
    max_memory: int | None = None,
) -> AnnChainResult:
    """Decide every row of a Gap-ANN instance through attention (Lemma 4.7) and check it against a direct solver.

    Gap-ANN -> AAttC by :class:`reductions.GapANNToAAttC`, one black-box oracle call on ``(Q, K, V, scale)``,
    then the threshold test ``u_i >= 2 t~`` in log space (the reduction's backward map).

    Parameters
    ----------
    instance : GapANNInstance
        Balanced or not (Remark 4.4 is applied when not).
    oracle : str or callable
        A name from :data:`finegrained.attention.ORACLES` or ``oracle(Q, K, V, *, scale) -> LogArray``.
    params : {"tight", "paper"}
        Lemma 4.7 constants.
    safety : float, optional
        Factor on ``beta_min`` in tight mode (default 1.25).
    direct_method : str
        Method of :func:`~finegrained.gap_ann_solvers.solve_gap_ann` for the comparison.
    expected : bool array, optional
        A known answer (e.g. ``PlantedGapANN.expected_yes``) to compare with as well.
    max_memory : int, optional
        Refuse instances whose estimated peak memory exceeds this many bytes (default: half of RAM).

    Examples
    --------
    >>> from instances.gap_ann_builders import planted
    >>> p = planted(32, 32, t=4, eps=1.0, planted=3, seed=0)
    >>> r = run_ann_chain(p.instance, expected=p.expected_yes)
    >>> r.rows, int(r.yes.sum()), r.agree_with_direct, r.ground_truth_agrees
    (32, 3, True, True)
    """
    original = instance
    t_start = time.perf_counter()
    instance, balanced_here = _balanced(instance)
    n_a, n_b, d = instance.n_a, instance.n_b, instance.dim
    check_memory(ann_chain_memory_bytes(n_a, n_b, d), max_memory,
                 f"the attention route on n_a = {n_a}, n_b = {n_b}, d = {d}")
    dec = decide(Chain([GapANNToAAttC(mode=params, safety=safety)]), instance, oracle).require_certified()
    lemma = dec.parameters
    timings: dict[str, float] = {"reduction": dec.reduced.seconds[0], "oracle": dec.timings["oracle"],
                                 "decode": dec.timings["decode"]}
    answer: GapANNAnswer = dec.solution
    yes, margin = answer.yes, answer.margin
    name, att, out = dec.oracle, dec.reduced.target, dec.answer.output

    t0 = time.perf_counter()
    direct = solve_gap_ann(instance, direct_method)
    timings["direct"] = time.perf_counter() - t0
    dist = direct.min_distances
    if direct.method == "ball":
        # the ball method does not see distances >= t; only the far side of the promise matters for the status
        far = solve_gap_ann(instance, "gemm").min_distances
        dist = np.where(np.isfinite(dist), dist, far)
    status = np.where(dist < instance.t, YES, np.where(dist >= (1 + instance.eps) * instance.t, NO, OUTSIDE_PROMISE))
    timings["total"] = time.perf_counter() - t_start

    diff = np.flatnonzero(yes != direct.yes)
    listed = [
        {"row": int(i), "attention": bool(yes[i]), "direct": bool(direct.yes[i]),
         "min_distance": float(dist[i]), "status": int(status[i]),
         "margin": float(margin[i]) if np.isfinite(margin[i]) else None}
        for i in diff[:MAX_LISTED]
    ]
    ground = None
    if expected is not None:
        expected = np.asarray(expected, dtype=bool)
        if expected.shape != yes.shape:
            raise ParameterError(f"expected answers have shape {expected.shape}, the instance has {yes.size} rows")
        ground = bool(np.array_equal(expected, yes))
    return AnnChainResult(
        yes=yes,
        direct_yes=direct.yes,
        status=status,
        margin=margin,
        agree_with_direct=diff.size == 0,
        disagreements=listed,
        disagreement_count=int(diff.size),
        in_promise_errors=int((status[diff] != OUTSIDE_PROMISE).sum()),
        ground_truth_agrees=ground,
        oracle=name,
        params=params,
        direct_method=direct.method,
        instance={"n_a": original.n_a, "n_b": original.n_b, "d": original.dim, "t": original.t,
                  "eps": original.eps, "balanced_by_remark_4_4": balanced_here,
                  "d_balanced": d, "t_balanced": instance.t},
        parameters=lemma.as_dict(),
        timings=timings,
        certification=dec.status,
        certificate=dec.answer.certificate.to_dict(),
        reason=dec.reason,
        trace=[instance, att, out],
    )


def attention_decider(
    oracle: str | Callable[..., object] = "exact", params: str = "tight", safety: float | None = None
) -> Callable[[GapANNInstance], GapANNAnswer]:
    """A Gap-ANN decider (instance -> :class:`GapANNAnswer`) that answers through Lemma 4.7 and an attention oracle.

    Unbalanced instances are balanced by Remark 4.4 first (threshold doubled), which keeps every row's case. The
    decision goes through :func:`finegrained.pipeline.decide`, so an oracle whose certificate cannot decide every
    row raises :class:`~instances.errors.UncertifiedError`.
    """
    name, solve = resolve_oracle(oracle)
    chain = Chain([GapANNToAAttC(mode=params, safety=safety)])

    def decide_rows(instance: GapANNInstance) -> GapANNAnswer:
        inst, _ = _balanced(instance)
        return decide(chain, inst, solve).require_certified().solution

    decide_rows.__name__ = f"attention[{name}, {params}]"
    return decide_rows
