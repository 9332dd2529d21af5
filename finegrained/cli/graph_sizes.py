"""``finegrained graph --path SOURCE TARGET --sizes [--at NAME=VALUE ...]`` and ``--implies TIME``.

``--sizes`` prints the size map the path's reductions declare, composed and simplified, one block per problem
(:func:`reductions.sizes.compose`, :func:`finegrained.bookkeeping.tidy`); ``--at`` also evaluates it at given
sizes of the first problem, and for an attention target the output states the regime (``d`` against ``ln n``,
``B`` against ``sqrt(ln n)``). ``--implies`` derives the running time that a time bound for the last problem gives
the first (:func:`reductions.sizes.implies`) and names the hypothesis it would refute. JSON
(``finegrained.graph.sizes/1``): ``path``, ``options``, ``stages`` (``problem``, ``symbolic``, and with ``--at``
``value``), ``regime``; with ``--implies`` also ``target_time``, ``source_time``, ``steps`` and ``hypothesis``.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
from typing import Any

#: Size names that count things (integers); every other size is a real number.
_COUNTS = ("N", "m", "n_a", "n_b", "d", "n_q", "n_k", "d_v")
#: ``N`` above this makes ``2^(N/2)`` an integer of thousands of digits: refused before sympy builds it.
MAX_VARS = 4096
_LIMIT = 10**15


def size_value(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` for ``--at``: a size name of a problem and a finite number (counts are integers).

    Examples
    --------
    >>> size_value("N=10"), size_value("B=2.5")
    (('N', 10), ('B', 2.5))
    >>> size_value("m=4.5")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: m counts something: expected a non-negative integer, got '4.5'
    """
    from reductions.sizes import PROBLEM_SIZES

    match = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as N=10, got {text!r}")
    name, raw = match.groups()
    known = sorted({n for names in PROBLEM_SIZES.values() for n in names})
    if name not in known:
        raise argparse.ArgumentTypeError(f"unknown size {name!r}; sizes are named {', '.join(known)}")
    try:
        value: float = int(raw) if re.fullmatch(r"[+-]?\d+", raw) else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{name}: expected a finite number, got {raw!r}")
    if name in _COUNTS:
        if not isinstance(value, int) or value < 0:
            raise argparse.ArgumentTypeError(f"{name} counts something: expected a non-negative integer, got {raw!r}")
        if value > (MAX_VARS if name == "N" else _LIMIT):
            raise argparse.ArgumentTypeError(f"{name} = {value} is too large to evaluate exactly (at most "
                                             f"{MAX_VARS if name == 'N' else _LIMIT})")
    elif not name.startswith("log_") and value <= 0:
        raise argparse.ArgumentTypeError(f"{name} is a positive size, got {raw!r}")
    return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``graph`` that account for sizes (they need ``--path``)."""
    from .argtypes import finite_float

    parser.add_argument("--sizes", action="store_true",
                        help="print the composed size map of --path, simplified, one block per problem")
    parser.add_argument("--at", nargs="+", type=size_value, metavar="NAME=VALUE",
                        help="evaluate the size map at these sizes of the first problem, e.g. --at N=10 m=42 "
                             "(implies --sizes)")
    parser.add_argument("--implies", metavar="TIME",
                        help="derive what a running time of the last problem, e.g. 'n^(2-delta)', gives the first, "
                             "and name the hypothesis it refutes")
    parser.add_argument("--params", choices=("tight", "paper"), default=None,
                        help="Lemma 4.7 constants, for paths through Gap-ANN -> AAttC (default: tight)")
    parser.add_argument("--safety", type=finite_float, default=None,
                        help="factor on beta_min in tight mode (default: 1.25)")


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command asks for sizes or a bound (rather than the graph)."""
    return bool(args.sizes or args.at or args.implies is not None)


@functools.lru_cache(maxsize=16)
def _composed(problems: tuple[str, str], options: tuple) -> tuple[Any, list, dict | None]:
    """The chain, its composed stages with their simplified strings, and the symbolic regime (built once)."""
    from reductions import path

    from ..bookkeeping import regime_symbolic, simplified

    chain = path(*problems, **dict(options))
    stages = chain.sizes
    strings = [{k: str(v) for k, v in simplified(stage).items()} for stage in stages]
    last = stages[-1]
    reg = regime_symbolic(last) if {"n_q", "n_k", "d", "B"} <= set(last.symbolic) else None
    return chain, list(zip(stages, strings)), reg


def payload(args: argparse.Namespace) -> dict[str, Any]:
    """What ``--sizes``, ``--at`` and ``--implies`` report, as JSON-ready data (see the module docstring)."""
    from instances.errors import ParameterError
    from reductions.sizes import regime

    if not args.path:
        raise ParameterError("--sizes, --at and --implies need --path SOURCE TARGET")
    options = tuple((k, v) for k, v in (("mode", args.params), ("safety", args.safety)) if v is not None)
    chain, stages, reg = _composed(tuple(args.path), options)
    at = dict(args.at) if args.at else None
    if at is not None and len(at) != len(args.at):
        raise ParameterError("--at names a size twice")
    out: dict[str, Any] = {"schema": "finegrained.graph.sizes/1", "path": chain.problems,
                           "options": {"params" if k == "mode" else k: v for k, v in options}}
    if args.sizes or at is not None:
        out["stages"] = []
        for stage, strings in stages:
            entry: dict[str, Any] = {"problem": stage.problem, "symbolic": strings}
            if at is not None:
                entry["value"] = stage.at(at)  # the exact composed expressions, not their printed forms
            out["stages"].append(entry)
        if reg is not None:
            out["regime"] = {**(regime(out["stages"][-1]["value"]) if at is not None else {}), "symbolic": reg}
        if at is not None:
            out["at"] = at
    if args.implies is not None:
        out.update(chain.implies(args.implies).as_dict())
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, int):
        return str(v)
    return f"{v:.6g}"


def to_text(data: dict[str, Any]) -> str:
    """The human-readable form of :func:`payload`."""
    problems = data["path"]
    opts = ", ".join(f"{k} {v}" for k, v in data["options"].items())
    lines: list[str] = []
    if "stages" in data:
        first = data["stages"][0]
        at = data.get("at")
        where = f"; values at {', '.join(f'{k} = {_fmt(v)}' for k, v in at.items())}" if at else ""
        lines.append(f"Sizes along {' -> '.join(problems)}{f' ({opts})' if opts else ''}, in the sizes of "
                     f"{first['problem']} ({', '.join(first['symbolic'])}){where}:")
        width = max(len(k) for s in data["stages"] for k in s["symbolic"])
        for stage in data["stages"]:
            lines.append(f"  {stage['problem']}")
            values = stage.get("value", {})
            for name, expr in stage["symbolic"].items():
                value = f"  = {_fmt(values[name])}" if name in values else ""
                lines.append(f"    {name:<{width}} = {expr}{value}")
        reg = data.get("regime")
        if reg is None:
            lines.append(f"  regime: {problems[-1]} is not an attention problem (no d, B against log n)")
        else:
            sym = reg["symbolic"]
            lines.append(f"  regime of {problems[-1]}, n = max(n_q, n_k) ~ {sym['n']} (ceiling/floor dropped):")
            for key, label in (("d_over_log_n", "d / ln n"), ("B_over_sqrt_log_n", "B / sqrt(ln n)")):
                value = f"  = {reg[key]:.4g}" if key in reg else ""
                lines.append(f"    {label:<14} = {sym[key]}{value}")
            lines.append("    Alman & Song's threshold: B = Theta(sqrt(log n)) with d = O(log n)")
    if "source_time" in data:
        if lines:
            lines.append("")
        lines.append(f"What T(n) = {data['target_time']} for {problems[-1]} gives {problems[0]} along "
                     f"{' -> '.join(problems)}:")
        lines += [f"  {i}. {step}" for i, step in enumerate(data["steps"], 1)]
        unit = f"2^(({data['source_time']}) N) poly(N, m)" if problems[0] == "k-SAT" else \
            f"n^({data['source_time']}) poly(d)"
        lines.append(f"  source time: {unit}")
        lines.append(f"  hypothesis:  {data['hypothesis']}")
    return "\n".join(lines)
