"""k-CNF formulas on top of :class:`pysat.formula.CNF`, with strict DIMACS input and brute-force solving.

DIMACS text is checked line by line first, so that every malformed file gets a :class:`DimacsError` naming the
file, the line and what was expected; the validated clauses are then held in a pysat ``CNF``, which also writes
DIMACS and feeds pysat's CDCL solvers.
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

import numpy as np
from pysat.formula import CNF
from pysat.solvers import Solver

from .errors import DimacsError, ParameterError
from .io import read_input, source_name

#: A DIMACS integer: ASCII digits with an optional minus sign (int() would also take "1_0", "+1" and other scripts).
_INT = re.compile(r"-?[0-9]+")

#: The whitespace that separates DIMACS tokens (C's isspace in the "C" locale).
_ASCII_SPACE = " \t\n\r\f\v"

#: ASCII control characters that str.split()/str.strip() also treat as whitespace (file, group, record and unit
#: separators); DIMACS does not, so a text holding one is split with the regex at _ASCII_SPACE only.
_STR_ONLY_SPACE = "\x1c\x1d\x1e\x1f"

#: Longest integer token (digits after the sign) read as a number; longer ones are out of range for any formula
#: (and Python's int() refuses more than 4300 digits with a ValueError).
MAX_INT_DIGITS = 18

#: Largest number of variables :meth:`CNFFormula.brute_force_solve` accepts (2**N assignments).
BRUTE_FORCE_MAX_VARS = 24


class CNFFormula:
    """A CNF formula over variables ``1..num_vars`` (DIMACS literals: ``v`` or ``-v``).

    Parameters
    ----------
    clauses : iterable of iterables of int
        Each clause is a disjunction of non-zero literals. Empty clauses, duplicate literals and tautologies
        (``x`` and ``-x`` in one clause) are allowed and keep their logical meaning.
    num_vars : int, optional
        Number of variables; defaults to the largest variable that occurs. It may exceed it (unused variables).

    Examples
    --------
    >>> f = CNFFormula([[1, -2], [2, 3]], num_vars=3)
    >>> f.num_vars, f.num_clauses, f.k
    (3, 2, 2)
    >>> f.is_satisfied_by([1, 2, -3])
    True
    """

    def __init__(self, clauses: Iterable[Iterable[int]], num_vars: int | None = None) -> None:
        try:
            # operator.index, not int(): a literal 1.5 or "1" is refused instead of silently truncated or parsed.
            cl = [[operator.index(lit) for lit in c] for c in clauses]
            num_vars = None if num_vars is None else operator.index(num_vars)
        except TypeError as exc:
            raise ParameterError(f"clauses must be iterables of integer literals and num_vars an integer ({exc})") \
                from None
        top = max((abs(lit) for c in cl for lit in c), default=0)
        if any(lit == 0 for c in cl for lit in c):
            raise ParameterError("a clause contains the literal 0, which DIMACS reserves as the clause terminator")
        if num_vars is None:
            num_vars = top
        if num_vars < 0:
            raise ParameterError(f"num_vars must be non-negative, got {num_vars}")
        if num_vars < top:
            raise ParameterError(f"num_vars={num_vars} but variable {top} occurs in a clause")
        self.cnf = CNF(from_clauses=cl)
        self.cnf.nv = int(num_vars)

    @property
    def clauses(self) -> list[list[int]]:
        return self.cnf.clauses

    @property
    def num_vars(self) -> int:
        return int(self.cnf.nv)

    @property
    def num_clauses(self) -> int:
        return len(self.cnf.clauses)

    @property
    def k(self) -> int:
        """Largest clause width (0 for a formula without clauses)."""
        return max((len(c) for c in self.clauses), default=0)

    def __repr__(self) -> str:
        return f"CNFFormula(num_vars={self.num_vars}, num_clauses={self.num_clauses}, k={self.k})"

    # ----------------------------------------------------------------- I/O
    @classmethod
    def from_dimacs(cls, text: str, source: str = "<string>") -> CNFFormula:
        """Parse DIMACS CNF text; see :func:`parse_dimacs`."""
        num_vars, clauses = parse_dimacs(text, source)
        return cls(clauses, num_vars=num_vars)

    @classmethod
    def read(cls, path: str | os.PathLike | IO[bytes] | IO[str], *, max_bytes: int | None = None) -> CNFFormula:
        """Read a DIMACS CNF file (or ``"-"``, a file object); see :func:`read_formula`."""
        return read_formula(path, max_bytes=max_bytes)

    def to_dimacs(self) -> str:
        """DIMACS text, written by pysat."""
        import io

        buf = io.StringIO()
        self.cnf.to_fp(buf)
        return buf.getvalue()

    def write(self, path: str | os.PathLike) -> None:
        Path(path).write_text(self.to_dimacs(), encoding="utf-8")

    # ----------------------------------------------------------- semantics
    def is_satisfied_by(self, assignment: Sequence[int]) -> bool:
        """Whether a full assignment (one DIMACS literal per variable ``1..N``) satisfies every clause."""
        values = assignment_values(assignment, self.num_vars)
        return all(any(values[abs(lit)] == (lit > 0) for lit in c) for c in self.clauses)

    def solve_cdcl(self, solver: str = "cadical153") -> list[int] | None:
        """Solve with a pysat CDCL solver; a full assignment (literals ``±1..±N``) or None if unsatisfiable."""
        with Solver(name=solver, bootstrap_with=self.clauses) as s:
            if not s.solve():
                return None
            model = {abs(lit): lit for lit in s.get_model() or []}
        return [model.get(v, v) for v in range(1, self.num_vars + 1)]

    def brute_force_solve(self) -> list[int] | None:
        """Try all ``2**N`` assignments (vectorised); the first satisfying one, or None.

        Limited to ``N <= BRUTE_FORCE_MAX_VARS``; meant as independent ground truth for tests.
        """
        n = self.num_vars
        if n > BRUTE_FORCE_MAX_VARS:
            raise ParameterError(f"brute force is limited to {BRUTE_FORCE_MAX_VARS} variables, formula has {n}")
        idx = np.arange(2**n, dtype=np.int64)
        bits = ((idx[:, None] >> np.arange(n)) & 1).astype(bool)  # bits[a, v-1] = value of variable v
        ok = np.ones(idx.size, dtype=bool)
        for c in self.clauses:
            sat = np.zeros(idx.size, dtype=bool)
            for lit in c:
                col = bits[:, abs(lit) - 1]
                sat |= col if lit > 0 else ~col
            ok &= sat
        hits = np.flatnonzero(ok)
        if hits.size == 0:
            return None
        row = bits[hits[0]]
        return [v if row[v - 1] else -v for v in range(1, n + 1)]


def assignment_values(assignment: Sequence[int], num_vars: int) -> list[bool]:
    """Turn DIMACS literals into a value table indexed by variable (index 0 unused); checks completeness."""
    values: list[bool | None] = [None] * (num_vars + 1)
    for lit in assignment:
        v = abs(int(lit))
        if v == 0 or v > num_vars:
            raise ParameterError(f"assignment literal {lit} is out of range 1..{num_vars}")
        if values[v] is not None and values[v] != (lit > 0):
            raise ParameterError(f"assignment sets variable {v} both true and false")
        values[v] = lit > 0
    missing = [v for v in range(1, num_vars + 1) if values[v] is None]
    if missing:
        raise ParameterError(f"assignment leaves {len(missing)} variable(s) unset, e.g. {missing[0]}")
    return values  # type: ignore[return-value]


def _digits(tok: str) -> int:
    """Significant digits of a matched integer token (leading zeros and the sign do not count)."""
    return len(tok.lstrip("-").lstrip("0"))


def _to_int(tok: str) -> int:
    """int() of a matched token of at most MAX_INT_DIGITS significant digits (leading zeros may be any number)."""
    value = int(tok.lstrip("-").lstrip("0") or "0")
    return -value if tok.startswith("-") else value


def _short(tok: str) -> str:
    """A token or line for an error message: whole if short, else its ends and its length (messages stay short)."""
    return tok if len(tok) <= 40 else f"{tok[:12]}...{tok[-6:]} ({len(tok)} characters)"


def read_formula(
    source: str | os.PathLike | IO[bytes] | IO[str] | CNF | CNFFormula, *, max_bytes: int | None = None
) -> CNFFormula:
    """A :class:`CNFFormula` from wherever a formula may come from.

    Parameters
    ----------
    source : path, ``"-"``, file object, :class:`pysat.formula.CNF` or :class:`CNFFormula`
        A DIMACS file (plain, or gzip/bzip2/xz recognised by magic bytes), ``"-"`` for stdin (read as bytes), an
        open binary or text file object, a pysat ``CNF`` (its clauses and ``nv``), or a formula (returned as is).
        A FIFO is waited on for at most :data:`instances.io.FIFO_TIMEOUT` seconds per chunk; devices are refused.
    max_bytes : int, optional
        Cap on the decompressed input (default :data:`instances.io.DEFAULT_MAX_INPUT` = 256 MiB, or
        ``$FINEGRAINED_MAX_INPUT``); see :mod:`instances.io`.

    Raises
    ------
    DimacsError
        For a missing, unreadable, special, oversized or malformed input, with the source and line.

    Examples
    --------
    >>> import io
    >>> read_formula(io.BytesIO(b"p cnf 2 1\\n1 -2 0\\n")).clauses
    [[1, -2]]
    >>> from pysat.formula import CNF
    >>> read_formula(CNF(from_clauses=[[1, 2], [-1]])).num_vars
    2
    """
    if isinstance(source, CNFFormula):
        return source
    if isinstance(source, CNF):
        return CNFFormula(source.clauses, num_vars=max(int(source.nv), max((abs(x) for c in source.clauses
                                                                            for x in c), default=0)))
    text = read_input(source, max_bytes=max_bytes)
    return CNFFormula.from_dimacs(text, source_name(source))


def parse_dimacs(text: str, source: str = "<string>") -> tuple[int, list[list[int]]]:
    """Parse DIMACS CNF text strictly.

    Accepted: ``c`` comment lines anywhere, one ``p cnf NVARS NCLAUSES`` header before any clause, clauses as
    integers terminated by ``0`` (a clause may span lines), and the ``%`` end marker of SATLIB files. Tokens are
    separated by ASCII whitespace only (space, tab, ``\\v``, ``\\f``, ``\\r``; lines end at ``\\n``): outside a
    comment any other character, including the control characters ``\\x1c``-``\\x1f`` that Python's ``str.split``
    treats as whitespace and a no-break space, belongs to a token, which is then refused. Everything else raises
    :class:`DimacsError` with the file, the 1-based line and what was expected.

    Returns
    -------
    (num_vars, clauses)

    Examples
    --------
    >>> parse_dimacs("p cnf 2 2\\n1 -2 0\\n2 0\\n")
    (2, [[1, -2], [2]])
    >>> parse_dimacs("p cnf 2 1\\n1 3 0\\n", "f.cnf")
    Traceback (most recent call last):
    ...
    instances.errors.DimacsError: f.cnf:2: literal 3 is out of range: the header declares 2 variables
    """
    num_vars: int | None = None
    declared = 0
    header_line = 0
    clauses: list[list[int]] = []
    current: list[int] = []
    current_start = 0
    # Lines end at "\n" only (and a trailing "\r" is dropped), so line numbers agree with an editor's;
    # str.splitlines would also break at form feeds and Unicode separators.
    # Only _ASCII_SPACE separates tokens. str.split would also split at a no-break space or U+2028 (non-ASCII
    # lines) and at \x1c-\x1f (ASCII ones), so it is used only on ASCII lines of a text without \x1c-\x1f: one
    # scan of the whole text keeps the fast path for ordinary files, the rest go through the regex.
    split_ok = not any(c in text for c in _STR_ONLY_SPACE)
    for lineno, raw in enumerate(text.lstrip("\ufeff").split("\n"), start=1):
        ascii_line = split_ok and raw.isascii()
        line = raw.strip() if ascii_line else raw.strip(_ASCII_SPACE)
        if not line or line.startswith("c"):
            continue
        if line.startswith("%"):
            break
        if line.startswith("p"):
            if num_vars is not None:
                raise DimacsError(source, lineno, f"second 'p' header (the first is on line {header_line})")
            parts = line.split() if ascii_line else [t for t in re.split(f"[{_ASCII_SPACE}]+", line) if t]
            if len(parts) != 4 or parts[0] != "p" or parts[1] != "cnf":
                raise DimacsError(source, lineno, f"expected header 'p cnf NVARS NCLAUSES', found {_short(line)!r}")
            if not (_INT.fullmatch(parts[2]) and _INT.fullmatch(parts[3])):
                raise DimacsError(
                    source, lineno, f"expected integers in header 'p cnf NVARS NCLAUSES', found {_short(line)!r}"
                )
            for tok in parts[2:]:
                if _digits(tok) > MAX_INT_DIGITS:
                    raise DimacsError(source, lineno, f"header count {_short(tok)} is too large (more than "
                                      f"{MAX_INT_DIGITS} digits)")
            num_vars, declared = _to_int(parts[2]), _to_int(parts[3])
            if num_vars < 0 or declared < 0:
                raise DimacsError(source, lineno, f"header counts must be non-negative, found {_short(line)!r}")
            header_line = lineno
            continue
        if num_vars is None:
            raise DimacsError(source, lineno, "expected the header 'p cnf NVARS NCLAUSES' before the first clause")
        for tok in line.split() if ascii_line else [t for t in re.split(f"[{_ASCII_SPACE}]+", line) if t]:
            if not _INT.fullmatch(tok):
                shown = _short(tok.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
                raise DimacsError(source, lineno, f"expected an integer literal, found {shown!r}")
            if _digits(tok) > MAX_INT_DIGITS:
                raise DimacsError(source, lineno, f"literal {_short(tok)} is out of range: the header declares "
                                  f"{num_vars} variables")
            lit = _to_int(tok)
            if lit == 0:
                clauses.append(current)
                current = []
                continue
            if abs(lit) > num_vars:
                raise DimacsError(
                    source, lineno, f"literal {lit} is out of range: the header declares {num_vars} variables"
                )
            if not current:
                current_start = lineno
            current.append(lit)
    if num_vars is None:
        raise DimacsError(source, None, "no 'p cnf NVARS NCLAUSES' header found (empty or not a DIMACS CNF file)")
    if current:
        raise DimacsError(source, current_start, "clause is not terminated by 0 before the end of the file")
    if len(clauses) != declared:
        raise DimacsError(
            source, header_line, f"header declares {declared} clauses but the file contains {len(clauses)}"
        )
    return num_vars, clauses
