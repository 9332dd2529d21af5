"""Input guards of instances.io with exact values: byte sizes, memory messages, text-stream caps, .npz headers."""

from __future__ import annotations

import io
import sys
import zipfile

import numpy as np
import pytest

from instances.errors import DimacsError, ParameterError, ResourceLimitError
from instances.io import check_memory_limit, npz_headers, parse_byte_size, read_input, stdin_is_tty


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("1.5", 1), ("2", 2), ("2g", 2 * 2**30), ("1kib", 1024), ("1KB", 1024), ("3 MiB", 3 * 2**20),
    ("1t", 2**40), (" 7 ", 7),
])
def test_parse_byte_size_is_case_insensitive_and_accepts_one_byte(text, value):
    assert parse_byte_size(text) == value


def test_parse_byte_size_messages():
    with pytest.raises(ParameterError) as info:
        parse_byte_size("0.5")
    assert str(info.value) == "size must be at least 1 byte, got '0.5'"
    with pytest.raises(ParameterError) as info:
        parse_byte_size("lots")
    assert str(info.value) == "cannot read size 'lots'; expected a number with an optional K/M/G/T suffix"
    with pytest.raises(ParameterError) as info:
        parse_byte_size("0", what="--max-input")
    assert str(info.value) == "--max-input must be at least 1 byte, got '0'"


@pytest.mark.parametrize(("needed", "limit", "shown_needed", "shown_limit"), [
    (3 * 2**30, 2**30, "3 GiB", "1 GiB"),
    (2**30, 2**30 - 1, "1 GiB", "1024 MiB"),
    (5 * 2**20 + 2**19, 2**20, "5.5 MiB", "1 MiB"),
    (2**20, 2**20 - 1, "1 MiB", "1024 KiB"),
    (3 * 2**10, 2**10, "3 KiB", "1 KiB"),
    (2**10, 2**10 - 1, "1 KiB", "1023 bytes"),
    (2**70 - 2**40, 10, "1.1e+12 GiB", "10 bytes"),
    (2**70, 10, "2^70 bytes", "10 bytes"),
    (3**50, 10, "2^79 bytes", "10 bytes"),
])
def test_memory_limit_message(needed, limit, shown_needed, shown_limit):
    with pytest.raises(ResourceLimitError) as info:
        check_memory_limit(needed, limit, "the thing")
    assert str(info.value) == f"the thing would need about {shown_needed} of memory, over the limit of {shown_limit} " \
                              "(max_memory)"
    check_memory_limit(limit, limit, "the thing")  # exactly at the limit is fine


def test_text_stream_cap_counts_characters_and_names_the_source():
    text = "p cnf 1 1\n1 0\n"
    assert read_input(io.StringIO(text), max_bytes=len(text)) == text
    with pytest.raises(DimacsError) as info:
        read_input(io.StringIO(text), max_bytes=len(text) - 1)
    assert str(info.value).startswith(f"<stream>: input exceeds the input cap of {len(text) - 1} bytes; raise it")
    assert read_input(io.BytesIO(text.encode()), max_bytes=len(text)) == text
    with pytest.raises(DimacsError) as info:
        read_input(io.BytesIO(text.encode()), max_bytes=len(text) - 1)
    assert str(info.value).startswith(f"<stream>: input exceeds the input cap of {len(text) - 1} bytes; raise it")


def test_undecodable_text_stream_message(tmp_path):
    path = tmp_path / "latin1.cnf"
    path.write_bytes(b"c caf\xe9\np cnf 1 1\n1 0\n")
    with open(path, encoding="utf-8") as fh, pytest.raises(DimacsError) as info:
        read_input(fh)
    assert str(info.value) == (f"{path}: not UTF-8 text (invalid continuation byte at byte 5); open it in binary "
                               "mode to keep stray bytes")


def test_closed_stream_message():
    fh = io.BytesIO(b"p cnf 1 1\n")
    fh.close()
    with pytest.raises(DimacsError) as info:
        read_input(fh)
    assert str(info.value) == "<stream>: cannot read: I/O operation on closed file."


def _npz(tmp_path, **arrays):
    path = tmp_path / "x.npz"
    np.savez(path, **arrays)
    return path


def test_npz_headers_read_shapes_dtypes_and_sizes(tmp_path):
    path = _npz(tmp_path, a=np.zeros((3, 4), np.uint8), b=np.ones(5, np.float64), s=np.array("hi"))
    with open(path, "rb") as fh:
        h = npz_headers(fh, "src")
    assert h == {"a": ((3, 4), np.dtype(np.uint8), 12), "b": ((5,), np.dtype(np.float64), 40),
                 "s": ((), np.dtype("<U2"), 8)}


def test_npz_headers_version_2_and_non_npy_member_names(tmp_path):
    path = tmp_path / "v2.npz"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("big.npy", "w") as fh:
            np.lib.format.write_array(fh, np.arange(6, dtype=np.int32).reshape(2, 3), version=(2, 0))
        with zf.open("raw", "w") as fh:
            np.lib.format.write_array(fh, np.zeros(2, np.int8))
    with open(path, "rb") as fh:
        assert npz_headers(fh, "src") == {"big": ((2, 3), np.dtype(np.int32), 24), "raw": ((2,), np.dtype(np.int8), 2)}


def test_npz_headers_refuse_objects_and_truncated_members(tmp_path):
    path = tmp_path / "obj.npz"
    with zipfile.ZipFile(path, "w") as zf:
        with zf.open("o.npy", "w") as fh:
            np.lib.format.write_array(fh, np.array([1, "a"], dtype=object), allow_pickle=True)
    with open(path, "rb") as fh, pytest.raises(ParameterError) as info:
        npz_headers(fh, "src")
    assert str(info.value) == ("src: member 'o.npy' holds Python objects (dtype object); only numeric and string "
                               "arrays are read (no pickles)")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((4, 4), np.float64))
    raw = buf.getvalue()
    header_len = len(raw) - 128
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("t.npy", raw[: header_len + 100])
    with open(path, "rb") as fh, pytest.raises(ParameterError) as info:
        npz_headers(fh, "src")
    assert str(info.value) == ("src: member 't.npy' declares 128 bytes of data (shape (4, 4), dtype float64) but holds "
                               "only 100: truncated or corrupt")
    path = tmp_path / "bad.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("n.npy", b"not an array at all")
    with open(path, "rb") as fh, pytest.raises(ParameterError, match=r"^src: member 'n.npy' is not a .npy array \("):
        npz_headers(fh, "src")


def test_npz_headers_refuse_other_format_versions_and_count_a_data_less_member_as_zero_bytes(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(3, np.int64), version=(1, 0))
    v1 = buf.getvalue()
    path = tmp_path / "v3.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", v1[:6] + b"\x03\x00" + v1[8:])  # the same header, claimed as format 3.0
    with open(path, "rb") as fh, pytest.raises(ParameterError) as info:
        npz_headers(fh, "src")
    assert str(info.value) == "src: member 'x.npy' has .npy format version (3, 0), which is not read (1.0 and 2.0 are)"
    path = tmp_path / "empty.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("e.npy", v1[: len(v1) - 24])  # the header alone, none of the 24 data bytes
    with open(path, "rb") as fh, pytest.raises(ParameterError) as info:
        npz_headers(fh, "src")
    assert str(info.value) == ("src: member 'e.npy' declares 24 bytes of data (shape (3,), dtype int64) but holds "
                               "only 0: truncated or corrupt")


class _FakeStdin:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        if isinstance(self.tty, Exception):
            raise self.tty
        return self.tty


@pytest.mark.parametrize(("stdin", "expected"), [
    (_FakeStdin(True), True), (_FakeStdin(False), False), (None, False),
    (_FakeStdin(ValueError("I/O operation on closed file")), False), (_FakeStdin(OSError("detached")), False),
])
def test_stdin_is_tty_for_terminals_files_and_closed_or_missing_stdin(monkeypatch, stdin, expected):
    monkeypatch.setattr(sys, "stdin", stdin)
    assert stdin_is_tty() is expected


def test_dimacs_error_keeps_its_parts():
    err = DimacsError("f.cnf", 3, "clause 2 is not terminated by 0")
    assert (err.source, err.line, err.message) == ("f.cnf", 3, "clause 2 is not terminated by 0")
    assert str(err) == "f.cnf:3: clause 2 is not terminated by 0"
    err = DimacsError("f.cnf", None, "no such file")
    assert (err.source, err.line, err.message, str(err)) == ("f.cnf", None, "no such file", "f.cnf: no such file")
    assert isinstance(err, ValueError)
