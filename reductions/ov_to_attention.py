r"""OV -> Attention for large head dimension (Gupta, Huang, Saha, Xu & Ye 2025, Theorem 1.5 gadget).

Construction (scale ``s = 1``, ``lambda = 2 ln(c n)`` with ``n = |B|`` and ``c = 8`` by default)::

    q_i = (-lambda a_i, -lambda/2)      k_j = (b_j, 0), value 1      dummy key (0, ..., 0, 1), value 0

Real scores are ``-lambda <a_i, b_j>``: ``0`` if ``a_i ⟂ b_j`` and ``<= -lambda`` otherwise (0/1 vectors); the
dummy's score is ``-lambda/2``. The output of row ``i`` is the softmax mass of the real keys,

.. math:: u_i = S_i / (e^{-\lambda/2} + S_i), \qquad S_i = \sum_j e^{-\lambda \langle a_i, b_j\rangle},

which increases with ``S_i``. Write ``x = n e^{-lambda/2} = 1/c``.

* Some ``b_j ⟂ a_i``: ``S_i >= 1``, so ``u_i >= 1 / (1 + e^{-lambda/2}) = cn / (cn + 1) >= c / (c + 1)``.
* None: ``S_i <= n e^{-lambda}``, so ``u_i <= n e^{-lambda} / (e^{-lambda/2} + n e^{-lambda}) = x / (1 + x)
  = 1 / (c + 1)``.

Both bounds are attained (``n = 1``; every ``<a_i, b_j> = 1``), see :func:`gadget_bounds`. With ``c = 8`` they are
``8/9`` and ``1/9``, so any answer with additive error ``< 7/18`` is decided by ``u_i >= 1/2``; the target instance
asks for ``eps_a = 1/4``. The notes' ``c = 4`` (``lambda = 2 ln(4n)``) gives ``4/5`` and ``1/5``: it also leaves
room at ``eps_a = 1/4`` (``1/5 + 1/4 = 9/20 < 1/2``, a margin of ``1/20`` on each side), only less of it. The
cruder bound ``u_i <= n e^{-lambda} / e^{-lambda/2} = 1/c``, which drops the ``S_i`` in the denominator, is what
once made ``c = 4`` look like it left no room (``1/4 + 1/4 = 1/2``). Entries are at most ``lambda = O(log n)`` and
the dimension is ``m + 1``: with ``m = poly(n)`` this is the regime of Theorem 1.5, where the quadratic algorithm
is optimal under OV.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from instances.aattc import AAttCInstance
from instances.errors import ParameterError, ReductionError, real_number
from instances.logspace import LogArray
from instances.ov import OVInstance
from instances.solutions import CertifiedOutput, GapANNAnswer, OrthogonalPair

from .base import CertificateError, Reduced, Reduction, expect
from .sizes import cached_sizes, exact_number, symbol

#: additive error the target instances tolerate
EPS_A = 0.25


#: the ``c`` of ``lambda = 2 ln(c n)``
DEFAULT_FACTOR = 8.0


def gadget_lambda(n: int, factor: float = DEFAULT_FACTOR) -> float:
    """``lambda = 2 ln(c n)`` for ``n >= 1`` keys (``c = factor``, 8 by default)."""
    # log(c) + log(n) rather than log(c n): the product overflows to inf for c near float64's top
    return 2.0 * (math.log(factor) + math.log(max(n, 1)))


@cached_sizes
def lambda_expr(factor: float) -> sp.Expr:
    """``lambda = 2 ln(c max(n_b, 1))`` as a size expression."""
    return 2 * sp.log(exact_number(factor) * sp.Max(symbol("n_b"), 1))


def gadget_bounds(factor: float = DEFAULT_FACTOR) -> tuple[float, float]:
    """``(yes_lower, no_upper) = (c/(c+1), 1/(c+1))``: the worst ``u_i`` of a YES and of a NO row (module docstring).

    Examples
    --------
    >>> gadget_bounds(8.0), gadget_bounds(4.0)
    ((0.8888888888888888, 0.1111111111111111), (0.8, 0.2))
    """
    return factor / (factor + 1.0), 1.0 / (factor + 1.0)


def check_gadget_factor(factor: float) -> float:
    """``factor`` if ``lambda = 2 ln(c n)`` separates rows at ``eps_a = 1/4``, i.e. ``1/(c+1) + 1/4 < 1/2``."""
    value = real_number("the gadget factor c of lambda = 2 ln(c n)", factor)
    if not value > 3.0:
        raise ParameterError(f"the gadget factor c of lambda = 2 ln(c n) must exceed 3 (NO rows then stay below "
                             f"1/(c+1) < 1/4, leaving room for eps_a = 1/4), got {value}")
    return value


def rows_at_least_half(u: LogArray) -> np.ndarray:
    """``u_i >= 1/2`` decided in log space for a column of attention outputs."""
    return (u.sign > 0) & (u.log_abs >= -math.log(2.0))


def output_column(target_solution: LogArray, n_a: int) -> LogArray:
    """The single output column of an ``(n_a, 1)`` attention answer; :class:`ReductionError` otherwise."""
    expect(target_solution, LogArray, "the attention output")
    if target_solution.shape != (n_a, 1):
        raise ReductionError(f"attention output has shape {target_solution.shape}; expected ({n_a}, 1)")
    return target_solution[:, 0]


class OVToAttention(Reduction):
    """OV -> Attention by the Theorem 1.5 gadget (one attention call decides every row of ``A``).

    Parameters
    ----------
    factor : float
        The ``c`` of ``lambda = 2 ln(c n)``; must exceed 3 so that NO rows stay below ``1/(c+1) < 1/4``.

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

    def __init__(self, factor: float = DEFAULT_FACTOR) -> None:
        self.factor = check_gadget_factor(factor)

    @property
    def sizes(self) -> dict:
        """``n_q = n_a``, ``n_k = n_b + 1``, ``d = m + 1``, ``d_v = 1``, ``B = lambda = 2 ln(c max(n_b, 1))``."""
        lam = lambda_expr(self.factor)
        return {"n_q": symbol("n_a"), "n_k": symbol("n_b") + 1, "d": symbol("d") + 1, "d_v": sp.Integer(1),
                "B": lam, "lambda": lam, "log_eps_a": sp.log(sp.Rational(1, 4))}

    def forward(self, instance: OVInstance) -> AAttCInstance:
        expect(instance, OVInstance, "the OV -> Attention input")
        n_a, n_b, m = instance.n_a, instance.n_b, instance.dim
        lam = gadget_lambda(n_b, self.factor)
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

    def parameters(self, instance: OVInstance) -> dict:
        """``lambda``, the decision threshold ``log(1/2)``, ``log eps_a`` and the certified accuracy needed.

        A certified decision needs the whole interval ``[u~ - e, u~ + e]`` on one side of ``1/2``. An answer
        ``u~`` within ``e`` of ``u`` has that interval inside ``[u - 2e, u + 2e]``; YES rows have ``u >= c/(c+1)``
        and NO rows ``u <= 1/(c+1)`` (:func:`gadget_bounds`), so ``e < (c/(c+1) - 1/2) / 2`` suffices (``7/36``
        at ``c = 8``: the instance's ``eps_a = 1/4`` decides point answers, but an interval of half-width ``1/4``
        around an answer pushed by ``1/4`` can reach across ``1/2``, as ``t~/2`` against ``eps_a = t~`` on
        Lemma 4.7's route).
        """
        yes_lo, no_hi = gadget_bounds(self.factor)
        margin = min(yes_lo - 0.5, 0.5 - no_hi)
        return {"lambda": gadget_lambda(expect(instance, OVInstance, "the OV instance").n_b, self.factor),
                "log_threshold": -math.log(2.0), "log_eps_a": math.log(EPS_A),
                "log_eps_needed": min(math.log(EPS_A), math.log(margin / 2) - 1e-12), "factor": self.factor}

    def decide_rows(self, reduced: Reduced, target_solution: LogArray | CertifiedOutput) -> GapANNAnswer:
        """Per-row answers ``u_i >= 1/2``; with a CertifiedOutput, rows whose interval reaches across 1/2 are
        undecided (a bare LogArray is taken as the exact output)."""
        n_a = reduced.source.n_a
        if isinstance(target_solution, LogArray):
            target_solution = CertifiedOutput(target_solution, target_solution, target_solution)
        expect(target_solution, CertifiedOutput, "the attention output")
        if target_solution.shape != (n_a, 1):
            raise ReductionError(f"attention output has shape {target_solution.shape}; expected ({n_a}, 1)")
        col = target_solution[:, 0]
        yes = rows_at_least_half(col.value)
        margin = np.where(col.value.sign > 0, col.value.log_abs + math.log(2.0), -np.inf)
        if not col.certified:
            return GapANNAnswer(yes, margin=margin, certified=False)
        eta = 1e-15
        lower = np.where(col.lower.sign > 0, col.lower.log_abs + math.log(2.0), -np.inf)
        upper = np.where(col.upper.sign > 0, col.upper.log_abs + math.log(2.0), -np.inf)
        decided = (lower > eta) | (upper < -eta)
        return GapANNAnswer(np.where(decided, lower > eta, yes), undecided=~decided, margin=margin)

    def extract(self, reduced: Reduced, target_solution) -> OrthogonalPair | None:
        """An orthogonal pair from the per-row answers (:meth:`decide_rows`, or the output itself).

        Certified YES rows and uncertified point answers must have a partner (else :class:`CertificateError`);
        rows that only lean YES inside an undecided interval may not.
        """
        rows = target_solution if isinstance(target_solution, GapANNAnswer) else self.decide_rows(
            reduced, target_solution)
        instance = reduced.source
        if rows.yes.shape != (instance.n_a,):
            raise ReductionError(f"the row answers have shape {rows.yes.shape}; expected ({instance.n_a},)")
        for i in np.flatnonzero(rows.yes):
            j = instance.partner_of(int(i))
            if j is not None:
                return OrthogonalPair(int(i), j)
            if rows.certified and rows.undecided[i]:
                continue
            raise CertificateError(f"the attention output claims row {int(i)} has an orthogonal partner, but none "
                                   "exists: the oracle's error exceeds eps_a = 1/4")
        return None

    def row_answers(self, instance: OVInstance, target_solution: LogArray) -> np.ndarray:
        """``yes[i]``: the output claims that ``a_i`` has an orthogonal partner."""
        return rows_at_least_half(output_column(target_solution, expect(instance, OVInstance, "the OV instance").n_a))

    def backward(self, instance: OVInstance, target_solution: LogArray) -> OrthogonalPair | None:
        """The first row claimed orthogonal, with its partner found by a linear scan of ``B``; None if none is.

        Raises
        ------
        ReductionError
            If the output is not a LogArray of shape ``(n_a, 1)``.
        CertificateError
            If a row claimed orthogonal has no partner: the oracle's error exceeded ``eps_a = 1/4``.
        """
        for i in np.flatnonzero(self.row_answers(instance, target_solution)):
            j = instance.partner_of(int(i))
            if j is not None:
                return OrthogonalPair(int(i), j)
            raise CertificateError(f"the attention output claims row {int(i)} has an orthogonal partner, but none "
                                   "exists: the oracle's error exceeds eps_a = 1/4")
        return None
