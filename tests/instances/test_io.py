"""Bounded input (instances.io, instances.cnf.read_formula): sources, compression, caps, special files."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys
import threading
import time

import pytest
from pysat.formula import CNF

from instances import read_formula
from instances.cnf import CNFFormula
from instances.errors import DimacsError, ParameterError
from instances.io import (
    DEFAULT_MAX_INPUT,
    FIFO_TIMEOUT_ENV,
    MAX_INPUT_ENV,
    fifo_timeout,
    max_input_bytes,
    parse_byte_size,
    read_input,
    stdin_is_tty,
)

TEXT = b"c example\np cnf 3 2\n1 -2 0\n2 3 0\n"
CLAUSES = [[1, -2], [2, 3]]


def test_every_kind_of_source(tmp_path):
    path = tmp_path / "f.cnf"
    path.write_bytes(TEXT)
    assert read_formula(path).clauses == CLAUSES
    assert read_formula(str(path)).clauses == CLAUSES
    assert CNFFormula.read(path).clauses == CLAUSES
    assert read_formula(io.BytesIO(TEXT)).clauses == CLAUSES
    assert read_formula(io.StringIO(TEXT.decode())).clauses == CLAUSES
    with open(path, "rb") as fh:
        assert read_formula(fh).clauses == CLAUSES
    with open(path, encoding="utf-8") as fh:
        assert read_formula(fh).clauses == CLAUSES
    pysat_cnf = CNF(from_clauses=CLAUSES)
    assert read_formula(pysat_cnf).clauses == CLAUSES and read_formula(pysat_cnf).num_vars == 3
    f = CNFFormula(CLAUSES)
    assert read_formula(f) is f
    with pytest.raises(ParameterError, match="cannot read input from a int"):
        read_formula(42)
    # Errors name the file object's name, and the line.
    with pytest.raises(DimacsError, match=r"^<stream>:2: expected an integer literal"):
        read_formula(io.BytesIO(b"p cnf 1 1\nx 0\n"))


def test_constructor_refuses_non_integer_literals():
    with pytest.raises(ParameterError, match="integer literals"):
        CNFFormula([[1.5, 2]])
    with pytest.raises(ParameterError, match="integer literals"):
        CNFFormula([["1"]])


def test_stdin_dash_reads_bytes_and_decompresses():
    code = "from instances import read_formula; f = read_formula('-'); print(f.num_vars, f.clauses)"
    for payload in (TEXT, gzip.compress(TEXT), b"\xef\xbb\xbf" + TEXT.replace(b"\n", b"\r\n")):
        out = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.decode().strip() == f"3 {CLAUSES}"


def test_stdin_from_a_device_is_refused_and_tty_helper():
    code = ("import sys; from instances import read_formula\nfrom instances.io import stdin_is_tty\n"
            "assert not stdin_is_tty()\ntry:\n    read_formula('-')\nexcept Exception as e:\n    print(e)")
    with open("/dev/zero", "rb") as zero:
        out = subprocess.run([sys.executable, "-c", code], stdin=zero, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == ("<stdin>: is a character device, not a file; refusing to read it "
                                            "(pipe it through 'head -c')")
    assert isinstance(stdin_is_tty(), bool)


@pytest.mark.parametrize(("compress", "fmt"), [(gzip.compress, "gzip"), (bz2.compress, "bzip2"),
                                                (lzma.compress, "xz")])
def test_compressed_by_magic_bytes_not_name(tmp_path, compress, fmt):
    for name in ("f.cnf", f"f.cnf.{fmt}", "f.txt"):  # the extension does not matter
        path = tmp_path / name
        path.write_bytes(compress(TEXT))
        assert read_formula(path).clauses == CLAUSES
    # Two concatenated streams decompress to their concatenation (as gzip -dc does).
    path = tmp_path / "two"
    path.write_bytes(compress(b"p cnf 3 2\n1 -2 0\n") + compress(b"2 3 0\n"))
    assert read_formula(path).clauses == CLAUSES
    # Truncated and corrupt data: one line naming the file and the format.
    data = compress(TEXT)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DimacsError, match=rf"^{path}: (truncated|corrupt) {fmt} data"):
        read_formula(path)
    path.write_bytes(data[:6] + bytes(range(200)) * 3)
    with pytest.raises(DimacsError, match=rf"^{path}: (truncated|corrupt) {fmt} data"):
        read_formula(path)


def test_unsupported_compression_is_named(tmp_path):
    path = tmp_path / "f.cnf.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    with pytest.raises(DimacsError, match="zstd-compressed, which is not read"):
        read_formula(path)


def test_cap_on_plain_and_decompressed_input(tmp_path, monkeypatch):
    path = tmp_path / "f.cnf"
    path.write_bytes(TEXT)
    assert read_formula(path, max_bytes=len(TEXT)).clauses == CLAUSES
    with pytest.raises(DimacsError, match=rf"^{path}: input exceeds the input cap of {len(TEXT) - 1} bytes; "
                                          rf"raise it with {MAX_INPUT_ENV}=SIZE"):
        read_formula(path, max_bytes=len(TEXT) - 1)
    # A DIMACS bomb: 64 MiB of blanks in 64 KiB of gzip stops at a 1 MiB cap, without expanding it all.
    bomb = tmp_path / "bomb.cnf.gz"
    bomb.write_bytes(gzip.compress(b"c" + b" " * (64 << 20), compresslevel=9))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DimacsError) as info:
        read_formula(bomb, max_bytes=2**20)
    assert str(info.value) == (f"{bomb}: decompressed gzip input exceeds the input cap of 1 MiB; raise it with "
                               f"{MAX_INPUT_ENV}=SIZE (e.g. {MAX_INPUT_ENV}=2G) or max_bytes=")
    # The environment variable sets the default cap; the keyword wins over it.
    monkeypatch.setenv(MAX_INPUT_ENV, "1M")
    assert max_input_bytes() == 2**20
    with pytest.raises(DimacsError, match="cap of 1 MiB"):
        read_formula(bomb)
    monkeypatch.setenv(MAX_INPUT_ENV, "lots")
    with pytest.raises(ParameterError, match=MAX_INPUT_ENV):
        read_formula(path)
    monkeypatch.delenv(MAX_INPUT_ENV)
    assert max_input_bytes() == DEFAULT_MAX_INPUT == 256 * 2**20
    with pytest.raises(ParameterError, match="positive integer"):
        read_formula(path, max_bytes=0)
    with pytest.raises(DimacsError, match="cap of 4 bytes"):
        read_formula(io.StringIO(TEXT.decode()), max_bytes=4)


def test_parse_byte_size():
    assert parse_byte_size("2G") == 2 * 2**30 and parse_byte_size("10 KiB") == 10240
    for bad in ("", "-1", "0", "1X", "9" * 80 + "X"):
        with pytest.raises(ParameterError):
            parse_byte_size(bad)
    # read exactly, however long: an 80-digit size is a (huge) limit, not a float overflow
    assert parse_byte_size("9" * 80) == int("9" * 80) and parse_byte_size("9" * 80 + "K") == int("9" * 80) * 1024
    # past 1000 digits, or a long run that does not match, is refused at once (Fraction raised a raw ValueError
    # past 4300 digits, and two adjacent digit runs in the pattern backtracked quadratically)
    t0 = time.monotonic()
    for bad in ("1" * 5000, "1" * 20000 + "x", "1" * 1001):
        with pytest.raises(ParameterError, match="cannot read size"):
            parse_byte_size(bad)
    assert time.monotonic() - t0 < 5


def test_devices_are_refused_at_once():
    for dev in ("/dev/zero", "/dev/urandom", "/dev/null"):
        t0 = time.monotonic()
        with pytest.raises(DimacsError, match=rf"^{dev}: is a character device, not a file; refusing"):
            read_formula(dev)
        assert time.monotonic() - t0 < 5


def test_directory_missing_and_unreadable(tmp_path):
    with pytest.raises(DimacsError, match="is a directory"):
        read_formula(tmp_path)
    with pytest.raises(DimacsError, match="no such file"):
        read_formula(tmp_path / "nope.cnf")
    with pytest.raises(DimacsError, match="NUL byte at offset 2"):
        read_formula(io.BytesIO(b"p \x00"))
    with pytest.raises(DimacsError, match="not a valid file name"):
        read_formula("a\x00b.cnf")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_without_writer_times_out_and_with_writer_is_read(tmp_path, monkeypatch):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    monkeypatch.setenv(FIFO_TIMEOUT_ENV, "0.5")
    assert fifo_timeout() == 0.5
    t0 = time.monotonic()
    with pytest.raises(DimacsError, match=rf"^{fifo}: no data from the FIFO within 0.5 s"):
        read_formula(fifo)
    assert time.monotonic() - t0 < 5

    def writer(payload: bytes) -> None:
        with open(fifo, "wb") as fh:  # blocks until the reader has opened the FIFO
            for i in range(0, len(payload), 7):
                fh.write(payload[i : i + 7])
                fh.flush()

    for payload in (TEXT, gzip.compress(TEXT)):
        th = threading.Thread(target=writer, args=(payload,), daemon=True)
        th.start()
        assert read_formula(fifo, max_bytes=10_000).clauses == CLAUSES
        th.join(10)
    # A writer that sends more than the cap is stopped at the cap.
    th = threading.Thread(target=lambda: _ignore_broken_pipe(writer, TEXT * 100), daemon=True)
    th.start()
    with pytest.raises(DimacsError, match="exceeds the input cap of 100 bytes"):
        read_formula(fifo, max_bytes=100)
    th.join(10)
    with pytest.raises(ParameterError, match="positive number of seconds"):
        read_input(fifo, timeout=float("nan"))


def _ignore_broken_pipe(fn, *args) -> None:
    try:
        fn(*args)
    except BrokenPipeError:
        pass


@pytest.mark.parametrize("digits", [19, 4301, 5000, 100_000])
def test_integer_tokens_of_any_length(digits):
    big = "9" * digits
    with pytest.raises(DimacsError) as info:
        read_formula(io.BytesIO(f"p cnf 3 1\n1 -{big} 0\n".encode()))
    assert str(info.value).startswith("<stream>:2: literal -")
    assert "is out of range: the header declares 3 variables" in str(info.value)
    assert len(str(info.value)) < 200
    with pytest.raises(DimacsError, match=r"^<stream>:1: header count .* is too large"):
        read_formula(io.BytesIO(f"p cnf {big} 1\n1 0\n".encode()))
    with pytest.raises(DimacsError, match=r"^<stream>:1: header count"):
        read_formula(io.BytesIO(f"p cnf 3 {big}\n1 0\n".encode()))
    # Leading zeros are not significant digits.
    assert read_formula(io.BytesIO(f"p cnf {'0' * digits}3 1\n{'0' * digits}1 0\n".encode())).clauses == [[1]]


def test_cnfgen_output_parses():
    cnfgen = pytest.importorskip("cnfgen")  # in the test extra
    out = subprocess.run([sys.executable, "-m", "cnfgen", "randkcnf", "3", "10", "40"], capture_output=True,
                         timeout=120)
    if out.returncode != 0:  # older cnfgen releases have no __main__; use the console script
        out = subprocess.run(["cnfgen", "randkcnf", "3", "10", "40"], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    f = read_formula(io.BytesIO(out.stdout))
    assert (f.num_vars, f.num_clauses, f.k) == (10, 40, 3)
    assert f.clauses == CNF(from_string=out.stdout.decode()).clauses
    assert cnfgen is not None
