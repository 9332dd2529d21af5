"""The command line as a user meets it, in a real process: pipes, stdin, a full disk, Ctrl-C, exit statuses.

Every case listed under "Why" in the Unix-tool issue runs here as a user would run it (subprocess, with a
timeout), and each ends with one line on stderr and the documented exit status, never a traceback. Cases that
need no real process (output files, formats, limits) are in test_outputs.py.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finegrained.cli import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_SAT, EXIT_UNSAT

TIMEOUT = 120
CLI = [sys.executable, "-m", "finegrained"]
UNSAT = b"p cnf 1 2\n1 0\n-1 0\n"
SAT = b"p cnf 3 2\n1 -2 0\n2 3 0\n"


def run(*args: str, input: bytes | None = None, stdin=None, stdout=subprocess.PIPE, env=None, timeout=TIMEOUT):
    proc = subprocess.run([*CLI, *args], input=input, stdin=stdin if input is None else None, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})
    return proc.returncode, (proc.stdout or b"").decode(), proc.stderr.decode()


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.endswith("\n") and "Traceback" not in err


def test_formula_piped_from_cnfgen_into_dash():
    """`cnfgen randkcnf 3 10 40 | finegrained chain -` (the formula generator people already use)."""
    cnfgen = shutil.which("cnfgen")
    assert cnfgen, "cnfgen is in the test extra"
    gen = subprocess.Popen([cnfgen, "-q", "randkcnf", "3", "10", "40"], stdout=subprocess.PIPE)
    proc = subprocess.run([*CLI, "chain", "-", "--format", "competition"], stdin=gen.stdout, capture_output=True,
                          timeout=TIMEOUT, check=False)
    gen.stdout.close()
    assert gen.wait(timeout=TIMEOUT) == 0
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode in (EXIT_SAT, EXIT_UNSAT), (proc.returncode, err)
    s_lines = [line for line in out.splitlines() if line.startswith("s ")]
    assert s_lines == ["s SATISFIABLE" if proc.returncode == EXIT_SAT else "s UNSATISFIABLE"]
    assert err == ""


def test_piped_stdin_without_file_is_read_and_said():
    """No FILE and a pipe on stdin: the formula is read from it, and stderr says so (never the example silently)."""
    code, out, err = run("chain", "--format", "competition", input=UNSAT)
    assert code == EXIT_UNSAT and "s UNSATISFIABLE" in out
    assert one_line(err) and "standard input" in err
    # a terminal-less stdin that is not a pipe (/dev/null) runs the example, and says so
    code, out, err = run("chain", "--example", "tiny4", "--format", "competition", stdin=subprocess.DEVNULL)
    assert code == EXIT_SAT and err == ""


def test_competition_format_and_exit_codes(tmp_path):
    f = tmp_path / "sat.cnf"
    f.write_bytes(SAT)
    code, out, err = run("chain", str(f), "--format", "competition", stdin=subprocess.DEVNULL)
    lines = out.splitlines()
    assert code == EXIT_SAT and err == "" and "s SATISFIABLE" in lines
    v = [w for line in lines if line.startswith("v ") for w in line.split()[1:]]
    assert v[-1] == "0" and sorted(abs(int(x)) for x in v[:-1]) == [1, 2, 3]
    assert all(line[0] in "csv" for line in lines)


def test_gzip_input_recognised_by_magic_bytes(tmp_path):
    f = tmp_path / "formula"  # no extension: the magic bytes decide
    f.write_bytes(gzip.compress(UNSAT))
    code, out, err = run("chain", str(f), "--format", "competition", stdin=subprocess.DEVNULL)
    assert code == EXIT_UNSAT and "s UNSATISFIABLE" in out and err == ""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_without_writer_and_devices_end_quickly(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    code, _, err = run("chain", str(fifo), env={"FINEGRAINED_FIFO_TIMEOUT": "1"}, stdin=subprocess.DEVNULL, timeout=60)
    assert code == EXIT_ERROR and one_line(err) and "FIFO" in err and time.monotonic() - t0 < 60
    for device in ("/dev/urandom", "/dev/zero"):
        code, _, err = run("chain", device, stdin=subprocess.DEVNULL, timeout=60)
        assert code == EXIT_ERROR and one_line(err) and device in err


def test_broken_pipe_is_one_line_and_141():
    """`... | head -1` with more output than the pipe holds: exit 141 (128 + SIGPIPE), one line."""
    proc = subprocess.Popen([*CLI, "generate", "ksat", "--n", "200", "--m", "200000", "--seed", "1", "-o", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=TIMEOUT) == EXIT_BROKEN_PIPE, err
    assert first.startswith(b"p cnf 200 200000") and one_line(err) and "broken pipe" in err


def test_validate_rows_all_into_head():
    """`validate --rows all | head -1`: 100 KB of table into a closed pipe is exit 141 and one line."""
    proc = subprocess.Popen([*CLI, "validate", "--example", "random3sat-n20", "--rows", "all"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=TIMEOUT) == EXIT_BROKEN_PIPE, err
    assert first.startswith(b"finegrained validate:") and one_line(err) and "broken pipe" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_disk_full_is_one_line():
    """`chain --json > /dev/full`: ENOSPC is one line and exit 2."""
    with open("/dev/full", "wb") as full:
        code, _, err = run("chain", "--example", "tiny4", "--json", stdout=full, stdin=subprocess.DEVNULL)
    assert code == EXIT_ERROR and one_line(err) and "No space left on device" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("words", [["--help"], ["chain", "--help"], ["--version"]])
def test_help_and_version_into_a_full_disk_fail(words):
    """argparse swallows the write error of its help text; the CLI must still exit 2 with one line."""
    with open("/dev/full", "wb") as full:
        code, _, err = run(*words, stdout=full, stdin=subprocess.DEVNULL)
    assert code == EXIT_ERROR and one_line(err) and "No space left on device" in err


@pytest.mark.parametrize("words", [["--help"], ["validate", "--example", "tiny4"]])
def test_a_closed_standard_output_is_one_line_and_exit_2(words):
    """`finegrained ... >&-`: Python starts with sys.stdout = None; no traceback, no success."""
    proc = subprocess.run([*CLI, *words], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=TIMEOUT,
                          close_fds=True, pass_fds=(), preexec_fn=lambda: os.close(1), check=False)
    err = proc.stderr.decode()
    assert proc.returncode == EXIT_ERROR and one_line(err) and "standard output is closed" in err


def test_closed_standard_output_and_error_still_exit_2():
    """`finegrained --help 2>&- >&-`: nothing can be said, so the exit status must say it (2, not 1)."""
    def close_both():
        os.close(1)
        os.close(2)

    proc = subprocess.run([*CLI, "--help"], stdin=subprocess.DEVNULL, timeout=TIMEOUT, preexec_fn=close_both,
                          check=False)
    assert proc.returncode == EXIT_ERROR


@pytest.mark.parametrize("delay", [0.2, 0.8])
def test_ctrl_c_during_start_up_and_run_is_one_line_and_130(delay):
    """SIGINT while the CLI imports numpy and the reductions, or while it runs: one line, exit 130.

    The signal is sent after the interpreter itself is up (the child says "ready" after Python's own start-up,
    which no program can intercept) and before or during the real work.
    """
    code = ("import sys; sys.stderr.write('ready\\n'); sys.stderr.flush(); from finegrained.cli import console_main; "
            "sys.exit(console_main(['chain', '--example', 'random3sat-n20']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stderr.readline() == b"ready\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    err = err.decode()
    if proc.returncode == 0:  # the whole run finished before the signal: nothing to interrupt
        pytest.skip("the chain finished before the signal arrived")
    assert proc.returncode == EXIT_INTERRUPTED and one_line(err) and "interrupted" in err, err


def test_version_and_python_dash_m():
    code, out, err = run("--version", stdin=subprocess.DEVNULL)
    assert code == 0 and out.startswith("finegrained ") and err == ""
    from finegrained import __version__

    assert out.split()[1] == __version__
