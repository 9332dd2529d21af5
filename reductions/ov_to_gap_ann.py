"""Orthogonal Vectors -> Hamming Gap-ANN with balanced vectors.

Coordinate gadget (research notes §2, checked here by enumeration): map a coordinate ``x`` of an A-vector to
``f(x) = (1-x, x, 0)`` and a coordinate ``y`` of a B-vector to ``g(y) = (1, 1-y, y)``. The four cases give
``Ham(f(x), g(y)) = 1 + 2xy``, so over ``m`` coordinates ``Ham(f(a), g(b)) = m + 2<a, b>``: orthogonal pairs
are at distance exactly ``m`` and all others at ``>= m + 2``. Balancing (Remark 4.4, ``v -> [v, 1-v]``) makes
every vector have weight ``3m`` in dimension ``d = 6m`` and doubles every distance: ``2m`` versus ``>= 2m + 4``.

The Gap-ANN parameters are ``t = 2m + 1`` and ``(1 + eps) t = 2m + 4``, i.e. ``eps = 3 / (2m + 1)``: an
orthogonal pair is at distance ``2m < t`` (Case 1) and a row without one has every distance ``>= (1+eps) t``
(Case 2). Every row satisfies the promise. The gap ``1 + Theta(1/m)`` is not constant; a constant gap needs
Rubinstein's distributed-PCP reduction (STOC 2018), which this toolkit does not implement.

An OV instance of dimension ``m = 0`` (a formula without clauses) is padded with one all-zero coordinate, which
changes no inner product.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from instances.errors import ReductionError
from instances.gap_ann import GapANNInstance, balance
from instances.ov import OVInstance
from instances.solutions import GapANNAnswer, OrthogonalPair

from .base import CertificateError, Reduction, expect
from .sizes import cached_sizes, symbol

__all__ = ["CertificateError", "OVToGapANN", "gadget_parameters"]


def gadget_parameters(m: int) -> tuple[int, float, float]:
    """``(d, t, eps)`` of the Gap-ANN instance built from OV of dimension ``m`` (after padding ``m >= 1``)."""
    m = max(m, 1)
    return 6 * m, 2.0 * m + 1.0, 3.0 / (2.0 * m + 1.0)


@cached_sizes
def _gadget_sizes() -> dict:
    m = sp.Max(symbol("d"), 1)
    return {"n_a": symbol("n_a"), "n_b": symbol("n_b"), "d": 6 * m, "t": 2 * m + 1, "eps": 3 / (2 * m + 1)}


class OVToGapANN(Reduction):
    """OV -> Gap-ANN via the ``1 + 2xy`` coordinate gadget and Remark 4.4 balancing.

    Examples
    --------
    >>> ov = OVInstance([[1, 0], [1, 1]], [[0, 1], [1, 0]])
    >>> g = OVToGapANN().forward(ov)
    >>> g.dim, g.t, round(g.eps, 4), g.is_balanced()
    (12, 5.0, 0.6, True)
    >>> g.min_distances().tolist()   # row 0 is orthogonal to b_0: distance 2m = 4; row 1 is not: >= 2m + 4
    [4.0, 8.0]
    """

    source = "OV"
    target = "Gap-ANN"
    lemma = "coordinate gadget 1 + 2xy (research notes §2) + Remark 4.4"
    blowup = "same n_a, n_b; dimension d = 6m"
    derived = "t = 2m + 1, eps = 3/(2m + 1): orthogonal pairs at distance 2m, all others at >= 2m + 4"

    @property
    def sizes(self) -> dict:
        """Same ``n_a, n_b``; ``d = 6 max(m, 1)``, ``t = 2 max(m, 1) + 1``, ``eps = 3 / t`` (``m = 0`` is padded)."""
        return dict(_gadget_sizes())

    def forward(self, instance: OVInstance) -> GapANNInstance:
        A, B = expect(instance, OVInstance, "the OV -> Gap-ANN input").A, instance.B
        if instance.dim == 0:
            A = np.zeros((instance.n_a, 1), dtype=np.uint8)
            B = np.zeros((instance.n_b, 1), dtype=np.uint8)
        fa = np.stack([1 - A, A, np.zeros_like(A)], axis=2).reshape(A.shape[0], 3 * A.shape[1])  # -1 fails at 0 rows
        gb = np.stack([np.ones_like(B), 1 - B, B], axis=2).reshape(B.shape[0], 3 * B.shape[1])
        _, t, eps = gadget_parameters(instance.dim)
        return GapANNInstance(balance(fa), balance(gb), t=t, eps=eps)

    def backward(self, instance: OVInstance, target_solution: GapANNAnswer) -> OrthogonalPair | None:
        """An orthogonal pair from the first YES row, found by a linear scan of B; None if no row says YES.

        Raises
        ------
        ReductionError
            If ``target_solution`` is not a GapANNAnswer with one entry per row of A.
        CertificateError
            If rows answered YES have no orthogonal partner, i.e. the Gap-ANN answer was wrong.
        """
        expect(instance, OVInstance, "the OV instance")
        expect(target_solution, GapANNAnswer, "the Gap-ANN answer")
        if target_solution.yes.shape != (instance.n_a,):
            raise ReductionError(
                f"the Gap-ANN answer has shape {target_solution.yes.shape}; expected ({instance.n_a},)"
            )
        yes = np.flatnonzero(target_solution.yes)
        if yes.size == 0:
            return None
        # An honest answer has a partner for its first YES row; a wrong one may not, so search all YES rows,
        # tile by tile with BLAS, stopping at the first orthogonal pair.
        hit = OVInstance(instance.A[yes], instance.B).brute_force_solve()
        if hit is None and target_solution.certified and target_solution.undecided[yes].all():
            return None  # only undecided rows leaned YES: no pair, and no claim was made that one exists
        if hit is None:
            raise CertificateError(
                f"the Gap-ANN answer marks {yes.size} row(s) (first: {int(yes[0])}) as having a near neighbour, "
                "but none of them has an orthogonal partner: the answer it was given is wrong"
            )
        return OrthogonalPair(int(yes[hit.i]), hit.j)
