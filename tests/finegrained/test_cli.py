"""The command line: the default run, JSON output, and one clear stderr line for every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from finegrained.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_default_chain_runs_shipped_example(capsys):
    code, out, err = run(capsys, "chain")
    assert code == 0 and err == ""
    assert "random3sat-n20.cnf" in out and "SATISFIABLE" in out and "satisfies every clause" in out
    for word in ("beta =", "log tau", "log t~", "log eps_a", "n_q = 2048"):
        assert word in out


def test_json_schema(capsys):
    code, out, _ = run(capsys, "chain", "--example", "php-3-2", "--params", "paper", "--json")
    data = json.loads(out)
    assert code == 0 and data["satisfiable"] is False and data["assignment"] is None and data["verified"]
    assert data["input"]["num_vars"] == 6 and data["params"] == "paper"
    assert data["parameters"]["beta"] > 100


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("p cnf 2 1\n1 3 0\n", "bad.cnf:2: literal 3 is out of range"),
        ("p cnf two 1\n1 0\n", "bad.cnf:1: expected integers in header"),
        ("p cnf 2 1\n1 x 0\n", "bad.cnf:2: expected an integer literal, found 'x'"),
    ],
)
def test_malformed_dimacs_gives_one_line(capsys, tmp_path, content, expected):
    f = tmp_path / "bad.cnf"
    f.write_text(content)
    code, out, err = run(capsys, "chain", str(f))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and expected in err and err.startswith("finegrained: error: ")


def test_missing_file_unknown_oracle_and_memory_limit(capsys, tmp_path):
    code, _, err = run(capsys, "chain", str(tmp_path / "none.cnf"))
    assert code == 2 and "none.cnf: no such file" in err
    code, _, err = run(capsys, "chain", "--oracle", "magic")
    assert code == 2 and "unknown oracle 'magic'; available:" in err
    code, _, err = run(capsys, "chain", "--max-memory", "1M")
    assert code == 2 and "would need about" in err and "--max-memory" in err and err.count("\n") == 1


def test_argument_errors_are_one_line(capsys):
    code, _, err = run(capsys, "chain", "--max-memory", "lots")
    assert code == 2 and err.count("\n") == 1 and "cannot read memory size 'lots'" in err
    code, _, err = run(capsys, "chain", "--params", "loose")
    assert code == 2 and err.count("\n") == 1 and "invalid choice" in err


def test_inconsistent_parameters(capsys):
    code, _, err = run(capsys, "chain", "--safety", "0.5")
    assert code == 2 and "safety factor must be a finite number >= 1" in err and err.count("\n") == 1
    code, _, err = run(capsys, "chain", "--params", "paper", "--safety", "2")
    assert code == 2 and "tight parameters only" in err
    code, _, err = run(capsys, "chain", "x.cnf", "--example", "tiny4")
    assert code == 2 and "either a FILE or --example" in err


def test_console_script_has_no_traceback(tmp_path):
    f = tmp_path / "bad.cnf"
    f.write_text("p cnf 1 1\n1 2 0\n")
    proc = subprocess.run([sys.executable, "-m", "finegrained.cli", "chain", str(f)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "bad.cnf:2:" in proc.stderr


def test_false_yes_answer_exits_one(capsys, monkeypatch):
    import numpy as np

    from finegrained.attention import ORACLES
    from instances.logspace import LogArray

    def always_yes(Q, K, V, *, scale=None):  # wrong on purpose: every output is 1, above any threshold
        return LogArray(np.ones((Q.shape[0], V.shape[1]), dtype=np.int8), np.zeros((Q.shape[0], V.shape[1])))

    monkeypatch.setitem(ORACLES, "yes", always_yes)
    code, _, err = run(capsys, "chain", "--example", "php-3-2", "--oracle", "yes")
    assert code == 1 and "wrong answer from the oracle" in err and err.count("\n") == 1


def test_contradicted_unsat_answer_exits_one(capsys, monkeypatch):
    import numpy as np

    from finegrained.attention import ORACLES
    from instances.logspace import LogArray

    def zero(Q, K, V, *, scale=None):  # an oracle that is wrong on purpose: every output is 0
        return LogArray(np.zeros((Q.shape[0], V.shape[1]), dtype=np.int8), np.full((Q.shape[0], V.shape[1]), -np.inf))

    monkeypatch.setitem(ORACLES, "zero", zero)
    code, out, _ = run(capsys, "chain", "--example", "tiny4", "--oracle", "zero")
    assert code == 1 and "UNSATISFIABLE" in out and "DISAGREES" in out


def test_huge_formulas_are_refused_quickly(capsys, tmp_path):
    # the reader refuses a header count of more than 18 digits itself, naming the file and line
    for header, fragment in (("p cnf 3000 1", "2^1510"), ("p cnf 99999999999999999999 1", "big.cnf:1: header count")):
        f = tmp_path / "big.cnf"
        f.write_text(f"{header}\n1 0\n")
        code, _, err = run(capsys, "chain", str(f))
        assert code == 2 and fragment in err and err.count("\n") == 1


def test_negative_seed_and_paper_safety_in_other_commands(capsys):
    code, _, err = run(capsys, "explain", "--random", "4", "--seed", "-1")
    assert code == 2 and "non-negative integer" in err
    code, _, err = run(capsys, "validate", "--proof", "--params", "paper", "--safety", "2")
    assert code == 2 and "tight parameters only" in err
