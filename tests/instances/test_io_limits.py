"""Limits checked before allocation: .npz headers (zip bombs), generators, explain --random.

The memory claims are tested in subprocesses under ``RLIMIT_AS`` and a timeout, as a user would meet them.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile

import numpy as np
import pytest

from instances.errors import ParameterError, ResourceLimitError
from instances.gap_ann import GapANNInstance
from instances.gap_ann_builders import load_gap_ann, load_memory_bytes, save_gap_ann
from instances.generators import estimate_memory, planted_ksat, random_ksat
from instances.io import npz_headers

#: Address-space cap of the subprocesses: enough for Python, numpy and pysat, far below what a bomb unpacks to.
AS_LIMIT = 1 << 30
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def _run_limited(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], preexec_fn=_limited, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def _member(zf: zipfile.ZipFile, name: str, arr_header: dict, chunks) -> None:
    """Write ``name.npy`` with a hand-made header and streamed data (so no array of that size exists here)."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as fh:
        np.lib.format.write_array_header_1_0(fh, arr_header)
        for chunk in chunks:
            fh.write(chunk)


def _scalar(zf: zipfile.ZipFile, name: str, value) -> None:
    with zf.open(f"{name}.npy", "w") as fh:
        np.lib.format.write_array(fh, np.array(value))


def _bomb(path, rows: int, cols: int, declared_rows: int | None = None) -> None:
    """A Gap-ANN archive whose A_packed is ``rows x cols`` zero bytes (deflated ~1000:1), header optionally lying."""
    zero = bytes(1 << 20)
    total = rows * cols
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, value in (("t", 2.0), ("eps", 0.5), ("d", cols * 8)):
            _scalar(zf, name, value)
        header = {"descr": "|u1", "fortran_order": False, "shape": (declared_rows or rows, cols)}
        _member(zf, "A_packed", header, (zero[: min(len(zero), total - i)] for i in range(0, total, len(zero))))
        _member(zf, "B_packed", {"descr": "|u1", "fortran_order": False, "shape": (1, cols)}, [bytes(cols)])


def test_zip_bomb_is_refused_before_unpacking_with_small_rss(tmp_path):
    # 512 MiB of packed bits in a ~500 KB file: numpy would unpack it to 4 GiB of 0/1 bytes (plus temporaries).
    path = tmp_path / "bomb.npz"
    _bomb(path, rows=2**16, cols=2**13)
    size = path.stat().st_size
    assert size < 600_000
    headers = npz_headers(open(path, "rb"), str(path))
    assert headers["A_packed"][0] == (2**16, 2**13) and headers["A_packed"][2] == 2**29
    assert load_memory_bytes(headers) > 4 * 2**30
    out = _run_limited(f"""
        import resource
        from instances.gap_ann_builders import load_gap_ann
        from instances.errors import ResourceLimitError
        for limit in (2**30, 4 * 2**30):  # even a limit above this process's address space is not reached
            try:
                load_gap_ann({str(path)!r}, max_memory=limit)
            except ResourceLimitError as exc:
                print(exc)
        print("rss_kb", [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0])
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"loading {path} would need about ") for line in lines[:2])
    assert "over the limit of 1 GiB" in lines[0]
    rss_kb = int(lines[2].split()[1])
    assert rss_kb < 200 * 1024


def test_lying_header_and_object_dtype_are_refused(tmp_path):
    # The header claims 2^33 rows, the member holds 1 MiB: refused as truncated before numpy allocates 8 GiB.
    path = tmp_path / "liar.npz"
    _bomb(path, rows=2**7, cols=2**13, declared_rows=2**20)
    out = _run_limited(f"""
        from instances.gap_ann_builders import load_gap_ann
        from instances.errors import FinegrainedError
        try:
            load_gap_ann({str(path)!r})
        except FinegrainedError as exc:
            print(exc)
    """)
    assert out.returncode == 0, out.stderr
    assert "member 'A_packed.npy' declares 8589934592 bytes of data" in out.stdout
    assert "truncated or corrupt" in out.stdout
    obj = tmp_path / "obj.npz"
    np.savez(obj, A=np.array([[0, 1]], dtype=object), B=np.eye(2, dtype=np.uint8), t=1.0, eps=0.5)
    with pytest.raises(ParameterError, match="holds Python objects"):
        load_gap_ann(obj)


def test_headers_match_numpy_and_memory_estimate_covers_the_load(tmp_path):
    rng = np.random.default_rng(3)
    inst = GapANNInstance(rng.integers(0, 2, (300, 70)), rng.integers(0, 2, (200, 70)), 5.0, 0.5)
    path = tmp_path / "g.npz"
    save_gap_ann(path, inst, {"planted_rows": np.arange(3)})
    with open(path, "rb") as fh:
        headers = npz_headers(fh, str(path))
    with np.load(path) as data:
        for name in data.files:
            assert headers[name][:2] == (data[name].shape, data[name].dtype)
            assert headers[name][2] == data[name].nbytes
    tracemalloc.start()
    loaded, meta = load_gap_ann(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(loaded.A, inst.A) and list(meta["planted_rows"]) == [0, 1, 2]
    assert peak <= load_memory_bytes(headers)
    with pytest.raises(ResourceLimitError, match="over the limit"):
        load_gap_ann(path, max_memory=10_000)


def test_generator_estimates_cover_measured_peaks():
    for n, m, k, planted in ((20, 20_000, 3, False), (5000, 20_000, 3, False), (50, 5000, 10, True),
                             (100, 5000, 3, True)):
        tracemalloc.start()
        f = planted_ksat(n, m, k, seed=1)[0] if planted else random_ksat(n, m, k, seed=1)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert f.num_clauses == m
        assert peak <= estimate_memory(n, m, k, planted=planted) <= 4 * peak + 2**26


def test_generators_refuse_before_allocating_and_stay_small():
    with pytest.raises(ResourceLimitError, match=r"random 3-SAT with 1000000 variables and 100000000 clauses"):
        random_ksat(10**6, 10**8, 3, seed=0, max_memory=50 * 2**20)
    with pytest.raises(ResourceLimitError, match="planted 3-SAT"):
        planted_ksat(10**6, 10**8, 3, seed=0, max_memory=50 * 2**20)
    # The case of the issue (n = m = 10000 used 1.65 GB): now within 50 MiB and under a 1 GiB address space.
    assert estimate_memory(10_000, 10_000, 3) < 50 * 2**20
    out = _run_limited("""
        import resource
        from instances.generators import random_ksat, planted_ksat
        f = random_ksat(10000, 10000, 3, seed=1, max_memory=50 * 2**20)
        g, hidden = planted_ksat(10000, 10000, 3, seed=1, max_memory=50 * 2**20)
        assert g.is_satisfied_by(hidden)
        print(f.num_clauses, g.num_clauses,
              [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0])
    """)
    assert out.returncode == 0, out.stderr
    m1, m2, rss_kb = map(int, out.stdout.split())
    assert (m1, m2) == (10_000, 10_000) and rss_kb < 200 * 1024


def test_redrawing_generator_is_uniform_and_distinct():
    # num_vars > 64 with k*k <= num_vars uses redrawing instead of a permutation per clause.
    n, m, k = 100, 40_000, 3
    f = random_ksat(n, m, k, seed=5)
    lits = np.array(f.clauses)
    assert all(len(set(map(abs, c))) == k for c in f.clauses)
    counts = np.bincount(np.abs(lits).ravel(), minlength=n + 1)[1:]
    expected = m * k / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 200  # 99 degrees of freedom: mean 99, sd 14
    assert abs((lits > 0).mean() - 0.5) < 0.01
    # Position within the clause is uniform too (ordered k-subsets).
    first = np.bincount(np.abs(lits[:, 0]), minlength=n + 1)[1:]
    assert float(((first - m / n) ** 2 / (m / n)).sum()) < 200
    assert f.to_dimacs() == random_ksat(n, m, k, seed=5).to_dimacs()


def test_explain_random_refuses_before_generating():
    out = subprocess.run(["finegrained", "explain", "--random", "100000"], preexec_fn=_limited, env=ENV,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "finegrained: error: explain prints 2^(N/2) vectors per table and is meant for tiny formulas: "
        "N = 100000 exceeds the limit 6 (raise --max-vars to explain it anyway)"
    ]


def test_planted_gap_ann_estimate_and_limit():
    from instances.gap_ann_builders import planted, planted_memory_bytes

    tracemalloc.start()
    built = planted(3000, 96, t=12, eps=1.0, planted=4, seed=2, n_b=2000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert built.instance.n_a == 3000 and peak <= planted_memory_bytes(3000, 96, 2000)
    with pytest.raises(ResourceLimitError, match="planted Gap-ANN instance with n = 1000000"):
        planted(10**6, 1000, 10, 1.0, 5, seed=1, max_memory=2**30)
