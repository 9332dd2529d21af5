r"""Exact (sympy) checks of every inequality in the corrected proof of Lemma 4.7 (``docs/errata.md``).

Each inequality of the proof becomes a named :class:`Check` whose *slack* is a sympy expression in nats that
must be ``>= 0`` (``> 0`` for a strict inequality). Slacks are built from exact numbers only:

* ``n``, ``d`` are integers; ``t`` and ``eps`` are floats in the instance and ``beta`` is a float from
  :func:`reductions.lemma47_parameters`. Each float ``x`` becomes ``sympy.nsimplify(x, rational=True)`` when that
  rational rounds back to the identical float64 (so ``3/171`` is ``1/57``), and otherwise its exact binary value
  ``sympy.Rational(x)``. Either way the rational *is* the number the code used; in tight mode ``beta`` is a
  rational with a long denominator, not the irrational ``1.25 * 4 d ln(6n)/(eps t)``.
* ``log``, ``exp`` stay symbolic (``log(6 n)``, ``exp(-beta/2)``).

A slack is decided by a rigorous sign test: it is evaluated in outward-rounded interval arithmetic
(``mpmath.iv``) at increasing precision until the interval excludes 0; an interval that keeps containing 0 is
resolved by sympy's exact simplification (an identity such as ``t~ = eps_a`` in tight mode has slack exactly 0,
which passes a non-strict check and fails a strict one). No step uses plain floats.

The symbolic mode (:func:`symbolic_checks`) proves the parameter inequalities for *all* ``n >= n_0`` at the
instance's constants (``t/d``, ``eps``, ``safety``), or for all values of every symbol where the statement is an
identity, using ``sympy.simplify`` and ``sympy.solveset``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import sympy as sp

from instances.errors import ParameterError
from reductions.gap_ann_to_attention import Lemma47Parameters

#: Interval precisions (bits) tried in turn before falling back to exact simplification. Slacks such as
#: ``log(1 + exp(-beta/2))`` need about ``beta / (2 ln 2)`` bits before the interval leaves 0.
_PRECISIONS = (64, 256, 1024, 4096, 16384, 65536, 262144)


def to_rational(x: float) -> sp.Rational:
    """The exact rational a float stands for: the simplest one that rounds back to ``x``, else ``Rational(x)``.

    Examples
    --------
    >>> to_rational(3 / 171), to_rational(0.1), to_rational(171.0)
    (1/57, 1/10, 171)
    """
    x = float(x)
    if not math.isfinite(x):
        raise ParameterError(f"cannot convert the non-finite number {x} to an exact rational")
    r = sp.nsimplify(x, rational=True)
    if not isinstance(r, sp.Rational) or float(r) != x:
        r = sp.Rational(x)
    return r


def _interval(e: sp.Expr):
    """An ``mpmath.iv`` interval containing the exact value of a closed sympy expression (outward rounding)."""
    iv = mpmath.iv
    if e.is_Integer:
        return iv.mpf(int(e))
    if e.is_Rational:
        return iv.mpf(int(e.p)) / iv.mpf(int(e.q))
    if e is sp.E:
        return iv.e
    if e is sp.pi:
        return iv.pi
    if isinstance(e, sp.Add):
        out = iv.mpf(0)
        for a in e.args:
            out = out + _interval(a)
        return out
    if isinstance(e, sp.Mul):
        out = iv.mpf(1)
        for a in e.args:
            out = out * _interval(a)
        return out
    if isinstance(e, sp.Pow):
        base, ex = e.args
        if ex.is_Integer:
            return _interval(base) ** int(ex)
        return iv.exp(_interval(ex) * iv.log(_interval(base)))
    if isinstance(e, sp.exp):
        return iv.exp(_interval(e.args[0]))
    if isinstance(e, sp.log):
        return iv.log(_interval(e.args[0]))
    raise ParameterError(f"cannot evaluate {e} in interval arithmetic")


def _enclosure(lo: mpmath.mpf, hi: mpmath.mpf, bits: int) -> str:
    return f"interval [{mpmath.nstr(mpmath.mpf(lo), 6)}, {mpmath.nstr(mpmath.mpf(hi), 6)}] at {bits} bits"


def certified_sign(e: sp.Expr) -> tuple[int, str, mpmath.mpf]:
    """Sign of a closed expression, certified by interval arithmetic or exact simplification.

    Returns
    -------
    sign : int
        -1, 0 or +1; 0 only when sympy proves the expression identically zero.
    how : str
        The certificate: the enclosing interval and its precision, or ``"exact zero"``.
    value : mpmath.mpf
        The midpoint of the enclosing interval, for display only.

    Examples
    --------
    >>> certified_sign(10 * sp.log(2) - sp.log(6))[0]
    1
    >>> certified_sign(sp.log(6) - sp.log(2) - sp.log(3))[:2]
    (0, 'exact zero')
    """
    e = sp.sympify(e)
    if e.free_symbols:
        raise ParameterError(f"{e} has free symbols {e.free_symbols}; a numeric check needs a closed expression")
    for bits in _PRECISIONS:
        saved = mpmath.iv.prec
        try:
            mpmath.iv.prec = bits
            lo_raw, hi_raw = _interval(e)._mpi_
        finally:
            mpmath.iv.prec = saved
        lo, hi = mpmath.mp.make_mpf(lo_raw), mpmath.mp.make_mpf(hi_raw)
        # Rounded to mpmath's default 53 bits for display; the sign test below uses the exact endpoints.
        mid = mpmath.mpf((lo + hi) / 2)
        if lo > 0:
            return 1, _enclosure(lo, hi, bits), mid
        if hi < 0:
            return -1, _enclosure(lo, hi, bits), mid
        if bits == _PRECISIONS[0] and sp.simplify(sp.expand_log(e, force=True)) == 0:
            return 0, "exact zero", mpmath.mpf(0)
    if e.equals(0):
        return 0, "exact zero", mpmath.mpf(0)
    raise ParameterError(f"could not decide the sign of {e}: it is 0 to {_PRECISIONS[-1]} bits but not provably 0")


@dataclass(frozen=True)
class Check:
    """One inequality of the proof: ``slack >= 0`` (``> 0`` if ``strict``), slack in nats."""

    name: str
    statement: str
    reference: str
    slack: sp.Expr
    strict: bool
    sign: int
    certificate: str
    value: float
    value_text: str = ""

    @property
    def passed(self) -> bool:
        return self.sign > 0 or (self.sign == 0 and not self.strict)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "statement": self.statement,
            "reference": self.reference,
            "strict": self.strict,
            "passed": self.passed,
            "slack": self.value if math.isfinite(self.value) else None,
            "slack_text": self.value_text,
            "slack_exact": str(self.slack) if len(str(self.slack)) <= 400 else None,
            "certificate": self.certificate,
        }


def _check(name: str, statement: str, reference: str, slack: sp.Expr, strict: bool) -> Check:
    sign, how, value = certified_sign(slack)
    return Check(name, statement, reference, slack, strict, sign, how, float(value), mpmath.nstr(value, 6))


@dataclass
class ProofReport:
    """The checks for one instance's parameters, numeric and (optionally) symbolic."""

    mode: str
    inputs: dict
    checks: list[Check]
    symbolic: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks) and all(c.passed for c in self.symbolic)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in [*self.checks, *self.symbolic] if not c.passed]

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "inputs": self.inputs,
            "passed": self.passed,
            "failed": self.failed,
            "checks": [c.as_dict() for c in self.checks],
            "symbolic": [c.as_dict() for c in self.symbolic],
        }


#: Rounding allowance of a closed-form comparison, relative to the size of the terms summed (2^-44, about 1000 ulps).
#: The reduction evaluates each closed form in a handful of float64 operations; a wrong constant (``beta`` for
#: ``beta/2``, ``ln 4n`` for ``ln 6n``) moves the value by whole nats, far outside this allowance.
_ROUNDING = sp.Rational(1, 2**44)


def _paper_beta(params: Lemma47Parameters) -> sp.Expr:
    """Eq. (9): ``beta = C_b^2 log n = 40 d log n / (eps t)`` with ``log n = log max(n, 2)`` (E8)."""
    n, d = sp.Integer(params.n), sp.Integer(params.d)
    return 40 * d * sp.log(max(n, 2)) / (to_rational(params.eps) * to_rational(params.t))


def _close(expr: sp.Expr, x: float, scale: float) -> bool:
    """Whether the closed sympy expression ``expr`` equals the float ``x`` within the rounding allowance."""
    tol = sp.Rational(math.ceil(abs(scale)) + 1) * _ROUNDING
    diff = expr - to_rational(x)
    return certified_sign(tol - diff)[0] >= 0 and certified_sign(tol + diff)[0] >= 0


def uses_paper_eps_a(params: Lemma47Parameters, beta_overridden: bool | None = None) -> bool:
    """Whether the closed form of ``eps_a`` is the paper's ``n^{-C_a}`` (Eq. 8) rather than ``t~``.

    Paper mode with the paper's ``beta`` uses ``n^{-C_a}``; tight mode, or any overridden ``beta``, uses ``t~``
    (``lemma47_parameters``). ``beta_overridden=None`` decides from the numbers: the paper's ``eps_a`` is expected
    exactly when ``params.beta`` is Eq. (9)'s ``40 d log n/(eps t)`` to float rounding. It never looks at
    ``log_eps_a``, the number under test.
    """
    if params.mode != "paper":
        return False
    if beta_overridden is not None:
        return not beta_overridden
    return _close(_paper_beta(params), params.beta, params.beta)


def closed_forms(params: Lemma47Parameters, beta_overridden: bool | None = None, *,
                 upstream: dict[str, sp.Expr] | None = None) -> dict[str, sp.Expr]:
    """The exact closed forms (natural logs) of the quantities the reduction decides with, at ``params.beta``.

    ``log_tau = beta/2`` (E2), ``log_t_tilde = beta/4 (1 - t/d) - ln(6n) - log_tau`` (E4),
    ``log_eps_a = log_t_tilde`` (tight, or overridden ``beta``) or ``-C_a log n = -(2 log n + beta (1 + t/d))``
    (paper, Eq. 8 with ``C_b^2 log n = beta`` and ``C_0/C = t/d``), and ``log_threshold = ln 2 + log_t_tilde``
    (the test ``u_i >= 2 t~``). Every input is the exact rational of the float the code used (:func:`to_rational`).
    ``upstream`` (keys ``log_tau``, ``log_t_tilde``) replaces the quantity on the right of each definition, so that
    each form can be checked against the code's own value of the quantity it is derived from: a wrong constant then
    fails only the check of the quantity it enters.

    Examples
    --------
    >>> from reductions import lemma47_parameters
    >>> forms = closed_forms(lemma47_parameters(4, 4, 12, 5.0, 3 / 5, beta=60.0))
    >>> forms["log_tau"], forms["log_t_tilde"], forms["log_threshold"]
    (30, -85/4 - log(24), -85/4 - log(24) + log(2))
    """
    n, d = sp.Integer(params.n), sp.Integer(params.d)
    t, beta = to_rational(params.t), to_rational(params.beta)
    up = upstream or {}
    log_tau = beta / 2
    log_tt = beta / 4 * (1 - t / d) - sp.log(6 * n) - up.get("log_tau", log_tau)
    tt_in = up.get("log_t_tilde", log_tt)
    if uses_paper_eps_a(params, beta_overridden):
        log_ea = -(2 * sp.log(max(n, 2)) + beta * (1 + t / d))
    else:
        log_ea = tt_in
    return {"log_tau": log_tau, "log_t_tilde": log_tt, "log_eps_a": log_ea, "log_threshold": sp.log(2) + tt_in}


#: The check that compares each code quantity with its closed form, and the name it is reported under.
CLOSED_FORM_CHECKS = {
    "log_tau": "tau = e^(beta/2)",
    "log_t_tilde": "t~ = e^(beta/4 (1 - t/d))/(6 n tau)",
    "log_eps_a": "eps_a closed form",
    "log_threshold": "threshold = 2 t~",
}


def _closed_form_check(name: str, statement: str, reference: str, closed: sp.Expr, code: float,
                       scale: float) -> Check:
    """``|code - closed| <= tol``: the code's float is its closed form up to float rounding (tol from ``scale``)."""
    tol = sp.Rational(math.ceil(abs(scale)) + 1) * _ROUNDING
    diff = to_rational(code) - closed
    lo_sign, lo_how, lo_val = certified_sign(tol + diff)
    hi_sign, hi_how, hi_val = certified_sign(tol - diff)
    sign = min(lo_sign, hi_sign)
    value = min(lo_val, hi_val)
    deviation = mpmath.mpf(tol.p) / tol.q - hi_val  # the midpoint of code - closed form, for display
    how = (f"code - closed form = {mpmath.nstr(deviation, 3)}, allowed +-{float(tol):.3g}; "
           f"{hi_how if hi_sign <= lo_sign else lo_how}")
    return Check(name, statement, reference, tol - sp.Abs(diff), False, sign, how, float(value),
                 mpmath.nstr(value, 6))


def proof_checks(params: Lemma47Parameters, *, beta_overridden: bool | None = None) -> ProofReport:
    """Evaluate every inequality of the corrected Lemma 4.7 proof exactly, on the numbers the reduction uses.

    ``params`` is what the reduction decides with (``GapANNToAAttC(...).derive(instance)``). Its ``log_tau``,
    ``log_t_tilde``, ``log_eps_a`` and ``log_threshold`` enter the inequalities as the exact rationals of those
    floats, and four checks compare each with its closed form (:func:`closed_forms`) to float rounding, so a wrong
    constant in the reduction fails the check that names it. The matrix itself (entries ``exp(beta <q, k>/d~)``
    with ``d~ = params.d_tilde``) gives the row sums ``D``. ``beta_overridden``: see :func:`uses_paper_eps_a`.

    The checks, in the order of the proof (``H`` is a Hamming distance, an integer; ``tau``, ``t~``, ``eps_a`` and
    the threshold are the code's):

    ``tau = e^(beta/2)``, ``t~ = ...``, ``eps_a closed form``, ``threshold = 2 t~``
        the code's numbers equal their closed forms (E2, E4, Eq. 8) up to float rounding, each given the code's
        value of the quantity it is defined from (``t~`` from the code's ``tau``, ``eps_a`` and the threshold
        from the code's ``t~``), so the first wrong quantity is the one named; together they pin all four.
    ``t_tilde >= eps_a``
        E4: ``log t~ - log eps_a >= 0`` (tight mode: exactly 0 by definition).
    ``A_ij <= e^(beta/4) < tau``
        E2: top-left entries are at most ``e^{beta/4}`` (balanced vectors), below ``tau``.
    ``D > n tau``, ``D < 2 n tau``
        E2: ``D_ii = sum_j A_ij + n e^{beta d/d~}`` with ``1 <= A_ij <= e^{beta/4}``.
    ``Case 2a: u > 3t~``
        A row with ``H <= ceil(t) - 1`` has ``u >= e^{beta/4 (1 - H/d)} / D > e^{beta/4 (1 - H/d)} / (2 n tau)``.
    ``Case 2a decision``
        ``e^{beta/4 (1 - H/d)} / (2 n tau) - eps_a >= threshold``: the answer ``>= u - eps_a`` passes the test.
    ``gap condition``
        E5: ``beta eps t / (4d) >= ln(6n)``.
    ``Case 2b: u < t~``
        ``u < e^{beta/4 (1 - (1+eps) t/d)} / tau <= t~``.
    ``Case 2b decision``
        ``e^{beta/4 (1 - (1+eps) t/d)} / tau + eps_a <= threshold``: the answer ``< u + eps_a`` fails the test.
        (The proof's ``3t~ - eps_a >= 2t~`` and ``t~ + eps_a <= 2t~`` hold with equality in tight mode, so a
        rounded threshold could sit on either side; the strict bounds on ``u`` carry the margin.)
    ``Eq. (13)`` (paper mode)
        ``exp(beta eps t / 4d) = n^10 >= 6n`` (``log n = log max(n, 2)``, E8), and the paper's ``n^10 > 4n``.

    Examples
    --------
    >>> from reductions import lemma47_parameters
    >>> report = proof_checks(lemma47_parameters(4, 4, 12, 5.0, 3 / 5))
    >>> report.passed, len(report.checks)
    (True, 13)
    >>> low = lemma47_parameters(4, 4, 12, 5.0, 3 / 5, beta=10.0, check=False)
    >>> proof_checks(low).failed
    ['gap condition', 'Case 2b: u < t~', 'Case 2b decision']
    """
    n, d, d_tilde = sp.Integer(params.n), sp.Integer(params.d), sp.Integer(params.d_tilde)
    t, eps, beta = to_rational(params.t), to_rational(params.eps), to_rational(params.beta)
    paper_ea = uses_paper_eps_a(params, beta_overridden)
    # The code's numbers, exactly: these are what the threshold test and the oracle's error bound use.
    log_tau = to_rational(params.log_tau)
    log_tt = to_rational(params.log_t_tilde)
    forms = closed_forms(params, beta_overridden, upstream={"log_tau": log_tau, "log_t_tilde": log_tt})
    log_ea = to_rational(params.log_eps_a)
    log_thr = to_rational(params.log_threshold)
    # The matrix: padding entries exp(beta d/d~), top-left entries exp(beta <a, b>/d~) with <a, b> = (d - H)/2.
    log_pad = beta * d / d_tilde
    log_top_max = beta * d / (2 * d_tilde)

    def log_top(h: sp.Expr) -> sp.Expr:
        return beta * (d - h) / (2 * d_tilde)

    ea_text = "n^(-C_a)" if paper_ea else "t~"
    h_yes = sp.ceiling(t) - 1  # the largest integer distance below t
    h_no = (1 + eps) * t  # Case 2b: every distance is at least this
    scale = float(abs(params.beta) * (1 + params.t / params.d) + 2 * math.log(6 * params.n) + 2)
    codes = {"log_tau": params.log_tau, "log_t_tilde": params.log_t_tilde, "log_eps_a": params.log_eps_a,
             "log_threshold": params.log_threshold}
    statements = {
        "log_tau": ("the code's log tau is beta/2", "E2"),
        "log_t_tilde": ("the code's log t~ is beta/4 (1 - t/d) - ln(6n) - log tau", "E4"),
        "log_eps_a": ("the code's log eps_a is " + ("-C_a log n" if paper_ea else "log t~"),
                      "Eq. (8)" if paper_ea else "E4"),
        "log_threshold": ("the code's log threshold is ln 2 + log t~", "threshold test u_i >= 2 t~"),
    }
    checks = [_closed_form_check(CLOSED_FORM_CHECKS[k], *statements[k], forms[k], codes[k], scale) for k in forms]
    d_lo = sp.log(n * sp.exp(log_pad) + n)
    d_hi = sp.log(n * sp.exp(log_pad) + n * sp.exp(log_top_max))
    case_2a = log_top(h_yes) - sp.log(2 * n) - log_tau
    case_2b = log_top(h_no) - log_tau
    checks += [
        _check("t_tilde >= eps_a", f"t~ >= eps_a = {ea_text}", "E4", log_tt - log_ea, False),
        _check("A_ij <= e^(beta/4) < tau", "every top-left entry is below tau", "E2, Eq. (10)",
               log_tau - log_top_max, True),
        _check("D > n tau", "D_ii >= n e^(beta d/d~) + n > n tau", "E2", d_lo - sp.log(n) - log_tau, True),
        _check("D < 2 n tau", "D_ii <= n e^(beta d/d~) + n e^(beta/4) < 2 n tau", "E2",
               sp.log(2 * n) + log_tau - d_hi, True),
        _check("Case 2a: u > 3t~", f"H <= {h_yes} < t gives u > e^(beta/4 (1 - H/d))/(2 n tau) >= 3 t~",
               "Case 2a, E6", case_2a - (sp.log(3) + log_tt), False),
        _check("Case 2a decision", "e^(beta/4 (1 - H/d))/(2 n tau) - eps_a >= threshold", "Case 2a, E6",
               case_2a - sp.log(sp.exp(log_thr) + sp.exp(log_ea)), False),
        _check("gap condition", "beta eps t / (4d) >= ln(6n)", "E5", beta * eps * t / (4 * d) - sp.log(6 * n), False),
        _check("Case 2b: u < t~", "H >= (1+eps) t gives u < e^(beta/4 (1 - (1+eps) t/d))/tau <= t~", "Case 2b, E5",
               log_tt - case_2b, False),
        _check("Case 2b decision", "e^(beta/4 (1 - (1+eps) t/d))/tau + eps_a <= threshold", "Case 2b, E6",
               log_thr - sp.log(sp.exp(case_2b) + sp.exp(log_ea)), False),
    ]
    if params.mode == "paper":
        log_n = sp.log(max(n, 2))
        checks.append(_check("Eq. (13): n^10 >= 6n", "exp(beta eps t/4d) = n^10 >= 6n", "Eq. (13), E5, E8",
                             10 * log_n - sp.log(6 * n), False))
        checks.append(_check("Eq. (13) as printed: n^10 > 4n", "n^10 > 4n", "Eq. (13)",
                             10 * log_n - sp.log(4 * n), True))
    inputs = {"n": params.n, "d": params.d, "t": str(t), "eps": str(eps), "beta": str(beta),
              "beta_float": params.beta, "eps_a": ea_text, **codes}
    return ProofReport(mode=params.mode, inputs=inputs, checks=checks)


def _symbolic_check(name: str, statement: str, reference: str, expr: sp.Expr, n: sp.Symbol | None,
                    n0: int, strict: bool = False) -> Check:
    """Prove ``expr >= 0`` (``> 0``) for every ``n >= n0`` (or identically, when ``n`` is None)."""
    expr = sp.expand_log(sp.simplify(sp.expand_log(expr, force=True)), force=True)
    if expr == 0:
        return Check(name, statement + " (identity)", reference, expr, strict, 0, "simplifies to 0", 0.0)
    if n is None:
        sign = 1 if expr.is_positive else (0 if expr.is_zero else -1)
        if expr.is_nonnegative and not expr.is_positive:
            sign = 0
        how = "sympy sign assumptions" if expr.is_nonnegative else "not provably >= 0"
        return Check(name, statement, reference, expr, strict, sign, how, float("nan"))
    rel = expr <= 0 if strict else expr < 0
    counter = sp.solveset(rel, n, sp.Interval(n0, sp.oo))
    ok = counter == sp.S.EmptySet
    how = f"solveset({rel}, n >= {n0}) = {counter}"
    return Check(name, f"{statement} for all n >= {n0}", reference, expr, strict, 1 if ok else -1, how, float("nan"))


def symbolic_checks(params: Lemma47Parameters) -> list[Check]:
    """Prove the parameter inequalities for all ``n`` at this instance's constants, and the proof's identities.

    Paper mode (``d = C log n``, ``t = C_0 log n``, ``beta = C_b^2 log n = 40 C log n / (C_0 eps)``):

    * the gap exponent ``beta eps t/(4d) - ln(6n) = 9 ln n - ln 6 >= 0`` for ``n >= 2`` (Eq. 13 with ``6n``);
    * ``log t~ - log eps_a = (0.75 C_b^2 (1 + C_0/C) + 1) ln n - ln 6 >= 0`` for ``n >= 2``, at the
      instance's ``C_0/C = t/d`` and ``eps``;
    * ``beta > 0`` (so ``e^{beta/4} < tau`` and the D bounds) for ``n >= 2``.

    Tight mode, or any overridden ``beta`` (``beta = s * 4 d ln(6n) / (eps t)``, ``s = beta / beta_min``): the
    gap exponent minus ``ln(6n)`` is ``(s - 1) ln(6n) >= 0`` for every ``n >= 1`` when ``s >= 1`` (true by
    construction), and ``t~ = eps_a``.

    Both modes: the identities ``e^{beta/4 (1 - t/d)}/(2 n tau) = 3 t~`` (Case 2a) and
    ``e^{beta/4 (1 - (1+eps)t/d)}/tau = 3 t~ 2n e^{-beta eps t/4d}`` (Case 2b, E5) for all positive symbols.

    Examples
    --------
    >>> from reductions import lemma47_parameters
    >>> checks = symbolic_checks(lemma47_parameters(1024, 1024, 510, 171.0, 3 / 171, mode="paper"))
    >>> [(c.name, c.passed) for c in checks][:2]
    [('gap exponent (paper beta)', True), ('t_tilde >= eps_a (paper constants)', True)]
    >>> str(checks[0].slack)
    '9*log(n) - log(6)'
    """
    n = sp.Symbol("n", positive=True)
    bs, ds, ts, es, ns = sp.symbols("beta d t epsilon n", positive=True)
    r, eps = to_rational(params.t) / params.d, to_rational(params.eps)
    tau = sp.exp(bs / 2)
    tt = sp.exp(bs / 4 * (1 - ts / ds)) / (6 * ns * tau)
    out = [
        _symbolic_check("Case 2a identity", "e^(beta/4 (1-t/d))/(2 n tau) = 3 t~", "Case 2a, E4",
                        sp.log(sp.exp(bs / 4 * (1 - ts / ds)) / (2 * ns * tau)) - sp.log(3 * tt), None, 0),
        _symbolic_check("Case 2b identity", "e^(beta/4 (1-(1+eps)t/d))/tau = 3 t~ 2n e^(-beta eps t/4d)", "E5",
                        sp.log(sp.exp(bs / 4 * (1 - (1 + es) * ts / ds)) / tau)
                        - sp.log(3 * tt * 2 * ns * sp.exp(-bs * es * ts / (4 * ds))), None, 0),
    ]
    if uses_paper_eps_a(params):
        beta = 40 * sp.log(n) / (r * eps)  # C_b^2 log n with C_b^2 = 40 C/(C_0 eps), C_0/C = t/d
        out.insert(0, _symbolic_check("gap exponent (paper beta)", "beta eps t/(4d) >= ln(6n)", "Eq. (13), E5",
                                      beta * eps * r / 4 - sp.log(6 * n), n, 2))
        out.insert(1, _symbolic_check("t_tilde >= eps_a (paper constants)", "t~ >= n^(-C_a)", "E4",
                                      sp.Rational(3, 4) * beta * (1 + r) + sp.log(n) - sp.log(6), n, 2))
        out.insert(2, _symbolic_check("beta > 0 (paper)", "beta = C_b^2 log n > 0", "E2", beta, n, 2, strict=True))
    else:
        s = to_rational(params.safety)
        beta = s * 4 * sp.log(6 * n) / (r * eps)
        # Tight mode, or an overridden beta: beta = s * beta_min with the instance's s = beta / beta_min.
        out.insert(0, _symbolic_check("gap exponent (beta = s beta_min)", f"beta eps t/(4d) >= ln(6n) at s = {s}",
                                      "E5", beta * eps * r / 4 - sp.log(6 * n), n, 1))
        sigma, nu = sp.symbols("sigma nu", nonnegative=True)
        out.insert(1, _symbolic_check("gap exponent (any safety >= 1)", "(s - 1) ln(6n) >= 0 for s >= 1, n >= 1",
                                      "E5", sigma * sp.log(6 * (1 + nu)), None, 0))
    return out
