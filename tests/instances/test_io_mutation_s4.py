"""instances.io: whole messages, the exact cap boundary and read sizes (mutation triage, session 4).

Every message is checked whole (source name included), the cap is probed at cap and cap + 1 bytes, and the
number of bytes asked of a stream or a decompressor is recorded: a reader past the cap must not read (or inflate)
more than cap + 1 bytes, which is what keeps a decompression bomb within memory.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
import sys
import threading
import zlib

import pytest

import instances.io as iio
from instances.errors import DimacsError, ParameterError
from instances.io import MAX_INPUT_ENV, physical_memory, read_input, source_name


def _cap_message(source: str, cap: int, what: str = "input") -> str:
    return (f"{source}: {what} exceeds the input cap of {cap} bytes; raise it with {MAX_INPUT_ENV}=SIZE (e.g. "
            f"{MAX_INPUT_ENV}=2G) or max_bytes=")


class _Trickle(io.RawIOBase):
    """An endless binary stream that returns at most ``step`` bytes a read and counts what it handed out."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.given = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        k = self.step if n < 0 else min(n, self.step)
        self.given += k
        return b"a" * k


def test_stream_past_the_cap_is_read_no_further_than_cap_plus_one() -> None:
    fh = _Trickle(5)
    with pytest.raises(DimacsError) as err:
        read_input(fh, max_bytes=12)
    assert str(err.value) == _cap_message("<stream>", 12)
    assert fh.given == 13  # 5 + 5 + 3: each read asks only for what is left up to cap + 1


def test_exact_cap_is_accepted_and_one_more_byte_refused() -> None:
    assert read_input(io.BytesIO(b"x" * 12), max_bytes=12) == "x" * 12
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(b"x" * 13), max_bytes=12)
    assert str(err.value) == _cap_message("<stream>", 12)


def test_file_object_returning_a_non_bytes_chunk() -> None:
    class Lists:
        def read(self, n: int = -1) -> list:
            return [1] if n else []

    with pytest.raises(ParameterError) as err:
        read_input(Lists())
    assert str(err.value) == "<stream>: the file object returned list, expected bytes or str"


def test_source_names() -> None:
    fh = io.BytesIO(b"")
    assert source_name(fh) == "<stream>"
    fh.name = "named.cnf"
    assert source_name(fh) == "named.cnf"
    fh.name = 7  # not a str: the generic name
    assert source_name(fh) == "<stream>"
    named = io.BytesIO(b"a\x00b")
    named.name = "named.cnf"
    with pytest.raises(DimacsError) as err:
        read_input(named)
    assert str(err.value) == "named.cnf: not a text file (NUL byte at offset 1)"


def test_nul_messages_give_the_first_offset() -> None:
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(b"abc\x00de\x00f"))
    assert str(err.value) == "<stream>: not a text file (NUL byte at offset 3)"
    with pytest.raises(DimacsError) as err:
        read_input(io.StringIO("ab\x00c\x00"))
    assert str(err.value) == "<stream>: not a text file (NUL character at offset 2)"


def test_undecodable_bytes_are_kept_as_surrogates_and_only_a_bom_is_stripped() -> None:
    assert read_input(io.BytesIO(b"c \xff\np cnf 0 0\n")) == "c \udcff\np cnf 0 0\n"
    assert read_input(io.BytesIO(b"p cnf 0 0\n")) == "p cnf 0 0\n"
    assert read_input(io.BytesIO("\ufeffp cnf 0 0\n".encode())) == "p cnf 0 0\n"


def test_unsupported_compression_message() -> None:
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"junk"))
    assert str(err.value) == ("<stream>: is zstd-compressed, which is not read; decompress it first "
                              "(gzip, bzip2 and xz are read directly)")


def test_gzip_messages_and_concatenated_streams() -> None:
    two = gzip.compress(b"p cnf 1 1\n") + gzip.compress(b"1 0\n")
    assert read_input(io.BytesIO(two)) == "p cnf 1 1\n1 0\n"
    assert read_input(io.BytesIO(two + b"\x00" * 7)) == "p cnf 1 1\n1 0\n"  # zero padding is allowed
    one = gzip.compress(b"p cnf 1 1\n1 0\n")
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(one + b"garbage"))
    assert str(err.value) == f"<stream>: unexpected data after the gzip stream, at compressed byte {len(one)}"
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(one[:-9]))  # cut inside the trailer
    assert str(err.value) == "<stream>: truncated gzip data (the stream ends before its end marker)"
    bad = bytearray(one)
    bad[3] = 0xE0  # reserved flag bits: zlib refuses the header
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(bytes(bad)))
    try:
        zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(bytes(bad))
    except zlib.error as exc:
        expected = f"<stream>: corrupt gzip data ({exc})"
    assert str(err.value) == expected


def test_decompressor_never_asked_for_more_than_cap_plus_one_in_total(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, wbits: int) -> None:
            self.d = real(wbits)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            asked.append(max_length)
            return self.d.decompress(data, max_length)

        def __getattr__(self, name: str):
            return getattr(self.d, name)

    class Shim:
        MAX_WBITS = zlib.MAX_WBITS
        error = zlib.error

        @staticmethod
        def decompressobj(wbits: int) -> Counting:
            return Counting(wbits)

    monkeypatch.setattr(iio, "zlib", Shim)
    # A small first stream, then a bomb: the second stream may only fill what is left of the cap.
    data = gzip.compress(b"a" * 700) + gzip.compress(b"b" * 100_000)
    assert len(data) < 1000  # the raw input is within the cap; only its inflated size is not
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(data), max_bytes=1000)
    assert str(err.value) == _cap_message("<stream>", 1000, "decompressed gzip input")
    assert asked[0] == 1001
    assert asked[1] == 301
    assert max(asked) <= 1001


def test_bzip2_cap_boundary() -> None:
    assert read_input(io.BytesIO(bz2.compress(b"y" * 50)), max_bytes=50) == "y" * 50
    with pytest.raises(DimacsError) as err:
        read_input(io.BytesIO(bz2.compress(b"y" * 51)), max_bytes=50)
    assert str(err.value) == _cap_message("<stream>", 50, "decompressed bzip2 input")


def test_physical_memory_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    real = physical_memory()
    assert real == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    def refuse(name: str) -> int:
        raise ValueError(f"unrecognized configuration name {name!r}")

    monkeypatch.setattr(os, "sysconf", refuse)
    assert physical_memory() == 8 * 2**30 == 8589934592


def test_stdin_reads_the_binary_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdin:
        buffer = io.BytesIO(gzip.compress(b"p cnf 2 0\n"))

        def read(self, n: int = -1) -> str:  # the text layer must not be used when a buffer exists
            return "c wrong layer\n"

    monkeypatch.setattr(sys, "stdin", Stdin())
    assert read_input("-") == "p cnf 2 0\n"


def test_path_messages(tmp_path) -> None:
    missing = str(tmp_path / "missing.cnf")
    with pytest.raises(DimacsError) as err:
        read_input(missing)
    assert str(err.value) == f"{missing}: no such file"
    with pytest.raises(DimacsError) as err:
        read_input("a\x00b")
    assert str(err.value) == "'a\\x00b': not a valid file name (embedded null byte)"
    with pytest.raises(DimacsError) as err:
        read_input("/dev/null")
    assert str(err.value) == ("/dev/null: is a character device, not a file; refusing to read it "
                              "(pipe it through 'head -c')")
    big = tmp_path / "big.cnf"
    big.write_bytes(b"z" * 11)
    with pytest.raises(DimacsError) as err:
        read_input(str(big), max_bytes=10)
    assert str(err.value) == _cap_message(str(big), 10)
    assert read_input(str(big), max_bytes=11) == "z" * 11


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_read_error_after_open_is_a_dimacs_error() -> None:
    # /proc/self/mem is a regular file whose read at offset 0 fails with EIO (page 0 is never mapped).
    with pytest.raises(DimacsError) as err:
        read_input("/proc/self/mem")
    assert str(err.value) == f"/proc/self/mem: cannot read: {os.strerror(5)}"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_by_path_with_and_without_writer(tmp_path) -> None:
    fifo = str(tmp_path / "in.fifo")
    os.mkfifo(fifo)
    with pytest.raises(DimacsError) as err:
        read_input(fifo, timeout=0.2)
    assert str(err.value) == (f"{fifo}: no data from the FIFO within 0.2 s (no writer?); set "
                              "FINEGRAINED_FIFO_TIMEOUT=SECONDS to wait longer")

    def write() -> None:
        with open(fifo, "wb") as w:  # blocks until read_input has opened the read end
            w.write(b"p cnf 1 0\n")

    t = threading.Thread(target=write, daemon=True)
    t.start()
    try:
        assert read_input(fifo, timeout=5.0) == "p cnf 1 0\n"
    finally:
        t.join(5.0)


def test_open_refusing_a_directory_gets_the_directory_message(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Linux opens a directory read-only without error (stat refuses it first), but a platform whose open(2)
    # answers EISDIR must get the same message as the stat check, not a generic "cannot read".
    f = tmp_path / "f.cnf"
    f.write_bytes(b"p cnf 0 0\n")

    def eisdir(path, flags, *args):
        raise IsADirectoryError(21, "Is a directory", path)

    monkeypatch.setattr(os, "open", eisdir)
    with pytest.raises(DimacsError) as err:
        read_input(str(f))
    assert str(err.value) == f"{f}: is a directory, expected a file"
