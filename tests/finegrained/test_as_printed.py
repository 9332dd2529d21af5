"""Lemma 4.7 as printed: each erratum's literal statement, replayed, and the rows it decides wrongly."""

from __future__ import annotations

from finegrained.as_printed import STATEMENTS, as_printed
from finegrained.validate import gap_ann_of_cnf, validate_gap_ann
from instances import CNFFormula, example_path
from instances.worst_case import worst_case_gap_ann


def test_default_example_tau_e_beta_misclassifies_every_no_row():
    g = gap_ann_of_cnf(CNFFormula.read(example_path("random3sat-n20")))
    rows = {r["id"]: r for r in as_printed(g)}
    no_rows = int((g.row_status() == 0).sum())
    assert no_rows == 1012
    assert rows["E2"]["wrong_rows"] == no_rows and rows["E4"]["wrong_rows"] == no_rows
    assert rows["E3"]["wrong_rows"] == 0 and rows["E8"]["wrong_rows"] == 0
    # the corrected construction decides every row of the same instance
    assert validate_gap_ann(g).summary["all_correct"]


def test_worst_case_exposes_e5_and_e8():
    many = {r["id"]: r["wrong_rows"] for r in as_printed(worst_case_gap_ann(8, 20, 5.0, 0.2, no_rows=3))}
    assert many["E5"] == 3  # 4n with error t~ fails on tight NO rows
    one = {r["id"]: r["wrong_rows"] for r in as_printed(worst_case_gap_ann(1, 20, 5.0, 0.2, no_rows=3))}
    assert one["E8"] == 3
    assert [s[0] for s in STATEMENTS] == list(many)
