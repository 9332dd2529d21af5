"""Exact sympy checks of the corrected Lemma 4.7 proof: they pass at the derived beta and break below beta_min."""

from __future__ import annotations

import math

import pytest
import sympy as sp

from finegrained.proof import certified_sign, proof_checks, symbolic_checks, to_rational
from reductions import lemma47_parameters

SHIPPED = (1024, 1024, 510, 171.0, 3 / 171)  # the 20-variable example's Gap-ANN sizes


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
    assert names[:4] == ["t_tilde >= eps_a", "A_ij <= e^(beta/4) < tau", "D > n tau", "D < 2 n tau"]
    assert ("Eq. (13): n^10 >= 6n" in names) == (mode == "paper")


def test_tight_mode_slacks_are_exact():
    p = lemma47_parameters(*SHIPPED)
    checks = {c.name: c for c in proof_checks(p).checks}
    for name in ("t_tilde >= eps_a", "Case 2a decision", "Case 2b decision"):
        assert checks[name].sign == 0 and checks[name].certificate == "exact zero"  # eps_a = t~ exactly
    assert checks["gap condition"].value == pytest.approx(0.25 * math.log(6 * 1024), rel=1e-9)


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_checks_fail_below_beta_min_and_name_the_broken_inequality(mode):
    p = lemma47_parameters(*SHIPPED, mode=mode, beta=0.9 * lemma47_parameters(*SHIPPED).beta_min, check=False)
    report = proof_checks(p)
    assert not report.passed
    assert report.failed == ["gap condition", "Case 2b: u < t~"]
    sym = symbolic_checks(p)
    assert [c.name for c in sym if not c.passed] == ["gap exponent (beta = s beta_min)"]


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
