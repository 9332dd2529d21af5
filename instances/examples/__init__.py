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
    """Path of a shipped example by name (without ``.cnf``).

    Examples
    --------
    >>> list_examples()
    ['php-3-2', 'random3sat-n20', 'random3sat-n20-unsat', 'tiny4']
    >>> example_path("tiny4").read_text().splitlines()[1]
    'p cnf 4 4'
    >>> example_path("tiny5")
    Traceback (most recent call last):
    ...
    instances.errors.ParameterError: no shipped example 'tiny5'; available: php-3-2, random3sat-n20, ...
    """
    p = _HERE / f"{name}.cnf"
    if not p.is_file():
        raise ParameterError(f"no shipped example {name!r}; available: {', '.join(list_examples())}")
    return p
