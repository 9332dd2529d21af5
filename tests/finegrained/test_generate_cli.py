"""``finegrained generate`` and ``finegrained chain --ann``."""

from __future__ import annotations

import json

import numpy as np

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
