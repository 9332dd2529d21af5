"""Row-by-row validation of the threshold test, the beta sweep, and the ``finegrained validate`` command."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from finegrained.cli import main
from finegrained.cli.plots import plot_sweep
from finegrained.validate import beta_sweep, gap_ann_of_cnf, validate_cnf, validate_gap_ann
from instances import CNFFormula, GapANNInstance, example_path

TINY4 = CNFFormula.read(example_path("tiny4"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _balanced(rows: list[list[int]]) -> np.ndarray:
    X = np.array(rows, dtype=np.uint8)
    return np.concatenate([X, 1 - X], axis=1)


def test_rows_match_brute_force_and_bounds():
    rep = validate_cnf(TINY4)
    r, s = rep.rows, rep.summary
    assert r["status"].tolist() == ["YES", "NO", "YES", "YES"]
    assert r["decision"].tolist() == [True, False, True, True] and r["correct"].all()
    assert r["bound_case"].tolist() == ["2a", "2b", "2a", "2a"] and (r["in_bound"] == 1).all()
    assert (r["bound_slack"] > 0).all()
    assert np.allclose(r["margin"], r["log_u"] - rep.parameters.log_threshold)
    assert s["all_correct"] and s["min_yes_margin"] > np.log(1.5) and s["min_abs_no_margin"] > np.log(2)
    # the adversary's largest tolerated error is at least t~ (the corrected proof's eps_a)
    assert s["slack_vs_t_tilde"] >= 0 and s["max_tolerated_log_eps"] == pytest.approx(s["analytic_log_slack"])


def test_rows_outside_the_promise_are_free():
    A = _balanced([[0, 0, 0, 0], [1, 1, 0, 0]])
    B = _balanced([[0, 0, 0, 1], [0, 0, 1, 1]])
    # balanced distances: row 0 -> 2 (< t = 3, YES); row 1 -> 6, in [t, (1+eps) t) = [3, 9): outside the promise
    rep = validate_gap_ann(GapANNInstance(A, B, t=3.0, eps=2.0))
    assert rep.rows["status"].tolist() == ["YES", "outside"]
    assert rep.rows["correct"].all() and rep.rows["in_bound"].tolist() == [1, -1]
    assert rep.summary["outside_promise_rows"] == 1


def test_below_beta_min_decisions_fail_and_are_reported():
    gap = gap_ann_of_cnf(CNFFormula.read(example_path("random3sat-n20-unsat")))
    p_min = validate_gap_ann(gap).parameters.beta_min
    rep = validate_gap_ann(gap, beta=0.05 * p_min)
    s = rep.summary
    assert not s["all_correct"] and s["wrong_rows"] and s["max_tolerated_log_eps"] is None
    assert s["rows_outside_bound"] == []  # the per-row bounds hold for every beta; only the gap fails


def test_json_is_complete_and_finite():
    data = json.loads(validate_cnf(TINY4, oracle="adversarial").to_json())
    assert data["schema"] == "finegrained.validate/1" and data["oracle"] == "adversarial(exact)"
    assert set(data["rows"]) >= {"index", "min_distance", "status", "log_u", "decision", "margin", "log_bound",
                                 "in_bound"}
    assert all(len(col) == 4 for col in data["rows"].values())
    assert data["summary"]["log_eps_adv"] == data["parameters"]["log_eps_a"]


def test_sweep_and_plot(tmp_path, monkeypatch):
    gap = gap_ann_of_cnf(TINY4)
    s = beta_sweep(gap, points=5, low=1 / 64, high=2.0)
    assert s.frac_exact[-1] == 1.0 and s.frac_adversarial[-1] == 1.0 and s.frac_exact[0] < 1.0
    assert s.gap_condition.tolist() == [False, False, False, False, True]
    assert (s.frac_exact[s.gap_condition] == 1.0).all() and (s.frac_adversarial[s.gap_condition] == 1.0).all()
    pytest.importorskip("matplotlib")
    png = tmp_path / "sweep.png"
    plot_sweep(s, str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_table_json_and_exit_status(capsys):
    code, out, err = run(capsys, "validate", "--example", "tiny4", "--oracle", "adversarial")
    assert code == 0 and err == "" and "all 4 rows correct" in out and "adversarial(exact)" in out
    assert "largest log eps" in out and "log 2t~" in out
    code, out, _ = run(capsys, "validate", "--example", "php-3-2", "--params", "paper", "--json", "--rows", "all")
    data = json.loads(out)
    assert code == 0 and data["params"] == "paper" and data["summary"]["yes_rows"] == 0
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--eps-adv", "t~+2")
    assert code == 1 and "WRONG" in out
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--rows", "2")
    assert "the 2 of 4 rows closest" in out


def test_cli_proof_symbolic_sweep_and_reference(capsys):
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--proof", "--symbolic")
    assert code == 0 and "all checks pass" in out and "Symbolic" in out
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--proof", "--beta", "50")
    assert code == 1 and "FAILED: gap condition, Case 2b: u < t~" in out
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--proof", "--symbolic", "--params", "paper", "--json")
    data = json.loads(out)
    assert code == 0 and data["passed"] is True and len(data["symbolic"]) == 5
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--sweep", "beta", "--points", "3", "--json")
    assert code == 0 and len(json.loads(out)["beta"]) == 3
    code, out, _ = run(capsys, "validate", "--example", "tiny4", "--reference")
    assert code == 0 and "decisions certified" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--eps-adv", "lots"], "--eps-adv expects a natural log"),
        (["--symbolic"], "--symbolic needs --proof"),
        (["--plot", "x.png"], "--plot needs --sweep beta"),
        (["--proof", "--reference"], "at most one of"),
        (["--oracle", "magic"], "unknown oracle 'magic'"),
        (["--reference", "--example", "random3sat-n20"], "multiprecision operations"),
    ],
)
def test_cli_errors_are_one_line(capsys, argv, expected):
    if "--example" not in argv:
        argv = [*argv, "--example", "tiny4"]
    code, out, err = run(capsys, "validate", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and expected in err


def test_plot_without_matplotlib_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(capsys, "validate", "--example", "tiny4", "--sweep", "beta", "--points", "2",
                       "--plot", str(tmp_path / "p.png"))
    assert code == 2 and "pip install 'finegrained[plot]'" in err


@pytest.mark.parametrize(
    "module",
    ["finegrained.validate", "finegrained.proof", "finegrained.cli.validate",
     "finegrained.attention.adversarial", "finegrained.attention.reference"],
)
def test_docstring_examples(module):
    import doctest
    import importlib

    importlib.import_module(module)
    result = doctest.testmod(sys.modules[module], optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_cli_validates_a_gap_ann_file(tmp_path, capsys):
    from finegrained.cli import main

    path = tmp_path / "g.npz"
    assert main(["generate", "gap-ann", "--n", "64", "--d", "32", "--t", "6", "--eps", "0.5", "--planted", "5",
                 "--seed", "1", "-o", str(path)]) == 0
    capsys.readouterr()
    assert main(["validate", "--ann", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["all_correct"] and data["summary"]["yes_rows"] == 5
    assert main(["validate", "--ann", str(path), "--example", "tiny4"]) == 2
    assert "not both" in capsys.readouterr().err
