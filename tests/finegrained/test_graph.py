from __future__ import annotations

import json

from finegrained.cli import main


def test_text_marks_the_path(capsys):
    assert main(["graph", "--path", "k-SAT", "AAttC"]) == 0
    out = capsys.readouterr().out
    for line in (" * k-SAT -> OV", " * OV -> Gap-ANN", " * Gap-ANN -> AAttC", "Lemma 4.7", "parameters: beta"):
        assert line in out


def test_json_and_dot(capsys):
    assert main(["graph", "--json", "--path", "OV", "AAttC"]) == 0
    data = json.loads(capsys.readouterr().out)
    on = {(r["source"], r["target"]) for r in data["reductions"] if r["on_path"]}
    assert on == {("OV", "Gap-ANN"), ("Gap-ANN", "AAttC")}
    assert {"k-SAT", "OV", "Gap-ANN", "AAttC"} <= {p["name"] for p in data["problems"]}
    assert main(["graph", "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph reductions {") and '"k-SAT" -> "OV"' in dot


def test_errors(capsys):
    assert main(["graph", "--path", "AAttC", "OV"]) == 2
    assert "no chain of reductions" in capsys.readouterr().err
    assert main(["graph", "--format", "png"]) == 2
    assert "-o FILE.png" in capsys.readouterr().err


def test_unwritable_outputs_are_one_line(capsys, tmp_path):
    for argv in (["graph", "--format", "dot", "-o", str(tmp_path)],
                 ["graph", "--format", "png", "-o", str(tmp_path / "no" / "g.png")],
                 ["explain", "-o", str(tmp_path / "no" / "w.md")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("finegrained: error: cannot write") and err.count("\n") == 1


def test_png(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["graph", "--format", "png", "--path", "k-SAT", "AAttC", "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
