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


def _paper_eps_a(params: Lemma47Parameters) -> bool:
    """Whether ``eps_a`` is the paper's ``n^{-C_a}`` (paper mode, beta not overridden) rather than ``t~``."""
    return params.mode == "paper" and params.log_eps_a != params.log_t_tilde


def proof_checks(params: Lemma47Parameters) -> ProofReport:
    """Evaluate every inequality of the corrected Lemma 4.7 proof exactly for one set of parameters.

    The checks, in the order of the proof (``H`` is a Hamming distance, an integer):

    ``t_tilde >= eps_a``
        E4: ``log t~ - log eps_a >= 0`` (tight mode: exactly 0 by definition).
    ``A_ij <= e^(beta/4) < tau``
        E2: top-left entries are at most ``e^{beta/4}`` (balanced vectors), below ``tau = e^{beta/2}``.
    ``D > n tau``, ``D < 2 n tau``
        E2: ``D_ii = sum_j A_ij + n tau`` with ``1 <= A_ij <= e^{beta/4}``.
    ``Case 2a: u > 3 t~``
        A row with ``H <= ceil(t) - 1`` has ``u >= e^{beta/4 (1 - H/d)} / D > e^{beta/4 (1 - H/d)} / (2 n tau)``.
    ``Case 2a decision``
        ``3 t~ - eps_a >= 2 t~``: the answer ``>= u - eps_a`` stays at or above the threshold.
    ``gap condition``
        E5: ``beta eps t / (4d) >= ln(6n)``.
    ``Case 2b: u < t~``
        ``u < e^{beta/4 (1 - (1+eps) t/d)} / tau <= t~``.
    ``Case 2b decision``
        ``t~ + eps_a <= 2 t~``: the answer stays below the threshold.
    ``Eq. (13)`` (paper mode)
        ``exp(beta eps t / 4d) = n^10 >= 6n`` (``log n = log max(n, 2)``, E8), and the paper's ``n^10 > 4n``.

    Examples
    --------
    >>> from reductions import lemma47_parameters
    >>> report = proof_checks(lemma47_parameters(4, 4, 12, 5.0, 3 / 5))
    >>> report.passed, len(report.checks)
    (True, 9)
    >>> low = lemma47_parameters(4, 4, 12, 5.0, 3 / 5, beta=10.0, check=False)
    >>> proof_checks(low).failed
    ['gap condition', 'Case 2b: u < t~']
    """
    n, d = sp.Integer(params.n), sp.Integer(params.d)
    t, eps, beta = to_rational(params.t), to_rational(params.eps), to_rational(params.beta)
    log_tau = beta / 2
    log_tt = beta / 4 * (1 - t / d) - sp.log(6 * n) - log_tau
    if _paper_eps_a(params):
        log_n = sp.log(max(n, 2))
        # C_a log n = 2 log n + C_b^2 (1 + C_0/C) log n, and C_b^2 log n = beta (Eq. 9), C_0/C = t/d.
        log_ea = -(2 * log_n + beta * (1 + t / d))
        ea_text = "n^(-C_a)"
    else:
        log_ea = log_tt
        ea_text = "t~"
    h_yes = sp.ceiling(t) - 1  # the largest integer distance below t
    checks = [
        _check("t_tilde >= eps_a", f"t~ >= eps_a = {ea_text}", "E4", log_tt - log_ea, False),
        _check("A_ij <= e^(beta/4) < tau", "every top-left entry is below tau = e^(beta/2)", "E2, Eq. (10)",
               log_tau - beta / 4, True),
        _check("D > n tau", "D_ii >= n tau + n > n tau", "E2", sp.log(n * sp.exp(log_tau) + n) - sp.log(n) - log_tau,
               True),
        _check("D < 2 n tau", "D_ii <= n tau + n e^(beta/4) < 2 n tau", "E2",
               sp.log(2 * n) + log_tau - sp.log(n * sp.exp(log_tau) + n * sp.exp(beta / 4)), True),
        _check("Case 2a: u > 3t~", f"H <= {h_yes} < t gives u > e^(beta/4 (1 - H/d))/(2 n tau) >= 3 t~",
               "Case 2a, E6", beta / 4 * (1 - h_yes / d) - sp.log(2 * n) - log_tau - (sp.log(3) + log_tt), False),
        _check("Case 2a decision", "3 t~ - eps_a >= 2 t~", "Case 2a, E6",
               sp.log(3 * sp.exp(log_tt) - sp.exp(log_ea)) - sp.log(2 * sp.exp(log_tt)), False),
        _check("gap condition", "beta eps t / (4d) >= ln(6n)", "E5", beta * eps * t / (4 * d) - sp.log(6 * n), False),
        _check("Case 2b: u < t~", "H >= (1+eps) t gives u < e^(beta/4 (1 - (1+eps) t/d))/tau <= t~", "Case 2b, E5",
               log_tt - (beta / 4 * (1 - (1 + eps) * t / d) - log_tau), False),
        _check("Case 2b decision", "t~ + eps_a <= 2 t~", "Case 2b, E6",
               sp.log(2 * sp.exp(log_tt)) - sp.log(sp.exp(log_tt) + sp.exp(log_ea)), False),
    ]
    if params.mode == "paper":
        log_n = sp.log(max(n, 2))
        checks.append(_check("Eq. (13): n^10 >= 6n", "exp(beta eps t/4d) = n^10 >= 6n", "Eq. (13), E5, E8",
                             10 * log_n - sp.log(6 * n), False))
        checks.append(_check("Eq. (13) as printed: n^10 > 4n", "n^10 > 4n", "Eq. (13)",
                             10 * log_n - sp.log(4 * n), True))
    inputs = {"n": params.n, "d": params.d, "t": str(t), "eps": str(eps), "beta": str(beta),
              "beta_float": params.beta, "eps_a": ea_text}
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
    if _paper_eps_a(params):
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


def format_proof(report: ProofReport) -> str:
    """Human-readable table: one line per check with pass/fail and slack in nats."""
    lines = [f"Lemma 4.7 proof checks ({report.mode} mode; n = {report.inputs['n']}, d = {report.inputs['d']}, "
             f"t = {report.inputs['t']}, eps = {report.inputs['eps']}, beta = {report.inputs['beta_float']:.10g} "
             f"as an exact rational, eps_a = {report.inputs['eps_a']})"]
    width = max(len(c.name) for c in [*report.checks, *report.symbolic])
    for c in report.checks:
        op = ">" if c.strict else ">="
        lines.append(f"  {'pass' if c.passed else 'FAIL'}  {c.name:<{width}}  slack {c.value_text:>12} nats {op} 0"
                     f"   [{c.reference}; {c.certificate}]")
    if report.symbolic:
        lines.append("Symbolic (all n at this instance's constants):")
        for c in report.symbolic:
            lines.append(f"  {'pass' if c.passed else 'FAIL'}  {c.name:<{width}}  {c.statement}: {c.slack} >= 0"
                         f"   [{c.certificate}]")
    lines.append("all checks pass" if report.passed else "FAILED: " + ", ".join(report.failed))
    return "\n".join(lines)
