"""Exception types shared by every layer of the toolkit.

All errors the toolkit raises on purpose derive from :class:`FinegrainedError`, so the command line can turn
them into one clear line on stderr instead of a traceback.
"""

from __future__ import annotations

import decimal
import math
import numbers


class FinegrainedError(Exception):
    """Base class of every error raised on purpose by the toolkit."""


class DimacsError(FinegrainedError, ValueError):
    """A DIMACS CNF file is malformed.

    Parameters
    ----------
    source : str
        The file name (or ``"<string>"``) the text came from.
    line : int or None
        1-based line number of the offending line, or None when the problem is global (e.g. a missing file).
    message : str
        What was expected and what was found.
    """

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class ParameterError(FinegrainedError, ValueError):
    """Parameters are inconsistent with each other or with the instance."""


class ResourceLimitError(FinegrainedError, MemoryError):
    """An instance would need more memory than the configured limit allows."""


class NumericalError(FinegrainedError, FloatingPointError):
    """A floating-point overflow, underflow or NaN was detected where it would corrupt a result."""


class ReductionError(FinegrainedError, ValueError):
    """A reduction was given an input it cannot map (wrong type or shape, unbalanced vectors, inconsistent sizes,
    entries float64 cannot carry). Option errors are :class:`ParameterError`; a wrong target solution is
    :class:`WrongAnswerError`. A ``ValueError``, like ParameterError."""


class WrongAnswerError(FinegrainedError):
    """A backward map was given a target solution that is provably wrong (e.g. a YES row with no partner)."""


class UncertifiedError(FinegrainedError):
    """An oracle's certified error is too large to decide the instance, or it cannot meet the accuracy asked."""


def short_repr(x: object, limit: int = 60) -> str:
    """``repr(x)`` for an error message, cut to ``limit`` characters.

    An int past Python's digit limit for ``str()`` (4300 digits) cannot be printed at all, and would turn the
    message itself into a ValueError.

    Examples
    --------
    >>> short_repr(10**5000)
    '<int too large to print>'
    >>> short_repr("x" * 100)[-5:]
    'xx...'
    """
    try:
        text = repr(x)
    except ValueError:
        return f"<{type(x).__name__} too large to print>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def real_number(name: str, x: object, *, finite: bool = True) -> float:
    """``x`` as a Python float, or :class:`ParameterError` naming ``name``.

    Real numbers (ints, floats, numpy scalars and 0-d arrays, Fractions, Decimals) are accepted; bools, complex
    numbers and strings are refused, as are NaN, infinities (unless ``finite`` is false) and ints beyond float64's
    range, whose ``float()`` would leak an OverflowError.

    Examples
    --------
    >>> real_number("factor", 8)
    8.0
    >>> real_number("factor", "8")
    Traceback (most recent call last):
    ...
    instances.errors.ParameterError: factor must be a real number, got '8'
    """
    if type(x).__module__ == "numpy" and getattr(x, "shape", None) == () and x.dtype.kind in "iuf":
        x = x.item()  # a 0-d array (np.array(1e-3)) or a numpy scalar: its Python value
    if isinstance(x, bool) or not isinstance(x, numbers.Real | decimal.Decimal):
        raise ParameterError(f"{name} must be a real number, got {short_repr(x)}")
    try:
        value = float(x)
    except OverflowError:
        raise ParameterError(f"{name} must be a real number within float64 range, got {short_repr(x)}") from None
    except ValueError:  # Decimal("sNaN") has no float value
        raise ParameterError(f"{name} must be a real number, got {short_repr(x)}") from None
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ParameterError(f"{name} must be a finite real number, got {value}")
    return value
