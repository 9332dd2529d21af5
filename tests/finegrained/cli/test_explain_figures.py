"""``finegrained explain --plot DIR`` and ``explain --as-printed`` through the real CLI (issue 15)."""

from __future__ import annotations

import json

import pytest

from finegrained.cli import main

pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402

from finegrained.cli.figures import FIGURES  # noqa: E402


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("example", ["tiny4", "php-3-2"])  # every example: tests/finegrained/cli/test_figures.py
def test_explain_plot_writes_the_five_figures(capsys, tmp_path, example):
    code, out, err = run(capsys, "explain", "--example", example, "--plot", str(tmp_path / "fig"))
    assert code == 0 and "Oracle and threshold test" in out  # the walkthrough is still printed
    for name in FIGURES:
        path = tmp_path / "fig" / name
        assert f"wrote {path}" in err
        img = imread(str(path))
        assert img.shape[1] >= 1600 and img.shape[0] >= 400 and img.std() > 0.01, (name, img.shape)


def test_as_printed_json_default_example_e2_misreads_every_no_row(capsys):
    code, out, err = run(capsys, "explain", "--as-printed", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["schema"] == "finegrained.explain.as_printed/1" and "random3sat-n20" in data["source"]
    errata = {e["id"]: e for e in data["errata"]}
    assert list(errata) == ["E2", "E3", "E4", "E5", "E8", "E10"]
    assert errata["E2"]["wrong_rows"] == 1012 and errata["E2"]["rows"] == 1024
    assert errata["E3"]["wrong_rows"] == 0


def test_as_printed_text_table_and_plot(capsys, tmp_path):
    code, out, err = run(capsys, "explain", "--example", "tiny4", "--as-printed", "--plot", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    e2 = next(line for line in lines if line.strip().startswith("E2 "))
    assert "tau := exp(beta)" in e2 and e2.split()[-1] != "1"  # the note follows the count
    assert " 1  " in e2  # tiny4: the one NO row passes the printed threshold
    assert "errata that break the decision here: E2, E4, E10" in out
    img = imread(str(tmp_path / "as_printed.png"))
    assert img.shape[1] >= 1600 and img.std() > 0.01


def test_as_printed_refuses_random_and_markdown_is_a_table(capsys, tmp_path):
    code, _, err = run(capsys, "explain", "--as-printed", "--random", "4")
    assert code == 2 and "--as-printed" in err and err.count("\n") == 1
    code, out, _ = run(capsys, "explain", "--example", "tiny4", "--as-printed", "--format", "markdown")
    assert code == 0 and out.startswith("| id | as printed |") and "| E2 |" in out
