"""docs/tutorial.md contains, below its rule, exactly what `finegrained explain --format markdown` prints."""

from __future__ import annotations

from pathlib import Path

from finegrained.explain import explain
from instances import CNFFormula, example_path

DOC = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"


def test_tutorial_walkthrough_is_current():
    expected = explain(CNFFormula.read(example_path("tiny4"))).to_markdown().split("\n", 2)[2]
    page = DOC.read_text(encoding="utf-8")
    assert page.split("\n---\n\n", 1)[1] == expected
