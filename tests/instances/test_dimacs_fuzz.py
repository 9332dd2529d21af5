"""Fuzz the DIMACS reader with malformed files generated here, in-process and through ``finegrained chain``.

Every file either parses, and then the chain's answer agrees with pysat's CDCL solver, or gives one
:class:`DimacsError` line naming the file; never a traceback, a hang or another exception. The parser runs
in-process on every file; a sample of about twenty (plus a FIFO without a writer and /dev/zero) goes through the
real console script in subprocesses, as a user would run it.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from instances import read_formula
from instances.cnf import CNFFormula
from instances.errors import DimacsError
from instances.generators import random_ksat

#: Labels of generated files that must parse (odd but valid); every other file must give a DimacsError, except
#: the randomly truncated ones, which may (rarely) still be a complete formula.
VALID = ("valid-", "compressed-ok", "long-line", "empty-clause", "form-feed", "vt", "header8", "header15",
         "lit-zeros", "nvars-zeros", "nclauses-zeros")


def _base(rng: np.random.Generator) -> bytes:
    n = int(rng.integers(3, 9))
    return random_ksat(n, int(rng.integers(1, 5 * n)), 3, seed=rng).to_dimacs().encode()


def _cases(rng: np.random.Generator) -> list[tuple[str, bytes]]:
    """(label, content) pairs: malformed files of many kinds, and some odd but valid ones (see VALID)."""
    out: list[tuple[str, bytes]] = []
    for i in range(12):  # truncated anywhere, header included
        data = _base(rng)
        out.append((f"truncated{i}", data[: int(rng.integers(0, len(data)))]))
    big = {"huge": "9" * 25, "huge4301": "9" * 4301, "huge5000": "7" * 5000, "neghuge": "-" + "9" * 5000,
           "zeros": "0" * 5000 + "1", "int64": str(2**63), "negint64": str(-(2**63))}
    for name, tok in big.items():
        out.append((f"lit-{name}", f"p cnf 3 1\n1 {tok} 0\n".encode()))
        out.append((f"nvars-{name}", f"p cnf {tok} 1\n1 0\n".encode()))
        out.append((f"nclauses-{name}", f"p cnf 3 {tok}\n1 0\n".encode()))
    headers = ["p cnf", "p cnf 3", "p cnf 3 1 2", "p cnf -3 1", "p cnf 3 -1", "p cnf 0 0", "p cnf 0 1", "p dnf 3 1",
               "p  cnf  3  1", "pcnf 3 1", "P cnf 3 1", "p cnf 3.0 1", "p cnf 0x3 1", "p cnf 3e0 1", "p cnf +3 1",
               "p\tcnf\t3\t1", "p cnf 3 1 % x"]
    for i, h in enumerate(headers):
        out.append((f"header{i}", f"{h}\n1 -2 0\n".encode()))
    literals = ["0", "-0", "4", "-4", "+1", "--1", "-", "1.0", "1e0", "0x1", "1_0", "\u0661", "one", "1,2", "1-2",
                "\u00a01", "1\u200b", "\xe9", "\ufeff1"]
    for i, lit in enumerate(literals):
        out.append((f"literal{i}", f"p cnf 3 1\n{lit} 2 0\n".encode()))
    for i in range(6):  # wrong clause counts
        data = _base(rng)
        lines = data.split(b"\n")
        header = lines[0].split()
        header[3] = str(int(header[3]) + int(rng.choice([-2, -1, 1, 2, 1000]))).encode()
        out.append((f"count{i}", b"\n".join([b" ".join(header), *lines[1:]])))
    for i in range(8):  # binary garbage, with and without a header in front
        junk = rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
        out.append((f"garbage{i}", junk if i % 2 else b"p cnf 3 1\n" + junk))
    for i in range(5):  # NUL bytes
        data = _base(rng)
        pos = int(rng.integers(0, len(data)))
        out.append((f"nul{i}", data[:pos] + b"\x00" + data[pos:]))
    for i, (magic, comp) in enumerate(((b"\x1f\x8b", gzip.compress), (b"BZh", bz2.compress),
                                       (b"\xfd7zXZ\x00", lzma.compress))):
        junk = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
        data = comp(_base(rng))
        out.append((f"compressed-garbage{i}", magic + junk))
        out.append((f"compressed-truncated{i}", data[: len(data) // 2]))
        out.append((f"compressed-bitflip{i}", data[:12] + bytes([data[12] ^ 0x55]) + data[13:]))
        out.append((f"compressed-ok{i}", data))
        out.append((f"compressed-trailing-junk{i}", data + b"trailing"))
        out.append((f"compressed-nul{i}", comp(b"p cnf 2 1\n1 \x00 0\n")))
        out.append((f"compressed-empty{i}", comp(b"")))
    odd_valid = [
        ("crlf", lambda d: d.replace(b"\n", b"\r\n")),
        ("bom", lambda d: b"\xef\xbb\xbf" + d),
        ("bom-crlf", lambda d: b"\xef\xbb\xbf" + d.replace(b"\n", b"\r\n")),
        ("tabs", lambda d: d.replace(b" ", b"\t")),
        ("spaces", lambda d: d.replace(b" ", b"   ")),
        ("trailing", lambda d: d.replace(b"\n", b"  \n")),
        ("percent", lambda d: d + b"%\n0\n"),
        ("no-final-newline", lambda d: d.rstrip(b"\n")),
        ("joined", lambda d: d.split(b"\n", 1)[0] + b"\n" + d.split(b"\n", 1)[1].replace(b" 0\n", b" 0 ")),
        ("latin1-comment", lambda d: b"c caf\xe9\n" + d),
    ]
    for name, fn in odd_valid:
        base = _base(rng)
        out.append((f"valid-{name}", fn(base)))
        out.append((f"valid-{name}-reference", base))  # the same formula, plainly written
    out += [
        ("empty", b""), ("blank", b"\n\n  \n"), ("comments", b"c a\nc b\n"), ("bom-only", b"\xef\xbb\xbf"),
        ("cr-only", b"p cnf 2 1\r1 -2 0\r"), ("form-feed", b"p cnf 2 1\n1\f-2 0\n"), ("vt", b"p cnf 2 1\n1\v2 0\n"),
        ("two-headers", b"p cnf 2 1\np cnf 2 1\n1 0\n"), ("clause-first", b"1 0\np cnf 1 1\n"),
        ("unterminated", b"p cnf 2 1\n1 2"), ("long-line", b"p cnf 2 1\n" + b"1 " * 200_000 + b"0\n"),
        ("utf16", "p cnf 2 1\n1 2 0\n".encode("utf-16")), ("empty-clause", b"p cnf 2 1\n0\n"),
        ("zip", b"PK\x03\x04" + bytes(30)), ("zstd", b"\x28\xb5\x2f\xfd" + bytes(10)),
    ]
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    files = []
    for label, content in _cases(np.random.default_rng(20261201)):
        path = root / f"{label}.cnf"
        path.write_bytes(content)
        files.append((label, path))
    assert len(files) >= 100
    return files


def _truth(f: CNFFormula) -> bool:
    return f.solve_cdcl() is not None


def test_every_file_parses_or_gives_one_line(corpus):
    from finegrained.chain import run_chain

    parsed: dict[str, CNFFormula] = {}
    errors = 0
    for label, path in corpus:
        try:
            f = read_formula(path)
        except DimacsError as exc:
            msg = str(exc)
            assert "\n" not in msg and len(msg) < 400, (label, msg)
            assert msg.startswith(f"{path}:") or msg.startswith(f"{path} "), (label, msg)
            assert not label.startswith(VALID), (label, msg)
            errors += 1
            continue
        assert label.startswith(VALID) or label.startswith("truncated"), label
        parsed[label] = f
        # A formula the strict parser accepts is decided by the chain exactly as pysat's CDCL solver decides it.
        result = run_chain(f, cdcl=False) if f.num_vars <= 16 else None
        if result is not None:
            assert result.satisfiable == _truth(f), label
            if result.satisfiable:
                assert f.is_satisfied_by(result.assignment), label
    # Odd spellings of a formula read as the formula itself.
    for label, f in parsed.items():
        if label.startswith("valid-") and not label.endswith("-reference"):
            ref = parsed[f"{label}-reference"]
            assert (f.num_vars, f.clauses) == (ref.num_vars, ref.clauses), label
    assert len(parsed) >= 20 and errors >= 90, (len(parsed), errors)


def _chain(path: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["finegrained", "chain", path, "--no-cdcl", "--json"], capture_output=True, text=True,
                          timeout=60, env=env)


def test_console_script_on_a_sample(corpus, tmp_path):
    labels = {"truncated5", "lit-huge5000", "nvars-neghuge", "literal17", "count0", "garbage1", "nul0",
              "compressed-garbage0", "compressed-truncated2", "compressed-ok0", "compressed-ok1", "compressed-ok2",
              "valid-crlf", "valid-bom"}
    sample = [(label, str(path)) for label, path in corpus if label in labels]
    assert len(sample) == len(labels)
    fifo = tmp_path / "nowriter.fifo"
    os.mkfifo(fifo)
    sample += [("fifo", str(fifo)), ("dev-zero", "/dev/zero"), ("dev-urandom", "/dev/urandom")]
    env = dict(os.environ, FINEGRAINED_FIFO_TIMEOUT="1", OPENBLAS_NUM_THREADS="1")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda item: (item, _chain(item[1], env)), sample))
    for (label, path), out in results:
        assert "Traceback" not in out.stderr, (label, out.stderr)
        assert out.returncode in (0, 2), (label, out.returncode, out.stderr)
        if out.returncode == 2:
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"finegrained: error: {path}"), (label, lines)
        else:
            report = json.loads(out.stdout)
            assert report["satisfiable"] == _truth(read_formula(path)), label
    codes = {label: out.returncode for (label, _), out in results}
    assert codes["compressed-ok0"] == codes["valid-crlf"] == 0
    assert codes["fifo"] == codes["dev-zero"] == codes["lit-huge5000"] == 2
