"""argparse ``type=`` functions shared by every subcommand, so bad option values are one clear line, not a trace.

Each raises :class:`argparse.ArgumentTypeError`, which the CLI turns into
``finegrained ...: error: argument --x: <message>`` and exit status 2.
"""

from __future__ import annotations

import argparse
import math


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


def unit_float(text: str) -> float:
    """A float in the open interval (0, 1), e.g. an accuracy eps."""
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value


def list_of(item):
    """A comma-separated list whose entries are parsed by ``item`` (one of the functions above)."""

    def parse(text: str) -> list:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        return [item(p) for p in parts]

    parse.__name__ = f"list of {item.__name__}"
    return parse


def memory_size(text: str) -> int:
    """A memory size such as ``512M``, ``8G`` or a number of bytes (see :func:`finegrained.resources.parse_size`)."""
    from instances.errors import FinegrainedError

    from .resources import parse_size

    try:
        return parse_size(text)
    except FinegrainedError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
