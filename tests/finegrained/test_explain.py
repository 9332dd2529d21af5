"""The walkthrough prints every stage, and its numbers are the library's numbers."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
import sympy as sp

from finegrained.cli import main
from finegrained.explain import explain, symbolic_blocks
from instances.cnf import CNFFormula
from instances.errors import ParameterError
from instances.examples import example_path


def _independent_tiny4():
    """tiny4's chain recomputed here from the definitions, without the reductions: OV, Gap-ANN and log u."""
    clauses, n_vars = [[1, -2, 3], [-1, 2], [2, -3, 4], [-4, -1]], 4
    halves = [[1, 2], [3, 4]]

    def vectors(variables):
        rows = []
        for alpha in range(2 ** len(variables)):
            value = {v: (alpha >> k) & 1 for k, v in enumerate(variables)}
            rows.append([int(not any(abs(x) in value and value[abs(x)] == (x > 0) for x in cl)) for cl in clauses])
        return np.array(rows)

    A, B = vectors(halves[0]), vectors(halves[1])
    m = len(clauses)
    fa = np.array([[c for x in row for c in (1 - x, x, 0)] for row in A])
    gb = np.array([[c for y in row for c in (1, 1 - y, y)] for row in B])
    GA, GB = np.hstack([fa, 1 - fa]), np.hstack([gb, 1 - gb])
    d, t, eps = 6 * m, 2 * m + 1, 3 / (2 * m + 1)
    H = np.abs(GA[:, None, :] - GB[None, :, :]).sum(axis=2)
    n = GB.shape[0]
    beta = 1.25 * 4 * d * math.log(6 * n) / (eps * t)
    top = beta / 4 * (1 - H / d)  # log A_ij of the real keys; the n padding keys each carry log tau = beta/2
    log_u = np.logaddexp.reduce(top, axis=1) - np.logaddexp(np.logaddexp.reduce(top, axis=1),
                                                            math.log(n) + beta / 2)
    sat = [a for a in itertools.product([0, 1], repeat=n_vars)
           if all(any(a[abs(x) - 1] == (x > 0) for x in cl) for cl in clauses)]
    return A, B, GA, GB, H, d, t, beta, log_u, sat


def _number_after(label: str, text: str) -> float:
    return float(re.search(rf"{re.escape(label)} = ([-+0-9.e]+)", text).group(1))


def test_tiny4_walkthrough_matches_an_independent_computation(capsys):
    """Every number the CLI prints is checked against the chain recomputed from the definitions in this test."""
    assert main(["explain"]) == 0
    text = capsys.readouterr().out
    A, B, GA, GB, H, d, t, beta, log_u, sat = _independent_tiny4()
    assert [list(c) for c in CNFFormula.read(example_path("tiny4")).clauses] == [[1, -2, 3], [-1, 2], [2, -3, 4],
                                                                                [-4, -1]]
    for k, title in enumerate(["The formula", "Split and list", "Coordinate gadget", "Attention instance",
                               "Oracle and threshold test", "Back to the formula"], 1):
        assert f"== {k}. {title}" in text
    assert "N = 4 variables, m = 4 clauses" in text and "C1: x1 v ~x2 v x3" in text and "C4: ~x4 v ~x1" in text
    for name, X in (("a", A), ("b", B)):
        for i, row in enumerate(X):
            assert re.search(rf"{name}{i}: .*-> {''.join(map(str, row))}$", text, re.M), (name, i)
    for name, X in (("a", GA), ("b", GB)):
        for i, row in enumerate(X):
            assert f"{name}{i}: {''.join(map(str, row))}" in text
    orth = [f"(a{i}, b{j})" for i in range(len(A)) for j in range(len(B)) if A[i] @ B[j] == 0]
    assert "orthogonal pairs: " + ", ".join(orth) in text
    assert f"d = {d}, t = {t:g}" in text
    for row in H:
        assert "  " + " ".join(f"{h:>4d}" for h in row) in text
    assert _number_after("beta", text) == pytest.approx(beta, rel=1e-5)
    log_tt = beta / 4 * (1 - t / d) - math.log(6 * len(GB)) - beta / 2
    assert _number_after("log t~", text) == pytest.approx(log_tt, rel=1e-5)
    rows = re.findall(r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(YES|NO)\s+(\d+)\s+(YES|NO)$", text, re.M)
    assert len(rows) == len(GA)
    for i, lu, margin, decision, min_h, truth in rows:
        i = int(i)
        assert float(lu) == pytest.approx(log_u[i], rel=1e-5)
        assert float(margin) == pytest.approx(log_u[i] - (math.log(2) + log_tt), abs=1e-3)
        assert int(min_h) == H[i].min() and truth == ("YES" if H[i].min() < t else "NO") and decision == truth
    assignment = re.search(r"assignment: (.*)$", text, re.M).group(1).split()
    assert tuple(int(int(x) > 0) for x in assignment) in sat  # a satisfying assignment, by brute force
    assert "pysat CDCL says: SAT" in text and "verified: satisfies every clause" in text


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
