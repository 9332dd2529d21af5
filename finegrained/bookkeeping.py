r"""The fine-grained bookkeeping of the registered routes, derived from the sizes every reduction declares.

For each route (the Alman–Song chain k-SAT -> OV -> Gap-ANN -> AAttC in both parameter modes, and the Gupta et
al. routes k-SAT -> OV -> Attention, OV -> Attention and OV -> Max-IP -> Attention) this module composes the
declared size maps (:func:`reductions.sizes.compose`), states the regime of the attention instance (``d`` against
``ln n`` and ``B`` against ``sqrt(ln n)``, :func:`regime_symbolic`), and derives the conditional lower bound
(:func:`reductions.sizes.implies`). :func:`markdown` renders all of it as the page ``docs/bookkeeping.md``, which
``tests/docs/test_bookkeeping.py`` regenerates and compares with the committed page, so the page cannot drift
from the code.

Regenerate the page with ``finegrained.bookkeeping.write_page("docs/bookkeeping.md")``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from instances.errors import ParameterError
from reductions import path
from reductions.base import Chain
from reductions.registry import FACTORIES
from reductions.sizes import Stage, evaluate

__all__ = ["ROUTES", "Route", "markdown", "regime_symbolic", "simplified", "tidy", "write_page"]

#: The running time of the target that the page derives the bounds from (any subquadratic attention algorithm).
TARGET_TIME = "n^(2-delta)"


@dataclass(frozen=True)
class Route:
    """A documented route: its title, the paper it follows, how to build its chain, and an example size point."""

    key: str
    title: str
    source: str
    build: Callable[[], Chain]
    example: dict[str, int] = field(default_factory=dict)
    command: str = ""
    note: str = ""


def _via_maxip() -> Chain:
    # not a shortest path, so reductions.path would take OV -> Attention directly: compose the two steps by hand
    return Chain([FACTORIES[("OV", "Max-IP")](), FACTORIES[("Max-IP", "Attention")]()])


#: The routes of the bookkeeping page, in order.
ROUTES: tuple[Route, ...] = (
    Route("alman-song-tight", "Alman & Song: k-SAT -> OV -> Gap-ANN -> AAttC (tight constants)", "Alman & Song 2023",
          lambda: path("k-SAT", "AAttC"), {"N": 20, "m": 85},
          "finegrained graph --path k-SAT AAttC --sizes --at N=20 m=85"),
    Route("alman-song-paper", "Alman & Song: k-SAT -> OV -> Gap-ANN -> AAttC (paper constants, Eq. (9))",
          "Alman & Song 2023", lambda: path("k-SAT", "AAttC", mode="paper"), {"N": 20, "m": 85},
          "finegrained graph --path k-SAT AAttC --params paper --sizes --at N=20 m=85"),
    Route("gupta-sat", "Gupta et al.: k-SAT -> OV -> Attention (Theorem 1.5 gadget)", "Gupta et al. 2025",
          lambda: path("k-SAT", "Attention"), {"N": 20, "m": 85},
          "finegrained graph --path k-SAT Attention --sizes --at N=20 m=85"),
    Route("gupta-ov", "Gupta et al.: OV -> Attention (Theorem 1.5 gadget)", "Gupta et al. 2025",
          lambda: path("OV", "Attention"), {"n_a": 1024, "n_b": 1024, "d": 85},
          "finegrained graph --path OV Attention --sizes --at n_a=1024 n_b=1024 d=85"),
    Route("gupta-maxip", "Gupta et al.: OV -> Max-IP -> Attention (Theorem 1.4 gadget)", "Gupta et al. 2025",
          _via_maxip, {"n_a": 1024, "n_b": 1024, "d": 85, "W_a": 1, "W_b": 1},
          note="OV -> Max-IP negates B and declares T = 1/2; the entry sizes W_a = max|A| and W_b = max|B| are at "
               "most 1 for 0/1 vectors but depend on the entries, so they stay free symbols of the map and the "
               "example sets them to 1. The graph's shortest path from OV to Attention is the direct gadget, so "
               "this route is composed by hand (`Chain([OVToMaxIP(), MaxIPToAttention()])`)."),
)


def _log_of_power(expr: sp.Expr) -> bool:
    return any(isinstance(arg, sp.Pow) and arg.exp.free_symbols for lg in expr.atoms(sp.log) for arg in lg.args)


@functools.lru_cache(maxsize=512)
def tidy(expr: sp.Expr) -> sp.Expr:
    """The shortest of a few equivalent forms of a size expression (as given, factored, simplified, logs expanded).

    A form that folds a product into ``log(x**y)`` is not offered: ``10 m log(6 n)`` reads better than
    ``log((6 n)**(10 m))``. Every candidate is an identity transformation, so the value is unchanged.

    Examples
    --------
    >>> from reductions.sizes import symbol
    >>> m = symbol("m")
    >>> tidy(30 * (2 * m / 3 + sp.Rational(1, 3)) * m / (2 * m + 1))
    10*m
    """
    expr = sp.sympify(expr)
    if not expr.free_symbols:
        return expr
    simple = sp.simplify(expr)
    expanded = sp.expand_log(simple, force=True)
    candidates = [expr, sp.factor(sp.cancel(expr)), simple, expanded, sp.factor(expanded)]
    candidates = [c for c in candidates if not _log_of_power(c)] or [expr]
    return min(candidates, key=lambda c: (len(str(c)), str(c)))


def simplified(stage: Stage) -> dict[str, sp.Expr]:
    """The sizes of a stage in their :func:`tidy` forms (what ``finegrained graph --sizes`` prints)."""
    return {name: tidy(expr) for name, expr in stage.symbolic.items()}


def _smooth(expr: sp.Expr) -> sp.Expr:
    """Drop ceiling/floor (a factor ``2^O(1)`` on ``2^(N/2)``) and keep, of every ``Max``, the argument that grows.

    The growing argument is the one largest at a large size point (every symbol at 1000, ``2^(N/2)`` overflowing
    nothing because sympy evaluates exactly): ``Max(1, m) -> m``, ``Max(2, 2^(N/2)) -> 2^(N/2)``.
    """
    expr = sp.sympify(expr).replace(sp.ceiling, lambda x: x).replace(sp.floor, lambda x: x)

    def pick(*args):
        big = {s: 1000 for a in args for s in a.free_symbols}
        return max(args, key=lambda a: sp.N(sp.log(sp.Abs(a.subs(big)) + 1), 30))

    return expr.replace(lambda e: isinstance(e, sp.Max), lambda e: pick(*e.args))


def regime_symbolic(stage: Stage) -> dict[str, str]:
    """``d / ln n`` and ``B / sqrt(ln n)`` of an attention stage, ``n = max(n_q, n_k)``, as simplified expressions.

    Ceiling and floor are dropped and every ``Max`` keeps its growing argument (:func:`_smooth`), so these are the
    leading forms; the exact values at a size point are :func:`reductions.sizes.regime`'s.

    Raises
    ------
    ParameterError
        If the stage is not an attention instance (it needs ``n_q``, ``n_k``, ``d`` and ``B``).

    Examples
    --------
    >>> from reductions import path
    >>> regime_symbolic(path("k-SAT", "AAttC").sizes[-1])["d_over_log_n"]
    '24*m/((N + 2)*log(2))'
    """
    sizes = stage.symbolic
    if not {"n_q", "n_k", "d", "B"} <= set(sizes):
        raise ParameterError(f"{stage.problem} is not an attention problem: no regime (d, B against log n)")
    # logs expanded, so that ln(2 * 2^(N/2)) reads (N/2 + 1) ln 2
    log_n = sp.expand_log(sp.log(_smooth(sp.Max(sizes["n_q"], sizes["n_k"]))), force=True)
    d, b = _smooth(sizes["d"]), sp.expand_log(_smooth(sizes["B"]), force=True)
    return {"n": str(_smooth(sp.Max(sizes["n_q"], sizes["n_k"]))),
            "d_over_log_n": str(tidy(d / log_n)),
            "B_over_sqrt_log_n": str(tidy(b / sp.sqrt(log_n)))}


def _code(x) -> str:
    return "`" + str(x).replace("`", "'") + "`"


def _number(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:.6g}"


def _route_section(route: Route) -> list[str]:
    from reductions.sizes import regime

    chain = route.build()
    stages = chain.sizes
    lines = [f"## {route.title}", "", f"Following {route.source}. Problems: {' -> '.join(chain.problems)}."]
    if route.command:
        lines += ["", "```bash", route.command, "```"]
    if route.note:
        lines += ["", route.note]
    lines += ["", "### Each step's declared size map", "",
              "Each reduction's `sizes`, in the sizes of its own source.", "",
              "| step | implements | size | declared |", "|---|---|---|---|"]
    for r in chain.steps:
        for i, (name, expr) in enumerate(r.sizes.items()):
            head = f"{r.source} -> {r.target} | {r.lemma}" if i == 0 else " | "
            lines.append(f"| {head} | {name} | {_code(expr)} |")
    at = route.example
    where = ", ".join(f"{k} = {v}" for k, v in at.items())
    lines += ["", "### Composed map", "", f"Every stage in the sizes of {chain.source}, and evaluated at {where}.",
              "", "| problem | size | composed | value |", "|---|---|---|---|"]
    for stage in stages:
        values = evaluate(stage.symbolic, at)
        for i, (name, expr) in enumerate(simplified(stage).items()):
            lines.append(f"| {stage.problem if i == 0 else ''} | {name} | {_code(expr)} | {_number(values[name])} |")
    last = stages[-1]
    reg = regime_symbolic(last)
    num = regime(evaluate(last.symbolic, at))
    lines += ["", "### Regime", "",
              f"With n = max(n_q, n_k), ceiling/floor dropped and each Max at its growing argument: "
              f"n = {_code(reg['n'])}.", "",
              "| ratio | leading form | at the example |", "|---|---|---|",
              f"| d / ln n | {_code(reg['d_over_log_n'])} | {num['d_over_log_n']:.4g} |",
              f"| B / sqrt(ln n) | {_code(reg['B_over_sqrt_log_n'])} | {num['B_over_sqrt_log_n']:.4g} |"]
    derivation = chain.implies(TARGET_TIME)
    lines += ["", f"### Implied bound for {TARGET_TIME}", ""]
    lines += [f"{i}. {_code(step) if i == 1 else step}" for i, step in enumerate(derivation.steps, 1)]
    unit = "2^(e N) poly(N, m)" if chain.source == "k-SAT" else "n^e poly(d)"
    lines += ["", f"Source time: {unit} with e = {_code(derivation.source_time)} "
              f"(`source_time` in the JSON of `--implies`).", "", f"Hypothesis: {derivation.hypothesis}."]
    return lines


def markdown() -> str:
    """The page ``docs/bookkeeping.md``, generated from the declared size maps of every route in :data:`ROUTES`.

    Each route gets four tables: each step's declared map (in its own source's sizes), the composed map with its
    value at an example point, the regime (:func:`regime_symbolic`), and the derivation of the bound
    :data:`TARGET_TIME` implies with the hypothesis it would refute.
    """
    lines = [
        "<!-- Generated by finegrained.bookkeeping.markdown() from the sizes the reductions declare; do not edit.",
        "     Regenerate: python -c \"from finegrained.bookkeeping import write_page; "
        "write_page('docs/bookkeeping.md')\"",
        "     tests/docs/test_bookkeeping.py fails when this page and the code disagree. -->",
        "",
        "# Fine-grained bookkeeping",
        "",
        "A fine-grained reduction is only as good as its sizes. Every reduction of the toolkit declares its output "
        "sizes as sympy expressions in its input sizes (`Reduction.sizes`), `check_reduction` compares them with the "
        "sizes measured on every instance it draws, `Chain.sizes` composes them along a path, and `Chain.implies` "
        "turns a running time of the last problem into the running time it gives the first. This page is generated "
        "from those declared maps; the same data comes from `finegrained graph --path SOURCE TARGET --sizes` "
        "(`--at NAME=VALUE` to evaluate, `--json` for the data) and `--implies TIME`.",
        "",
        "Size names: k-SAT `N` variables and `m` clauses; OV and Max-IP `n_a`, `n_b` vectors of dimension `d` "
        "(Max-IP also `W_a`, `W_b`, `T`); Gap-ANN adds the threshold `t` and the gap `eps`; attention has `n_q` "
        "queries, `n_k` keys, head dimension `d`, value dimension `d_v`, entry bound `B`, accuracy `log_eps_a` and "
        "the parameters a reduction derives (`beta`, `log_t_tilde` of Lemma 4.7, `lambda` of the Gupta et al. "
        "gadgets). `Max(1, m)` is the reduction's guard for a formula without clauses.",
        "",
        "Alman & Song's threshold is at `B = Theta(sqrt(log n))` with `d = O(log n)`. The regime tables show where "
        "each route's instances sit: for the Alman–Song chain `d / ln n` is `Theta(1)` at constant clause density "
        "`m = Theta(N)`, but `B / sqrt(ln n)` grows like `sqrt(m)`: the exact-gap gadget gives "
        "`B = Theta(sqrt(m log n))` (see [errata](errata.md)). The Gupta et al. gadgets have entries "
        "`B = 2 ln(8 n_b) = Theta(log n)`, so `B / sqrt(ln n)` grows like `sqrt(log n)`, and need only the "
        "constant accuracy `eps_a = 1/4`.",
        "",
    ]
    for route in ROUTES:
        lines += _route_section(route)
        lines.append("")
    return "\n".join(lines)


def write_page(target: str | Path) -> None:
    """Write :func:`markdown` to ``target`` (the committed page is ``docs/bookkeeping.md``)."""
    Path(target).write_text(markdown(), encoding="utf-8")
