r"""Integer Max-IP -> Attention (Gupta, Huang, Saha, Xu & Ye 2025, Theorem 1.4 gadget), and OV -> Max-IP.

Max-IP -> Attention
-------------------
Scale ``s = 1`` and ``lambda = 2 ln(8 n)`` with ``n = |B|``::

    q_i = (lambda a_i, lambda (1/2 - tau_i))     k_j = (b_j, 1), value 0     dummy key (0, ..., 0), value 1

Real scores are ``lambda (<a_i, b_j> - tau_i + 1/2)``; the paper's gadget puts ``-tau + 1/2`` into the keys, which
gives the same scores, but carrying the threshold in the query lets every row have its own ``tau_i`` (so one
call serves one step of a parallel binary search). Because inner products are integers, a real score is
``>= lambda/2`` if ``<a_i, b_j> >= tau_i`` and ``<= -lambda/2`` otherwise. The dummy's score is 0, and the output
is the dummy's softmax mass

.. math:: u_i = 1 / (1 + \sum_j e^{\lambda (\langle a_i, b_j\rangle - \tau_i + 1/2)}).

* Some ``<a_i, b_j> >= tau_i``: ``u_i <= 1 / (1 + e^{lambda/2}) = 1 / (1 + 8n) <= 1/9``.
* None: ``u_i >= 1 / (1 + n e^{-lambda/2}) = 8/9``.

So ``u_i < 1/2`` decides the row for any answer with additive error ``< 7/18``; the instance asks for
``eps_a = 1/4``. (The notes' ``lambda = 2 ln(4n)`` also works: ``1/5`` against ``4/5``; ``8n`` matches
:mod:`reductions.ov_to_attention`.) Entries are at most ``lambda max(|a|, |tau| + 1/2)`` and ``max |b|``: large
``B`` at small ``d`` is exactly the regime of Theorem 1.4.

Float64 range
-------------
``Q`` holds ``fl(lambda a_il)`` and ``fl(lambda (1/2 - tau_i))``, so even an exact oracle sees scores
``s~_ij = s_ij + e_ij`` rather than ``s_ij``. Each stored product has relative error ``<= u = 2^-53`` (``1/2 - tau``
itself is exact for ``|tau| < 2^52``), and an oracle that forms the length-``(d+1)`` dot product in float64, in
any order, with or without FMA, adds at most ``gamma_{d+1} sum_l |q~_l k_l|`` with ``gamma_k = k u / (1 - k u)``.
Together

.. math:: |e_{ij}| \le \gamma_{d+2}\, \lambda\, M_i, \qquad
          M_i = \max_j \sum_l |a_{il}|\,|b_{jl}| + |1/2 - \tau_i|.

With ``lambda = 2 ln(c n)`` and every score off by at most ``e``, a YES row has ``u_i <= 1 / (1 + c e^{-e})`` and
a NO row ``u_i >= c / (c + e^e)``; both stay on their side of ``1/2`` at distance more than ``eps_a = 1/4`` iff
``e < ln(c/3)``. The reduction refuses (:class:`~instances.errors.ReductionError`) unless
``gamma_{d+2} lambda max_i M_i <= ln(c/3) / 2`` (:func:`score_error_bound`), which keeps half of that room for
rounding inside the oracle's exponentials. Integer entries near ``2^26`` (inner products near ``2^52``, where the
float64 spacing exceeds ``lambda``) are far outside: there the float instance would encode the wrong answer.

OV -> Max-IP
------------
``A' = A``, ``B' = -B``, ``tau = 0``: ``max_j <a_i, -b_j> >= 0`` iff some ``b_j ⟂ a_i`` (0/1 vectors).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from instances.aattc import AAttCInstance
from instances.errors import ReductionError
from instances.maxip import MaxIPAnswer, MaxIPInstance
from instances.ov import OVInstance
from instances.solutions import OrthogonalPair

from .base import CertificateError, Reduction, expect
from .ov_to_attention import (
    DEFAULT_FACTOR,
    EPS_A,
    check_gadget_factor,
    gadget_lambda,
    lambda_expr,
    output_column,
    rows_at_least_half,
)
from .sizes import cached_sizes, symbol

#: unit roundoff of float64
UNIT_ROUNDOFF = 2.0**-53


def score_error_bound(instance: MaxIPInstance, lam: float) -> float:
    """``gamma_{d+2} lambda max_i M_i``: how far float64 may move any score of the gadget (module docstring).

    ``M_i`` is computed in float64 from ``|A| |B|^T``, whose relative error ``gamma_d`` is covered by rounding the
    result up by a relative ``4 (d + 2) u``; ``inf`` when the entries overflow float64.

    Examples
    --------
    >>> small = MaxIPInstance([[3, -1]], [[1, 1]], 2)
    >>> score_error_bound(small, 2.0) < 1e-14
    True
    >>> score_error_bound(MaxIPInstance([[2**26]], [[2**26]], 2**52), 2.0) > 1
    True
    """
    d = instance.dim
    with np.errstate(over="ignore", invalid="ignore"):
        absA = np.abs(instance.A.astype(np.float64))
        absB = np.abs(instance.B.astype(np.float64))
        ip = absA @ absB.T if instance.n_a and instance.n_b else np.zeros((instance.n_a, 1))
        m = ip.max(axis=1, initial=0.0) + np.abs(0.5 - instance.tau.astype(np.float64))
        worst = float(m.max(initial=0.0))
    if not math.isfinite(worst):
        return math.inf
    k = d + 2
    gamma = k * UNIT_ROUNDOFF / (1 - k * UNIT_ROUNDOFF)
    return gamma * lam * worst * (1 + 4 * k * UNIT_ROUNDOFF)


@cached_sizes
def _entry_bound(factor: float) -> sp.Expr:
    return sp.Max(lambda_expr(factor) * sp.Max(symbol("W_a"), symbol("T")), symbol("W_b"), 1)


class MaxIPToAttention(Reduction):
    """Max-IP (per-row thresholds) -> Attention by the Theorem 1.4 gadget.

    Parameters
    ----------
    factor : float
        The ``c`` of ``lambda = 2 ln(c n)`` (default 8); must exceed 3.

    Examples
    --------
    >>> from instances.maxip import MaxIPInstance, max_inner_products
    >>> from finegrained.attention import exact
    >>> r = MaxIPToAttention()
    >>> def decide(inst):
    ...     att = r.forward(inst)
    ...     return r.backward(inst, exact(att.Q, att.K, att.V, scale=att.scale))
    >>> max_inner_products([[3, -1], [0, 2]], [[1, 1], [-2, 5]], decide).tolist()
    [2, 10]
    """

    source = "Max-IP"
    target = "Attention"
    lemma = "Gupta-Huang-Saha-Xu-Ye 2025, Theorem 1.4 (threshold gadget with dummy key, lambda = 2 ln(8n))"
    blowup = "n_q = n_a, n_k = n_b + 1, d = dim + 1, d_v = 1, entries <= lambda max(|a|, |tau| + 1/2), |b|"

    def __init__(self, factor: float = DEFAULT_FACTOR) -> None:
        self.factor = check_gadget_factor(factor)

    @property
    def sizes(self) -> dict:
        """``n_q = n_a``, ``n_k = n_b + 1``, ``d + 1``, ``lambda = 2 ln(c max(n_b, 1))``,
        ``B = max(lambda max(W_a, T), W_b, 1)``."""
        lam = lambda_expr(self.factor)
        bound = _entry_bound(self.factor)
        return {"n_q": symbol("n_a"), "n_k": symbol("n_b") + 1, "d": symbol("d") + 1, "d_v": sp.Integer(1),
                "B": bound, "lambda": lam, "log_eps_a": sp.log(sp.Rational(1, 4))}

    def score_tolerance(self) -> float:
        """``ln(c/3) / 2``: the score error the gadget admits (module docstring, "Float64 range")."""
        return 0.5 * math.log(self.factor / 3.0)

    def forward(self, instance: MaxIPInstance) -> AAttCInstance:
        """The gadget's attention instance.

        Raises
        ------
        ReductionError
            If ``B`` is empty, or the entries are too large for float64 to carry the scores
            (:func:`score_error_bound` above :meth:`score_tolerance`).
        """
        expect(instance, MaxIPInstance, "the Max-IP -> Attention input")
        n_a, n_b, d = instance.n_a, instance.n_b, instance.dim
        if n_b == 0:
            raise ReductionError("Max-IP needs at least one vector in B")
        lam = gadget_lambda(n_b, self.factor)
        err = score_error_bound(instance, lam)
        if err > self.score_tolerance():
            raise ReductionError(
                f"Max-IP entries too large for float64: the gadget's scores may be off by {err:.3g} nats, more than "
                f"the {self.score_tolerance():.3g} it admits (sum |a||b| + |tau| must stay below about "
                f"{self.score_tolerance() / (lam * (d + 2) * UNIT_ROUNDOFF):.3g})"
            )
        Q = np.empty((n_a, d + 1))
        Q[:, :d] = lam * instance.A
        Q[:, d] = lam * (0.5 - instance.tau)
        K = np.zeros((n_b + 1, d + 1))
        K[:n_b, :d] = instance.B
        K[:n_b, d] = 1.0
        V = np.zeros((n_b + 1, 1))
        V[n_b, 0] = 1.0
        bound = max(float(np.abs(Q).max(initial=0.0)), float(np.abs(K).max(initial=0.0)), 1.0)
        return AAttCInstance(Q, K, V, B=bound, log_eps_a=math.log(EPS_A), scale=1.0,
                             meta={"lambda": lam, "threshold": 0.5, "gadget": "max-ip"})

    def backward(self, instance: MaxIPInstance, target_solution) -> MaxIPAnswer:
        """Row ``i`` reaches its threshold iff the dummy's mass is below ``1/2``.

        Raises
        ------
        ReductionError
            If the output is not a LogArray of shape ``(n_a, 1)``.
        """
        n_a = expect(instance, MaxIPInstance, "the Max-IP instance").n_a
        return MaxIPAnswer(~rows_at_least_half(output_column(target_solution, n_a)))


class OVToMaxIP(Reduction):
    """OV -> Max-IP: negate ``B`` and ask whether some inner product reaches 0.

    Examples
    --------
    >>> from instances.ov import OVInstance
    >>> ov = OVInstance([[1, 1], [1, 0]], [[1, 0], [0, 1]])
    >>> mip = OVToMaxIP().forward(ov)
    >>> mip.B.tolist(), mip.tau.tolist()
    ([[-1, 0], [0, -1]], [0, 0])
    >>> OVToMaxIP().backward(ov, mip.brute_force_solve())
    OrthogonalPair(i=1, j=1)
    """

    source = "OV"
    target = "Max-IP"
    lemma = "negation: <a, -b> >= 0 iff <a, b> = 0 for 0/1 vectors"
    blowup = "identical sizes, tau = 0"

    @property
    def sizes(self) -> dict:
        """Same ``n_a, n_b, d``; ``tau = 0`` gives ``T = 1/2``; ``W_a, W_b <= 1`` depend on the entries."""
        return {"n_a": symbol("n_a"), "n_b": symbol("n_b"), "d": symbol("d"), "T": sp.Rational(1, 2)}

    def forward(self, instance: OVInstance) -> MaxIPInstance:
        expect(instance, OVInstance, "the OV -> Max-IP input")
        return MaxIPInstance(instance.A.astype(np.int64), -instance.B.astype(np.int64), 0)

    def backward(self, instance: OVInstance, target_solution: MaxIPAnswer) -> OrthogonalPair | None:
        """The first row answered YES with its partner (linear scan of ``B``), or None.

        Raises
        ------
        ReductionError
            If ``target_solution`` is not a MaxIPAnswer with one entry per row of A.
        CertificateError
            If the first row answered YES has no orthogonal partner (the Max-IP answer is wrong).
        """
        expect(instance, OVInstance, "the OV instance")
        expect(target_solution, MaxIPAnswer, "the Max-IP answer")
        if target_solution.yes.shape != (instance.n_a,):
            raise ReductionError(f"the Max-IP answer has shape {target_solution.yes.shape}; expected ({instance.n_a},)")
        for i in np.flatnonzero(target_solution.yes):
            j = instance.partner_of(int(i))
            if j is not None:
                return OrthogonalPair(int(i), j)
            raise CertificateError(f"the Max-IP answer claims row {int(i)} reaches 0, but it has no orthogonal partner")
        return None
