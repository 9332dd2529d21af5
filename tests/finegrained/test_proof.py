"""Exact sympy checks of the corrected Lemma 4.7 proof, on the numbers the reduction actually decides with.

They pass at the derived parameters, break below beta_min, and break, naming the quantity, when the reduction's
tau, t~, eps_a or threshold is not its closed form (the paper's tau = e^beta put back into the reduction).
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import sympy as sp

import reductions.gap_ann_to_attention as g2a
from finegrained.cli import main
from finegrained.proof import (
    CLOSED_FORM_CHECKS,
    certified_sign,
    closed_forms,
    proof_checks,
    symbolic_checks,
    to_rational,
    uses_paper_eps_a,
)
from finegrained.validate import gap_ann_of_cnf
from instances.cnf import CNFFormula
from instances.examples import example_path
from reductions import GapANNToAAttC, lemma47_parameters

SHIPPED = (1024, 1024, 510, 171.0, 3 / 171)  # the 20-variable example's Gap-ANN sizes
CLOSED = list(CLOSED_FORM_CHECKS.values())


def test_to_rational_is_the_float_exactly():
    for x in (3 / 171, 0.1, 7414.746584167, 1e-300, 171.0):
        r = to_rational(x)
        assert isinstance(r, sp.Rational) and float(r) == x
    assert to_rational(3 / 171) == sp.Rational(1, 57)


def test_certified_sign_is_rigorous_for_tiny_and_zero_slacks():
    assert certified_sign(sp.log(1 + sp.exp(-sp.Integer(3000))))[0] == 1  # needs ~4400 bits
    assert certified_sign(sp.log(6) - sp.log(2) - sp.log(3))[0] == 0
    assert certified_sign(sp.log(5) - sp.log(6))[0] == -1
    assert certified_sign(sp.Rational(1, 10**40))[0] == 1


@pytest.mark.parametrize("mode", ["tight", "paper"])
@pytest.mark.parametrize("sizes", [SHIPPED, (1, 1, 6, 3.0, 1.0), (2, 2, 12, 5.0, 0.6), (64, 64, 30, 11.0, 3 / 11)])
def test_every_check_passes_at_the_derived_parameters(mode, sizes):
    report = proof_checks(lemma47_parameters(*sizes, mode=mode))
    assert report.passed, report.failed
    names = [c.name for c in report.checks]
    assert names[:4] == CLOSED
    assert names[4:8] == ["t_tilde >= eps_a", "A_ij <= e^(beta/4) < tau", "D > n tau", "D < 2 n tau"]
    assert ("Eq. (13): n^10 >= 6n" in names) == (mode == "paper")


def test_closed_forms_are_the_lemmas_formulas():
    """proof.py's own copy of the formulas, against the lemma written out here (E2, E4, Eq. 8)."""
    n, d, t, eps = 1024, 510, sp.Integer(171), sp.Rational(1, 57)
    tight = lemma47_parameters(*SHIPPED)
    beta = to_rational(tight.beta)
    tt = beta / 4 * (1 - t / d) - sp.log(6 * n) - beta / 2
    forms = closed_forms(tight)
    assert forms["log_tau"] == beta / 2
    assert sp.simplify(forms["log_t_tilde"] - tt) == 0
    assert sp.simplify(forms["log_eps_a"] - tt) == 0
    assert sp.simplify(forms["log_threshold"] - (tt + sp.log(2))) == 0
    # The README's number for the shipped example, -2483.9, and the derivation from tau = e^(beta/2).
    assert float(forms["log_t_tilde"]) == pytest.approx(-2483.9, abs=0.05)
    # Given another tau, t~ follows it; eps_a and the threshold follow the given t~.
    up = closed_forms(tight, upstream={"log_tau": beta, "log_t_tilde": sp.Integer(-7)})
    assert sp.simplify(up["log_t_tilde"] - (tt - beta / 2)) == 0
    assert up["log_eps_a"] == -7 and up["log_threshold"] == sp.log(2) - 7
    paper = lemma47_parameters(*SHIPPED, mode="paper")
    assert uses_paper_eps_a(paper) and not uses_paper_eps_a(tight)
    bp = to_rational(paper.beta)
    c_b2 = bp / sp.log(n)  # beta = C_b^2 log n; C_a = 2 + C_b^2 (1 + C_0/C) with C_0/C = t/d
    c_a = 2 + c_b2 * (1 + t / d)
    assert sp.simplify(closed_forms(paper)["log_eps_a"] + c_a * sp.log(n)) == 0
    # The paper's beta of Eq. (9) is 40 d log n/(eps t); any other beta in paper mode means eps_a = t~.
    assert float(bp) == pytest.approx(float(40 * d * sp.log(n) / (eps * t)), rel=1e-12)
    over = lemma47_parameters(*SHIPPED, mode="paper", beta=50000.0)
    assert not uses_paper_eps_a(over)
    assert closed_forms(over)["log_eps_a"] == closed_forms(over)["log_t_tilde"]
    assert uses_paper_eps_a(over, beta_overridden=False)


def test_tight_mode_slacks_are_exact():
    p = lemma47_parameters(*SHIPPED)
    checks = {c.name: c for c in proof_checks(p).checks}
    assert checks["t_tilde >= eps_a"].sign == 0 and checks["t_tilde >= eps_a"].certificate == "exact zero"
    assert checks["gap condition"].value == pytest.approx(0.25 * math.log(6 * 1024), rel=1e-9)
    # Case 2a decision: e^(beta/4 (1 - H/d))/(2 n tau) - t~ >= 2 t~ at H = 170 < t = 171, margin beta/(4d) nats.
    assert checks["Case 2a decision"].value == pytest.approx(p.beta / (4 * 510), rel=1e-9)
    # Case 2b decision: 3 t~ 2n e^(-gap) + t~ <= 2 t~, i.e. ln 2 - ln(1 + 6n e^(-gap exponent)).
    expected = math.log(2) - math.log1p(6 * 1024 * math.exp(-p.gap_exponent))
    assert checks["Case 2b decision"].value == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_checks_fail_below_beta_min_and_name_the_broken_inequality(mode):
    p = lemma47_parameters(*SHIPPED, mode=mode, beta=0.9 * lemma47_parameters(*SHIPPED).beta_min, check=False)
    report = proof_checks(p)
    assert not report.passed
    assert report.failed == ["gap condition", "Case 2b: u < t~", "Case 2b decision"]
    sym = symbolic_checks(p)
    assert [c.name for c in sym if not c.passed] == ["gap exponent (beta = s beta_min)"]


def _with_line(old: str, new: str):
    """lemma47_parameters recompiled from its own source with one line changed (a deliberately wrong reduction)."""
    source = inspect.getsource(g2a.lemma47_parameters)
    assert source.count(old) == 1, f"the reduction no longer contains {old!r}; update this test"
    namespace = dict(vars(g2a))
    exec(compile(source.replace(old, new), g2a.__file__, "exec"), namespace)  # noqa: S102 - the module's own code
    return namespace["lemma47_parameters"]


def _tiny4_gap():
    return gap_ann_of_cnf(CNFFormula.read(example_path("tiny4")))


def test_the_papers_tau_in_the_reduction_fails_naming_tau(monkeypatch, capsys):
    """Erratum E2 put back: log_tau = beta. --proof must fail and name tau (and the D bound it breaks)."""
    monkeypatch.setattr(g2a, "lemma47_parameters", _with_line("log_tau = beta / 2", "log_tau = beta"))
    gap = _tiny4_gap()
    params = GapANNToAAttC().derive(gap)
    assert params.log_tau == params.beta  # the wrong reduction is the one in use
    failed = proof_checks(params).failed
    assert failed == ["tau = e^(beta/2)", "D > n tau"]  # t~ is consistent with the wrong tau; D's bound breaks
    assert main(["validate", "--example", "tiny4", "--proof"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tau = e^(beta/2)" in out and "FAILED: tau = e^(beta/2)" in out
    monkeypatch.undo()
    assert proof_checks(GapANNToAAttC().derive(gap)).passed


@pytest.mark.parametrize(
    ("old", "new", "mode", "name"),
    [
        ("- math.log(6 * n) - log_tau", "- math.log(4 * n) - log_tau", "tight", "t~ = e^(beta/4 (1 - t/d))/(6 n tau)"),
        ("c_a = 2 + c_b**2", "c_a = 1 + c_b**2", "paper", "eps_a closed form"),
        ("log_threshold=float(math.log(2) + log_t_tilde)", "log_threshold=float(math.log(3) + log_t_tilde)",
         "tight", "threshold = 2 t~"),
    ],
    ids=["t_tilde ln 4n", "C_a", "threshold 3t~"],
)
def test_each_wrong_constant_is_named(monkeypatch, old, new, mode, name):
    monkeypatch.setattr(g2a, "lemma47_parameters", _with_line(old, new))
    report = proof_checks(GapANNToAAttC(mode=mode).derive(_tiny4_gap()))
    assert name in report.failed
    assert [c for c in CLOSED if c in report.failed] == [name]  # the other closed forms still match


def test_closed_form_tolerance_is_float_rounding_only():
    p = lemma47_parameters(*SHIPPED)
    ulp = dataclasses.replace(p, log_t_tilde=math.nextafter(p.log_t_tilde, 0.0))
    assert "t~ = e^(beta/4 (1 - t/d))/(6 n tau)" not in proof_checks(ulp).failed
    off = dataclasses.replace(p, log_t_tilde=p.log_t_tilde + 1e-6)
    assert "t~ = e^(beta/4 (1 - t/d))/(6 n tau)" in proof_checks(off).failed


def test_symbolic_mode_proves_the_paper_constants_for_all_n():
    sym = symbolic_checks(lemma47_parameters(*SHIPPED, mode="paper"))
    by = {c.name: c for c in sym}
    assert all(c.passed for c in sym)
    n = sp.Symbol("n", positive=True)
    assert sp.simplify(by["gap exponent (paper beta)"].slack - (9 * sp.log(n) - sp.log(6))) == 0
    assert by["Case 2a identity"].sign == 0 and by["Case 2b identity"].sign == 0


def test_symbolic_mode_tight_holds_by_construction():
    sym = symbolic_checks(lemma47_parameters(*SHIPPED))
    assert all(c.passed for c in sym)
    assert "n >= 1" in sym[0].statement
