"""Bounded input: every byte the toolkit reads from a file, a pipe or stdin goes through :func:`read_input`.

The rules (documented for users in ``docs/cli.md``, section *Input*):

* **Size cap.** At most :data:`DEFAULT_MAX_INPUT` bytes (256 MiB) of *decompressed* text are read. The cap is
  raised or lowered with the ``max_bytes`` keyword or the environment variable ``FINEGRAINED_MAX_INPUT``
  (``"1G"``, ``"512M"``, ``"1000000"``). Reading stops at the cap with one :class:`DimacsError` naming the
  file, the cap and how to raise it, so a decompression bomb never fills memory.
* **Compression.** gzip, bzip2 and xz data are recognised by their magic bytes (not by the file name) and
  decompressed in chunks, with the cap enforced during decompression.
* **Special files.** A FIFO is opened without blocking and read with :func:`select.poll`, waiting at most
  :data:`FIFO_TIMEOUT` seconds (``FINEGRAINED_FIFO_TIMEOUT``) for each chunk, so a FIFO without a writer
  ends with an error instead of hanging. Character and block devices (``/dev/zero``, ``/dev/urandom``) and
  sockets are refused without being read.
* **stdin** (``"-"``) is read as bytes, within the cap, with ordinary blocking reads (like ``cat``); whether
  to read an interactive terminal is the caller's decision: see :func:`stdin_is_tty`.

It also holds the generic memory guard used by the bottom layer (:func:`check_memory_limit`), since
``instances`` must not import ``finegrained``.
"""

from __future__ import annotations

import bz2
import io
import lzma
import math
import os
import re
import select
import stat
import sys
import zlib
from fractions import Fraction
from typing import IO, Any

from .errors import DimacsError, ParameterError, ResourceLimitError, short_repr

#: Default cap on the bytes of (decompressed) input text: 256 MiB.
DEFAULT_MAX_INPUT = 256 * 2**20

#: Environment variable overriding :data:`DEFAULT_MAX_INPUT` (a size such as ``"1G"`` or ``"1000000"``).
MAX_INPUT_ENV = "FINEGRAINED_MAX_INPUT"

#: Seconds to wait for each chunk from a FIFO (named pipe) before giving up.
FIFO_TIMEOUT = 10.0

#: Environment variable overriding :data:`FIFO_TIMEOUT` (seconds, a positive number).
FIFO_TIMEOUT_ENV = "FINEGRAINED_FIFO_TIMEOUT"

#: Bytes read (and decompressed) per step.
CHUNK = 1 << 20

#: Magic bytes of the compressed formats read transparently, and of some that are recognised but refused.
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}
_UNSUPPORTED_MAGIC = {b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip", b"\x04\x22\x4d\x18": "lz4"}

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_byte_size(text: str, what: str = "size") -> int:
    """Parse ``"512M"``, ``"1G"``, ``"1.5GiB"`` or ``"1000000"`` into a positive number of bytes.

    Examples
    --------
    >>> parse_byte_size("1.5G"), parse_byte_size("512MiB"), parse_byte_size("4096")
    (1610612736, 536870912, 4096)
    """
    # unambiguous digits (no backtracking between two digit runs) and at most 1000 of them (a longer size is no
    # limit anyone means, and Fraction refuses past Python's 4300-digit str() limit)
    m = re.fullmatch(r"\s*([0-9]{1,1000}(?:\.[0-9]{0,1000})?|\.[0-9]{1,1000})\s*([KMGT]?)(?:i?B)?\s*", str(text),
                     flags=re.I)
    if not m:
        raise ParameterError(f"cannot read {what} {short_repr(text)}; expected a number with an optional K/M/G/T "
                             "suffix")
    # exact decimal arithmetic: float() of a 400-digit size is inf, and int(inf) would leak an OverflowError
    value = int(Fraction(m.group(1)) * _UNITS[m.group(2).upper()])
    if value < 1:
        raise ParameterError(f"{what} must be at least 1 byte, got {short_repr(text)}")
    return value


def max_input_bytes(max_bytes: int | None = None) -> int:
    """The input cap in effect: ``max_bytes`` if given, else ``$FINEGRAINED_MAX_INPUT``, else 256 MiB."""
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ParameterError(f"max_bytes must be a positive integer number of bytes, got {max_bytes!r}")
        return max_bytes
    env = os.environ.get(MAX_INPUT_ENV)
    if env:
        return parse_byte_size(env, f"${MAX_INPUT_ENV}")
    return DEFAULT_MAX_INPUT


def fifo_timeout(timeout: float | None = None) -> float:
    """The FIFO wait in effect: ``timeout`` if given, else ``$FINEGRAINED_FIFO_TIMEOUT``, else 10 s."""
    if timeout is None:
        env = os.environ.get(FIFO_TIMEOUT_ENV)
        if not env:
            return FIFO_TIMEOUT
        try:
            timeout = float(env)
        except ValueError:
            raise ParameterError(f"${FIFO_TIMEOUT_ENV} must be a number of seconds, got {env!r}") from None
    if not (math.isfinite(timeout) and timeout > 0):
        raise ParameterError(f"the FIFO timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def stdin_is_tty() -> bool:
    """Whether stdin is an interactive terminal (then a command should not wait for a formula to be typed)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or detached stdin
        return False


def _fmt(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def _cap_error(source: str, cap: int, what: str) -> DimacsError:
    return DimacsError(
        source, None,
        f"{what} exceeds the input cap of {_fmt(cap)}; raise it with {MAX_INPUT_ENV}=SIZE (e.g. "
        f"{MAX_INPUT_ENV}=2G) or max_bytes=",
    )


def _read_stream(fh: IO[bytes], cap: int, source: str) -> bytes:
    """Read a blocking binary stream to EOF, refusing more than ``cap`` bytes."""
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = fh.read(min(CHUNK, cap + 1 - total))
        if not chunk:
            return b"".join(parts)
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise ParameterError(f"{source}: the file object returned {type(chunk).__name__}, expected bytes or str")
        parts.append(bytes(chunk))
        total += len(chunk)
        if total > cap:
            raise _cap_error(source, cap, "input")


def _read_fifo(fd: int, cap: int, source: str, timeout: float) -> bytes:
    """Read a FIFO opened with O_NONBLOCK: wait up to ``timeout`` seconds for each chunk, at most ``cap`` bytes.

    On Linux a FIFO that never had a writer is not reported readable by select, so a missing writer ends in the
    timeout; once a writer has closed, select reports it readable and ``read`` returns EOF.
    """
    parts: list[bytes] = []
    total = 0
    # poll, not select: select refuses descriptors above FD_SETSIZE (1024).
    poller = select.poll() if hasattr(select, "poll") else None
    if poller is not None:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        if poller is not None:
            ready = poller.poll(timeout * 1000)
        else:
            ready = select.select([fd], [], [], timeout)[0]
        if not ready:
            raise DimacsError(
                source, None,
                f"no data from the FIFO within {timeout:g} s (no writer?); set {FIFO_TIMEOUT_ENV}=SECONDS to wait "
                "longer",
            )
        try:
            chunk = os.read(fd, min(CHUNK, cap + 1 - total))
        except BlockingIOError:  # spurious wake-up
            continue
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        total += len(chunk)
        if total > cap:
            raise _cap_error(source, cap, "input")


_KIND = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _refuse_special(mode: int, source: str) -> None:
    kind = _KIND.get(stat.S_IFMT(mode))
    if kind is not None:
        raise DimacsError(source, None, f"is {kind}, not a file; refusing to read it (pipe it through 'head -c')")
    if stat.S_ISDIR(mode):
        raise DimacsError(source, None, "is a directory, expected a file")


def _read_path(path: str, cap: int, timeout: float) -> bytes:
    try:
        # stat first: opening a device can have side effects (and /dev/zero never ends).
        _refuse_special(os.stat(path).st_mode, path)
        # O_NONBLOCK so that opening a FIFO without a writer returns at once; harmless for regular files.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise DimacsError(path, None, "no such file") from None
    except IsADirectoryError:
        raise DimacsError(path, None, "is a directory, expected a file") from None
    except OSError as exc:
        raise DimacsError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:  # e.g. an embedded NUL in the name (DimacsError is a ValueError too)
        if isinstance(exc, DimacsError):
            raise
        raise DimacsError(repr(path), None, f"not a valid file name ({exc})") from None
    try:
        mode = os.fstat(fd).st_mode  # the file opened may differ from the one stat saw
        _refuse_special(mode, path)
        if stat.S_ISFIFO(mode):
            return _read_fifo(fd, cap, path, timeout)
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as fh:
            return _read_stream(fh, cap, path)
    except OSError as exc:
        raise DimacsError(path, None, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _decompress(data: bytes, fmt: str, cap: int, source: str) -> bytes:
    """Decompress every concatenated stream of ``data`` in chunks, refusing more than ``cap`` output bytes."""
    parts: list[bytes] = []
    total = 0

    def new() -> Any:
        if fmt == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return bz2.BZ2Decompressor() if fmt == "bzip2" else lzma.LZMADecompressor(lzma.FORMAT_XZ)

    rest = data
    try:
        while rest:
            dec = new()
            pending = rest
            while True:
                room = cap + 1 - total
                if fmt == "gzip":
                    out = dec.decompress(pending, room)
                    pending = dec.unconsumed_tail
                    done = dec.eof
                    more = bool(pending)
                else:
                    out = dec.decompress(pending, room)
                    pending = b""
                    done = dec.eof
                    more = not dec.needs_input
                parts.append(out)
                total += len(out)
                if total > cap:
                    raise _cap_error(source, cap, f"decompressed {fmt} input")
                if done:
                    break
                if not more and not out:
                    raise DimacsError(source, None, f"truncated {fmt} data (the stream ends before its end marker)")
            rest = dec.unused_data
            # Trailing zero padding after the last stream is common (tape blocks); anything else must be a stream.
            if rest and not rest.strip(b"\x00"):
                rest = b""
            elif rest and not any(rest.startswith(m) for m, f in _MAGIC.items() if f == fmt):
                raise DimacsError(source, None, f"unexpected data after the {fmt} stream, at compressed byte "
                                  f"{len(data) - len(rest)}")
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        if isinstance(exc, DimacsError):
            raise
        raise DimacsError(source, None, f"corrupt {fmt} data ({exc})") from None
    return b"".join(parts)


def _maybe_decompress(data: bytes, cap: int, source: str) -> bytes:
    for magic, fmt in _MAGIC.items():
        if data.startswith(magic):
            return _decompress(data, fmt, cap, source)
    for magic, fmt in _UNSUPPORTED_MAGIC.items():
        if data.startswith(magic):
            raise DimacsError(source, None, f"is {fmt}-compressed, which is not read; decompress it first "
                              "(gzip, bzip2 and xz are read directly)")
    return data


def source_name(source: Any) -> str:
    """The name errors use for ``source``: the path, ``<stdin>`` for ``"-"``, or a file object's ``name``."""
    if isinstance(source, str) and source == "-":
        return "<stdin>"
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)  # type: ignore[arg-type]
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def read_input(
    source: str | os.PathLike | IO[bytes] | IO[str],
    *,
    max_bytes: int | None = None,
    timeout: float | None = None,
) -> str:
    """Read text from a path, ``"-"`` (stdin) or a file object, within the size cap, decompressing if needed.

    Parameters
    ----------
    source : path, ``"-"`` or file object
        A path (``str`` or path-like), ``"-"`` for ``sys.stdin.buffer``, or an open binary or text file object
        (read from its current position; not closed).
    max_bytes : int, optional
        Cap on the decompressed bytes; default :func:`max_input_bytes` (``$FINEGRAINED_MAX_INPUT`` or 256 MiB).
        Compressed input is also limited to this many raw bytes.
    timeout : float, optional
        Seconds to wait for each chunk from a FIFO given by path; default :func:`fifo_timeout`. File objects
        and stdin are read with blocking reads.

    Returns
    -------
    str
        The text, decoded as UTF-8 with undecodable bytes kept as surrogates (harmless in comments; a parser
        rejects them as tokens) and a leading byte-order mark removed.

    Raises
    ------
    DimacsError
        Missing, unreadable or special file, corrupt compressed data, a NUL byte, or more than the cap; the
        message starts with the source name.
    """
    cap = max_input_bytes(max_bytes)
    name = source_name(source)
    if isinstance(source, str) and source == "-":
        stream = getattr(sys.stdin, "buffer", sys.stdin)
        if stream is None:
            raise DimacsError(name, None, "there is no stdin to read")
        data = _read_file_object(stream, cap, name)
    elif isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        data = _read_path(path, cap, fifo_timeout(timeout))
    elif hasattr(source, "read"):
        data = _read_file_object(source, cap, name)
    else:
        raise ParameterError(f"cannot read input from a {type(source).__name__}; expected a path, '-' or a file")
    return _finish(data, cap, name)


def _read_file_object(fh: Any, cap: int, name: str) -> bytes | str:
    """Read an open file object within the cap (blocking reads, like ``cat``; a TTY is read if the caller asks)."""
    try:
        probe = fh.read(0)
    except (OSError, ValueError) as exc:
        raise DimacsError(name, None, f"cannot read: {exc}") from None
    if isinstance(probe, str):  # a text stream: the cap counts characters
        try:
            text = fh.read(cap + 1)
        except UnicodeDecodeError as exc:
            raise DimacsError(name, None, f"not UTF-8 text ({exc.reason} at byte {exc.start}); open it in binary "
                              "mode to keep stray bytes") from None
        except (OSError, ValueError) as exc:
            raise DimacsError(name, None, f"cannot read: {exc}") from None
        if len(text) > cap:
            raise _cap_error(name, cap, "input")
        return text
    try:
        fd = fh.fileno()
        mode = os.fstat(fd).st_mode
        tty = os.isatty(fd)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        mode, tty = None, False  # an in-memory stream
    if mode is not None and (stat.S_ISBLK(mode) or (stat.S_ISCHR(mode) and not tty)):
        _refuse_special(mode, name)  # e.g. "< /dev/zero"
    try:
        return _read_stream(fh, cap, name)
    except OSError as exc:
        raise DimacsError(name, None, f"cannot read: {exc.strerror or exc}") from None


def _finish(data: bytes | str, cap: int, name: str) -> str:
    if isinstance(data, str):
        text = data
    else:
        data = _maybe_decompress(data, cap, name)
        nul = data.find(b"\x00")
        if nul >= 0:
            raise DimacsError(name, None, f"not a text file (NUL byte at offset {nul})")
        # Bytes, not text mode: universal newlines would turn a stray "\r" into a line break and shift line numbers.
        text = data.decode("utf-8", errors="surrogateescape")
    nul = text.find("\x00")
    if nul >= 0:
        raise DimacsError(name, None, f"not a text file (NUL character at offset {nul})")
    return text[1:] if text.startswith("\ufeff") else text


# ------------------------------------------------------------------------------------------------ memory guard
def physical_memory() -> int:
    """Bytes of physical memory, or 8 GiB if the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def default_memory_limit() -> int:
    """Half of physical memory (the default of every ``max_memory`` keyword)."""
    return physical_memory() // 2


def check_memory_limit(needed: int, limit: int | None, what: str) -> None:
    """Raise :class:`ResourceLimitError` if ``needed`` bytes exceed ``limit`` (default: half of physical memory).

    The bottom layer's copy of ``finegrained.resources.check_memory`` (which ``instances`` may not import).
    """
    limit = default_memory_limit() if limit is None else int(limit)
    if needed > limit:
        raise ResourceLimitError(
            f"{what} would need about {_fmt(int(needed)) if needed < 2**70 else f'2^{math.log2(needed):.0f} bytes'}"
            f" of memory, over the limit of {_fmt(limit)} (max_memory)"
        )


# ------------------------------------------------------------------------------------------------ .npz headers
def npz_headers(fh: IO[bytes], source: str) -> dict[str, tuple[tuple[int, ...], Any, int]]:
    """Shapes, dtypes and data sizes of every array of an ``.npz`` archive, read without unpacking any data.

    Reads the zip directory and, for each member, only the ``.npy`` magic and header
    (:func:`numpy.lib.format.read_magic`, ``read_array_header_1_0`` / ``_2_0``), so the memory that
    :func:`numpy.load` would need is known before it allocates anything.

    Returns
    -------
    dict
        Array name (without ``.npy``) -> ``(shape, dtype, nbytes)``.

    Raises
    ------
    ParameterError
        Not a zip archive, a member that is not a ``.npy`` array, an unsupported header, an object (pickled)
        dtype, or a member shorter than its header declares; the message starts with ``source``.
    """
    import zipfile

    import numpy as np

    out: dict[str, tuple[tuple[int, ...], Any, int]] = {}
    try:
        with zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                with zf.open(info) as member:
                    try:
                        version = np.lib.format.read_magic(member)
                        if version == (1, 0):
                            shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
                        elif version == (2, 0):
                            shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
                        else:
                            raise ParameterError(f"{source}: member {info.filename!r} has .npy format version "
                                                 f"{version}, which is not read (1.0 and 2.0 are)")
                    except ValueError as exc:
                        if isinstance(exc, ParameterError):
                            raise
                        raise ParameterError(f"{source}: member {info.filename!r} is not a .npy array ({exc})") \
                            from None
                    header_len = member.tell()
                if dtype.hasobject:
                    raise ParameterError(f"{source}: member {info.filename!r} holds Python objects (dtype {dtype}); "
                                         "only numeric and string arrays are read (no pickles)")
                nbytes = math.prod(int(s) for s in shape) * dtype.itemsize
                if info.file_size < header_len + nbytes:
                    raise ParameterError(
                        f"{source}: member {info.filename!r} declares {nbytes} bytes of data (shape {tuple(shape)}, "
                        f"dtype {dtype}) but holds only {max(info.file_size - header_len, 0)}: truncated or corrupt"
                    )
                out[name] = (tuple(int(s) for s in shape), dtype, nbytes)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ParameterError(f"{source}: not a readable .npz file ({exc})") from None
    return out
