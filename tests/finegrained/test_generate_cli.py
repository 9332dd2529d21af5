"""``finegrained generate`` and ``finegrained chain --ann``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finegrained.cli import main
from instances.cnf import CNFFormula
from instances.gap_ann_builders import load_gap_ann


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_gap_ann_is_byte_identical_and_runs_through_attention(capsys, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    for f in (a, b):
        code, out, err = run(capsys, "generate", "gap-ann", "--n", 128, "--d", 64, "--t", 8, "--eps", 0.5,
                             "--planted", 9, "--seed", 7, "-o", f)
        assert code == 0 and err == "" and "9 planted rows" in out
    assert a.read_bytes() == b.read_bytes()
    inst, meta = load_gap_ann(a)
    assert inst.n_a == 128 and inst.dim == 64 and meta["seed"] == 7 and meta["planted_rows"].size == 9

    code, out, err = run(capsys, "chain", "--ann", a)
    assert code == 0 and "agrees with the direct solver on every row" in out and "ground truth agrees" in out
    code, out, _ = run(capsys, "chain", "--ann", a, "--params", "paper", "--json")
    data = json.loads(out)
    assert code == 0 and data["agree_with_direct"] and data["ground_truth_agrees"] and data["yes_rows"] == 9
    assert data["input"]["file"] == str(a) and data["input"]["seed"] == 7 and data["params"] == "paper"


def test_generate_errors_are_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "generate", "gap-ann", "--n", 64, "--d", 64, "--t", 40, "--eps", 0.5,
                         "--planted", 1, "--seed", 0, "-o", tmp_path / "x.npz")
    assert code == 2 and out == "" and err.count("\n") == 1 and "infeasible" in err and "T_max" in err
    code, _, err = run(capsys, "chain", "--ann", tmp_path / "missing.npz")
    assert code == 2 and "missing.npz: no such file" in err
    code, _, err = run(capsys, "generate", "gap-ann", "--n", 4)
    assert code == 2 and err.count("\n") == 1


def test_generate_ksat(capsys, tmp_path):
    f1, f2, f3 = tmp_path / "a.cnf", tmp_path / "b.cnf", tmp_path / "c.cnf"
    for f in (f1, f2):
        assert run(capsys, "generate", "ksat", "--n", 12, "--m", 40, "--seed", 3, "-o", f)[0] == 0
    assert f1.read_bytes() == f2.read_bytes()
    code, out, _ = run(capsys, "generate", "ksat", "--n", 12, "--m", 60, "--k", 4, "--seed", 3, "--planted",
                       "-o", f3, "--json")
    data = json.loads(out)
    formula = CNFFormula.read(f3)
    assert code == 0 and formula.num_clauses == 60 and formula.is_satisfied_by(data["hidden_assignment"])
    assert np.all([len(c) == 4 for c in formula.clauses])


GAP = ["generate", "gap-ann", "--n", 8, "--d", 64, "--t", 2, "--eps", 1, "--planted", 1, "--seed", 0]
KSAT = ["generate", "ksat", "--n", 5, "--m", 10, "--seed", 0]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (GAP + ["--seed", -1], ["--seed", "non-negative integer", "-1"]),
        (KSAT + ["--seed", -1], ["--seed", "non-negative integer", "-1"]),
        (GAP + ["--seed", "x"], ["--seed", "'x'"]),
        (GAP + ["--n", 0], ["--n", "positive integer"]),
        (GAP + ["--n", -3], ["--n", "non-negative integer"]),
        (GAP + ["--n-b", 0], ["--n-b", "positive integer"]),
        (GAP + ["--d", 0], ["--d", "positive integer"]),
        (GAP + ["--d", 2.5], ["--d", "'2.5'"]),
        (GAP + ["--t", "nan"], ["--t", "finite"]),
        (GAP + ["--t", 0], ["--t", "positive"]),
        (GAP + ["--eps", -1], ["--eps", "positive"]),
        (GAP + ["--planted", -1], ["--planted", "non-negative integer"]),
        (GAP + ["--d", 63], ["even"]),
        (GAP + ["--n", 10**11], ["would need about", "bytes"]),
        (GAP + ["--max-memory", "1K"], ["would need about"]),
        (KSAT + ["--n", 0], ["--n", "positive integer"]),
        (KSAT + ["--m", -1], ["--m", "non-negative integer"]),
        (KSAT + ["--k", 0], ["--k", "positive integer"]),
        (KSAT + ["--n", 2], ["num_vars >= k"]),
        (KSAT + ["--m", 10**11], ["would need about"]),
    ],
)
def test_generate_bad_arguments_are_one_line(capsys, tmp_path, argv, needles):
    out_file = tmp_path / ("x.npz" if argv[1] == "gap-ann" else "x.cnf")
    code, out, err = run(capsys, *argv, "-o", out_file)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out_file.exists()


def test_generate_write_errors_name_the_file(capsys, tmp_path):
    for argv, name in ((GAP, "x.npz"), (KSAT, "x.cnf")):
        target = tmp_path / "missing-dir" / name
        code, out, err = run(capsys, *argv, "-o", target)
        assert code == 2 and out == "" and err.count("\n") == 1 and f"{target}: cannot write" in err
