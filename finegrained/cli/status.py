"""Exit statuses of the command line, and the error for a failed write to standard output (a leaf module)."""

from __future__ import annotations

EXIT_OK, EXIT_WRONG, EXIT_ERROR = 0, 1, 2
EXIT_SAT, EXIT_UNSAT = 10, 20
EXIT_INTERRUPTED = 130
#: 128 + SIGPIPE: what a shell reports for a tool killed by SIGPIPE when its reader went away.
EXIT_BROKEN_PIPE = 141


class StdoutError(OSError):
    """Writing to standard output failed (a full disk, an I/O error), told apart from errors of other files."""
