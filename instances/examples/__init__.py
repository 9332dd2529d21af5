"""Shipped example formulas (DIMACS files next to this module)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ParameterError

_HERE = Path(__file__).resolve().parent

#: The formula ``finegrained chain`` runs when given no file.
DEFAULT_EXAMPLE = "random3sat-n20"


def list_examples() -> list[str]:
    """Names of the shipped examples."""
    return sorted(p.stem for p in _HERE.glob("*.cnf"))


def example_path(name: str = DEFAULT_EXAMPLE) -> Path:
    """Path of a shipped example by name (without ``.cnf``)."""
    p = _HERE / f"{name}.cnf"
    if not p.is_file():
        raise ParameterError(f"no shipped example {name!r}; available: {', '.join(list_examples())}")
    return p
