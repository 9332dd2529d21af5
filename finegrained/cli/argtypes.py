"""argparse ``type=`` functions and the option vocabulary shared by every subcommand and benchmark.

Each type raises :class:`argparse.ArgumentTypeError`, which the CLI turns into
``finegrained ...: error: argument --x: <message>`` and exit status 2.

The ``add_*`` helpers define the options every benchmark spells the same way: ``--log2-n-min`` /
``--log2-n-max`` (sizes ``n = 2^K``), ``--dims``, ``--B``, ``--eps`` (comma-separated lists), ``--repeat``,
``--seed`` and ``--max-memory`` (a size such as ``8G``).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any


def nonneg_int(text: str) -> int:
    """An integer >= 0 (seeds, counts that may be zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def pos_int(text: str) -> int:
    """An integer >= 1."""
    value = nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in ``[lo, hi]``."""

    def parse(text: str) -> int:
        value = nonneg_int(text) if lo >= 0 else int(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer from {lo} to {hi}, got {value}")
        return value

    parse.__name__ = f"integer in [{lo}, {hi}]"
    return parse


def finite_float(text: str) -> float:
    """A finite float (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def pos_float(text: str) -> float:
    """A finite float > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A finite float >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def unit_float(text: str) -> float:
    """A float in the open interval (0, 1), e.g. an accuracy eps."""
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value


def list_of(item: Callable[[str], Any]) -> Callable[[str], list]:
    """A comma-separated list whose entries are parsed by ``item`` (one of the functions above)."""

    def parse(text: str) -> list:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return [item(p) for p in parts]

    parse.__name__ = f"list of {item.__name__}"
    return parse


def choice_of(*choices: str) -> Callable[[str], str]:
    """One of ``choices`` (for list items, where argparse's ``choices=`` does not apply)."""

    def parse(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    parse.__name__ = "choice"
    return parse


def memory_size(text: str) -> int:
    """A memory size such as ``512M``, ``8G`` or a number of bytes (see :func:`finegrained.resources.parse_size`).

    A bare number below 1024 is refused: ``--max-memory 24`` would be 24 bytes, surely meant as ``24G``.
    """
    from instances.errors import FinegrainedError

    from ..resources import parse_size

    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"expected a positive memory size such as 512M or 8G, got {text!r}")
    try:
        value = parse_size(text)
    except FinegrainedError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if re.fullmatch(r"\s*[0-9.]+\s*", text) and value < 1024:
        raise argparse.ArgumentTypeError(f"{text!r} is {value} bytes; give a unit, e.g. {text.strip()}G or "
                                         f"{text.strip()}M")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive memory size such as 512M or 8G, got {text!r}")
    return value


# ------------------------------------------------------------------------------------------ shared vocabulary
MEMORY_HELP = "refuse sizes needing more memory than this, e.g. 8G (default: half of RAM)"


def add_sizes(parser: argparse.ArgumentParser, lo: int, hi: int, what: str = "n") -> None:
    """``--log2-n-min K`` and ``--log2-n-max K``: the grid ``n = 2^lo .. 2^hi``."""
    parser.add_argument("--log2-n-min", type=nonneg_int, default=lo, metavar="K",
                        help=f"smallest size, {what} = 2^K")
    parser.add_argument("--log2-n-max", type=nonneg_int, default=hi, metavar="K",
                        help=f"largest size, {what} = 2^K")


def add_dims(parser: argparse.ArgumentParser, default: str, help: str = "head dimensions d") -> None:
    """``--dims 2,4,8``."""
    parser.add_argument("--dims", type=list_of(pos_int), default=default, metavar="D[,D...]",
                        help=f"comma-separated {help}")


def add_B(parser: argparse.ArgumentParser, default: str, help: str = "entry bounds B > 0") -> None:
    """``--B 0.5,1``."""
    parser.add_argument("--B", type=list_of(pos_float), default=default, metavar="B[,B...]",
                        help=f"comma-separated {help}")


def add_eps(parser: argparse.ArgumentParser, default: str, help: str, item: Callable[[str], Any] = unit_float) -> None:
    """``--eps 1e-3,1e-6``."""
    parser.add_argument("--eps", type=list_of(item), default=default, metavar="EPS[,EPS...]",
                        help=f"comma-separated {help}")


def add_repeat(parser: argparse.ArgumentParser, default: int) -> None:
    """``--repeat R``: timings are the best of R runs."""
    parser.add_argument("--repeat", type=pos_int, default=default, metavar="R",
                        help="each timing is the best of R runs")


def add_seed(parser: argparse.ArgumentParser) -> None:
    """``--seed S``."""
    parser.add_argument("--seed", type=nonneg_int, default=0, metavar="S", help="random seed")


def add_max_memory(parser: argparse.ArgumentParser, help: str = MEMORY_HELP) -> None:
    """``--max-memory SIZE``."""
    parser.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE", help=help)


def add_alias(parser: argparse.ArgumentParser, old: str, new: str, type: Callable[[str], Any] | None = None,
              action: str | None = None) -> None:
    """Accept the older spelling ``old`` of option ``new`` without listing it in ``--help``."""
    dest = new.lstrip("-").replace("-", "_")
    kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
    if action:
        kwargs["action"] = action
    else:
        kwargs["type"] = type
    parser.add_argument(old, **kwargs)


def single(values: list, option: str) -> Any:
    """The one value of a list option that this command measures at a single point."""
    from instances.errors import ParameterError

    if len(values) != 1:
        raise ParameterError(f"{option} takes one value here, got {len(values)}: "
                             f"{','.join(str(v) for v in values)}")
    return values[0]
