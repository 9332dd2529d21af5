"""The walkthrough prints every stage, and its numbers are the library's numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from finegrained.cli import main
from finegrained.explain import explain, symbolic_blocks
from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.examples import example_path


def test_tiny4_walkthrough_matches_library_objects(capsys):
    assert main(["explain"]) == 0
    text = capsys.readouterr().out
    w = explain(CNFFormula.read(example_path("tiny4")))
    f, ov, gap, att, out = w.result.trace
    assert text == w.to_text()
    for k, title in enumerate(["The formula", "Split and list", "Coordinate gadget", "Attention instance",
                               "Oracle and threshold test", "Back to the formula"], 1):
        assert f"== {k}. {title}" in text
    for i, row in enumerate(ov.A):
        assert re.search(rf"a{i}: .*-> {''.join(map(str, row))}", text)
    for j, row in enumerate(gap.B):
        assert f"b{j}: {''.join(map(str, row))}" in text
    p = w.result.parameters
    assert f"beta = {p['beta']:.6g}" in text and f"log t~ = {p['log_t_tilde']:.6g}" in text
    for i in range(gap.n_a):
        assert f"{out.log_abs[i, 0]:>12.6g}" in text
    assert "assignment: " + " ".join(map(str, w.result.assignment)) in text
    assert f.is_satisfied_by(w.result.assignment)


def test_symbolic_blocks_evaluate_to_the_numeric_matrix():
    w = explain(CNFFormula([[1, -2], [2, 3], [-3]], num_vars=3))
    _, _, gap, att, _ = w.result.trace
    beta = w.result.parameters["beta"]
    blocks = symbolic_blocks(gap.n_a, gap.n_b, gap.dim, gap.A.astype(int) @ gap.B.T.astype(int))
    logA = att.scale * (att.Q @ att.K.T)
    sym = sp.Symbol("beta", positive=True)
    top_left = np.array([[float(sp.log(e).subs(sym, beta)) for e in row] for row in blocks["top-left"].tolist()])
    assert np.allclose(top_left, logA[: gap.n_a, : gap.n_b])
    assert blocks["bottom-left"] == sp.ones(gap.n_b, gap.n_b)
    assert np.isclose(float(sp.log(blocks["top-right"][0, 0]).subs(sym, beta)), logA[0, -1])


def test_markdown_and_limits(tmp_path, capsys):
    out = tmp_path / "walk.md"
    assert main(["explain", "--random", "5", "--seed", "3", "--format", "markdown", "-o", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("# Walkthrough") and "$$" in page and "## 6. Back to the formula" in page
    with pytest.raises(ParameterError, match="tiny formulas"):
        explain(CNFFormula([[1]], num_vars=9))
    assert main(["explain", "--random", "9"]) == 2
    assert "exceeds the limit 6" in capsys.readouterr().err
