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

OV -> Max-IP
------------
``A' = A``, ``B' = -B``, ``tau = 0``: ``max_j <a_i, -b_j> >= 0`` iff some ``b_j ⟂ a_i`` (0/1 vectors).
"""

from __future__ import annotations

import math

import numpy as np

from instances.aattc import AAttCInstance
from instances.errors import ParameterError
from instances.logspace import LogArray
from instances.maxip import MaxIPAnswer, MaxIPInstance
from instances.ov import OVInstance
from instances.solutions import OrthogonalPair

from .base import Reduction
from .ov_to_attention import EPS_A, gadget_lambda, rows_at_least_half


class MaxIPToAttention(Reduction):
    """Max-IP (per-row thresholds) -> Attention by the Theorem 1.4 gadget.

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

    def forward(self, instance: MaxIPInstance) -> AAttCInstance:
        n_a, n_b, d = instance.n_a, instance.n_b, instance.dim
        if n_b == 0:
            raise ParameterError("Max-IP needs at least one vector in B")
        lam = gadget_lambda(n_b)
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

    def backward(self, instance: MaxIPInstance, target_solution: LogArray) -> MaxIPAnswer:
        """Row ``i`` reaches its threshold iff the dummy's mass is below ``1/2``."""
        if len(target_solution.shape) != 2 or target_solution.shape[0] != instance.n_a:
            raise ParameterError(f"attention output has shape {target_solution.shape}; expected ({instance.n_a}, 1)")
        return MaxIPAnswer(~rows_at_least_half(target_solution[:, 0]))


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

    def forward(self, instance: OVInstance) -> MaxIPInstance:
        return MaxIPInstance(instance.A.astype(np.int64), -instance.B.astype(np.int64), 0)

    def backward(self, instance: OVInstance, target_solution: MaxIPAnswer) -> OrthogonalPair | None:
        """The first row answered YES with its partner (linear scan of ``B``), or None."""
        for i in np.flatnonzero(target_solution.yes):
            j = instance.partner_of(int(i))
            if j is not None:
                return OrthogonalPair(int(i), j)
            raise ParameterError(f"the Max-IP answer claims row {int(i)} reaches 0, but it has no orthogonal partner")
        return None
