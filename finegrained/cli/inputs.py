"""Where a command's formula comes from: a FILE, ``-`` (stdin), piped stdin, or a shipped example.

* ``FILE`` or ``-``: read with :func:`instances.cnf.read_formula` (gzip/bzip2/xz recognised by magic bytes, the
  size cap of ``--max-input``, FIFOs read within a timeout, devices refused).
* No FILE and stdin is a pipe, a FIFO or a redirected file: stdin is read, and stderr says so.
* No FILE and stdin is a terminal (or ``--example NAME``): the shipped example runs; when stdin is neither a
  terminal nor a pipe (``< /dev/null``), stderr says that the example runs instead.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys

from instances.errors import FinegrainedError

from .argtypes import memory_size
from .formatting import note

STDIN = "-"


def add_input_arguments(parser: argparse.ArgumentParser, examples: list[str], default_example: str,
                        what: str = "DIMACS CNF file") -> None:
    """``FILE`` (``-`` for stdin), ``--example NAME`` and ``--max-input SIZE``."""
    parser.add_argument("file", nargs="?", metavar="FILE",
                        help=f"{what}, plain or .gz/.bz2/.xz; '-' reads standard input (default: standard "
                        f"input when it is a pipe, else the shipped example {default_example!r})")
    parser.add_argument("--example", choices=examples, help="run a shipped example instead of a file")
    parser.add_argument("--max-input", type=memory_size, default=None, metavar="SIZE",
                        help="refuse inputs larger than this once decompressed, e.g. 1G (default: 256M, or "
                        "$FINEGRAINED_MAX_INPUT)")


def _stdin_kind() -> str:
    """``"data"`` (a pipe, FIFO, socket or regular file), ``"tty"``, ``"other"`` (e.g. /dev/null) or
    ``"unknown"`` (no file descriptor, e.g. under a test runner)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, ValueError, OSError):
        return "unknown"
    if os.isatty(fd):
        return "tty"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISREG(mode):
        return "data"
    return "other"


def read_cnf(args: argparse.Namespace, default_example: str):
    """The formula and its display name, from ``args.file`` / ``args.example`` (see the module docstring)."""
    from instances.cnf import read_formula
    from instances.examples import example_path

    file, example = getattr(args, "file", None), getattr(args, "example", None)
    max_bytes = getattr(args, "max_input", None)
    if file and example:
        raise FinegrainedError("give either a FILE or --example, not both")
    if not file and not example:
        kind = _stdin_kind()
        if kind == "data":
            note("no FILE given: reading the formula from standard input (--example runs the shipped example)")
            file = STDIN
        elif kind == "other":
            note(f"no FILE given and standard input is not a pipe: running the shipped example "
                 f"{default_example!r}")
    if file:
        return read_formula(file, max_bytes=max_bytes), ("<stdin>" if file == STDIN else file)
    path = str(example_path(example or default_example))
    return read_formula(path, max_bytes=max_bytes), path
