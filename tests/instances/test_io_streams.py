"""instances.io on FIFOs and open file objects: chunked reads, the poll/select waits, the cap and every message.

FIFO tests never block: the test holds its own read end (so opening the write end returns at once, and the bytes
``read_input`` leaves behind can be read back), every wait is bounded by a short FIFO timeout, a watchdog thread
ends any read still waiting after a few seconds, and every descriptor is closed in ``finally``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import resource
import select
import threading
import time

import pytest

from instances.errors import DimacsError
from instances.io import FIFO_TIMEOUT_ENV, MAX_INPUT_ENV, read_input

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")

TEXT = b"p cnf 3 2\n1 -2 0\n2 3 -1 0\n"


def _cap_message(source, cap: int) -> str:
    return (f"{source}: input exceeds the input cap of {cap} bytes; raise it with {MAX_INPUT_ENV}=SIZE (e.g. "
            f"{MAX_INPUT_ENV}=2G) or max_bytes=")


class _Ends:
    """The test's read end ``keep`` and write end ``w`` of a FIFO, and the writer threads using them."""

    def __init__(self, path) -> None:
        self.keep = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.w: int | None = os.open(path, os.O_WRONLY)  # does not block: a reader (keep) exists
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def close_writer(self) -> None:
        with self.lock:
            if self.w is not None:
                os.close(self.w)
                self.w = None

    def close(self) -> None:
        for th in self.threads:  # before closing: a late close must not hit a descriptor number reused since
            th.join(10)
        self.close_writer()
        os.close(self.keep)


@contextlib.contextmanager
def _fifo(tmp_path, name: str = "in.fifo"):
    """A FIFO with the test's own read end and an open write end, both closed (after the writers) on exit."""
    path = tmp_path / name
    os.mkfifo(path)
    ends = _Ends(path)
    try:
        yield path, ends
    finally:
        ends.close()


def _writer(ends: _Ends, pieces, pause: float, close_after: float = 0.0) -> threading.Thread:
    """Write ``pieces`` with ``pause`` seconds before each, then close the write end (EOF) ``close_after`` later.

    The writer must close while ``read_input`` has the FIFO open: a reader that opens after the last writer has
    gone is never told so by poll (Linux reports POLLHUP only for writers it has seen), so it would time out.
    """

    def run() -> None:
        for piece in pieces:
            time.sleep(pause)
            with ends.lock:
                os.write(ends.w, piece)
        time.sleep(close_after)
        ends.close_writer()

    th = threading.Thread(target=run, daemon=True)
    ends.threads.append(th)
    th.start()
    return th


@contextlib.contextmanager
def _watchdog(path, after: float = 4.0):
    """If a read of ``path`` still waits after ``after`` seconds, open and close a writer, so that it ends with EOF
    (a wait without a timeout then shows up as a wrong answer instead of a hang)."""
    stop = threading.Event()

    def run() -> None:
        if stop.wait(after):
            return
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # ENXIO when nobody reads: then nothing waits

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join(10)


def _no_poll(monkeypatch, use_poll: bool) -> None:
    if not use_poll:
        monkeypatch.delattr(select, "poll")  # the select() fallback of platforms without poll


@pytest.mark.parametrize("use_poll", [True, False])
def test_fifo_data_arriving_in_pieces_is_read_within_a_timeout_per_piece(tmp_path, monkeypatch, use_poll):
    """Eight pieces 0.15 s apart with a 1 s timeout per chunk: each wait must end when a piece arrives (not only
    when the writer closes, 1.2 s later), and the pieces must be joined exactly."""
    _no_poll(monkeypatch, use_poll)
    pieces = [TEXT[i : i + 4] for i in range(0, len(TEXT), 4)][:7]
    pieces.append(TEXT[28:])
    assert b"".join(pieces) == TEXT and len(pieces) == 8
    with _fifo(tmp_path) as (path, fds), _watchdog(path, 6.0):
        th = _writer(fds, pieces, 0.15)
        assert read_input(path, timeout=1.0) == TEXT.decode()
        th.join(10)


@pytest.mark.parametrize("use_poll", [True, False])
def test_fifo_without_writer_times_out_with_the_whole_message(tmp_path, monkeypatch, use_poll):
    _no_poll(monkeypatch, use_poll)
    path = tmp_path / "lonely.fifo"
    os.mkfifo(path)
    t0 = time.monotonic()
    with _watchdog(path, 3.0), pytest.raises(DimacsError) as info:
        read_input(path, timeout=0.3)
    assert time.monotonic() - t0 < 3.0
    assert str(info.value) == (f"{path}: no data from the FIFO within 0.3 s (no writer?); set {FIFO_TIMEOUT_ENV}="
                               "SECONDS to wait longer")
    assert info.value.source == str(path) and info.value.line is None


def test_fifo_holding_exactly_the_cap_is_read_and_one_byte_more_is_refused(tmp_path):
    with _fifo(tmp_path) as (path, fds), _watchdog(path, 6.0):
        th = _writer(fds, [TEXT], 0.0, 0.3)
        assert read_input(path, max_bytes=len(TEXT), timeout=2.0) == TEXT.decode()
        th.join(10)
    with _fifo(tmp_path, "second.fifo") as (path, fds):
        os.write(fds.w, TEXT)  # the cap is hit before EOF matters
        with pytest.raises(DimacsError) as info:
            read_input(path, max_bytes=len(TEXT) - 1, timeout=2.0)
        assert str(info.value) == _cap_message(path, len(TEXT) - 1)


def test_fifo_reader_stops_one_byte_past_the_cap_and_leaves_the_rest_in_the_pipe(tmp_path):
    """50 bytes, then 950 more: with a cap of 100 the reader takes 50 + 51 bytes (never more than cap + 1 in all),
    raises the cap error, and the other 899 bytes stay in the FIFO for the next reader."""
    payload = b"c " + b"x" * 997 + b"\n"
    assert len(payload) == 1000
    with _fifo(tmp_path) as (path, fds), _watchdog(path, 6.0):
        os.write(fds.w, payload[:50])  # the first read finds only these
        th = _writer(fds, [payload[50:]], 0.4)
        with pytest.raises(DimacsError) as info:
            read_input(path, max_bytes=100, timeout=2.0)
        th.join(10)
        assert str(info.value) == _cap_message(path, 100)
        left = b""
        while chunk := os.read(fds.keep, 4096):
            left += chunk
        assert left == payload[101:]


def test_fifo_spurious_wake_up_is_retried(tmp_path, monkeypatch):
    """A readable report followed by EAGAIN (another reader took the bytes) means: wait again."""
    real_read = os.read
    calls = []

    def flaky_read(fd, n):
        calls.append(n)
        if len(calls) == 1:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_read(fd, n)

    with _fifo(tmp_path) as (path, fds), _watchdog(path, 6.0):
        th = _writer(fds, [TEXT], 0.0, 0.3)
        monkeypatch.setattr(os, "read", flaky_read)
        assert read_input(path, timeout=2.0) == TEXT.decode()
        th.join(10)
    assert len(calls) == 3  # EAGAIN, the data, EOF


def test_fifo_on_a_descriptor_above_fd_setsize_is_read_with_poll(tmp_path):
    """select() refuses descriptors >= FD_SETSIZE (1024); the reader must use poll where it exists."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200) if soft != resource.RLIM_INFINITY else soft, hard))
    filler: list[int] = []
    try:
        with _fifo(tmp_path) as (path, fds), _watchdog(path, 6.0):
            th = _writer(fds, [TEXT], 0.0, 0.5)
            null = os.open(os.devnull, os.O_RDONLY)
            filler.append(null)
            while True:  # take every descriptor below 1030, so the one read_input opens is above FD_SETSIZE
                fd = os.dup(null)
                filler.append(fd)
                if fd >= 1030:
                    break
            assert read_input(path, timeout=2.0) == TEXT.decode()
            th.join(10)
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ------------------------------------------------------------------------------------------- file objects
class _BrokenText(io.TextIOBase):
    """A text stream whose reads fail (a disk error after the probe)."""

    name = "broken.txt"

    def read(self, n=-1):
        if n == 0:
            return ""
        raise OSError(errno.EIO, "Input/output error")


class _BrokenBinary:
    """A binary file object without a descriptor whose reads fail after the probe."""

    name = "broken.bin"

    def __init__(self, exc: OSError) -> None:
        self.exc = exc

    def read(self, n=-1):
        if n == 0:
            return b""
        raise self.exc


def test_failing_text_stream_gives_one_dimacs_error_with_the_whole_message():
    with pytest.raises(DimacsError) as info:
        read_input(_BrokenText())
    assert str(info.value) == "broken.txt: cannot read: [Errno 5] Input/output error"
    assert (info.value.source, info.value.line) == ("broken.txt", None)


def test_failing_binary_stream_names_the_strerror_or_the_exception():
    with pytest.raises(DimacsError) as info:
        read_input(_BrokenBinary(OSError(errno.EIO, "Input/output error")))
    assert str(info.value) == "broken.bin: cannot read: Input/output error"
    assert (info.value.source, info.value.line, info.value.message) == ("broken.bin", None,
                                                                        "cannot read: Input/output error")
    with pytest.raises(DimacsError) as info:
        read_input(_BrokenBinary(OSError("the tape broke")))
    assert str(info.value) == "broken.bin: cannot read: the tape broke"


def test_text_stream_is_read_at_most_one_character_past_the_cap():
    text = "p cnf 1 1\n1 0\n" + "c " * 50
    fh = io.StringIO(text)
    with pytest.raises(DimacsError) as info:
        read_input(fh, max_bytes=20)
    assert str(info.value) == _cap_message("<stream>", 20)
    assert fh.read() == text[21:]  # the reader took cap + 1 characters, not the whole stream


def test_character_device_file_object_is_refused_without_reading():
    with open("/dev/zero", "rb") as fh:
        with pytest.raises(DimacsError) as info:
            read_input(fh, max_bytes=10)
        assert str(info.value) == ("/dev/zero: is a character device, not a file; refusing to read it (pipe it "
                                   "through 'head -c')")
        assert fh.tell() == 0


def test_regular_file_object_and_terminal_are_read(tmp_path):
    path = tmp_path / "f.cnf"
    path.write_bytes(TEXT)
    with open(path, "rb") as fh:
        assert read_input(fh) == TEXT.decode()
    # A terminal (a character device that is a TTY) is read like cat reads it: up to end-of-file (Ctrl-D).
    master, slave = os.openpty()
    try:
        os.write(master, TEXT + b"\x04")
        with open(slave, "rb", buffering=0, closefd=False) as fh:
            got = read_input(fh)
        assert got.split() == TEXT.decode().split()
    finally:
        os.close(master)
        os.close(slave)
