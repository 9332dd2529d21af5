"""The ``finegrained`` command line: argparse, every formatter and every plot of the project.

One module per subcommand (:mod:`.chain`, :mod:`.validate`, :mod:`.explain`, :mod:`.graph`, :mod:`.generate`,
:mod:`.bench`), shared output code in :mod:`.formatting` and :mod:`.plots`. Each subcommand module exposes
``HELP``, ``DESCRIPTION``, ``add_arguments(parser)`` and ``run(args) -> int``.

Exit statuses
-------------
* 0 -- success (``chain --format competition``: the answer is UNKNOWN);
* 1 -- a wrong or unverified answer, no certified answer (the oracle's certificate is too coarse for the instance,
  or a float kernel on outputs below the float range), or a failed check (``validate``);
* 2 -- an error: bad input or options, a resource limit, an unwritable output (one line on stderr);
* 10 / 20 -- ``chain --format competition``: SATISFIABLE / UNSATISFIABLE, as SAT solvers do;
* 130 -- interrupted (Ctrl-C, SIGINT), at any moment including start-up;
* 141 -- standard output closed early (broken pipe, e.g. ``| head -1``): 128 + SIGPIPE, the status a shell
  reports for a tool killed by SIGPIPE.

Every failure is one line on stderr, never a traceback. Heavy modules (numpy, the reductions) are imported
inside :func:`main`, so Ctrl-C during start-up is caught like any other interrupt.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence

from .status import (
    EXIT_BROKEN_PIPE,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SAT,
    EXIT_UNSAT,
    EXIT_WRONG,
    StdoutError,
)

__all__ = ["COMMANDS", "EXIT_BROKEN_PIPE", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_SAT", "EXIT_UNSAT",
           "EXIT_WRONG", "StdoutError", "build_parser", "console_main", "main"]

#: subcommand name -> module implementing it (``HELP``, ``DESCRIPTION``, ``add_arguments``, ``run``)
COMMANDS: dict[str, str] = {
    "chain": "finegrained.cli.chain",
    "bench": "finegrained.cli.bench",
    "graph": "finegrained.cli.graph",
    "explain": "finegrained.cli.explain",
    "validate": "finegrained.cli.validate",
    "generate": "finegrained.cli.generate",
    "export": "finegrained.cli.export",
}


def build_parser():
    """The full argument parser (every subcommand and benchmark)."""
    import importlib

    from .formatting import version
    from .parser import HelpFormatter, Parser

    parser = Parser(
        prog="finegrained",
        description="Executable fine-grained hardness reductions (Alman & Song, Fast Attention Requires "
        "Bounded Entries).",
    )
    parser.add_argument("--version", action="version", version=f"finegrained {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        cp = sub.add_parser(name, help=mod.HELP, description=mod.DESCRIPTION,
                            formatter_class=HelpFormatter)
        mod.add_arguments(cp)
    return parser


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null so that the interpreter's final flush cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's capture object): nothing is flushed at exit anyway


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"finegrained: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: started with descriptor 2 closed (None)
        pass  # stderr itself is gone: the exit status is all that is left


def _limit_hint(args: object, message: str) -> str:
    if not hasattr(args, "max_memory") or "--max-memory" in message:
        return ""
    return "; raise the limit with --max-memory if this machine really has the room"


class _GuardedStdout:
    """Standard output whose write errors are :class:`StdoutError` (or BrokenPipeError), told apart from errors
    of the files a command reads or writes."""

    def __init__(self, stream):
        self._stream = stream
        #: The first write error, kept because argparse swallows the OSError of its --help and usage output.
        self.error: OSError | None = None

    def write(self, text: str) -> int:
        if self._stream is None:  # started with descriptor 1 closed (``>&-``): Python sets sys.stdout to None
            raise self._failed(OSError(errno.EBADF, "standard output is closed"))
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> OSError:
        err = exc if isinstance(exc, BrokenPipeError) else StdoutError(exc.errno, exc.strerror)
        self.error = self.error or err
        return err

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _run(argv: Sequence[str] | None) -> int:
    import importlib

    from instances.errors import FinegrainedError, ResourceLimitError, UncertifiedError, WrongAnswerError

    words = sys.argv[1:] if argv is None else list(argv)
    if words == ["--version"]:  # answered without building every subcommand's parser (and importing numpy)
        from .formatting import emit, version

        emit(f"finegrained {version()}")
        return EXIT_OK
    parser = build_parser()
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # --help, --version, or a usage error already reported on one line
        sys.stdout.flush()
        if getattr(sys.stdout, "error", None) is not None:
            raise sys.stdout.error from None
        return int(exc.code or 0)
    try:
        code = int(importlib.import_module(COMMANDS[args.command]).run(args))
        sys.stdout.flush()
        return code
    except WrongAnswerError as exc:
        sys.stdout.flush()
        _say(f"wrong answer from the oracle: {exc}")
        return EXIT_WRONG
    except UncertifiedError as exc:  # an answer the oracle's certificate cannot back is not given at all
        sys.stdout.flush()
        _say(f"no certified answer: {exc}")
        return EXIT_WRONG
    except ResourceLimitError as exc:
        _say(f"error: {exc}{_limit_hint(args, str(exc))}")
        return EXIT_ERROR
    except FinegrainedError as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    except MemoryError as exc:
        _say(f"error: out of memory ({exc or 'an allocation failed'}); try a smaller instance")
        return EXIT_ERROR


def console_main(argv: Sequence[str] | None = None) -> int:
    """The console script and ``python -m finegrained``: :func:`main`, then a Ctrl-C that arrives after the work
    is done (while the interpreter shuts down) is ignored instead of killing the process with SIGINT."""
    import signal

    code = main(argv)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):  # not the main thread: nothing to protect
        pass
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``finegrained ARGV`` and return its exit status (see the module docstring)."""
    real = sys.stdout
    sys.stdout = _GuardedStdout(real)
    try:
        return _run(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        _say("standard output was closed early (broken pipe)")
        return EXIT_BROKEN_PIPE
    except StdoutError as exc:  # a full disk (/dev/full), an I/O error
        _silence_stdout()
        _say(f"error: cannot write to standard output: {exc.strerror or exc}")
        return EXIT_ERROR
    except OSError as exc:  # a file error no command turned into a FinegrainedError
        _say(f"error: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return EXIT_ERROR
    finally:
        if sys.stdout.__class__ is _GuardedStdout:
            sys.stdout = real
