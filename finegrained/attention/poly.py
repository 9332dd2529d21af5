"""The polynomial method of Alman & Song (Algorithm 1, Theorem 3.7) with a certified error bound.

For scores ``x = s <q, k>`` confined to an interval ``[-R, R]`` (Lemma 3.3), a degree-``g`` polynomial ``P``
with ``|P(x) - e^x| <= eps_A e^x`` there (Lemma 2.1 / Corollary 2.2) turns the attention matrix
``A = exp(s Q K^T)`` into a rank-``r`` matrix ``A~ = U1 U2^T = P(s Q K^T)`` (Lemma 3.2 / Lemma 3.4). Attention
is then computed as

.. math::  T \\approx \\operatorname{diag}(U_1 (U_2^\\top \\mathbf 1))^{-1}\\; U_1 (U_2^\\top V)

without ever forming an ``n x n`` matrix (Algorithm 1, lines 7-11), in ``O(n r (d_v + 1) + n r)`` time.

Three pieces differ from the paper, each for a stated reason:

* **Rank.** ``<u, v>^k = sum_{|alpha| = k} (k! / alpha!) u^alpha v^alpha`` gives one feature per monomial of
  degree at most ``g`` in ``d`` variables: ``r = C(g + d, d)``, not the paper's ``C(2(g + d), 2g)`` (Lemma 3.2
  counts monomials in the ``2d`` variables of ``u`` and ``v`` jointly).
* **Polynomial.** The interval is symmetric, so the polynomial is expanded about its midpoint 0 and its
  monomial coefficients stay close to ``1/k!``. Two polynomials with closed-form relative-error bounds are
  considered, and the smallest degree whose *proved* bound is at most ``eps`` is used (see
  :func:`exp_polynomial`).
* **Certificate.** The returned :attr:`PolyResult.error_bound` is the Lemma 3.5 + Lemma 3.6 bound, with the
  sharp constant ``2 eps_A / (1 + sqrt(1 - eps_A^2)) ~ eps_A`` in place of ``2 eps_A``
  (:func:`lemma_3_6_factor`), plus a proved bound on float64 rounding, which the paper ignores and which
  dominates once ``e^{2R}`` approaches ``1/eps``. :func:`poly_oracle` reports it as an ``"additive"``
  certificate, per entry, and plans ``eps_A`` from a requested accuracy.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass

import mpmath
import numpy as np

from instances.errors import (
    NumericalError,
    ParameterError,
    ResourceLimitError,
    UncertifiedError,
    real_number,
    short_repr,
)
from instances.logspace import LogArray

from .protocol import Certificate, OracleAnswer, check_attention_inputs

#: unit roundoff of float64
UNIT_ROUNDOFF = 2.0**-53
#: default memory limit of :func:`poly` and :func:`poly_plan` (4 GiB)
DEFAULT_MAX_MEMORY = 4 * 2**30
#: memory for one block of feature rows; blocks keep the peak memory independent of ``n``
DEFAULT_BLOCK_BYTES = 32 * 2**20
#: number of points of the dense grid on which every chosen polynomial is re-checked
GRID_POINTS = 4097
_LN10 = math.log(10.0)
#: default relative accuracy ``eps_A`` of the ``"poly"`` oracle when no accuracy is requested
DEFAULT_ORACLE_EPS = 1e-6
#: largest ``eps_A`` the oracle plans with: a larger one saves at most a degree or two
_MAX_PLANNED_EPS = 0.5


# ------------------------------------------------------------------------------------------------------------
# Parameter checks (every bad value is one ParameterError line, never a raw Python or numpy exception)
# ------------------------------------------------------------------------------------------------------------


def _int(name: str, x, minimum: int) -> int:
    """``x`` as a Python int ``>= minimum``; floats (even integral ones), bools and strings are refused."""
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
        raise ParameterError(f"{name} must be an integer, got {short_repr(x)}")
    if x < minimum:
        raise ParameterError(f"{name} must be >= {minimum}, got {x}")
    return int(x)


def _check_eps(eps) -> float:
    eps = real_number("eps", eps)
    if not 0.0 < eps < 1.0:
        raise ParameterError(f"eps must lie in (0, 1), got {eps}")
    return eps


# ------------------------------------------------------------------------------------------------------------
# Degree selection (Lemma 2.1 / Corollary 2.2)
# ------------------------------------------------------------------------------------------------------------


def log_relative_error_bound(radius: float, degree: int, method: str) -> float:
    """Natural log of the proved relative error of a degree-``g`` approximation of ``exp`` on ``[-R, R]``.

    Both bounds are for polynomials with exact coefficients; float64 rounding is accounted for separately.

    * ``"chebyshev"`` — interpolation at the ``g + 1`` Chebyshev points of the first kind. The interpolation
      remainder is ``e^xi w(x) / (g + 1)!`` with ``|w(x)| <= 2 (R/2)^{g+1}``, and ``e^xi <= e^R``; dividing by
      ``e^x >= e^{-R}`` gives the relative bound ``2 (R/2)^{g+1} e^{2R} / (g + 1)!``.
    * ``"taylor"`` — the Taylor polynomial at 0. The Lagrange remainder is ``e^xi x^{g+1} / (g + 1)!`` with
      ``xi`` between 0 and ``x``, so the relative error is at most ``|x|^{g+1} e^{xi - x} / (g + 1)!``;
      ``xi - x <= |x|`` gives ``R^{g+1} e^R / (g + 1)!``.

    Chebyshev wins once ``2^g > e^R``, i.e. in practice for every ``R`` above about 1.

    Parameters
    ----------
    radius : float
        ``R >= 0``; the bound is ``-inf`` (no error) when ``R == 0``, where ``P = 1`` is exact.
    degree : int
        ``g >= 0``.
    method : {"chebyshev", "taylor"}
    """
    radius = real_number("radius", radius)
    degree = _int("degree", degree, 0)
    if radius < 0:
        raise ParameterError(f"need radius >= 0, got R={radius}")
    if radius == 0:
        return -math.inf
    g1 = degree + 1
    if method == "chebyshev":
        return math.log(2.0) + g1 * math.log(radius / 2.0) + 2.0 * radius - math.lgamma(g1 + 1)
    if method == "taylor":
        return g1 * math.log(radius) + radius - math.lgamma(g1 + 1)
    raise ParameterError(f"unknown polynomial method {method!r}; expected 'chebyshev' or 'taylor'")


def _smallest_degree(radius: float, log_eps: float, method: str) -> int:
    """Smallest ``g`` with ``log_relative_error_bound(R, g, method) <= log_eps``.

    The log bound is ``c + (g + 1) log(a) - lgamma(g + 2)`` with ``a = R/2`` or ``R``: its increments
    ``log(a) - log(g + 2)`` decrease in ``g``, so it rises up to ``g ~ a`` and falls after. Every ``g`` before
    the peak has a bound at least the bound at ``g = 0``; past the peak a bisection finds the crossing in
    ``O(log g)`` steps, so the planner stays instantaneous for ``R`` in the tens of thousands.
    """
    if log_relative_error_bound(radius, 0, method) <= log_eps:
        return 0
    a = radius / 2.0 if method == "chebyshev" else radius
    lo = max(0, math.ceil(a) - 2)  # at or before the peak; the bound at lo exceeds eps
    if log_relative_error_bound(radius, lo, method) <= log_eps:
        # only possible when the peak region itself is below eps; scan down (short: lo < a).
        while lo > 0 and log_relative_error_bound(radius, lo - 1, method) <= log_eps:
            lo -= 1
        return lo
    hi = max(2 * lo, lo + 1)
    while log_relative_error_bound(radius, hi, method) > log_eps:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # invariant: bound(lo) > eps >= bound(hi)
        mid = (lo + hi) // 2
        if log_relative_error_bound(radius, mid, method) <= log_eps:
            hi = mid
        else:
            lo = mid
    return hi


def choose_degree(radius: float, eps: float) -> tuple[int, str, float]:
    """The smallest degree whose proved relative error on ``[-R, R]`` is at most ``eps`` (pure arithmetic).

    Returns
    -------
    (g, method, log_bound)
        The degree, the polynomial family achieving it (Chebyshev preferred on ties) and the natural log of
        its proved relative error bound.
    """
    return _choose_degree_log(radius, math.log(_check_eps(eps)))


def _choose_degree_log(radius: float, log_eps: float) -> tuple[int, str, float]:
    """:func:`choose_degree` for ``eps = e^{log_eps}`` given by its log (pure arithmetic)."""
    radius = real_number("radius", radius)
    if radius < 0:
        raise ParameterError(f"radius must be >= 0, got {radius}")
    best = None
    for method in ("chebyshev", "taylor"):
        g = _smallest_degree(radius, log_eps, method)
        key = (g, log_relative_error_bound(radius, g, method))
        if best is None or key < best[0]:
            best = (key, method)
    (g, log_bound), method = best
    return g, method, log_bound


@dataclass(frozen=True)
class ExpPolynomial:
    """A polynomial ``P(x) = sum_k coefficients[k] x^k`` with ``|P(x) - e^x| <= bound e^x`` on ``[-R, R]``.

    Attributes
    ----------
    radius : float
        ``R``.
    degree : int
        ``g``, the smallest degree whose proved bound is at most the requested ``eps``.
    method : str
        ``"chebyshev"`` or ``"taylor"``.
    coefficients : numpy.ndarray, shape (g + 1,)
        Float64 monomial coefficients, each the correctly rounded value of the exact polynomial's coefficient
        (computed in multiple precision).
    bound : float
        Proved relative error of the exact-coefficient polynomial (:func:`log_relative_error_bound`).
    abs_sum : float
        ``sum_k |coefficients[k]| R^k``, the magnitude that float64 rounding errors are proportional to.
    grid_error : float
        Largest relative error of the float64 polynomial against ``numpy.exp`` on a dense grid of ``[-R, R]``.
    """

    radius: float
    degree: int
    method: str
    coefficients: np.ndarray
    bound: float
    abs_sum: float
    grid_error: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Evaluate ``P`` by Horner's rule in float64."""
        x = np.asarray(x, dtype=np.float64)
        out = np.full_like(x, self.coefficients[-1])
        for c in self.coefficients[-2::-1]:
            out = out * x + c
        return out


def _exact_coefficients(radius: float, degree: int, method: str) -> list:
    """Monomial coefficients of the chosen polynomial, in multiple precision (mpmath ``mpf``)."""
    if method == "taylor":
        return [1 / mpmath.factorial(k) for k in range(degree + 1)]
    n = degree + 1
    # Chebyshev interpolation on t = x / R in [-1, 1]: c_j = (2/n) sum_i f(t_i) T_j(t_i), c_0 halved.
    theta = [mpmath.pi * (i + mpmath.mpf(1) / 2) / n for i in range(n)]
    fvals = [mpmath.exp(radius * mpmath.cos(th)) for th in theta]
    pairs = list(zip(fvals, theta, strict=True))
    cheb = [2 * mpmath.fsum(f * mpmath.cos(j * th) for f, th in pairs) / n for j in range(n)]
    cheb[0] /= 2
    # b_k: coefficients of sum_j c_j T_j(t) in powers of t; T_j has exact integer coefficients.
    b = [mpmath.mpf(0)] * n
    t_prev, t_cur = [1], [0, 1]
    for j in range(n):
        if j > 1:
            doubled = [0] + [2 * c for c in t_cur]
            t_prev, t_cur = t_cur, [a - c for a, c in zip(doubled, t_prev + [0, 0], strict=True)]
        tj = t_prev if j == 0 else t_cur
        for k, coeff in enumerate(tj):
            if coeff:
                b[k] += cheb[j] * coeff
    rad = mpmath.mpf(radius)
    return [b[k] / rad**k for k in range(n)]


def exp_polynomial(radius: float, eps: float) -> ExpPolynomial:
    """Relative-error polynomial for ``exp`` on ``[-R, R]`` (Lemma 2.1 and Corollary 2.2, made explicit).

    The degree is the smallest ``g`` whose proved bound (:func:`log_relative_error_bound`, minimised over the
    Chebyshev interpolant and the Taylor polynomial) is at most ``eps``. Its coefficients are computed in
    multiple precision (``30 + g`` digits, enough for the cancellation in the Chebyshev-to-monomial
    conversion) and rounded once to float64. The float64 polynomial is then re-checked on a dense grid; a grid
    error above the proved bound plus the float64 evaluation error raises :class:`NumericalError`.

    Corollary 2.2 shifts ``[0, 2B]`` to ``[-B, B]`` by dividing by ``e^B``; expanding about the midpoint 0
    instead keeps every coefficient near ``1/k!`` rather than ``e^{-B}`` times alternating binomial sums.

    Examples
    --------
    >>> p = exp_polynomial(1.0, 1e-6)
    >>> p.degree, p.method, p.bound <= 1e-6, p.grid_error <= 1e-6
    (8, 'chebyshev', True, True)
    """
    radius = real_number("radius", radius)
    if radius < 0:
        raise ParameterError(f"radius must be finite and >= 0, got {radius}")
    return _exp_polynomial(radius, _check_eps(eps))


@functools.lru_cache(maxsize=128)
def _exp_polynomial(radius: float, eps: float) -> ExpPolynomial:
    g, method, log_bound = choose_degree(radius, eps)
    with mpmath.workdps(30 + g):
        exact = _exact_coefficients(radius, g, method)
        coefficients = np.array([float(c) for c in exact])
    if not np.isfinite(coefficients).all():
        raise NumericalError(f"degree-{g} coefficients for exp on [-{radius}, {radius}] overflow float64")
    abs_sum = float(np.polynomial.polynomial.polyval(radius, np.abs(coefficients)))
    grid = np.linspace(-radius, radius, GRID_POINTS)
    poly = ExpPolynomial(radius, g, method, coefficients, math.exp(log_bound), abs_sum, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        grid_error = float(np.max(np.abs(poly(grid) / np.exp(grid) - 1.0)))
    # Horner in float64 errs by at most gamma_{2g+1} sum|c_k||x|^k, relative to e^x >= e^{-R}; exp by ~1 ulp.
    slack = _gamma(2 * g + 2) * abs_sum * math.exp(radius) + 4 * UNIT_ROUNDOFF
    if not grid_error <= poly.bound + slack:
        raise NumericalError(
            f"grid check failed for the degree-{g} {method} polynomial on [-{radius:g}, {radius:g}]: "
            f"measured relative error {grid_error:.3g} exceeds the proved {poly.bound:.3g} + rounding "
            f"{slack:.3g}"
        )
    return ExpPolynomial(radius, g, method, coefficients, poly.bound, abs_sum, grid_error)


def _gamma(m: int) -> float:
    """Higham's ``gamma_m = m u / (1 - m u)``: relative error of ``m`` chained float64 operations."""
    if m >= 2**53:  # m u >= 1 (u = 2^-53); also keeps an int past float64's range out of the product
        return math.inf
    mu = m * UNIT_ROUNDOFF
    return math.inf if mu >= 1 else mu / (1 - mu)


# ------------------------------------------------------------------------------------------------------------
# Feature maps (Lemma 3.2 with multinomial weights)
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonomialIndex:
    """All monomials of degree at most ``g`` in ``d`` variables, laid out for degree-by-degree generation.

    Monomials of degree ``k`` occupy ``offsets[k]:offsets[k+1]``, ordered by their last (largest) variable.
    The degree-``k`` monomials whose last variable is ``i`` are ``x_i`` times the *prefix* of degree ``k - 1``
    monomials whose last variable is ``<= i``; ``prefix[k - 1][i]`` is that prefix's length. So each block is
    one broadcast multiplication and the whole map costs one multiplication per entry of the ``n x r`` output.

    Attributes
    ----------
    d, g : int
    offsets : tuple of int
        ``offsets[k]`` is the first column of degree ``k``; ``offsets[g + 1] == r == C(g + d, d)``.
    prefix : tuple of tuple of int
        ``prefix[k][i]``: number of degree-``k`` monomials with last variable ``<= i``.
    degree : numpy.ndarray of int64, shape (r,)
    weight : numpy.ndarray of float64, shape (r,)
        Multinomial coefficient ``k! / alpha!`` of each monomial ``x^alpha``.
    """

    d: int
    g: int
    offsets: tuple[int, ...]
    prefix: tuple[tuple[int, ...], ...]
    degree: np.ndarray
    weight: np.ndarray

    @property
    def rank(self) -> int:
        return self.offsets[-1]

    @classmethod
    def build(cls, d: int, g: int) -> MonomialIndex:
        """Index for ``d`` variables and degree ``g``: ``O(r)`` time and memory."""
        return cls._build(_int("d", d, 0), _int("g", g, 0))

    @classmethod
    @functools.lru_cache(maxsize=32)
    def _build(cls, d: int, g: int) -> MonomialIndex:
        last = [np.array([-1])]  # last variable of each monomial; -1 for the constant
        mult = [np.array([0])]  # exponent of that last variable
        weight = [np.array([1.0])]
        prefix = [tuple([1] * d)]
        for k in range(1, g + 1):
            pl, pm, pw = last[-1], mult[-1], weight[-1]
            new_last, new_mult, new_weight = [], [], []
            for i in range(d):
                p = prefix[-1][i]
                m = np.where(pl[:p] == i, pm[:p] + 1, 1)
                new_last.append(np.full(p, i))
                new_mult.append(m)
                new_weight.append(pw[:p] * (k / m))  # k!/alpha! from (k-1)!/alpha'!: times k / alpha_i
            last.append(np.concatenate(new_last) if d else np.zeros(0, dtype=np.int64))
            mult.append(np.concatenate(new_mult) if d else np.zeros(0, dtype=np.int64))
            weight.append(np.concatenate(new_weight) if d else np.zeros(0))
            counts = np.bincount(last[-1], minlength=d) if d else np.zeros(0, dtype=np.int64)
            prefix.append(tuple(int(c) for c in np.cumsum(counts)))
        sizes = [len(w) for w in weight]
        offsets = tuple(int(x) for x in np.concatenate([[0], np.cumsum(sizes)]))
        degree = np.repeat(np.arange(g + 1), sizes)
        return cls(d, g, offsets, tuple(prefix), degree, np.concatenate(weight))

    def monomials(self, X: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The ``n x r`` matrix of all monomials ``x^alpha`` (``|alpha| <= g``) of the rows of ``X``."""
        n = X.shape[0]
        if out is None:
            out = np.empty((n, self.rank))
        out[:, 0] = 1.0
        for k in range(1, self.g + 1):
            src, dst = self.offsets[k - 1], self.offsets[k]
            for i in range(self.d):
                p = self.prefix[k - 1][i]
                np.multiply(out[:, src : src + p], X[:, i : i + 1], out=out[:, dst : dst + p])
                dst += p
        return out


def feature_maps(
    Q: np.ndarray, K: np.ndarray, coefficients: np.ndarray, *, scale: float = 1.0,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> tuple[np.ndarray, np.ndarray]:
    """``U1, U2`` with ``U1 @ U2.T == P(scale * Q @ K.T)`` for ``P(x) = sum_k c_k x^k`` (Lemma 3.2).

    Row ``i`` of ``U1`` holds ``c_k scale^k (k!/alpha!) q_i^alpha`` and row ``j`` of ``U2`` holds
    ``k_j^alpha`` over all ``|alpha| = k <= g``, because ``<q, k>^k = sum_{|alpha| = k} (k!/alpha!)
    q^alpha k^alpha``. The rank is ``C(g + d, d)``. This materialises both ``n x r`` matrices; :func:`poly`
    streams them in blocks instead. Their size is checked against ``max_memory`` bytes before anything is
    allocated (:class:`~instances.errors.ResourceLimitError`), and a coefficient ``c_k scale^k`` beyond float64
    raises :class:`~instances.errors.NumericalError`.

    Examples
    --------
    >>> Q = np.array([[1.0, 2.0]]); K = np.array([[3.0, -1.0], [0.5, 0.5]])
    >>> U1, U2 = feature_maps(Q, K, np.array([1.0, 1.0, 0.5]))  # 1 + x + x^2/2
    >>> U1.shape, (U1 @ U2.T).tolist()  # x = 1 and x = 1.5
    ((1, 6), [[2.5, 3.625]])
    """
    try:
        n_k = np.shape(K)[0] if np.ndim(K) == 2 else 0
    except ValueError:  # a ragged K: check_attention_inputs names it
        n_k = 0
    Q, K, _, scale = check_attention_inputs(Q, K, np.zeros((n_k, 1)), scale)
    coefficients = _as_vector("coefficients", coefficients)
    if coefficients.size == 0:
        raise ParameterError("coefficients must hold at least the constant term")
    max_memory = _int("max_memory", max_memory, 1)
    d, g = Q.shape[1], len(coefficients) - 1
    r = math.comb(g + d, d)
    # U1, U2 and the index's exponent table (r x d int64 with its degree and weight columns)
    need = 8 * r * (Q.shape[0] + K.shape[0] + d + 2)
    if need > max_memory:
        raise ResourceLimitError(f"feature_maps of rank r = C({g} + {d}, {d}) = {_human(r)} for {Q.shape[0]} + "
                                 f"{K.shape[0]} rows needs ~{_human(need)} bytes, over the limit of "
                                 f"{_human(max_memory)}")
    index = MonomialIndex.build(d, g)
    # an overflow is reported as one NumericalError below, not as numpy warnings beside an inf result
    with np.errstate(over="ignore", invalid="ignore"):
        U1 = index.monomials(Q) * _column_coefficients(index, coefficients, scale)
        U2 = index.monomials(K)
    if not (np.isfinite(U1).all() and np.isfinite(U2).all()):
        raise NumericalError(f"feature_maps: a feature c_k scale^k (k!/alpha!) q^alpha or k^alpha overflows "
                             f"float64 (scale = {scale:g}, degree {g})")
    return U1, U2


def _as_vector(name: str, x) -> np.ndarray:
    if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
        raise ParameterError(f"{name} must be real numbers, got dtype {x.dtype}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: a Python int beyond float64
        raise ParameterError(f"{name} must be real numbers ({exc})") from None
    if arr.ndim != 1:
        raise ParameterError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise NumericalError(f"{name} contains NaN or infinite values")
    return arr


def _column_coefficients(index: MonomialIndex, coefficients: np.ndarray, scale: float) -> np.ndarray:
    per_degree = coefficients * float(scale) ** np.arange(len(coefficients))
    return per_degree[index.degree] * index.weight


# ------------------------------------------------------------------------------------------------------------
# Planner
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolyPlan:
    """Cost of Algorithm 1 for given sizes, computed without allocating anything.

    Attributes
    ----------
    n, d, d_v : int
        Number of queries and keys, key dimension, value dimension.
    radius : float
        ``R``: every score lies in ``[-R, R]``.
    eps : float
    degree : int
        ``g``.
    method : str
    poly_error : float
        Proved relative error of the polynomial, ``<= eps``.
    rank : int
        ``r = C(g + d, d)``, exact (a Python int, possibly hundreds of digits).
    log10_rank : float
    block : int
        Feature rows materialised at once.
    memory_bytes : int
        Peak memory of the feature blocks and of ``U2^T [V | 1]``.
    poly_flops, exact_flops : int
        ``(n_q + n_k) r (2 (d_v + 1) + 2)``, ``n r (4 (d_v + 1) + 4)`` for ``n_q = n_k = n`` (per query and key row: the
        features, the coefficient scaling, counted on both sides, and the two skinny products of Algorithm 1,
        lines 7-10) against
        ``n^2 (2 d + 4 d_v + 1)`` for :func:`~finegrained.attention.exact.exact` (scores, exponentials, and
        the product with ``[V+ | V-]``).
    beats_exact : bool
        ``poly_flops < exact_flops``.
    rounding_estimate : float
        ``gamma_{n + r + 4g + 16} e^{2R}``: the float64 rounding term of the certificate (an estimate here,
        since the exact coefficient sum is known only once the polynomial is built; :func:`poly` uses the
        exact one).
    fits : bool
        ``memory_bytes <= max_memory``.
    explanation : str
        One human sentence summarising the above.
    """

    n: int
    d: int
    d_v: int
    radius: float
    eps: float
    degree: int
    method: str
    poly_error: float
    rank: int
    log10_rank: float
    block: int
    memory_bytes: int
    poly_flops: int
    exact_flops: int
    beats_exact: bool
    rounding_estimate: float
    fits: bool
    max_memory: int
    explanation: str


#: A rank with more digits than this is refused by the planner before the exact binomial is built.
_MAX_RANK_DIGITS = 100_000

# the largest int that float() converts (float64's largest finite value)
_MAX_FLOAT_INT = int(sys.float_info.max)


def _human(x: int) -> str:
    """An int as ``123456`` when short, else as ``1.2e+301``."""
    if x < 10**9:
        return str(x)
    digits = len(str(x)) if x < 10**4000 else None
    if digits is None:
        return f"10^{math.log10(x):.0f}"
    lead = (int(str(x)[:3]) + 5) // 10  # two significant digits, rounded half up from the first three
    if lead == 100:  # 9.95... rounds up to the next power of ten
        lead, digits = 10, digits + 1
    return f"{lead // 10}.{lead % 10}e+{digits - 1}"


def _plan(n_q: int, n_k: int, d: int, d_v: int, radius: float, eps: float, max_memory: int,
          block_bytes: int = DEFAULT_BLOCK_BYTES) -> PolyPlan:
    g, method, log_bound = choose_degree(radius, eps)
    # log10 C(g + d, d) at 60 digits first (float lgamma differences cancel to nothing once d ~ 1e16): the exact
    # integer is built only when it is short, since C(g + d, d) at d ~ 1e6 has millions of digits and takes minutes
    with mpmath.workdps(60):
        log10_est = float((mpmath.loggamma(g + d + 1) - mpmath.loggamma(g + 1) - mpmath.loggamma(d + 1))
                          / mpmath.log(10))
    if log10_est > _MAX_RANK_DIGITS:
        raise ResourceLimitError(
            f"poly: degree g={g} for scores in [-{radius:.4g}, {radius:.4g}] needs rank r = C({g} + {_human(d)}, "
            f"{_human(d)}) ~ 10^{log10_est:.4g}, with more than {_MAX_RANK_DIGITS} digits: far beyond any memory; "
            "this is the SETH side of the B ~ sqrt(log n) threshold")
    r = math.comb(g + d, d)
    log10_r = math.log10(r)
    n = max(n_q, n_k)
    block = max(1, min(n, block_bytes // (8 * r))) if r <= block_bytes else 1
    # two feature blocks (query side carries the coefficients), U2^T [V|1], per-column coefficients and
    # weights
    memory = 8 * (2 * block * r + r * (d_v + 1) + 3 * r + block * (d_v + 1)) + 8 * (g + 1) * max(d, 1)
    poly_flops = (n_q + n_k) * r * (2 * (d_v + 1) + 2)
    exact_flops = n_q * n_k * (2 * d + 4 * d_v + 1)
    log_round = math.log(_gamma(n_k + r + 4 * g + 16)) + 2 * radius if r < 2**52 else math.inf
    rounding = math.exp(log_round) if log_round < 700 else math.inf
    fits = memory <= max_memory
    root_log_n = math.sqrt(math.log(max(n, 2)))
    if fits:
        verdict = "fits" if rounding < eps else "fits, but float64 rounding (~e^{2R}) exceeds eps"
        explanation = (
            f"poly: degree g={g} ({method}), rank r={_human(r)} for scores in [-{radius:.4g}, {radius:.4g}] "
            f"needs ~{_human(memory)} bytes ({verdict}); {_human(poly_flops)} flops vs {_human(exact_flops)} "
            f"for exact, so it {'beats' if poly_flops < exact_flops else 'does not beat'} exact"
        )
    else:
        explanation = (
            f"poly: degree g={g}, rank r={_human(r)} (10^{log10_r:.1f}) for scores in [-{radius:.4g}, "
            f"{radius:.4g}] needs ~{_human(memory)} bytes, over the limit of {_human(max_memory)}; this is "
            f"the SETH side of the B ~ sqrt(log n) threshold (here sqrt(ln n) = {root_log_n:.2f})"
        )
    return PolyPlan(
        n, d, d_v, radius, eps, g, method, math.exp(log_bound), r, log10_r, block, memory,
        poly_flops, exact_flops, poly_flops < exact_flops, rounding, fits, max_memory, explanation,
    )


def poly_plan(
    n: int, d: int, B: float, eps: float, *, scale: float | None = None, d_v: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> PolyPlan:
    """Plan Algorithm 1 for ``n`` queries and keys with entries at most ``B``, using integers and logs only.

    The score interval is Lemma 3.3 with the scale: ``|s <q, k>| <= |s| d B^2`` (``= B^2`` for the paper's
    ``s = 1/d``). Nothing of size ``n`` or ``r`` is allocated, so astronomically large instances are planned
    (and refused) instantly.

    Parameters
    ----------
    n, d : int
        Sequence length and key dimension.
    B : float
        Bound on ``|Q_ij|`` and ``|K_ij|``.
    eps : float
        Target relative error of the polynomial, in ``(0, 1)``.
    scale : float, optional
        Score scale, default ``1/d``.
    d_v : int, optional
        Value dimension, default ``d``.
    max_memory : int
        Bytes; :attr:`PolyPlan.fits` compares the planned memory with it.

    Examples
    --------
    >>> p = poly_plan(2**11, 1020, 230.0, 1e-6)
    >>> p.fits, p.degree, round(p.log10_rank)
    (False, 147394, 2646)
    >>> poly_plan(2**16, 4, 1.0, 1e-6).rank
    495
    """
    n, d = _int("n", n, 1), _int("d", d, 1)
    d_v = d if d_v is None else _int("d_v", d_v, 1)
    B = real_number("B", B)
    if B < 0:
        raise ParameterError(f"B must be finite and >= 0, got {B}")
    if d > _MAX_FLOAT_INT:
        # 1/d and |scale| d would leak an OverflowError; such a dimension is refused by memory long before
        raise ParameterError(f"d must be below 2^1024 (float64's range) to form the score radius, got "
                             f"{short_repr(d)}")
    scale = 1.0 / d if scale is None else real_number("scale", scale)
    radius = abs(scale) * d * B * B
    if not math.isfinite(radius):
        raise ParameterError(f"the score radius |scale| d B^2 overflows float64 (B = {B:g}, d = {short_repr(d)})")
    return _plan(n, n, d, d_v, radius, _check_eps(eps), _int("max_memory", max_memory, 1))


# ------------------------------------------------------------------------------------------------------------
# Algorithm 1
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolyResult:
    """Output of :func:`poly` with its certificate.

    Attributes
    ----------
    output : LogArray, shape (n_q, d_v)
        The approximate attention ``D~^{-1} A~ V``.
    degree : int
        ``g``.
    rank : int
        ``r = C(g + d, d)``.
    interval : (float, float)
        ``(lo, hi)`` containing every score ``s <q_i, k_j>``.
    error_bound : float
        Proved bound on ``max |output - exact|`` (see :func:`poly`).
    poly_error : float
        ``eps_A``: proved entrywise relative error of ``A~ = P(s Q K^T)`` (exact arithmetic).
    rounding_error : float
        ``eps_round``: proved float64 rounding error of the numerators and denominators, relative to ``D``.
    method : str
        ``"chebyshev"`` or ``"taylor"``.
    """

    output: LogArray
    degree: int
    rank: int
    interval: tuple[float, float]
    error_bound: float
    poly_error: float
    rounding_error: float
    method: str


def score_radius(Q: np.ndarray, K: np.ndarray, scale: float) -> float:
    """``R`` with ``|scale <q_i, k_j>| <= R`` for all ``i, j``, in ``O(n d)`` time.

    The smaller of Lemma 3.3's ``|s| d max|Q| max|K|`` and Cauchy-Schwarz ``|s| max||q_i|| max||k_j||``. Both
    also bound ``|s| sum_l |q_l| |k_l|``, which the rounding analysis of :func:`poly` needs.
    """
    if Q.size == 0 or K.size == 0 or scale == 0:
        return 0.0
    d = Q.shape[1]
    entry = d * float(np.abs(Q).max()) * float(np.abs(K).max())
    q_norm = float(np.sqrt(np.einsum("ij,ij->i", Q, Q).max()))
    norms = q_norm * float(np.sqrt(np.einsum("ij,ij->i", K, K).max()))
    return abs(scale) * min(entry, norms)


def lemma_3_6_factor(eps_a: float) -> float:
    r"""``2 eps_A / (1 + sqrt(1 - eps_A^2))``: the sharp constant of Lemma 3.6 for ``D~ = diag(A~ 1)``.

    If ``A~_ij = A_ij (1 + e_j)`` with ``|e_j| <= eps_A`` and ``D~`` is the row sum of ``A~``, the weights
    ``w_j = A_ij / D_ii`` move to ``w_j (1 + e_j) / (1 + e)``, ``e = sum_j w_j e_j``, so the row error is at most
    ``||V||_max sum_j w_j |e_j - e| / (1 + e)``. On ``[-eps_A, eps_A]`` a distribution with mean ``e`` has mean
    absolute deviation at most ``(eps_A^2 - e^2) / eps_A`` (``|x - e|`` lies below its chord through the
    endpoints), and ``(eps_A^2 - e^2) / (eps_A (1 + e))`` is largest at ``e = sqrt(1 - eps_A^2) - 1``, where it
    equals this factor. It is attained (two keys with ``e_j = +-eps_A`` and ``V_j = +-||V||``), is ``eps_A +
    O(eps_A^3)`` for small ``eps_A``, and is below the paper's ``eps_A + eps_D = 2 eps_A``.

    Examples
    --------
    >>> round(lemma_3_6_factor(1e-3) / 1e-3, 6), round(lemma_3_6_factor(0.6), 6)
    (1.0, 0.666667)
    """
    eps_a = real_number("eps_a", eps_a)
    if not 0.0 <= eps_a < 1.0:
        raise ParameterError(f"eps_a must lie in [0, 1), got {eps_a}")
    return 2.0 * eps_a / (1.0 + math.sqrt((1.0 - eps_a) * (1.0 + eps_a)))


def poly_error_bound(eps_a: float, eps_round: float, v_max: float) -> float:
    """The certified ``max |poly - exact|`` of :func:`poly` (see its docstring for the derivation).

    ``(lemma_3_6_factor(eps_A) ||V|| + 2 eps_round ||V|| / (1 - eps_A - eps_round))``, plus one rounding of
    the final division ``u (||V|| + bound)``, all inflated by ``(1 + 4u)`` for the rounding of this formula
    itself. ``inf`` when ``eps_A + eps_round >= 1`` (no positivity, no certificate).
    """
    if not eps_a + eps_round < 1.0:
        return math.inf
    bound = lemma_3_6_factor(eps_a) * v_max + 2 * eps_round * v_max / (1 - eps_a - eps_round)
    return (bound + UNIT_ROUNDOFF * (v_max + bound)) * (1 + 4 * UNIT_ROUNDOFF)


@dataclass(frozen=True)
class _Setup:
    """Everything :func:`poly` decides before touching an ``n x r`` array."""

    Q: np.ndarray
    K: np.ndarray
    V: np.ndarray
    scale: float
    radius: float
    plan: PolyPlan
    approx: ExpPolynomial
    eps_round: float
    v_max: float
    error_bound: float


def _setup(Q, K, V, *, eps: float, B, scale, max_memory, block_bytes, need_log: float | None = None) -> _Setup:
    """Check, plan and build the polynomial; with ``need_log`` refuse (quickly) a bound above ``e^{need_log}``."""
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    n_q, d = Q.shape
    n_k, d_v = V.shape
    eps = _check_eps(eps)
    max_memory = _int("max_memory", max_memory, 1)
    block_bytes = _int("block_bytes", block_bytes, 1)
    if B is not None:
        B = real_number("B", B)
        if B < 0:
            raise ParameterError(f"B must be >= 0, got {B}")
        big = max(float(np.abs(Q).max(initial=0.0)), float(np.abs(K).max(initial=0.0)))
        if big > B:
            raise ParameterError(f"entries of Q and K must satisfy |x| <= B = {B}, but one has |x| = {big:g}")
    radius = score_radius(Q, K, scale)
    if not math.isfinite(radius):
        raise NumericalError("poly: the score radius overflows float64; rescale the inputs")
    v_max = float(np.abs(V).max(initial=0.0))
    plan = _plan(n_q, n_k, d, d_v, radius, eps, max_memory, block_bytes)
    if not plan.fits:
        raise ResourceLimitError(plan.explanation)
    if need_log is not None and v_max > 0:
        # The rounding term is at least 2 gamma_m S e^R ||V|| with S = sum |c_k| R^k >= P(R) >= (1 - eps_A) e^R,
        # i.e. at least (1 - eps_A) 2 ||V|| times the plan's gamma_m e^{2R}: a lower bound on the certificate,
        # so the request is refused before the multiprecision coefficients are computed.
        log_floor = math.log(2 * v_max * (1 - plan.poly_error)) + math.log(plan.rounding_estimate)
        if log_floor > need_log:
            raise UncertifiedError(
                f"poly cannot reach additive error e^{need_log:.4g}: float64 rounding of the monomial basis "
                f"alone is about e^{log_floor:.4g} for scores in [-{radius:.4g}, {radius:.4g}]"
            )
    approx = exp_polynomial(radius, eps)
    g = approx.degree
    eps_round = _gamma(n_k + plan.rank + 4 * g + 16) * approx.abs_sum * math.exp(radius)
    if not approx.bound + eps_round < 1.0:
        raise NumericalError(
            f"poly: scores in [-{radius:.4g}, {radius:.4g}] need cancellation of terms ~e^{radius:.3g} in "
            f"the monomial basis; float64 rounding (relative {eps_round:.3g}) voids the certificate"
        )
    bound = poly_error_bound(approx.bound, eps_round, v_max)
    if need_log is not None and bound > 0 and math.log(bound) > need_log:
        raise UncertifiedError(f"poly's certified additive error {bound:.3g} (degree {g}, eps_A {approx.bound:.3g}) "
                               f"is above the e^{need_log:.4g} requested")
    return _Setup(Q, K, V, scale, radius, plan, approx, eps_round, v_max, bound)


def _run(st: _Setup) -> PolyResult:
    """Algorithm 1, lines 6-11, over blocks of feature rows."""
    Q, K, V, approx, plan = st.Q, st.K, st.V, st.approx, st.plan
    n_q, d = Q.shape
    n_k, d_v = V.shape
    g, eps_a = approx.degree, approx.bound
    index = MonomialIndex.build(d, g)
    r = index.rank
    # Exact power-of-two balancing: <q 2^a, k 2^b> s 2^{-a-b} = s <q, k>, with both sides' entries below 1, so
    # the monomials q^alpha, k^alpha neither overflow nor underflow (entries ~1e150 with s ~1e-300 are fine).
    e_q = int(np.frexp(float(np.abs(Q).max(initial=0.0)))[1])
    e_k = int(np.frexp(float(np.abs(K).max(initial=0.0)))[1])
    Q, K = np.ldexp(Q, -e_q), np.ldexp(K, -e_k)
    col_coef = _column_coefficients(index, approx.coefficients, math.ldexp(st.scale, e_q + e_k))
    block = plan.block

    VW = np.empty((n_k, d_v + 1))
    VW[:, :d_v] = V
    VW[:, d_v] = 1.0
    KV = np.zeros((r, d_v + 1))
    buf = np.empty((min(block, max(n_q, n_k)), r))
    for start in range(0, n_k, block):
        stop = min(n_k, start + block)
        U2 = index.monomials(K[start:stop], out=buf[: stop - start])
        KV += U2.T @ VW[start:stop]

    out = np.empty((n_q, d_v))
    for start in range(0, n_q, block):
        stop = min(n_q, start + block)
        U1 = index.monomials(Q[start:stop], out=buf[: stop - start])
        U1 *= col_coef
        num = U1 @ KV
        den = num[:, d_v]
        bad = ~(np.isfinite(den) & (den > 0)) | ~np.isfinite(num).all(axis=1)
        if bad.any():
            i = start + int(np.flatnonzero(bad)[0])
            raise NumericalError(
                f"poly: approximate row sum D~[{i}] = {den[bad][0]:.6g} is not positive and finite (proved "
                f">= (1 - {eps_a + st.eps_round:.3g}) D > 0 in exact arithmetic); the computation lost precision"
            )
        out[start:stop] = num[:, :d_v] / den[:, None]
    interval = (-st.radius, st.radius)
    return PolyResult(LogArray.from_float(out), g, r, interval, st.error_bound, eps_a, st.eps_round, approx.method)


def poly(
    Q, K, V, *, eps: float, B: float | None = None, scale: float | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY, block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> PolyResult:
    """Alman-Song Algorithm 1: approximate attention in ``O(n r (d_v + 1))`` time with a proved error bound.

    Steps: compute the score interval ``[-R, R]`` (:func:`score_radius`, Lemma 3.3); plan and refuse instances
    whose rank does not fit in ``max_memory`` (:func:`poly_plan`); pick the polynomial
    (:func:`exp_polynomial`, Corollary 2.2); accumulate ``U2^T [V | 1]`` over key blocks and multiply by
    ``U1`` over query blocks (Algorithm 1, lines 6-11; Lemma 3.4).

    **Certificate.** Write ``A = exp(s Q K^T)``, ``D = diag(A 1)``, ``A~ = P(s Q K^T)`` and ``D~ = diag(A~
    1)``.

    1. Positivity. ``|A~_ij - A_ij| <= eps_A A_ij`` with ``eps_A < 1`` gives ``A~_ij >= (1 - eps_A) A_ij >
       0``, hence ``D~_ii >= (1 - eps_A) D_ii > 0`` (Lemma 3.5 also gives ``|D~ - D| <= eps_A D``).
    2. Lemma 3.6 in exact arithmetic, sharpened: ``|D~^{-1} A~ V - D^{-1} A V| <= c(eps_A) ||V||_max`` with
       ``c(eps_A) = 2 eps_A / (1 + sqrt(1 - eps_A^2))`` (:func:`lemma_3_6_factor`; ``~ eps_A``, attained),
       below the paper's ``(eps_A + eps_D) ||V||_max = 2 eps_A ||V||_max``. Both use that ``D~`` is the row
       sum of ``A~``. The lemma as stated, for *any* ``D~`` within ``eps_D`` of ``D``, is false: ``n = 1``,
       ``A~ = A``, ``D~ = (1 - eps_D) D`` gives error ``eps_D/(1 - eps_D) ||V||``.
    3. Rounding. Every product of Algorithm 1 is a sum of at most ``m = n_k + r + 4g + 16`` rounded operations
       on terms whose absolute values sum to at most ``sum_j sum_alpha |U1_i,alpha U2_j,alpha| |V_j|
       <= n_k ||V|| S`` with ``S = sum_k |c_k| R^k`` (multinomial theorem applied to ``|q|.|k|``). Since
       ``D_ii >= n_k e^{-R}``, the computed numerator and denominator differ from the exact-arithmetic ones by
       at most ``eps_round D_ii ||V||`` and ``eps_round D_ii``, with ``eps_round = gamma_m S e^R``. Writing
       the computed output as ``(N~ + e) / (D~ + f)`` and ``|N~ / D~| <= ||V||`` gives an extra
       ``2 eps_round ||V|| / (1 - eps_A - eps_round)``, plus one rounding of the final division.

    So ``error_bound = c(eps_A) ||V|| + 2 eps_round ||V|| / (1 - eps_A - eps_round)``, plus ``u (||V|| +
    bound)`` for the division, inflated by ``(1 + 4u)`` (:func:`poly_error_bound`). ``eps_round`` grows like
    ``n e^{2R} u``: the monomial basis cancels terms of size ``e^R`` to produce values of size ``e^{-R}``. It
    is negligible for ``R <= 4`` and ``n <= 2^20`` (at most ~4e-7) and makes the certificate vacuous near
    ``R ~ 15``, where :class:`NumericalError` is raised.

    A runtime check still raises :class:`NumericalError` if any computed row sum is not positive and finite.

    Parameters
    ----------
    Q : array_like, shape (n_q, d)
    K : array_like, shape (n_k, d)
    V : array_like, shape (n_k, d_v)
    eps : float
        Target relative error ``eps_A`` of the polynomial, in ``(0, 1)``; the output is then within about
        ``eps ||V||_max`` of exact attention.
    B : float, optional
        Bound on ``|Q_ij|`` and ``|K_ij|`` (AAttC's ``B``). Validated against the data
        (:class:`ParameterError` if violated); the interval always uses the data, which is at least as tight
        as Lemma 3.3 with ``B``.
    scale : float, optional
        Default ``1/d``.
    max_memory : int
        Bytes. Instances planned above it raise :class:`ResourceLimitError` before any allocation.
    block_bytes : int
        Memory of one block of feature rows.

    Returns
    -------
    PolyResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = (rng.uniform(-1, 1, size=(256, 4)) for _ in range(3))
    >>> res = poly(Q, K, V, eps=1e-6)
    >>> res.degree, res.rank, res.error_bound < 2e-6
    (7, 330, True)
    """
    return _run(_setup(Q, K, V, eps=eps, B=B, scale=scale, max_memory=max_memory, block_bytes=block_bytes))


def _entry_bounds(st: _Setup, res: PolyResult) -> np.ndarray:
    """Per-entry refinement of :attr:`PolyResult.error_bound`: the bound of entry ``(i, c)``, shape ``(n_q, d_v)``.

    The derivation of :func:`poly` holds row by row and column by column: the Lemma 3.6 term uses
    ``max_j |V_jc|`` of the entry's column, and the rounding term the row's own radius ``R_i = |s| min(d
    max|q_i| max|K|, ||q_i|| max||k_j||)`` (it bounds ``|s| sum_l |q_il| |k_jl|``, so the absolute terms of
    row ``i`` sum to at most ``n_k max|V_c| S(R_i)``, while ``D_ii >= n_k e^{-R_i}``):
    ``eps_round_i = gamma_m S(R_i) e^{R_i}`` with ``S(x) = sum_k |c_k| x^k``. Every entry is at most
    ``error_bound``, with equality at the row of largest radius and the column of largest ``|V|``.
    """
    Q, K, V = st.Q, st.K, st.V
    n_k, d = K.shape
    q_entry = d * np.abs(Q).max(axis=1, initial=0.0) * float(np.abs(K).max(initial=0.0))
    q_norm = np.sqrt(np.einsum("ij,ij->i", Q, Q)) * float(np.sqrt(np.einsum("ij,ij->i", K, K).max(initial=0.0)))
    radii = np.minimum(abs(st.scale) * np.minimum(q_entry, q_norm), st.radius)
    S = np.polynomial.polynomial.polyval(radii, np.abs(st.approx.coefficients))
    gamma = _gamma(n_k + res.rank + 4 * res.degree + 16)
    eps_round = np.minimum(gamma * S * np.exp(radii), res.rounding_error)[:, None]
    v_col = np.abs(V).max(axis=0, initial=0.0)[None, :]
    eps_a = res.poly_error
    bound = lemma_3_6_factor(eps_a) * v_col + 2 * eps_round * v_col / (1 - eps_a - eps_round)
    return np.minimum((bound + UNIT_ROUNDOFF * (v_col + bound)) * (1 + 4 * UNIT_ROUNDOFF), res.error_bound)


def _planned_eps(log_eps: float, v_max: float) -> float:
    """The ``eps_A`` whose Lemma 3.6 term is half the additive error ``e^{log_eps}`` (the rest is for rounding).

    ``c(eps_A) = 2t`` with ``t = e^{log_eps} / (4 ||V||)`` inverts to ``eps_A = 2t / (1 + t^2)``
    (``c(sin th) = 2 tan(th/2)``); capped at 1/2.
    """
    if v_max == 0.0:
        return _MAX_PLANNED_EPS
    log_t = log_eps - math.log(4.0 * v_max)
    if log_t >= 0.0:
        return _MAX_PLANNED_EPS
    t = math.exp(log_t)
    return min(_MAX_PLANNED_EPS, 2.0 * t / (1.0 + t * t))


def poly_oracle(Q, K, V, *, scale: float | None = None, log_eps: float | None = None, eps: float | None = None,
                max_memory: int = DEFAULT_MAX_MEMORY) -> OracleAnswer:
    """The ``"poly"`` oracle: :func:`poly` with its proved bound as an ``"additive"`` certificate, per entry.

    The certificate's ``log_bound`` has one value per output entry (:func:`_entry_bounds`: the column's
    ``max |V|`` and the row's own score radius); its largest value is ``log(PolyResult.error_bound)``.

    With ``log_eps`` (natural log of the additive error the caller needs) the polynomial accuracy is planned
    from it: ``eps_A`` so that the Lemma 3.6 term is half of ``e^{log_eps}`` (:func:`_planned_eps`), the other
    half left for float64 rounding. Instances that cannot meet it are refused before any ``n x r`` work:
    :class:`~instances.errors.UncertifiedError` when rounding (or the final division, ``~u ||V||``) alone
    exceeds it, :class:`~instances.errors.ResourceLimitError` when the rank does not fit in ``max_memory``.
    ``eps`` fixes ``eps_A`` directly (default ``1e-6`` without ``log_eps``); given with ``log_eps``, a bound
    above ``e^{log_eps}`` is refused the same way.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = (rng.uniform(-1, 1, size=(64, 3)) for _ in range(3))
    >>> ans = poly_oracle(Q, K, V, log_eps=math.log(1e-8))
    >>> ans.certificate.kind, bool(ans.certificate.worst_log_bound <= math.log(1e-8))
    ('additive', True)
    """
    need_log = None
    if log_eps is not None:
        need_log = real_number("log_eps", log_eps, finite=False)
        if need_log == math.inf:
            need_log = None
    if need_log is not None:
        _, _, V_arr, _ = check_attention_inputs(Q, K, V, scale)
        v_max = float(np.abs(V_arr).max(initial=0.0))
        if v_max > 0 and need_log < math.log(2 * UNIT_ROUNDOFF * v_max):
            raise UncertifiedError(
                f"poly cannot reach additive error e^{need_log:.4g}: its float64 output alone is only accurate to "
                f"about u ||V|| = {UNIT_ROUNDOFF * v_max:.3g}"
            )
        if eps is None:
            eps = _planned_eps(need_log, v_max)
    if eps is None:
        eps = DEFAULT_ORACLE_EPS
    st = _setup(Q, K, V, eps=eps, B=None, scale=scale, max_memory=max_memory, block_bytes=DEFAULT_BLOCK_BYTES,
                need_log=need_log)
    res = _run(st)
    with np.errstate(divide="ignore"):
        log_bound = np.log(_entry_bounds(st, res))  # per entry; 0 (exact, V = 0) becomes -inf
    cert = Certificate("additive", log_bound, detail=(
        f"Alman-Song Algorithm 1, degree {res.degree} {res.method}: Lemma 3.6 (sharp) + float64 rounding "
        "(finegrained.attention.poly.poly_error_bound)"))
    info = {"degree": res.degree, "rank": res.rank, "eps_A": res.poly_error, "rounding_error": res.rounding_error,
            "radius": st.radius}
    return OracleAnswer(res.output, cert, info=info)
