"""Certified decisions (issue 11): no oracle, mode or flag gives a wrong SAT/UNSAT answer, and the adversary
pushes by the truth, so validation fails exactly below beta_min."""

from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained import run_chain
from finegrained.attention import ORACLES, exact
from finegrained.attention.protocol import Certificate, OracleAnswer
from finegrained.pipeline import decide
from finegrained.validate import beta_sweep, validate_gap_ann
from instances import CNFFormula, example_path
from instances.errors import FinegrainedError, UncertifiedError, WrongAnswerError
from instances.generators import random_ksat
from instances.logspace import LogArray
from instances.worst_case import worst_case_gap_ann
from reductions import GapANNToAAttC, path


def _formulas(count: int, seed: int = 11) -> list[CNFFormula]:
    rng = np.random.default_rng(seed)
    out = [CNFFormula([], num_vars=4), CNFFormula([[1], [-1]]), CNFFormula([[]], num_vars=2)]
    while len(out) < count:
        n = int(rng.integers(1, 7))
        k = int(rng.integers(1, min(3, n) + 1))
        m = int(rng.integers(0, 3 * n + 2))
        out.append(random_ksat(n, m, k, seed=int(rng.integers(2**31))))
    return out


@pytest.mark.parametrize("mode", ["tight", "paper"])
@pytest.mark.parametrize("oracle", sorted(ORACLES))
def test_no_wrong_answer_without_cdcl(oracle, mode):
    """200 formulas x every oracle x both modes, cdcl=False: a certified answer is right; an uncertified one says
    so; anything else is one clean error. Certified answers must actually occur for the certifying oracles."""
    # Built here, not at import time, so that mutation testing links the generators' and the solver's code to
    # this test (an input built at import time is built once by the unmutated code).
    formulas = _formulas(200)
    truth = [f.solve_cdcl() is not None for f in formulas]
    certified = 0
    for f, sat in zip(formulas, truth):
        try:
            r = run_chain(f, oracle=oracle, params=mode, cdcl=False)
        except (UncertifiedError, WrongAnswerError):
            continue  # a clean refusal, or a provably wrong oracle answer caught by the backward map
        except FinegrainedError as exc:  # e.g. poly refusing the hard side of the threshold
            assert "\n" not in str(exc)
            continue
        if r.satisfiable:
            assert sat and f.is_satisfied_by(r.assignment), (oracle, mode, f.clauses)
            assert r.certified
        elif r.certified:
            assert not sat, (oracle, mode, f.clauses)
        else:
            assert r.status == "uncertified" and "uncertified" in r.answer and r.reason
        certified += r.certified
    if oracle in ("exact", "reference"):
        assert certified == len(formulas)


def test_too_coarse_certificate_refuses_with_the_needed_accuracy():
    """An oracle certifying 1e-6 additive error cannot decide e^-28-sized rows: one line, no UNSAT."""

    def coarse(Q, K, V, *, scale=None):
        return OracleAnswer(exact(Q, K, V, scale=scale), Certificate("additive", math.log(1e-6)))

    unsat = CNFFormula([[1], [-1]], num_vars=12)
    with pytest.raises(UncertifiedError, match=r"certifies additive error <= 1e-06.*needs additive error <= e\^"):
        run_chain(unsat, oracle=coarse, cdcl=False)
    # A satisfiable formula still gets a certified SAT: the point answer's assignment is verified on the formula.
    r = run_chain(CNFFormula([], num_vars=12), oracle=coarse, cdcl=False)
    assert r.satisfiable and r.certified and r.verified


def test_uncertified_oracle_unsat_is_labelled():
    r = run_chain(CNFFormula([[1], [-1]]), oracle="lev", cdcl=False)
    assert not r.satisfiable and not r.certified
    d = r.to_dict()
    assert d["certified"] is False and d["status"] == "uncertified" and d["certificate"]["kind"] == "none"


def test_float_oracle_below_float_range_is_refused():
    def softmax(Q, K, V, *, scale=None):
        s = (scale or 1 / Q.shape[1]) * Q @ K.T
        w = np.exp(s - s.max(axis=1, keepdims=True))
        return (w @ V) / w.sum(axis=1, keepdims=True)

    with pytest.raises(UncertifiedError, match="below every float format"):
        run_chain(CNFFormula.read(example_path("random3sat-n20")), oracle=softmax, cdcl=False)
    # Where the threshold is inside the float range the same kernel answers (uncertified) and is right.
    r = run_chain(CNFFormula([[1, 2], [-1, 2]]), oracle=softmax, cdcl=False)
    assert r.satisfiable and r.certified  # SAT is certified by the verified assignment


def test_max_no_margin_is_reported_when_every_row_is_no():
    r = run_chain(CNFFormula([[1], [-1]]), cdcl=False)
    assert r.decision["yes_rows"] == 0 and r.decision["max_no_margin"] is not None


def test_decision_reports_undecided_rows():
    def coarse(Q, K, V, *, scale=None):
        return OracleAnswer(exact(Q, K, V, scale=scale), Certificate("additive", 0.0))

    d = decide(path("k-SAT", "AAttC"), CNFFormula([[1], [-1]]), coarse)
    assert d.status == "undecided" and d.rows.undecided.all()
    with pytest.raises(UncertifiedError):
        d.require_certified()


# --------------------------------------------------------------------------------------- adversary by the truth
def _worst():
    # A fresh instance per test (not a module constant), so that mutation testing links worst_case_gap_ann's code
    # to these tests.
    return worst_case_gap_ann(8, 20, 5.0, 0.2, yes_rows=2, no_rows=3)


def _beta_min() -> float:
    return GapANNToAAttC().derive(_worst()).beta_min


@pytest.mark.parametrize("factor", [0.5, 0.9, 0.999, 1 - 1e-6])
def test_adversary_reports_wrong_rows_below_beta_min(factor):
    rep = validate_gap_ann(_worst(), beta=_beta_min() * factor, oracle="adversarial")
    s = rep.summary
    assert not s["all_correct"]
    assert s["wrong_rows"] == [2, 3, 4]  # exactly the NO rows at distance (1 + eps) t
    assert s["certified_rows"] == 0  # below beta_min nothing is certified


@pytest.mark.parametrize("factor", [1 + 1e-9, 1 + 1e-6, 1.25, 4.0])
def test_adversary_at_and_above_beta_min_is_right(factor):
    rep = validate_gap_ann(_worst(), beta=_beta_min() * factor, oracle="adversarial")
    assert rep.summary["all_correct"], rep.summary


def test_exact_oracle_alone_survives_slightly_below_beta_min():
    """The exact answer is still right at 0.999 beta_min (u_i is just above t~, far below 2t~): only the
    adversary, pushing NO rows up, exposes the failure. The old push-by-computed-side had the same blind spot in
    the other direction."""
    rep = validate_gap_ann(_worst(), beta=_beta_min() * 0.999, oracle="exact")
    assert rep.summary["all_correct"]


def test_sweep_with_adversary_drops_below_100_percent_just_below_beta_min():
    s = beta_sweep(_worst(), points=2, low=0.999, high=1.0 + 1e-9)
    assert s.frac_adversarial[0] < 1.0 and s.frac_adversarial[1] == 1.0
    assert s.frac_exact.tolist() == [1.0, 1.0]


def test_push_by_truth_not_by_computed_side():
    from finegrained.attention.adversarial import push_towards_threshold

    u = LogArray.from_float(np.array([3.0, 1.0]))
    # A NO row (truth False) computed above the threshold stays above it: it is pushed further up.
    pushed = push_towards_threshold(u, math.log(0.5), math.log(2.0), truth=np.array([False, True]))
    assert pushed.to_float().tolist() == [3.5, 0.5]
