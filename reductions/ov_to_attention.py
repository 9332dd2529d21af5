r"""OV -> Attention for large head dimension (Gupta, Huang, Saha, Xu & Ye 2025, Theorem 1.5 gadget).

Construction (scale ``s = 1``, ``lambda = 2 ln(8 n)`` with ``n = |B|``)::

    q_i = (-lambda a_i, -lambda/2)      k_j = (b_j, 0), value 1      dummy key (0, ..., 0, 1), value 0

Real scores are ``-lambda <a_i, b_j>``: ``0`` if ``a_i ⟂ b_j`` and ``<= -lambda`` otherwise (0/1 vectors); the
dummy's score is ``-lambda/2``. The output of row ``i`` is the softmax mass of the real keys,

.. math:: u_i = S_i / (e^{-\lambda/2} + S_i), \qquad S_i = \sum_j e^{-\lambda \langle a_i, b_j\rangle}.

* Some ``b_j ⟂ a_i``: the sum is ``>= 1``, so ``u_i >= 1 / (1 + e^{-lambda/2}) = 1 / (1 + 1/(8n)) >= 8/9``.
* None: the sum is ``<= n e^{-lambda}``, so ``u_i <= n e^{-lambda} / e^{-lambda/2} = n e^{-lambda/2} = 1/8``.

Any answer with additive error ``< 3/8`` is therefore decided by ``u_i >= 1/2``; the target instance asks for
``eps_a = 1/4``. (``lambda = 2 ln(4n)`` gives ``u_i <= 1/4`` on NO rows, which leaves no room for error at
``eps_a = 1/4``; hence ``8n``.) Entries are at most ``lambda = O(log n)`` and the dimension is ``m + 1``: with
``m = poly(n)`` this is the regime of Theorem 1.5, where the quadratic algorithm is optimal under OV.
"""

from __future__ import annotations

import math

import numpy as np

from instances.aattc import AAttCInstance
from instances.errors import ParameterError
from instances.logspace import LogArray
from instances.ov import OVInstance
from instances.solutions import OrthogonalPair

from .base import Reduction

#: additive error the target instances tolerate
EPS_A = 0.25


def gadget_lambda(n: int) -> float:
    """``lambda = 2 ln(8 n)`` for ``n >= 1`` keys."""
    return 2.0 * math.log(8.0 * max(n, 1))


def rows_at_least_half(u: LogArray) -> np.ndarray:
    """``u_i >= 1/2`` decided in log space for a column of attention outputs."""
    return (u.sign > 0) & (u.log_abs >= -math.log(2.0))


class OVToAttention(Reduction):
    """OV -> Attention by the Theorem 1.5 gadget (one attention call decides every row of ``A``).

    Examples
    --------
    >>> from instances.ov import OVInstance
    >>> from finegrained.attention import exact
    >>> ov = OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1]])
    >>> att = OVToAttention().forward(ov)
    >>> att.Q.shape, att.K.shape
    ((2, 3), (3, 3))
    >>> OVToAttention().backward(ov, exact(att.Q, att.K, att.V, scale=att.scale))
    OrthogonalPair(i=0, j=1)
    """

    source = "OV"
    target = "Attention"
    lemma = "Gupta-Huang-Saha-Xu-Ye 2025, Theorem 1.5 (gadget with dummy key, lambda = 2 ln(8n))"
    blowup = "n_q = n_a, n_k = n_b + 1, d = m + 1, d_v = 1, entries <= 2 ln(8 n_b)"

    def forward(self, instance: OVInstance) -> AAttCInstance:
        n_a, n_b, m = instance.n_a, instance.n_b, instance.dim
        lam = gadget_lambda(n_b)
        Q = np.empty((n_a, m + 1))
        Q[:, :m] = -lam * instance.A
        Q[:, m] = -lam / 2
        K = np.zeros((n_b + 1, m + 1))
        K[:n_b, :m] = instance.B
        K[n_b, m] = 1.0
        V = np.zeros((n_b + 1, 1))
        V[:n_b, 0] = 1.0
        return AAttCInstance(Q, K, V, B=lam, log_eps_a=math.log(EPS_A), scale=1.0,
                             meta={"lambda": lam, "threshold": 0.5, "gadget": "ov"})

    def row_answers(self, instance: OVInstance, target_solution: LogArray) -> np.ndarray:
        """``yes[i]``: the output claims that ``a_i`` has an orthogonal partner."""
        if len(target_solution.shape) != 2 or target_solution.shape[0] != instance.n_a:
            raise ParameterError(f"attention output has shape {target_solution.shape}; expected ({instance.n_a}, 1)")
        return rows_at_least_half(target_solution[:, 0])

    def backward(self, instance: OVInstance, target_solution: LogArray) -> OrthogonalPair | None:
        """The first row claimed orthogonal, with its partner found by a linear scan of ``B``; None if none is."""
        for i in np.flatnonzero(self.row_answers(instance, target_solution)):
            j = instance.partner_of(int(i))
            if j is not None:
                return OrthogonalPair(int(i), j)
            raise ParameterError(f"the attention output claims row {int(i)} has an orthogonal partner, but none "
                                 "exists: the oracle's error exceeds eps_a = 1/4")
        return None
