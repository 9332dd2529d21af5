r"""An adversarial attention oracle: a correct answer moved by exactly ``±eps`` in the worst direction.

Definition 1.2 (AAttC) of Alman & Song only promises an answer ``u`` with ``|u_ij - T_ij| <= eps_a`` for the true
``T = D^{-1} exp(s Q K^T) V``. A reduction that consumes such an answer must be correct for *every* answer in that
box, not just for the exact one. :func:`adversarial` wraps a base oracle (normally :func:`~.exact.exact`) and
returns the corner of the box that is worst for a threshold test ``u_ij >= theta``:

.. math::  u_{ij} = T_{ij} - \varepsilon \ \text{ if row } i \text{ is a YES row}, \qquad
           u_{ij} = T_{ij} + \varepsilon \ \text{ if it is a NO row.}

Every entry is moved by exactly ``eps`` (the largest error allowed) away from its *true* answer, and across the
threshold if ``eps`` is large enough. The adversary is **omniscient**: it is told ``log theta`` (for Lemma 4.7,
``theta = 2 t~``) and each row's true answer (brute force on the Gap-ANN instance), which a real solver never is.
Any reduction that survives this oracle survives every solver with error ``<= eps``: for a one-sided test only
the push away from the true answer can make a decision wrong. Pushing by the side on which the *computed* ``T``
lies instead would be wrong below ``beta_min``: a NO row whose exact ``T`` already sits above ``theta`` would be
pushed back to the correct side, hiding the failure. Rows without a known answer (outside the Gap-ANN promise,
or padding rows) are pushed towards the threshold from the side of their computed value.

With ``log_threshold=None`` the adversary uses ``theta = 0``: it moves every positive entry down and every other
entry up, i.e. every entry towards zero (and past it when ``|T_ij| < eps``). This is the worst case for any test
that asks whether an entry is positive, and the natural "shrink the signal" model of a lossy solver.

Everything happens in log space (:meth:`instances.logspace.LogArray.add_scalar_error`), so ``eps`` may be far
below the float64 range (``eps_a = exp(-6*10^4)`` in the paper's constants); it is therefore given as ``log_eps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from instances.errors import ParameterError, real_number
from instances.logspace import LogArray, log_add

Oracle = Callable[..., LogArray]


def _resolve_log_eps(eps: float | None, log_eps: float | None) -> float:
    if (eps is None) == (log_eps is None):
        raise ParameterError("give exactly one of eps and log_eps for the adversarial oracle")
    if log_eps is not None:
        log_eps = float(log_eps)
        if math.isnan(log_eps) or log_eps == math.inf:
            raise ParameterError(f"log_eps must be a finite number or -inf, got {log_eps}")
        return log_eps
    if not (eps >= 0 and math.isfinite(eps)):
        raise ParameterError(f"eps must be a finite number >= 0, got {eps}")
    return math.log(eps) if eps > 0 else -math.inf


def push_towards_threshold(u: LogArray, log_eps: float, log_threshold: float | None = None,
                           truth: np.ndarray | None = None, constrained: np.ndarray | None = None) -> LogArray:
    """Move every entry of ``u`` by exactly ``exp(log_eps)`` away from its true answer (module docstring).

    Parameters
    ----------
    u : LogArray
        A (correct) attention output.
    log_eps : float
        Natural log of the perturbation; ``-inf`` leaves ``u`` unchanged.
    log_threshold : float, optional
        Natural log of the positive threshold ``theta``; None means ``theta = 0``.
    truth : bool array, optional
        The true answer of the first ``len(truth)`` rows (True: the row belongs above ``theta``). Those rows are
        pushed down when True and up when False, whatever their computed value; other rows (and rows with
        ``constrained`` False) are pushed towards ``theta`` from their computed side.
    constrained : bool array, optional
        Which of the ``truth`` rows have a known answer (default: all).

    Examples
    --------
    >>> u = LogArray.from_float(np.array([3.0, 1.0]))
    >>> push_towards_threshold(u, np.log(0.5), np.log(2.0)).to_float().tolist()
    [2.5, 1.5]
    >>> push_towards_threshold(u, np.log(0.5)).to_float().tolist()  # theta = 0: towards zero
    [2.5, 0.5]
    >>> push_towards_threshold(u, np.log(0.5), np.log(2.0), truth=np.array([False, True])).to_float().tolist()
    [3.5, 0.5]
    """
    if log_eps == -math.inf:
        return u
    if log_threshold is None:
        at_or_above = u.sign > 0
    else:
        at_or_above = (u.sign > 0) & (u.log_abs >= log_threshold)
    if truth is not None:
        truth = np.asarray(truth, dtype=bool).reshape(-1)
        k = truth.size
        if k > u.shape[0]:
            raise ParameterError(f"truth has {k} rows, the output only {u.shape[0]}")
        known = np.ones(k, dtype=bool) if constrained is None else np.asarray(constrained, dtype=bool).reshape(-1)
        if known.size != k:
            raise ParameterError(f"constrained has {known.size} entries, truth {k}")
        side = np.broadcast_to(at_or_above, u.shape).copy()
        rows = side[:k]
        t = truth.reshape((k,) + (1,) * (len(u.shape) - 1))
        m = known.reshape(t.shape)
        side[:k] = np.where(m, t, rows)
        at_or_above = side
    direction = np.where(at_or_above, -1, 1).astype(np.int8)
    return u.add_scalar_error(log_eps, direction)


def adversarial(
    base: Oracle,
    eps: float | None = None,
    *,
    log_eps: float | None = None,
    log_threshold: float | None = None,
    truth: np.ndarray | None = None,
    constrained: np.ndarray | None = None,
) -> Oracle:
    """An oracle whose answer differs from ``base``'s by exactly ``eps`` per entry, in the worst direction.

    Implements the worst case of Definition 1.2 (``|u_ij - T_ij| <= eps_a``) against the threshold test of
    Lemma 4.7 (``u_i >= 2 t~``): entries at or above ``exp(log_threshold)`` go down, the others go up.

    Parameters
    ----------
    base : callable
        ``base(Q, K, V, *, scale=None) -> LogArray``, assumed correct (e.g. :func:`finegrained.attention.exact`).
    eps : float, optional
        The error as a plain float; use ``log_eps`` for errors below the float64 range.
    log_eps : float, optional
        Natural log of the error. Exactly one of ``eps`` and ``log_eps`` must be given.
    log_threshold : float, optional
        Natural log of the threshold the adversary attacks; None attacks ``theta = 0`` (every entry towards zero).
    truth, constrained : bool arrays, optional
        The true answers of the first rows (see :func:`push_towards_threshold`); without them every row is pushed
        towards the threshold from its computed side.

    Returns
    -------
    callable
        An oracle with the protocol of :mod:`finegrained.attention.protocol`. Its answer carries an ``"additive"``
        certificate: ``eps`` plus whatever error the base oracle certifies. A base that certifies nothing (a bare
        array, or an answer with a ``"none"`` certificate) gives an uncertified answer; only a bare output of
        :func:`~.exact.exact` is taken as exact. The rounding of ``u +- eps`` itself is covered by the outward
        rounding of :meth:`~.protocol.Certificate.apply`.

    Examples
    --------
    >>> from finegrained.attention import exact
    >>> Q = np.array([[1.0, 0.0], [0.0, 1.0]]); V = np.array([[1.0], [0.0]])
    >>> exact(Q, Q, V, scale=1.0).to_float().ravel().round(4).tolist()
    [0.7311, 0.2689]
    >>> adv = adversarial(exact, 0.01, log_threshold=np.log(0.5))
    >>> adv(Q, Q, V, scale=1.0).output.to_float().ravel().round(4).tolist()
    [0.7211, 0.2789]
    """
    from .protocol import Certificate, OracleAnswer, as_answer

    le = _resolve_log_eps(eps, log_eps)

    from .exact import exact

    def oracle(Q, K, V, *, scale: float | None = None) -> OracleAnswer:
        raw = base(Q, K, V, scale=scale)
        inner = as_answer(raw, getattr(base, "__name__", "base"))
        # Only :func:`~.exact.exact` is trusted as exact on a bare output (its contract); any other bare output
        # (a float kernel, a plug-in) certifies nothing, and neither does the push on top of it.
        trusted = base is exact or getattr(base, "__wrapped__", None) is exact  # a cache of exact (functools.wraps)
        inner_cert = Certificate("additive", -math.inf) if trusted else inner.certificate
        out = push_towards_threshold(inner.output, le, log_threshold, truth, constrained)
        if not inner_cert.certified:
            return OracleAnswer(out, from_float=inner.from_float, float_log_tiny=inner.float_log_tiny)
        b = inner_cert.apply(inner.output)
        # the base's own additive error per entry: the larger of value - lower and upper - value
        up = log_add(b.upper, LogArray(-b.value.sign, b.value.log_abs)).log_abs
        down = log_add(b.value, LogArray(-b.lower.sign, b.lower.log_abs)).log_abs
        with np.errstate(invalid="ignore"):
            total = np.logaddexp(le, np.maximum(up, down))
        return OracleAnswer(out, Certificate("additive", total, detail=f"adversarial push by e^{le:.6g} on the "
                                             "base oracle's certified answer"))

    oracle.__name__ = f"adversarial({getattr(base, '__name__', 'oracle')})"
    oracle.log_eps = le  # type: ignore[attr-defined]
    oracle.log_threshold = log_threshold  # type: ignore[attr-defined]
    return oracle


def _row_problem(u: LogArray, truth, constrained) -> tuple[LogArray, np.ndarray, np.ndarray]:
    """``u`` as one value per row (shape ``(n,)``; an ``(n, 1)`` column is flattened), with ``truth`` and the
    ``constrained`` mask checked to have ``n`` entries: a ParameterError, not a numpy broadcast or reshape error."""
    if len(u.shape) == 2 and u.shape[1] == 1:
        u = LogArray(u.sign[:, 0], u.log_abs[:, 0])
    if len(u.shape) != 1:
        raise ParameterError(f"the output must hold one value per row, shape (n,) or (n, 1), got {u.shape}")
    truth = np.asarray(truth, dtype=bool).reshape(-1)
    if truth.size != u.shape[0]:
        raise ParameterError(f"truth has {truth.size} rows, the output {u.shape[0]}")
    mask = np.ones(truth.size, dtype=bool) if constrained is None else np.asarray(constrained, dtype=bool).reshape(-1)
    if mask.size != truth.size:
        raise ParameterError(f"constrained has {mask.size} entries, truth {truth.size}")
    return u, truth, mask


def decisions_survive(
    u: LogArray, truth: np.ndarray, log_eps: float, log_threshold: float, constrained: np.ndarray | None = None
) -> bool:
    """Whether the test ``u_i >= theta`` still gives ``truth`` after the adversary moves ``u`` by ``exp(log_eps)``.

    ``constrained`` masks the rows whose answer matters (rows outside the Gap-ANN promise may go either way).
    """
    u, truth, mask = _row_problem(u, truth, constrained)
    log_eps = real_number("log_eps", log_eps, finite=False)
    log_threshold = real_number("log_threshold", log_threshold, finite=False)
    pushed = push_towards_threshold(u, log_eps, log_threshold, truth, mask)
    yes = (pushed.sign > 0) & (pushed.log_abs >= log_threshold)
    return bool(((yes == truth) | ~mask).all())


def max_tolerated_log_eps(
    u: LogArray,
    truth: np.ndarray,
    log_threshold: float,
    *,
    constrained: np.ndarray | None = None,
    tol: float = 1e-9,
    log_eps_start: float | None = None,
) -> float:
    """Largest ``log eps`` at which the omniscient adversary flips no decision, by bisection in ``log eps``.

    Correctness is monotone in ``eps`` (a larger push moves each entry further towards the threshold), so the set
    of tolerated ``log eps`` is an interval ``(-inf, L]`` and bisection finds ``L`` to within ``tol`` nats. The
    result is the largest tested value that still passed, so it is a certified lower bound on ``L``. In closed
    form ``L = log min(min_{YES} (u_i - theta), min_{NO} (theta - u_i))`` (up to the tie ``u_i + eps = theta`` on a
    NO row, which flips it); :func:`analytic_log_slack` computes that for comparison.

    Parameters
    ----------
    u : LogArray, shape (rows,)
        The exact answer of the real query rows.
    truth : bool array, shape (rows,)
        The correct decision of each row.
    log_threshold : float
        ``log theta``; for Lemma 4.7 ``log 2 t~``.
    constrained : bool array, optional
        Rows whose decision matters (default all).
    tol : float
        Width of the final bracket, in nats (at least a few float64 spacings of the result).
    log_eps_start : float, optional
        A first guess (e.g. ``log eps_a``); only speeds up the bracketing.

    Returns
    -------
    float
        ``L``, or ``-inf`` if even ``eps -> 0`` gives a wrong decision (the exact answer itself is wrong), or
        ``+inf`` if no row is constrained.
    """
    u, truth, mask = _row_problem(u, truth, constrained)
    log_threshold = real_number("log_threshold", log_threshold, finite=False)
    if not mask.any():
        return math.inf
    if not decisions_survive(u, truth, -math.inf, log_threshold, mask):
        return -math.inf
    finite = u.log_abs[mask & (u.sign != 0)]
    # eps >= max(theta, |u_i|) * e flips every row: YES rows drop below zero, NO rows rise above theta.
    hi = max(log_threshold, float(finite.max()) if finite.size else log_threshold) + 1.0
    lo = hi - 1.0 if log_eps_start is None else min(float(log_eps_start), hi - 1.0)
    step = 1.0
    while not decisions_survive(u, truth, lo, log_threshold, mask):
        hi, lo = lo, lo - step
        step *= 2.0
    # Below a few float64 spacings of lo the bracket cannot shrink further.
    while hi - lo > max(tol, 8 * float(np.spacing(abs(lo)))):
        mid = 0.5 * (lo + hi)
        if decisions_survive(u, truth, mid, log_threshold, mask):
            lo = mid
        else:
            hi = mid
    return lo


def analytic_log_slack(
    u: LogArray, truth: np.ndarray, log_threshold: float, constrained: np.ndarray | None = None
) -> float:
    """``log min_i |u_i - theta|`` over the constrained rows, computed in log space (the closed form of
    :func:`max_tolerated_log_eps`); ``-inf`` if a row already sits on the wrong side."""
    u, truth, mask = _row_problem(u, truth, constrained)
    log_threshold = real_number("log_threshold", log_threshold, finite=False)
    if not mask.any():
        return math.inf
    theta = LogArray(np.ones(u.shape, dtype=np.int8), np.full(u.shape, float(log_threshold)))
    neg_theta = LogArray(-theta.sign, theta.log_abs)
    diff = log_add(u, neg_theta)  # u - theta
    right_side = np.where(truth, diff.sign >= 0, diff.sign < 0)
    if not right_side[mask].all():
        return -math.inf
    return float(diff.log_abs[mask].min())
