"""Output shared by every subcommand: JSON with a ``version`` field, atomic file writes, ``-o -``, formats.

Every file the CLI writes goes through :func:`write_atomic`: the bytes go to a temporary file in the target's
directory, which then replaces the target with :func:`os.replace` (atomic on POSIX and Windows). A failed write
(disk full, interrupted, killed) leaves the previous file untouched and no partial file behind.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any

from instances.errors import FinegrainedError, ParameterError

from .status import StdoutError

#: ``-o -``: write to standard output.
STDOUT = "-"


def version() -> str:
    """The installed version of ``finegrained``."""
    from finegrained import __version__

    return __version__


def json_report(data: Mapping[str, Any], *, schema: str | None = None, **extra: Any) -> str:
    """``data`` as indented JSON with ``schema`` (when given) and ``version`` first; NaN or inf is an error.

    Every JSON report of the CLI goes through here, so every one carries the version that produced it.
    """
    out: dict[str, Any] = {}
    if schema is not None:
        out["schema"] = schema
    elif "schema" in data:
        out["schema"] = data["schema"]
    out["version"] = version()
    out.update({k: v for k, v in data.items() if k not in out})
    out.update(extra)
    return json.dumps(out, indent=2, allow_nan=False, default=_json_default)


def _json_default(x: Any) -> Any:
    if hasattr(x, "tolist"):  # numpy scalars and arrays
        return x.tolist()
    if hasattr(x, "to_dict"):
        return x.to_dict()
    return str(x)


def fmt(x: float | None, spec: str = ".6g") -> str:
    """A number for a table: ``-`` for None or NaN, ``inf``/``-inf`` spelled out."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return format(x, spec)


def format_bytes(n: float) -> str:
    """Human-readable size (binary units); see :func:`finegrained.resources.format_bytes`."""
    from finegrained.resources import format_bytes as _fb

    return _fb(n)


def write_stdout_bytes(data: bytes) -> None:
    """Write all of ``data`` to standard output's binary layer, then flush.

    The loop matters: a buffered write that is cut short by a closed pipe returns a short count and drops the
    rest silently; writing the rest raises :class:`BrokenPipeError`, so a truncated output is never a success.
    """
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    try:
        if buffer is None:  # a text-only stream (some test harnesses): no short writes to worry about
            stream.write(data.decode("utf-8", errors="replace"))
            stream.flush()
            return
        stream.flush()  # text written earlier goes first
        view = memoryview(data)
        while view:
            n = buffer.write(view)
            view = view[n if n else len(view):]
        buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise StdoutError(exc.errno, exc.strerror) from None


def emit(text: str) -> None:
    """Write ``text`` and a newline to standard output (UTF-8), completely or with an error."""
    text = text if text.endswith("\n") else text + "\n"
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    write_stdout_bytes(text.encode(encoding, errors="replace"))


def note(text: str) -> None:
    """A status line on standard error (``wrote FILE``, ``reading standard input``)."""
    sys.stderr.write(f"finegrained: {text}\n")
    sys.stderr.flush()


def _target(path: str, error: str) -> tuple[str, int | None, bool]:
    """Where a write to ``path`` really goes: the resolved path (through symlinks), the mode to keep (None for a
    new file) and whether to write in place (an existing device, FIFO or socket is written to, never replaced)."""
    import stat

    real = os.path.realpath(path)
    if os.path.isdir(real):
        raise FinegrainedError(error.format(path=path, reason="it is a directory"))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return real, None, False
    except OSError as exc:
        raise FinegrainedError(error.format(path=path, reason=exc.strerror or exc)) from None
    if not stat.S_ISREG(st.st_mode):
        return real, None, True
    return real, stat.S_IMODE(st.st_mode), False


def _write_in_place(path: str, data: bytes | str | Callable[[IO[bytes]], None], error: str) -> None:
    try:
        with open(path, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise FinegrainedError(error.format(path=path, reason=exc.strerror or exc)) from None


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: str, data: bytes | str | Callable[[IO[bytes]], None],
                 error: str = "cannot write {path}: {reason}") -> None:
    """Write exactly ``path``: to a temporary file in its directory first, then :func:`os.replace` onto it.

    ``data`` is bytes, text (UTF-8), or a callable that writes into the binary file object it is given (for
    matplotlib's ``savefig``). On any failure, including KeyboardInterrupt, the temporary file is removed and the
    old ``path`` (if any) is unchanged; an :class:`OSError` becomes one :class:`FinegrainedError` line, worded
    by the ``error`` template. A symlink is followed (its target is replaced, the link kept), an existing file
    keeps its permissions, and an existing device, FIFO or socket (``/dev/null``) is written to in place,
    since replacing it would destroy it.
    """
    real, mode, in_place = _target(path, error)
    if in_place:
        _write_in_place(real, data, error)
        return
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())

    _replace_via_temp(path, real, mode, write, error)


def write_atomic_path(path: str, writer: Callable[[str], None], error: str = "cannot write {path}: {reason}") -> None:
    """Like :func:`write_atomic`, for a ``writer(temporary_path)`` that wants a path of its own to write to."""
    real, mode, in_place = _target(path, error)
    if in_place:
        raise FinegrainedError(error.format(path=path, reason="it is a device, FIFO or socket, not a file: "
                                            "write to a regular file, or use -o - where it is offered"))
    _replace_via_temp(path, real, mode, writer, error)


def _replace_via_temp(path: str, real: str, mode: int | None, writer: Callable[[str], None], error: str) -> None:
    """``writer(tmp)`` into a temporary file beside ``real``, then :func:`os.replace` onto it; on any failure the
    temporary file is removed and ``real`` is left as it was."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".tmp", dir=os.path.dirname(real))
        os.close(fd)
    except OSError as exc:
        raise FinegrainedError(error.format(path=path, reason=exc.strerror or exc)) from None
    try:
        writer(tmp)
        # mkstemp creates 0600: keep the old file's mode, or give a new one the usual permissions (umask applies)
        os.chmod(tmp, _default_mode() if mode is None else mode)
        os.replace(tmp, real)
    except OSError as exc:
        _unlink(tmp)
        raise FinegrainedError(error.format(path=path, reason=exc.strerror or exc)) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_output(output: str | None, text: str, *, binary: bytes | None = None) -> None:
    """Text (or ``binary``) to standard output when ``output`` is None or ``-``, else atomically to ``output``.

    A file write is confirmed by ``wrote PATH`` on standard error, so standard output carries only data.
    """
    if output is None or output == STDOUT:
        if binary is not None:
            write_stdout_bytes(binary)
        else:
            emit(text)
        return
    write_atomic(output, binary if binary is not None else (text if text.endswith("\n") else text + "\n"))
    note(f"wrote {output}")


def output_format(output: str | None, requested: str | None, extensions: Mapping[str, str], default: str,
                  option: str = "--format") -> str:
    """The format of an output: ``--format`` if given, else the output file's extension, else ``default``.

    ``extensions`` maps a lower-case extension (``".png"``) to a format name. A ``--format`` that contradicts a
    known extension is a :class:`ParameterError` (``-o out.pdf --format png`` would write a PNG named .pdf).
    """
    ext = os.path.splitext(output)[1].lower() if output and output != STDOUT else ""
    from_ext = extensions.get(ext)
    if requested is not None:
        if from_ext is not None and from_ext != requested:
            raise ParameterError(f"{option} {requested} contradicts the extension of {output} ({from_ext}); "
                                 f"drop {option} or rename the file")
        return requested
    return from_ext or default


def table(rows: Iterable[Iterable[str]], header: Iterable[str]) -> str:
    """A Markdown table."""
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
