"""Outputs, formats, limits and JSON of the command line, in process (the real-process cases are in test_unix.py).

Covers the output and limit cases of the Unix-tool issue: ``-o PATH`` writes exactly PATH, ``-o -`` writes to
stdout, the format comes from ``--format`` or the extension and a conflict is an error, files are replaced
atomically, every JSON report has ``version``, and oversized requests are refused before any work.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest

from finegrained import __version__
from finegrained.cli import EXIT_ERROR, EXIT_WRONG, main
from finegrained.cli.chain import competition_answer, format_competition, time_estimate
from finegrained.cli.formatting import write_atomic
from finegrained.cli.progress import progress_for
from instances.errors import FinegrainedError


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


# ------------------------------------------------------------------------------------------------- -o and --format
def test_output_without_extension_is_written_exactly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "graph", "-o", "out")
    assert code == 0 and out == "" and err == "finegrained: wrote out\n"
    assert sorted(os.listdir(tmp_path)) == ["out"] and (tmp_path / "out").read_text().startswith("Problems:")
    code, _, _ = run(capsys, "graph", "--format", "png", "-o", "fig")
    assert code == 0 and (tmp_path / "fig").read_bytes()[:4] == b"\x89PNG"
    code, _, _ = run(capsys, "graph", "-o", "g.svg")
    assert code == 0 and b"<svg" in (tmp_path / "g.svg").read_bytes()[:400]
    assert sorted(os.listdir(tmp_path)) == ["fig", "g.svg", "out"]  # no temporary file left behind


def test_format_conflicting_with_extension_is_an_error(tmp_path, capsys):
    target = tmp_path / "out.pdf"
    code, out, err = run(capsys, "graph", "-o", target, "--format", "png")
    assert code == EXIT_ERROR and out == "" and one_line(err) and "contradicts the extension" in err
    assert not target.exists()
    code, _, err = run(capsys, "explain", "-o", tmp_path / "w.md", "--format", "text")
    assert code == EXIT_ERROR and "contradicts" in err
    code, _, err = run(capsys, "chain", "--example", "tiny4", "--json", "--format", "competition")
    assert code == EXIT_ERROR and "--json contradicts --format competition" in err


def test_dash_writes_to_stdout(capsysbinary):
    assert main(["explain", "-o", "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"== 1.") and err == b""
    assert main(["generate", "ksat", "--n", "5", "--m", "7", "--seed", "1", "-o", "-"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(b"p cnf 5 7") and err == b""
    assert main(["graph", "--format", "png", "-o", "-"]) == 0
    assert capsysbinary.readouterr().out[:4] == b"\x89PNG"


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("the good old report\n")

    def half_then_fail(fh):
        fh.write(b"half a new rep")
        raise OSError(28, "No space left on device")

    with pytest.raises(FinegrainedError, match="cannot write .*report.txt: No space left on device"):
        write_atomic(str(target), half_then_fail)

    def interrupted(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(str(target), interrupted)
    assert target.read_text() == "the good old report\n" and os.listdir(tmp_path) == ["report.txt"]
    write_atomic(str(target), "new\n")
    assert target.read_text() == "new\n" and os.listdir(tmp_path) == ["report.txt"]


# ---------------------------------------------------------------------------------------------------- JSON
@pytest.mark.parametrize("argv", [
    ["chain", "--example", "tiny4", "--json"],
    ["chain", "--example", "tiny4", "--format", "json"],
    ["validate", "--example", "tiny4", "--json"],
    ["validate", "--example", "tiny4", "--proof", "--json"],
    ["graph", "--json"],
    ["explain", "--json"],
])
def test_every_json_report_has_a_version(capsys, argv):
    code, out, _ = run(capsys, *argv)
    data = json.loads(out)
    assert code == 0 and data["version"] == __version__ and data["schema"].startswith("finegrained.")


def test_explain_json(capsys):
    code, out, _ = run(capsys, "explain", "--random", "4", "--seed", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["schema"] == "finegrained.explain/1"
    assert data["sections"][0]["title"] == "The formula (k-SAT)" and data["sections"][0]["lines"]
    assert data["result"]["satisfiable"] in (True, False) and "stages" in data["result"]


def test_bench_json_has_schema_version_and_machine(capsys):
    code, out, _ = run(capsys, "bench", "chain", "--vars-min", "3", "--vars-max", "3", "--repeat", "1", "--json")
    data = json.loads(out)
    assert code == 0 and data["schema"] == "finegrained.bench.chain/1" and data["version"] == __version__
    m = data["machine"]
    assert m["cores"] >= 1 and m["numpy"] == np.__version__ and isinstance(m["blas"], list) and m["cpu"]


# -------------------------------------------------------------------------------------------- competition
def test_competition_answers_are_never_guesses():
    sat = SimpleNamespace(satisfiable=True, verified=True, assignment=[1, -2], cdcl_satisfiable=True,
                          certified=True, params="tight", oracle="exact")
    assert competition_answer(sat) == "SATISFIABLE"
    assert format_competition(sat, "f.cnf").splitlines()[-2:] == ["s SATISFIABLE", "v 1 -2 0"]
    assert competition_answer(SimpleNamespace(**{**vars(sat), "verified": False})) == "UNKNOWN"
    unsat = SimpleNamespace(**{**vars(sat), "satisfiable": False, "assignment": None, "cdcl_satisfiable": False})
    assert competition_answer(unsat) == "UNSATISFIABLE"
    assert competition_answer(SimpleNamespace(**{**vars(unsat), "certified": False})) == "UNKNOWN"
    assert competition_answer(SimpleNamespace(**{**vars(unsat), "cdcl_satisfiable": True})) == "UNKNOWN"
    long = SimpleNamespace(**{**vars(sat), "assignment": list(range(1, 200))})
    v = [line for line in format_competition(long, "f").splitlines() if line.startswith("v")]
    assert len(v) > 1 and all(len(line) <= 80 for line in v) and v[-1].endswith(" 0")


def test_competition_with_a_wrong_oracle_is_unknown_and_exit_one(capsys, monkeypatch):
    from finegrained.attention import ORACLES
    from instances.logspace import LogArray

    def always_yes(Q, K, V, *, scale=None):  # wrong on purpose: every output is 1, above any threshold
        return LogArray(np.ones((Q.shape[0], V.shape[1]), dtype=np.int8), np.zeros((Q.shape[0], V.shape[1])))

    monkeypatch.setitem(ORACLES, "yes", always_yes)
    code, out, err = run(capsys, "chain", "--example", "php-3-2", "--oracle", "yes", "--format", "competition")
    assert code == EXIT_WRONG and "s UNKNOWN" in out.splitlines() and one_line(err)


def test_time_estimate_from_a_measured_gemm_rate():
    assert time_estimate(20, 85) is None  # under a second anywhere: not even measured
    seconds, rate = time_estimate(34, 145)
    assert rate > 1e6 and seconds == pytest.approx(2 * (2**17 + 2**17) * 2**18 * 12 * 145 / rate)
    # the attention route's product is n_a x (n_b + 1) x (m + 1) (OVToAttention.sizes), about 48x smaller
    seconds, rate = time_estimate(40, 145, "attention")
    assert seconds == pytest.approx(2 * 2**20 * (2**20 + 1) * 146 / rate)


# --------------------------------------------------------------------------------------------------- limits
def test_limits_are_checked_before_any_work(capsys, tmp_path):
    code, _, err = run(capsys, "explain", "--random", "100000")
    assert code == EXIT_ERROR and one_line(err) and "--max-vars" in err
    code, _, err = run(capsys, "validate", "--example", "tiny4", "--reference", "--dps", "100000000")
    assert code == EXIT_ERROR and one_line(err) and "--dps" in err
    code, _, err = run(capsys, "chain", "--example", "random3sat-n20", "--max-memory", "1M")
    assert code == EXIT_ERROR and one_line(err) and "would need about" in err and "--max-memory" in err


def test_zip_bomb_npz_is_refused_before_unpacking(capsys, tmp_path):
    """A small .npz whose member unpacks to 256 MiB: refused from its header under --max-memory 64M."""
    bomb = tmp_path / "bomb.npz"
    rows, cols = 2**14, 2**11  # 32 MiB packed bits -> 256 Mi entries once unpacked
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1), dtype=np.uint8))
    header["shape"] = (rows, cols)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("A_packed.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            zero = bytes(2**20)
            for _ in range(rows * cols // 2**20):
                fh.write(zero)
    assert bomb.stat().st_size < 2**20
    code, _, err = run(capsys, "chain", "--ann", bomb, "--max-memory", "64M")
    assert code == EXIT_ERROR and one_line(err) and "would need about" in err


def test_generator_stays_within_its_memory_limit(tmp_path):
    """`generate ksat --n 10000 --m 10000 --max-memory 50M` used 1.65 GB; now its peak RSS stays near the limit."""
    probe = ("import resource, subprocess, sys; "
             "p = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "finegrained", "generate", "ksat",
                          "--n", "10000", "--m", "10000", "--seed", "1", "--max-memory", "50M",
                          "-o", str(tmp_path / "k.cnf")], capture_output=True, text=True, timeout=300, check=True)
    code, peak_kib = map(int, out.stdout.split())
    assert code in (0, EXIT_ERROR)
    # the interpreter with numpy and the CLI is about 60-100 MB; the formula itself must add little
    assert peak_kib < 250 * 1024, peak_kib


# ------------------------------------------------------------------------------------------------- progress
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_never_with_json(monkeypatch, capsys):
    tty = _Terminal()
    monkeypatch.setattr(sys, "stderr", tty)
    progress, close = progress_for("bench x")
    progress(1, 4)
    progress(4, 4)
    close()
    assert "bench x" in tty.getvalue() and "4/4" in tty.getvalue()
    assert progress_for("bench x", as_json=True)[0] is None
    # the bench command passes its bar to the benchmark, which reports every size
    assert main(["bench", "chain", "--vars-min", "3", "--vars-max", "4", "--step", "1", "--repeat", "1"]) == 0
    assert "bench chain" in tty.getvalue() and "2/2" in tty.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress_for("bench x")[0] is None


def test_long_chain_announces_its_time_first(capsys, monkeypatch):
    import finegrained.cli.chain as chain_cli

    monkeypatch.setattr(chain_cli, "time_estimate", lambda n, m, route="aattc": (600.0, 2e9))
    code, out, err = run(capsys, "chain", "--example", "tiny4")
    assert code == 0 and err == ("finegrained: N = 4, m = 4: a full score product takes about 10 min on this "
                                 "machine (measured 2 GFLOP/s); the exact oracle merges repeated rows and is usually "
                                 "faster\n")
    code, out, err = run(capsys, "chain", "--example", "tiny4", "--json")
    assert code == 0 and err == ""


def test_special_targets_are_written_in_place_never_replaced(tmp_path, capsys):
    """-o onto a device, a FIFO or a symlink must not replace the node (atomic replace would destroy it)."""
    import os
    import stat
    import threading

    from finegrained.cli import main

    dev = tmp_path / "mynull"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    assert main(["graph", "--format", "dot", "-o", str(dev)]) == 0
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert main(["graph", "--format", "dot", "-o", str(fifo)]) == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got and got[0].startswith(b"digraph")
    target, link = tmp_path / "t.dot", tmp_path / "l.dot"
    target.write_text("old")
    os.chmod(target, 0o600)
    link.symlink_to(target)
    assert main(["graph", "--format", "dot", "-o", str(link)]) == 0
    assert link.is_symlink() and target.read_text().startswith("digraph")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    capsys.readouterr()
