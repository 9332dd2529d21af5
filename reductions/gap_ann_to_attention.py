r"""Gap-ANN -> AAttC (Alman & Song, Lemma 4.7), with the corrected constants of ``docs/errata.md``.

Construction
------------
Let ``A = {a_1..a_{n_a}}`` and ``B = {b_1..b_n}`` be balanced (every vector has ``d/2`` ones, Remark 4.4), and
``beta > 0``. With ``d~ = 2d`` and scale ``1/d~``::

    Q = sqrt(beta) [ a_i  1_d ]  (n_a rows)      K = sqrt(beta) [ b_j  0_d ]  (n rows)      V = [ 1_n ]
                   [ 0_d  1_d ]  (n rows)                       [ 0_d  1_d ]  (n rows)          [ 0_n ]

The blocks of ``A = exp(Q K^T / d~)``, computed from these Q and K (the paper's display differs, see errata):

* top-left ``exp(beta <a_i, b_j> / d~) = exp(beta/4 (1 - H_ij/d))`` with ``H_ij = ||a_i - b_j||_0``
  (balanced vectors give ``<a, b> = (d - H)/2``), so it lies in ``[1, exp(beta/4)]``;
* top-right and bottom-right ``exp(beta d / d~) = exp(beta/2) =: tau``;
* bottom-left ``exp(0) = 1``.

Hence every row sum satisfies ``n tau < D_ii < 2 n tau``, and ``u_i := (D^{-1} A V)_i`` is the softmax mass of
the real keys. Define ``t~ = exp(beta/4 (1 - t/d)) / (6 n tau)``.

* Case 2a (some ``H_ij < t``): ``u_i > exp(beta/4 (1 - t/d)) / (2 n tau) = 3 t~``.
* Case 2b (all ``H_ij >= (1 + eps) t``): ``u_i < exp(beta/4 (1 - (1+eps) t/d)) / tau
  = 3 t~ * 2n * exp(-beta eps t / (4d))``, which is ``<= t~`` iff the *gap condition*
  ``beta eps t / (4d) >= ln(6n)`` holds, i.e. ``beta >= beta_min = 4 d ln(6n) / (eps t)``.

So any AAttC answer with additive error ``eps_a <= t~`` is ``> 2 t~`` on YES rows and ``< 2 t~`` on NO rows: the
threshold test ``u_i >= 2 t~`` decides every row. Everything is evaluated in log space.

Parameter modes
---------------
``tight``: ``beta = safety * beta_min`` (default ``safety = 1.25``) and ``eps_a = t~``.

``paper``: Eqs. (7)-(9) with ``d = C log n`` and ``t = C_0 log n`` (so ``C_0/C = t/d``):
``C_b = sqrt(40 C / (C_0 eps))``, ``B = C_b sqrt(log n)``, ``beta = B^2 = 40 d log n / (eps t)``,
``C_a = 2 + C_b^2 (1 + C_0/C)``, ``eps_a = n^{-C_a}``. Their gap exponent is ``beta eps t/(4d) = 10 log n``, which
meets the gap condition for ``n >= 2``; ``log n`` is taken as ``log max(n, 2)`` so that ``n = 1`` does not give
``beta = 0``.

Unequal sizes: the lemma assumes ``|A| = |B| = n``. Here ``n`` is the number of keys ``|B|`` (it sets ``D``),
``K`` gets ``n`` padding keys, and ``Q`` gets ``n_a`` real rows plus ``n`` padding rows, as in the paper's square
matrices when ``n_a = n``. The padding query rows are never decoded.

The paper's Case 1 (``t < c log n``: enumerate Hamming balls) only serves the running time; the construction
above decides correctly for every ``t > 0``, so it is used for every instance.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np
import sympy as sp

from instances.aattc import AAttCInstance
from instances.errors import ParameterError, ReductionError
from instances.gap_ann import GapANNInstance
from instances.logspace import LogArray
from instances.solutions import CertifiedOutput, GapANNAnswer

from .base import Reduced, Reduction, expect
from .sizes import cached_sizes, exact_number, symbol

MODES = ("tight", "paper")
DEFAULT_SAFETY = 1.25
#: Largest beta * d~ accepted: float64 scores then carry absolute errors below about 1e-3 nats.
MAX_BETA_D = 1e13


@dataclass(frozen=True)
class Lemma47Parameters:
    """Every derived quantity of Lemma 4.7 for one instance; ``log_*`` fields are natural logarithms."""

    mode: str
    n_a: int
    n: int
    d: int
    t: float
    eps: float
    d_tilde: int
    beta: float
    beta_min: float
    safety: float
    B: float
    log_tau: float
    log_t_tilde: float
    log_eps_a: float
    log_threshold: float
    gap_exponent: float
    log_6n: float

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def gap_condition_holds(self) -> bool:
        """``beta eps t / (4d) >= ln(6n)``: Case 2b rows have true ``u_i < t~``."""
        return self.gap_exponent >= self.log_6n

    @property
    def log_eps_needed(self) -> float:
        """log of the additive oracle error that certifies every in-promise row: ``min(eps_a, t~/2)``.

        An interval ``[u~ - e, u~ + e]`` lies on one side of ``2 t~`` for every row with ``u > 3 t~`` or ``u < t~``
        exactly when ``e < t~/2`` (errata E5); the paper's ``eps_a <= t~`` suffices for the point decision only.
        """
        return min(self.log_eps_a, self.log_t_tilde - math.log(2))

    @property
    def log_rounding(self) -> float:
        """Rounding allowance (nats) of ``log 2t~`` itself: it is computed in float64 from ``beta``."""
        return 16 * 2.0**-53 * (abs(self.beta) + abs(self.log_threshold) + 10.0)

    @property
    def accuracy_condition_holds(self) -> bool:
        """``eps_a <= t~``: the oracle's error cannot move a row across ``2 t~``."""
        return self.log_eps_a <= self.log_t_tilde

    def case_2a_log_lower(self, min_distance: np.ndarray | float) -> np.ndarray:
        """log of the Case 2a lower bound on the exact ``u_i`` for a row whose nearest neighbour is at ``H``:
        ``u_i > exp(beta/4 (1 - H/d)) / (2 n tau)``."""
        h = np.asarray(min_distance, dtype=np.float64)
        return 0.25 * self.beta * (1 - h / self.d) - math.log(2 * self.n) - self.log_tau

    def case_2b_log_upper(self, min_distance: np.ndarray | float) -> np.ndarray:
        """log of the Case 2b upper bound on the exact ``u_i`` when every neighbour is at distance ``>= H``:
        ``u_i < n exp(beta/4 (1 - H/d)) / (n tau)``."""
        h = np.asarray(min_distance, dtype=np.float64)
        return 0.25 * self.beta * (1 - h / self.d) - self.log_tau


def lemma47_parameters(
    n_a: int,
    n: int,
    d: int,
    t: float,
    eps: float,
    *,
    mode: str = "tight",
    safety: float | None = None,
    beta: float | None = None,
    check: bool = True,
) -> Lemma47Parameters:
    """Derive ``beta, tau, t~, eps_a, B`` of Lemma 4.7 (corrected) for ``n_a`` queries and ``n`` keys.

    Parameters
    ----------
    n_a, n : int
        Sizes of A (queries) and B (keys); ``n >= 1``.
    d : int
        Dimension of the balanced Hamming vectors (even, positive).
    t, eps : float
        Gap-ANN threshold and gap (Definition 4.5).
    mode : {"tight", "paper"}
        Which constants to use (module docstring).
    safety : float, optional
        Factor ``>= 1`` on ``beta_min`` in tight mode (None: ``DEFAULT_SAFETY``).
    beta : float, optional
        Override ``beta`` (experiments below the threshold); ``eps_a`` is then ``t~``.
    check : bool
        Raise :class:`ParameterError` if the gap or accuracy condition fails.

    Raises
    ------
    ReductionError
        The sizes or ``t, eps`` cannot be reduced (odd ``d``, no keys, ``eps t`` outside float64, or a ``beta``
        whose scores float64 cannot carry).
    ParameterError
        The options are wrong (mode, safety, an explicit ``beta``) or, with ``check``, the conditions fail.

    Examples
    --------
    >>> p = lemma47_parameters(1024, 1024, 510, 171.0, 3 / 171)
    >>> round(p.beta_min, 1), round(p.beta, 1), p.gap_condition_holds
    (5931.8, 7414.7, True)
    >>> q = lemma47_parameters(1024, 1024, 510, 171.0, 3 / 171, mode="paper")
    >>> round(q.beta), round(q.log_eps_a)
    (47134, -62952)
    """
    if mode not in MODES:
        raise ParameterError(f"unknown parameter mode {mode!r}; expected one of {', '.join(MODES)}")
    if n < 1 or n_a < 0:
        raise ReductionError(f"need at least one key vector and n_a >= 0, got n_a={n_a}, n={n}")
    if d <= 0 or d % 2:
        raise ReductionError(f"Lemma 4.7 needs balanced vectors of even positive dimension, got d={d}")
    if not (t > 0 and eps > 0 and math.isfinite(t) and math.isfinite(eps)):
        raise ReductionError(f"Gap-ANN needs t > 0 and eps > 0, got t={t}, eps={eps}")
    safety = DEFAULT_SAFETY if safety is None else safety
    if not (safety >= 1 and math.isfinite(safety)):
        raise ParameterError(f"the safety factor must be a finite number >= 1, got {safety}")
    log_6n = math.log(6 * n)
    gap = eps * t
    beta_min = 4 * d * log_6n / gap if math.isfinite(gap) and gap > 0 else math.inf
    if not (math.isfinite(beta_min) and beta_min > 0):
        raise ReductionError(f"eps * t = {gap:.3g} is outside the float64 range; Gap-ANN needs moderate t and eps")
    paper_eps_a = None
    explicit_beta = beta is not None
    if beta is not None:
        if not (beta > 0 and math.isfinite(beta)):
            raise ParameterError(f"beta must be positive and finite, got {beta}")
        beta = float(beta)
    elif mode == "tight":
        # Rounded up by a relative 1e-12 so that float rounding never puts beta = safety * beta_min below
        # beta_min when safety = 1 (the gap condition then holds with equality in exact arithmetic).
        beta = safety * beta_min * (1 + 1e-12)
    else:
        log_n = math.log(max(n, 2))
        c, c0 = d / log_n, t / log_n
        c_b = math.sqrt(40 * c / (c0 * eps))
        beta = c_b**2 * log_n
        c_a = 2 + c_b**2 * (1 + c0 / c)
        paper_eps_a = -c_a * log_n
    log_tau = beta / 2
    log_t_tilde = 0.25 * beta * (1 - t / d) - math.log(6 * n) - log_tau
    log_eps_a = log_t_tilde if paper_eps_a is None else paper_eps_a
    params = Lemma47Parameters(
        mode=mode,
        n_a=int(n_a),
        n=int(n),
        d=int(d),
        t=float(t),
        eps=float(eps),
        d_tilde=2 * int(d),
        beta=float(beta),
        beta_min=float(beta_min),
        safety=float(beta / beta_min),
        B=math.sqrt(beta),
        log_tau=float(log_tau),
        log_t_tilde=float(log_t_tilde),
        log_eps_a=float(log_eps_a),
        log_threshold=float(math.log(2) + log_t_tilde),
        gap_exponent=float(beta * eps * t / (4 * d)),
        log_6n=float(log_6n),
    )
    if params.beta * params.d_tilde > MAX_BETA_D:
        # An explicit beta is an option; a derived one is too large because of the instance (tiny eps * t).
        raise (ParameterError if explicit_beta else ReductionError)(
            f"beta = {params.beta:.3g} is too large for float64: scores of size beta/2 summed over d~ = "
            f"{params.d_tilde} coordinates carry rounding errors near beta * d~ * 1e-16 = "
            f"{params.beta * params.d_tilde * 1e-16:.2g} nats, which would swamp the threshold margins"
        )
    if check and not params.gap_condition_holds:
        raise ParameterError(
            f"beta = {params.beta:.6g} is below beta_min = 4 d ln(6n)/(eps t) = {beta_min:.6g}: the gap condition "
            "beta*eps*t/(4d) >= ln(6n) fails, so NO rows could pass the threshold test"
        )
    if check and not params.accuracy_condition_holds:
        raise ParameterError(
            f"eps_a = exp({params.log_eps_a:.6g}) exceeds t~ = exp({params.log_t_tilde:.6g}); "
            "the threshold test would not be sound"
        )
    return params


def threshold_test(params: Lemma47Parameters, u: LogArray) -> tuple[np.ndarray, np.ndarray]:
    """Decide each real query row by ``u_i >= 2 t~`` in log space.

    Parameters
    ----------
    u : LogArray
        The oracle's answer for the ``n_a`` real query rows (one value per row).

    Returns
    -------
    yes : bool array
    margin : float array
        ``log u_i - log(2 t~)`` in nats (``-inf`` for ``u_i <= 0``); positive means YES.
    """
    margin = np.where(u.sign > 0, u.log_abs - params.log_threshold, -np.inf)
    return margin >= 0, margin


def certified_threshold_test(params: Lemma47Parameters, output: LogArray | CertifiedOutput) -> GapANNAnswer:
    """The threshold test ``u_i >= 2 t~`` on certified bounds: a row is decided only when its whole interval is.

    Parameters
    ----------
    params : Lemma47Parameters
    output : LogArray or CertifiedOutput
        One value per real query row (shape ``(n_a,)``). A bare LogArray is taken as the exact output. A
        :class:`~instances.solutions.CertifiedOutput` without bounds gives point decisions marked uncertified.

    Returns
    -------
    GapANNAnswer
        ``yes`` is the point decision ``u~_i >= 2 t~``; ``undecided`` marks rows whose certified interval
        ``[lower_i, upper_i]`` reaches both sides of ``2 t~`` (within the rounding of ``log 2 t~``); ``margin`` is
        ``log u~_i - log 2 t~``. When the gap condition fails (``beta < beta_min``, experiments only) the lemma's
        bounds do not hold, and every row is undecided.

    Examples
    --------
    >>> p = lemma47_parameters(4, 4, 12, 5.0, 0.6)
    >>> u = LogArray(np.ones(2, dtype=np.int8), np.array([p.log_threshold + 1, p.log_threshold - 1]))
    >>> a = certified_threshold_test(p, u)
    >>> a.yes.tolist(), a.undecided.tolist(), a.certified
    ([True, False], [False, False], True)
    """
    if isinstance(output, LogArray):
        output = CertifiedOutput(output, output, output)
    yes, margin = threshold_test(params, output.value)
    if not output.certified:
        return GapANNAnswer(yes, margin=margin, certified=False)
    eta = params.log_rounding
    lower = np.where(output.lower.sign > 0, output.lower.log_abs - params.log_threshold, -np.inf)
    upper = np.where(output.upper.sign > 0, output.upper.log_abs - params.log_threshold, -np.inf)
    decided = (lower > eta) | (upper < -eta)
    if not params.gap_condition_holds:
        # Below beta_min the lemma's bounds u > 3t~ / u < t~ do not hold, so no interval decides a row: every
        # row is undecided (and a point YES without an orthogonal partner is the lemma failing, not the oracle).
        decided = np.zeros_like(decided)
    # A certified interval above the threshold with a point answer below it cannot happen for a consistent
    # certificate; the interval wins, since it is what was proved.
    yes = np.where(decided, lower > eta, yes)
    return GapANNAnswer(yes, undecided=~decided, margin=margin)


@cached_sizes
def _lemma47_sizes(mode: str, safety_option: float | None, beta_option: float | None) -> dict:
    """The size map of :attr:`GapANNToAAttC.sizes` for one choice of options (built once)."""
    n_a, n, d, t, eps = (symbol(k) for k in ("n_a", "n_b", "d", "t", "eps"))
    log_n = sp.log(sp.Max(n, 2))
    if beta_option is not None:
        beta = sp.Float(beta_option, 30)
    elif mode == "tight":
        safety = DEFAULT_SAFETY if safety_option is None else safety_option
        beta = exact_number(safety) * 4 * d * sp.log(6 * n) / (eps * t)
    else:
        beta = 40 * d * log_n / (eps * t)
    log_t_tilde = beta / 4 * (1 - t / d) - sp.log(6 * n) - beta / 2
    if mode == "paper" and beta_option is None:
        log_eps_a = -(2 + 40 * d / (t * eps) * (1 + t / d)) * log_n
    else:
        log_eps_a = log_t_tilde
    return {"n_q": n_a + n, "n_k": 2 * n, "d": 2 * d, "d_v": sp.Integer(1), "B": sp.sqrt(beta), "beta": beta,
            "log_t_tilde": log_t_tilde, "log_eps_a": log_eps_a}


def _is_real(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


class GapANNToAAttC(Reduction):
    """Gap-ANN -> AAttC by Lemma 4.7 (corrected).

    Parameters
    ----------
    mode : {"tight", "paper"}
    safety : float, optional
        Factor ``>= 1`` on ``beta_min`` in tight mode (None: ``DEFAULT_SAFETY``). Paper mode takes none: its
        ``beta`` is fixed by Eqs. (7)-(9).
    beta : float, optional
        Fixed ``beta`` (for experiments); ``check`` then decides whether too small a value raises.
    check : bool
        Raise :class:`ParameterError` when an instance's gap or accuracy condition fails.

    Raises
    ------
    ParameterError
        For an unknown mode, a safety factor in paper mode, or a safety factor or ``beta`` that is not a finite
        number in range. The option rules live here, so every caller gets the same ones.
    """

    source = "Gap-ANN"
    target = "AAttC"
    lemma = "Alman & Song, Lemma 4.7 (corrected, docs/errata.md)"
    blowup = "n_q = n_a + n, n_k = 2n, d~ = 2d, d_v = 1, B = sqrt(beta)"
    derived = (
        "beta (tight: 1.25 * 4d ln(6n)/(eps t); paper: 40 d ln n/(eps t)), tau = e^(beta/2), "
        "t~ = e^(beta/4 (1 - t/d))/(6 n tau), eps_a (tight: t~; paper: n^-C_a), decide u_i >= 2 t~"
    )

    def __init__(
        self, mode: str = "tight", safety: float | None = None, beta: float | None = None, check: bool = True
    ) -> None:
        if mode not in MODES:
            raise ParameterError(f"unknown parameter mode {mode!r}; expected one of {', '.join(MODES)}")
        if safety is not None:
            if mode == "paper":
                raise ParameterError(f"paper mode takes no safety factor (got safety={safety}): its beta is fixed "
                                     "by Eqs. (7)-(9); use mode='tight' to scale beta_min")
            if not (_is_real(safety) and math.isfinite(safety) and safety >= 1):
                raise ParameterError(f"the safety factor must be a finite number >= 1, got {safety!r}")
        if beta is not None and not (_is_real(beta) and math.isfinite(beta) and beta > 0):
            raise ParameterError(f"beta must be positive and finite, got {beta!r}")
        self.mode, self.safety, self.beta, self.check = mode, safety, beta, bool(check)

    @property
    def sizes(self) -> dict:
        """Lemma 4.7's sizes and parameters in ``n_a, n_b (= n), d, t, eps`` (module docstring).

        ``n_q = n_a + n``, ``n_k = 2n``, ``d~ = 2d``, ``d_v = 1``, ``B = sqrt(beta)``, ``log t~ = beta/4 (1 - t/d)
        - ln(6n) - beta/2``; tight: ``beta = safety * 4 d ln(6n) / (eps t)`` (the code rounds it up by a relative
        ``1e-12``) and ``log eps_a = log t~``; paper: ``beta = 40 d ln n / (eps t)`` and ``log eps_a = -(2 + C_b^2
        (1 + t/d)) ln n`` with ``ln n = ln max(n, 2)``; a fixed ``beta`` is a constant.
        """
        return dict(_lemma47_sizes(self.mode, self.safety, self.beta))

    def derive(self, instance: GapANNInstance) -> Lemma47Parameters:
        """The Lemma 4.7 parameters for this instance (pure arithmetic, no allocation)."""
        expect(instance, GapANNInstance, "the Gap-ANN -> AAttC input")
        return lemma47_parameters(
            instance.n_a,
            instance.n_b,
            instance.dim,
            instance.t,
            instance.eps,
            mode=self.mode,
            safety=self.safety,
            beta=self.beta,
            check=self.check,
        )

    def parameters(self, instance: GapANNInstance) -> dict:
        return self.derive(instance).as_dict()

    def reduce(self, instance: GapANNInstance) -> Reduced:
        p = self.derive(instance)
        return Reduced(self, instance, self._forward(instance, p), p)

    def extract(self, reduced: Reduced, target_solution: LogArray | CertifiedOutput | GapANNAnswer) -> GapANNAnswer:
        """Per-row answers with margins from the attention output, by :func:`certified_threshold_test` (answers
        already decided by :meth:`decide_rows` are the Gap-ANN solution as they are)."""
        if isinstance(target_solution, GapANNAnswer):
            if target_solution.yes.shape != (reduced.source.n_a,):
                raise ReductionError(f"{target_solution.yes.size} row answers for {reduced.source.n_a} rows")
            return target_solution
        return self._decide(reduced.source, reduced.parameters, target_solution)

    def decide_rows(self, reduced: Reduced, target_solution: LogArray | CertifiedOutput) -> GapANNAnswer:
        """The per-row certified threshold decisions (the same as :meth:`extract` on an attention output)."""
        return self._decide(reduced.source, reduced.parameters, target_solution)

    def forward(self, instance: GapANNInstance) -> AAttCInstance:
        return self._forward(instance, self.derive(instance))

    def _forward(self, instance: GapANNInstance, p: Lemma47Parameters) -> AAttCInstance:
        if not instance.is_balanced():
            raise ReductionError(
                "Lemma 4.7 needs balanced vectors (exactly d/2 ones each, Remark 4.4); "
                "apply instances.gap_ann.balance to A and B first"
            )
        n_a, n, d = instance.n_a, instance.n_b, instance.dim
        root = math.sqrt(p.beta)
        Q = np.zeros((n_a + n, 2 * d))
        Q[:n_a, :d] = instance.A
        Q[:, d:] = 1.0
        K = np.zeros((2 * n, 2 * d))
        K[:n, :d] = instance.B
        K[n:, d:] = 1.0
        Q *= root
        K *= root
        V = np.zeros((2 * n, 1))
        V[:n, 0] = 1.0
        return AAttCInstance(
            Q, K, V, B=root, log_eps_a=p.log_eps_a, scale=1.0 / p.d_tilde, meta={"lemma47": p.as_dict()}
        )

    def backward(self, instance: GapANNInstance, target_solution: LogArray | CertifiedOutput) -> GapANNAnswer:
        """Per-row Gap-ANN answers from the attention output by the threshold test ``u_i >= 2 t~``.

        A bare LogArray is taken as the exact output; a :class:`~instances.solutions.CertifiedOutput` is decided
        by :func:`certified_threshold_test`.
        """
        return self._decide(instance, self.derive(instance), target_solution)

    @staticmethod
    def _decide(instance: GapANNInstance, p: Lemma47Parameters, target_solution) -> GapANNAnswer:
        if not isinstance(target_solution, (LogArray, CertifiedOutput)):
            raise ReductionError(f"Lemma 4.7's backward map needs the attention output as a LogArray or "
                                 f"CertifiedOutput, got {type(target_solution).__name__}")
        if len(target_solution.shape) != 2 or target_solution.shape[0] < instance.n_a or target_solution.shape[1] < 1:
            raise ReductionError(
                f"attention output has shape {target_solution.shape}; expected at least {instance.n_a} rows"
            )
        return certified_threshold_test(p, target_solution[: instance.n_a, 0])
