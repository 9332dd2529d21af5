r"""Fine-grained accounting: the size maps reductions declare, measured, composed, and turned into lower bounds.

Every reduction declares its output sizes as sympy expressions in its input sizes (:attr:`Reduction.sizes
<reductions.base.Reduction.sizes>`). The size names of each problem are fixed here (:data:`PROBLEM_SIZES`), and
:func:`measure` reads the same names off a concrete instance, so a declared map can be *checked* against what the
code builds (:func:`size_mismatches`; :func:`reductions.check_reduction` does so on every instance it draws).
:func:`compose` substitutes the maps along a chain, and :func:`implies` turns a running time of the last problem
into the running time it gives the first one, e.g. ``n^(2-delta)`` for AAttC into ``2^{(1-delta/2) N} poly(N, m)``
for k-SAT, which SETH forbids.

Size names
----------
* k-SAT: ``N`` variables, ``m`` clauses.
* OV: ``n_a``, ``n_b`` vectors of dimension ``d``.
* Gap-ANN: ``n_a`` queries, ``n_b`` data points, dimension ``d``, threshold ``t`` and gap ``eps``.
* Max-IP: ``n_a``, ``n_b``, ``d``, and the entry sizes ``W_a = max|A|``, ``W_b = max|B|``,
  ``T = max_i |1/2 - tau_i|``.
* AAttC and Attention: ``n_q`` queries, ``n_k`` keys, head dimension ``d``, value dimension ``d_v``, entry bound
  ``B``, accuracy ``log_eps_a``; and the parameters a reduction derives, ``beta``, ``log_t_tilde`` (Lemma 4.7) and
  ``lambda`` (the Gupta et al. gadgets).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from instances.aattc import AAttCInstance
from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.gap_ann import GapANNInstance
from instances.maxip import MaxIPInstance
from instances.ov import OVInstance

__all__ = [
    "PROBLEM_SIZES",
    "Derivation",
    "Stage",
    "cached_sizes",
    "regime",
    "report",
    "compose",
    "evaluate",
    "exact_number",
    "implies",
    "measure",
    "size_mismatches",
    "symbol",
]

#: Size names of every problem of the reduction graph (the symbols its reductions' maps are written in).
PROBLEM_SIZES: dict[str, tuple[str, ...]] = {
    "k-SAT": ("N", "m"),
    "OV": ("n_a", "n_b", "d"),
    "Gap-ANN": ("n_a", "n_b", "d", "t", "eps"),
    "Max-IP": ("n_a", "n_b", "d", "W_a", "W_b", "T"),
    "AAttC": ("n_q", "n_k", "d", "d_v", "B", "log_eps_a", "beta", "log_t_tilde"),
    "Attention": ("n_q", "n_k", "d", "d_v", "B", "log_eps_a", "lambda"),
}

_SYMBOLS: dict[str, sp.Symbol] = {}
#: Names whose values may be zero or negative (logarithms); every other size is a positive symbol.
_REAL = ("log_eps_a", "log_t_tilde", "delta")


def cached_sizes(build):
    """Decorator for a ``sizes`` builder ``build(*options) -> dict``: sympy expressions are built once per options."""
    return functools.lru_cache(maxsize=64)(build)


def exact_number(x: float) -> sp.Rational:
    """A float option as the exact rational its decimal repr names (``1.25 -> 5/4``), for size expressions."""
    return sp.Rational(repr(float(x)))


def symbol(name: str) -> sp.Symbol:
    """The sympy symbol of a size name (positive, except for logarithms), the same object on every call."""
    if name not in _SYMBOLS:
        _SYMBOLS[name] = sp.Symbol(name, real=True) if name in _REAL else sp.Symbol(name, positive=True)
    return _SYMBOLS[name]


def measure(instance: Any) -> dict[str, float]:
    """The sizes of a concrete instance under the names of :data:`PROBLEM_SIZES`.

    For an attention instance the derived parameters come from its ``meta`` (``lemma47`` or ``lambda``).

    Examples
    --------
    >>> measure(CNFFormula([[1, -2], [2]], num_vars=3))
    {'N': 3, 'm': 2}
    """
    if isinstance(instance, CNFFormula):
        return {"N": instance.num_vars, "m": instance.num_clauses}
    if isinstance(instance, GapANNInstance):
        return {"n_a": instance.n_a, "n_b": instance.n_b, "d": instance.dim, "t": instance.t, "eps": instance.eps}
    if isinstance(instance, MaxIPInstance):
        def top(x: np.ndarray) -> float:
            return float(np.abs(x).max(initial=0))

        return {"n_a": instance.n_a, "n_b": instance.n_b, "d": instance.dim, "W_a": top(instance.A),
                "W_b": top(instance.B), "T": top(0.5 - instance.tau.astype(np.float64))}
    if isinstance(instance, OVInstance):
        return {"n_a": instance.n_a, "n_b": instance.n_b, "d": instance.dim}
    if isinstance(instance, AAttCInstance):
        out = {"n_q": instance.n_q, "n_k": instance.n_k, "d": instance.dim, "d_v": instance.V.shape[1],
               "B": float(instance.B), "log_eps_a": float(instance.log_eps_a)}
        lemma = instance.meta.get("lemma47")
        if lemma is not None:
            out["beta"] = float(lemma["beta"])
            out["log_t_tilde"] = float(lemma["log_t_tilde"])
        if "lambda" in instance.meta:
            out["lambda"] = float(instance.meta["lambda"])
        return out
    raise ParameterError(f"no size names for {type(instance).__name__}")


def evaluate(expressions: dict[str, sp.Expr], values: dict[str, float]) -> dict[str, float]:
    """Evaluate size expressions at the given input sizes; integers stay integers.

    Raises
    ------
    ParameterError
        If an expression has a symbol without a value.
    """
    subs = {symbol(k): sp.nsimplify(v) if isinstance(v, (int, np.integer)) else sp.Float(v, 30)
            for k, v in values.items()}
    out = {}
    for name, expr in expressions.items():
        value = sp.sympify(expr).subs(subs)
        free = sorted(str(s) for s in value.free_symbols)
        if free:
            raise ParameterError(f"size {name} = {expr} needs values for {', '.join(free)}")
        value = sp.simplify(value) if value.has(sp.ceiling, sp.floor, sp.Max, sp.Min) else value
        out[name] = int(value) if value.is_Integer else float(sp.N(value, 30))
    return out


@functools.lru_cache(maxsize=256)
def _compiled(declared: tuple, inputs: tuple[str, ...]) -> list:
    """Declared expressions compiled to plain-Python functions of the measured input sizes (sorted by name)."""
    syms = [symbol(k) for k in inputs]
    out = []
    for name, expr in declared:
        expr = sp.sympify(expr)
        missing = sorted(str(s) for s in expr.free_symbols - set(syms))
        if missing:
            raise ParameterError(f"declared size {name} = {expr} uses {', '.join(missing)}, which the source lacks")
        out.append((name, sp.lambdify(syms, expr, modules="math", dummify=True)))
    return out


def size_mismatches(reduction: Any, source: Any, target: Any, *, rel_tol: float = 1e-9) -> list[str]:
    """Declared sizes of ``reduction`` that disagree with the sizes measured on ``source`` and its ``target``.

    Returns one line per disagreeing (or unmeasurable) size; an empty list when the reduction declares nothing.
    """
    declared = getattr(reduction, "sizes", None) or {}
    if not declared:
        return []
    measured_in, measured_out = measure(source), measure(target)
    fns = _compiled(tuple(sorted(declared.items(), key=lambda kv: kv[0])), tuple(sorted(measured_in)))
    args = [measured_in[k] for k in sorted(measured_in)]
    out = []
    expected = {}
    for name, fn in fns:
        try:
            expected[name] = float(fn(*args))
        except (ValueError, OverflowError, ZeroDivisionError, TypeError) as exc:
            out.append(f"declared size {name} = {declared[name]} cannot be evaluated: {exc}")
    for name, value in expected.items():
        if name not in measured_out:
            out.append(f"declared size {name} is not measured on a {type(target).__name__}")
            continue
        got = measured_out[name]
        if not math.isclose(value, got, rel_tol=rel_tol, abs_tol=rel_tol):
            out.append(f"declared size {name} = {declared[name]} = {value:.10g}, measured {got:.10g}")
    return out


@dataclass
class Stage:
    """One problem along a path: its sizes as expressions in the first problem's sizes."""

    problem: str
    symbolic: dict[str, sp.Expr]

    def at(self, values: dict[str, float]) -> dict[str, float]:
        """The sizes evaluated at the first problem's sizes ``values``."""
        return evaluate(self.symbolic, values)

    def as_strings(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.symbolic.items()}


def compose(steps: list[Any]) -> list[Stage]:
    """The size map of a chain of reductions, one :class:`Stage` per problem, in the first problem's sizes.

    Each step's declared expressions are written in its source's sizes; substituting the previous stage's
    expressions (simultaneously) writes them in the first problem's sizes. A size a step does not declare, or an
    input it needs that the previous stage does not give, stays a free symbol.

    Examples
    --------
    >>> from reductions import path
    >>> stages = compose(path("k-SAT", "Gap-ANN").steps)
    >>> [s.problem for s in stages]
    ['k-SAT', 'OV', 'Gap-ANN']
    >>> stages[-1].symbolic["d"], stages[-1].at({"N": 10, "m": 42})["n_a"]
    (6*Max(1, m), 32)
    """
    if not steps:
        raise ParameterError("compose needs at least one reduction")
    first = steps[0].source
    current = {name: symbol(name) for name in PROBLEM_SIZES.get(first, ())}
    stages = [Stage(first, dict(current))]
    for r in steps:
        subs = {symbol(k): v for k, v in current.items()}
        current = {k: sp.sympify(v).subs(subs, simultaneous=True) for k, v in r.sizes.items()}
        stages.append(Stage(r.target, current))
    return stages


def regime(values: dict[str, float]) -> dict[str, float]:
    """Where an attention instance sits: ``d / ln n`` and ``B / sqrt(ln n)`` with ``n = max(n_q, n_k)``.

    Alman & Song's threshold is at ``B = Theta(sqrt(log n))`` with ``d = O(log n)``.

    Examples
    --------
    >>> r = regime({"n_q": 2048, "n_k": 2048, "d": 1020, "B": 86.1})
    >>> round(r["d_over_log_n"], 1), round(r["B_over_sqrt_log_n"], 1)
    (133.8, 31.2)
    """
    n = max(values["n_q"], values["n_k"])
    log_n = math.log(max(n, 2))
    return {"n": n, "log_n": log_n, "d_over_log_n": values["d"] / log_n,
            "B_over_sqrt_log_n": values["B"] / math.sqrt(log_n)}


def report(steps: list[Any], at: dict[str, float] | None = None) -> dict:
    """The composed size map of a chain as JSON-ready data (what ``finegrained graph --sizes --json`` prints).

    Returns
    -------
    dict
        ``{"stages": [{"problem", "symbolic": {name: str}, "value": {name: number}}], "regime": {...}}``;
        ``value`` and ``regime`` (:func:`regime`, for an attention target) only when ``at`` gives the first
        problem's sizes.

    Examples
    --------
    >>> from reductions import path
    >>> out = report(path("k-SAT", "OV").steps, at={"N": 10, "m": 42})
    >>> out["stages"][1]["symbolic"], out["stages"][1]["value"]
    ({'n_a': '2**ceiling(N/2)', 'n_b': '2**floor(N/2)', 'd': 'm'}, {'n_a': 32, 'n_b': 32, 'd': 42})
    """
    stages = compose(steps)
    out: dict[str, Any] = {"stages": []}
    for stage in stages:
        entry: dict[str, Any] = {"problem": stage.problem, "symbolic": stage.as_strings()}
        if at is not None:
            entry["value"] = stage.at(at)
        out["stages"].append(entry)
    last = out["stages"][-1].get("value", {})
    if {"n_q", "n_k", "d", "B"} <= set(last):
        out["regime"] = regime(last)
    return out


#: The hypotheses a subquadratic algorithm for the last problem would refute, by source problem.
HYPOTHESES = {
    "k-SAT": "SETH: for every delta > 0 there is a k such that k-SAT on N variables is not solvable in time "
             "2^((1-delta) N) poly(N)",
    "OV": "the OV hypothesis: for every delta > 0 there is a c such that OV with n vectors in dimension c log n is not "
          "solvable in time n^(2-delta)",
}


@dataclass
class Derivation:
    """What a running time of the last problem implies for the first (:func:`implies`).

    Attributes
    ----------
    target_time : sympy.Expr
        The assumed time of the last problem, in its sizes (``n = max(n_q, n_k)`` for attention), poly factors
        dropped.
    source_time : sympy.Expr
        The exponent ``e(delta)``: the first problem is then solved in ``2^(e(delta) N) poly(N, m)`` (k-SAT) or
        ``n^e(delta) poly(d)`` (OV).
    steps : list of str
        The derivation, one line per step.
    hypothesis : str
        What ``source_time < 1`` (k-SAT) or ``< 2`` (OV) for every ``delta > 0`` contradicts.
    """

    target_time: sp.Expr
    source_time: sp.Expr
    steps: list[str] = field(default_factory=list)
    hypothesis: str = ""

    def as_dict(self) -> dict:
        return {"target_time": str(self.target_time), "source_time": str(self.source_time), "steps": self.steps,
                "hypothesis": self.hypothesis}


def _parse_time(text: str) -> sp.Expr:
    import re
    from tokenize import TokenError

    from sympy.parsing.sympy_parser import convert_xor, implicit_multiplication, parse_expr, standard_transformations

    poly = sp.Function("poly")
    names = {"n": symbol("n"), "d": symbol("d"), "delta": symbol("delta"), "poly": poly, "log": sp.log}
    text = str(text).replace("·", "*").strip()
    # parse_expr evaluates Python: only these characters and names are let through, so nothing but arithmetic
    # on n, d, delta, log and poly can be written (no attribute access, no underscores, no calls of other names)
    if not text or len(text) > 200 or not re.fullmatch(r"[0-9a-z+\-*/^(). ]+", text):
        raise ParameterError(f"cannot read the running time {text!r}: use n, d, delta, log(...), poly(...), "
                             "numbers and + - * / ^ ( ), e.g. n^(2-delta)*poly(d)")
    bad = sorted(set(re.findall(r"[a-z]+", text)) - set(names))
    if bad:
        raise ParameterError(f"the running time may use n, d, delta, log and poly(...), not {', '.join(bad)}")
    if re.search(r"\d{7,}|\de|\*\*\s*\*", text):
        raise ParameterError(f"the running time {text!r} has a number too large to be a running-time exponent")
    try:
        expr = parse_expr(text, local_dict=names, global_dict={"Integer": sp.Integer, "Float": sp.Float,
                                                               "Rational": sp.Rational, "Symbol": sp.Symbol},
                          transformations=(*standard_transformations, convert_xor, implicit_multiplication))
    except (SyntaxError, TypeError, ValueError, TokenError, sp.SympifyError, NameError,
            AttributeError) as exc:  # TokenError: "n^(2-"
        raise ParameterError(f"cannot read the running time {text!r}: {exc}") from None
    if not isinstance(expr, sp.Expr) or expr.has(sp.nan, sp.zoo, sp.oo, -sp.oo, sp.I):
        raise ParameterError(f"cannot read the running time {text!r}: it is not a finite real expression")
    # poly(...) factors are the polynomial slack of the statement; they become poly(N, m) of the source
    expr = expr.replace(lambda e: isinstance(e, sp.core.function.AppliedUndef) and e.func == poly, lambda e: 1)
    unknown = sorted(str(s) for s in expr.free_symbols - {symbol("n"), symbol("d"), symbol("delta")})
    if unknown:
        raise ParameterError(f"the running time may use n, d, delta and poly(...), not {', '.join(unknown)}")
    _check_time_shape(expr, text)
    return expr


def _check_time_shape(expr: sp.Expr, text: str) -> None:
    """A running time is a product of ``n^e`` (``e`` a number or an expression in ``delta``), powers of ``d``
    and of ``log n`` / ``log d`` with constant exponents, and constants. Anything else (``2^d``, ``d^n``, ``e^n``)
    is not polynomial in ``d`` or not a power of ``n``, and the bookkeeping would mislead: refused."""
    n, d, delta = symbol("n"), symbol("d"), symbol("delta")

    def constant(e: sp.Expr) -> bool:
        return e.free_symbols <= {delta}

    for factor in sp.Mul.make_args(expr):
        if constant(factor):
            continue
        base, exp = factor.as_base_exp()
        ok = constant(exp) and (base in (n, d) or (isinstance(base, sp.log) and base.args[0] in (n, d)))
        if ok and exp.free_symbols == set():
            ok = abs(float(exp)) <= 1000
        if not ok:
            raise ParameterError(f"the running time {text!r} must be n^(a) times powers of d and of log n (poly(d) "
                                 f"allowed): the factor {factor} is not of that form")


def implies(steps: list[Any], target_time: str) -> Derivation:
    """See :func:`_implies`; sympy failing to take a limit is one :class:`ParameterError` line."""
    try:
        return _implies(steps, target_time)
    except (NotImplementedError, ValueError, TypeError, ZeroDivisionError, RecursionError) as exc:
        if isinstance(exc, ParameterError):
            raise
        raise ParameterError(f"cannot derive the source time from {target_time!r}: sympy could not take the "
                             f"limit ({type(exc).__name__}); give the bound in the form n^(a)*poly(d)") from None


def _implies(steps: list[Any], target_time: str) -> Derivation:
    """The running time a time bound for the last problem of a chain gives its first problem.

    Parameters
    ----------
    steps : list of Reduction
        A chain from k-SAT or OV to an attention problem (``Chain.steps``).
    target_time : str
        A time in ``n`` (``max(n_q, n_k)``), ``d`` and ``delta``, e.g. ``"n^(2-delta)"`` or
        ``"n^(2-delta)*poly(d)"``; ``poly(...)`` factors are dropped (they become ``poly(N, m)``).

    Returns
    -------
    Derivation
        For k-SAT, ``source_time`` is the exponent ``e`` of ``2^(e N)``: the limit of ``log2 T(n(N)) / N`` with
        ``d`` polynomial in ``m`` (its factors are polynomial), ``ceiling``/``floor`` replaced by their arguments
        (a factor ``2^O(1)``). The reductions themselves take ``2^(N/2) poly(N, m)`` time, which is less.

    Examples
    --------
    >>> from reductions import path
    >>> implies(path("k-SAT", "AAttC").steps, "n^(2-delta)").source_time
    1 - delta/2
    """
    stages = compose(steps)
    first, last = stages[0], stages[-1]
    if first.problem not in ("k-SAT", "OV"):
        raise ParameterError(f"conditional bounds are derived from k-SAT or OV, not {first.problem}")
    if not {"n_q", "n_k"} <= set(last.symbolic):
        raise ParameterError(f"the chain ends at {last.problem}, which has no n_q and n_k")
    time = _parse_time(target_time)
    n, delta = symbol("n"), symbol("delta")
    n_expr = sp.Max(last.symbolic["n_q"], last.symbolic["n_k"])
    lines = [f"target: {last.problem} in time T(n) = {time}, n = max(n_q, n_k) = {sp.simplify(n_expr)}"]
    d_expr = last.symbolic.get("d")
    if d_expr is not None:
        where = "poly(N, m)" if first.problem == "k-SAT" else "poly(d)"
        lines.append(f"the target's dimension is {d_expr}: polynomial in the source sizes, so its factors are {where}")
    # d only enters through factors polynomial in the source sizes; 2, not 1, keeps a log(d) factor finite
    time_n = time.subs(symbol("d"), 2)
    smooth = n_expr.replace(sp.ceiling, lambda x: x).replace(sp.floor, lambda x: x)
    if first.problem == "k-SAT":
        N = symbol("N")
        lines.append(f"drop ceiling/floor (a factor 2^O(1)): n = {sp.simplify(smooth)}")
        log_time = sp.expand_log(sp.log(time_n.subs(n, smooth), 2), force=True)
        exponent = sp.simplify(sp.limit(sp.simplify(log_time / N), N, sp.oo))
        lines.append(f"log2 T(n) / N -> {exponent} as N -> oo")
        lines.append(f"so k-SAT on N variables is solved in 2^(({exponent}) N) poly(N, m), plus 2^(N/2) poly(N, m) "
                     "for the reductions")
        # below 1 for *every* delta > 0 (n^(2+delta) or n^2 refute nothing), not only equal to 1 at delta = 0
        below = (exponent - 1).subs(delta, sp.Symbol("delta_positive", positive=True)).is_negative
        if sp.simplify(exponent.subs(delta, 0)) == 1 and below is True:
            lines.append("for every delta > 0 the exponent is < 1 for every k, contradicting SETH")
        else:
            lines.append("the exponent is not below 1 for every delta > 0, so this time contradicts nothing")
    else:
        nv = symbol("n_a")
        ratio = sp.simplify(sp.log(smooth.subs(symbol("n_b"), nv), nv))
        exponent = sp.simplify(sp.limit(sp.log(time_n.subs(n, smooth.subs(symbol("n_b"), nv)), nv), nv, sp.oo))
        lines.append(f"with n_a = n_b: log n / log n_a -> {sp.limit(ratio, nv, sp.oo)}")
        lines.append(f"so OV with n vectors is solved in n^({exponent}) poly(d)")
    if exponent.has(sp.zoo, sp.nan, sp.oo, -sp.oo) or isinstance(exponent, sp.Limit):
        raise ParameterError(f"the exponent of T(n) = {time} along this path is {exponent}, not a finite expression "
                             "in delta: give T(n) as n^a times factors polylogarithmic in n and polynomial in d")
    return Derivation(time, exponent, lines, HYPOTHESES[first.problem])
