from __future__ import annotations

import math

import numpy as np
import pytest

from finegrained.attention import anytemp_oracle, exact
from instances.errors import ParameterError, ReductionError, WrongAnswerError
from instances.logspace import LogArray
from instances.ov import OVInstance
from reductions import check_reduction, path
from reductions.ov_to_attention import OVToAttention, gadget_bounds, gadget_lambda


def _random_ov(rng: np.random.Generator) -> OVInstance:
    n_a, n_b, m = rng.integers(1, 9), rng.integers(1, 9), rng.integers(1, 7)
    p = rng.uniform(0.2, 0.7)
    return OVInstance(rng.random((n_a, m)) < p, rng.random((n_b, m)) < p)


@pytest.mark.parametrize("factor", [8.0, 4.0, 3.5])
def test_karp_property(factor, generators):
    cx = check_reduction(OVToAttention(factor=factor), generators["OV"], trials=150, seed=int(factor))
    assert cx is None, str(cx)


def test_karp_on_random_instances_with_margins():
    rng = np.random.default_rng(0)
    r = OVToAttention()
    yes_count = 0
    for _ in range(150):
        ov = _random_ov(rng)
        att = r.forward(ov)
        out = exact(att.Q, att.K, att.V, scale=att.scale)
        truth = np.array([ov.partner_of(i) is not None for i in range(ov.n_a)])
        u = np.where(out.sign[:, 0] > 0, np.exp(np.maximum(out.log_abs[:, 0], -700.0)), 0.0)
        # The derived gap: >= 8/9 on YES rows, <= 1/9 on NO rows.
        assert np.all(u[truth] >= 8 / 9 - 1e-12) and np.all(u[~truth] <= 1 / 9 + 1e-12)
        assert np.array_equal(r.row_answers(ov, out), truth)
        pair = r.backward(ov, out)
        expected = ov.brute_force_solve()
        assert (pair is None) == (expected is None)
        if pair is not None:
            assert ov.is_orthogonal(pair)
            yes_count += 1
        # Any answer within eps_a = 1/4 decodes the same way.
        worst = LogArray.from_float(np.clip(u + np.where(truth, -0.25, 0.25), 1e-300, None)[:, None])
        assert np.array_equal(r.row_answers(ov, worst), truth)
    assert 20 < yes_count < 140
    assert math.isclose(att.B, gadget_lambda(ov.n_b))


def test_chain_from_ksat_through_ov(generators):
    chain = path("k-SAT", "Attention")
    assert chain.problems == ["k-SAT", "OV", "Attention"]
    assert path("OV", "Attention").problems == ["OV", "Attention"]
    assert path("k-SAT", "AAttC").problems == ["k-SAT", "OV", "Gap-ANN", "AAttC"]

    def solve(att):
        return exact(att.Q, att.K, att.V, scale=att.scale)

    cx = check_reduction(chain, generators["k-SAT"], trials=100, seed=1, solve_target=solve)
    assert cx is None, str(cx)


@pytest.mark.parametrize(("factor", "yes_low", "no_high"), [(4.0, 4 / 5, 1 / 5), (8.0, 8 / 9, 1 / 9)])
def test_gadget_bounds_are_the_exact_worst_cases(factor, yes_low, no_high):
    # lambda = 2 ln(c n): NO rows reach exactly 1/(c+1) (every <a, b> = 1), YES rows exactly c/(c+1) (n = 1);
    # with c = 4 that is 1/5 and 4/5, so eps_a = 1/4 leaves a margin of 1/20 on each side.
    assert np.allclose(gadget_bounds(factor), (yes_low, no_high), rtol=1e-15)
    r = OVToAttention(factor=factor)
    for n in (1, 2, 7, 50):
        no_row = r.forward(OVInstance([[1, 0]], [[1, 1]] * n)).brute_force_solve().to_float()[0, 0]
        assert math.isclose(no_row, no_high, rel_tol=1e-12)
        yes_row = r.forward(OVInstance([[1, 0]], [[0, 1]] + [[1, 1]] * (n - 1))).brute_force_solve().to_float()[0, 0]
        assert yes_row >= yes_low - 1e-12
        assert math.isclose(yes_row, yes_low, rel_tol=1e-12) == (n == 1)
    assert no_high + 0.25 < 0.5 < yes_low - 0.25
    if factor == 4.0:
        assert math.isclose(0.5 - (no_high + 0.25), 1 / 20) and math.isclose((yes_low - 0.25) - 0.5, 1 / 20)


def test_gadget_factor_must_leave_room():
    for bad in (3.0, 2.0, -1):
        with pytest.raises(ParameterError, match="must exceed 3"):
            OVToAttention(factor=bad)
    for bad in (math.inf, math.nan):
        with pytest.raises(ParameterError, match="must be a finite real number"):
            OVToAttention(factor=bad)
    # not numbers, or ints beyond float64: one ParameterError, not a TypeError or OverflowError
    for bad, what in (("8", "must be a real number, got '8'"), (True, "must be a real number, got True"),
                      (8 + 0j, r"must be a real number, got \(8\+0j\)"), (10**400, "within float64 range")):
        with pytest.raises(ParameterError, match=what):
            OVToAttention(factor=bad)


def test_gadget_lambda_does_not_overflow_near_the_top_of_float64():
    # 2 ln(c n) as 2 (ln c + ln n): the product c n is inf for c = 1e308 and n >= 2
    assert gadget_lambda(4, 1e308) == pytest.approx(2 * (math.log(1e308) + math.log(4)), rel=1e-15)
    assert gadget_lambda(5, 8.0) == pytest.approx(2 * math.log(40.0), rel=1e-15)
    att = OVToAttention(factor=1e308).forward(OVInstance([[1, 0], [1, 1]], [[1, 1], [0, 1]]))
    assert np.isfinite(att.Q).all() and np.isfinite(att.K).all()


def test_anytemp_oracle_decides_small_instances():
    rng = np.random.default_rng(2)
    r = OVToAttention()
    for _ in range(20):
        ov = _random_ov(rng)
        att = r.forward(ov)
        out = anytemp_oracle(att.Q, att.K, att.V, scale=att.scale).output
        assert (r.backward(ov, out) is None) == (ov.brute_force_solve() is None)


def test_inconsistent_answer_raises():
    ov = OVInstance([[1, 1]], [[1, 0]])
    bad = LogArray.from_float(np.array([[1.0]]))
    with pytest.raises(WrongAnswerError, match="none exists"):
        OVToAttention().backward(ov, bad)
    with pytest.raises(ReductionError, match="expected"):
        OVToAttention().backward(ov, LogArray.from_float(np.ones((2, 1))))
    with pytest.raises(ReductionError, match="LogArray"):
        OVToAttention().backward(ov, np.ones((1, 1)))


# --- whole-value checks of every output (mutation triage, issue 18) ---------------------------------------------

def _column(values) -> LogArray:
    return LogArray.from_float(np.asarray(values, dtype=np.float64)[:, None])


def test_every_refusal_is_its_whole_message():
    from instances.solutions import CertifiedOutput, GapANNAnswer
    from reductions.base import CertificateError

    r = OVToAttention()
    ov = OVInstance([[1, 1]], [[1, 0]])
    reduced = r.reduce(ov)
    cases = [
        (lambda: r.forward(1), ReductionError, "the OV -> Attention input must be a OVInstance, got int"),
        (lambda: r.parameters(1), ReductionError, "the OV instance must be a OVInstance, got int"),
        (lambda: r.row_answers(1, _column([0.9])), ReductionError, "the OV instance must be a OVInstance, got int"),
        (lambda: r.decide_rows(reduced, np.ones((1, 1))), ReductionError,
         "the attention output must be a CertifiedOutput, got ndarray"),
        (lambda: r.decide_rows(reduced, CertifiedOutput(_column([0.9, 0.1]))), ReductionError,
         "attention output has shape (2, 1); expected (1, 1)"),
        (lambda: r.extract(reduced, GapANNAnswer(np.array([True, False]))), ReductionError,
         "the row answers have shape (2,); expected (1,)"),
        (lambda: r.extract(reduced, GapANNAnswer(np.array([True]))), CertificateError,
         "the attention output claims row 0 has an orthogonal partner, but none exists: the oracle's error exceeds "
         "eps_a = 1/4"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as info:
            call()
        assert str(info.value) == message


def test_forward_records_its_gadget_in_meta():
    ov = OVInstance([[1, 0], [0, 1]], [[1, 1], [0, 1], [1, 0]])
    att = OVToAttention(factor=4.0).forward(ov)
    assert att.meta == {"lambda": 2 * math.log(4.0 * 3), "threshold": 0.5, "gadget": "ov"}


def test_parameters_are_their_formulas():
    # factor 4 and n_b = 3, so that neither the default factor nor n_b = factor could stand in for them
    ov = OVInstance([[1, 0]], [[1, 1], [0, 1], [1, 0]])
    p = OVToAttention(factor=4.0).parameters(ov)
    assert set(p) == {"lambda", "log_threshold", "log_eps_a", "log_eps_needed", "factor"}
    assert p["lambda"] == 2.0 * math.log(12.0) and p["factor"] == 4.0
    assert p["log_threshold"] == -math.log(2.0) and p["log_eps_a"] == math.log(0.25)
    assert p["log_eps_needed"] <= math.log(0.25)


def test_parameters_ask_for_the_largest_sound_accuracy():
    # near-tight: e is the margin (c/(c+1) - 1/2) / 2 less 1e-12 in log space, not a cruder bound
    for factor in (4.0, 8.0):
        yes_lo, _ = gadget_bounds(factor)
        p = OVToAttention(factor=factor).parameters(OVInstance([[1, 0]], [[1, 1]]))
        # sound: a YES row (u >= c/(c+1)) answered within e has its whole interval [u~ - e, u~ + e] above 1/2,
        # and symmetrically for NO rows (u <= 1/(c+1))
        e = math.exp(p["log_eps_needed"])
        assert yes_lo - 2 * e > 0.5 and 1 / (factor + 1) + 2 * e < 0.5
        assert abs(p["log_eps_needed"] - (math.log((yes_lo - 0.5) / 2) - 1e-12)) < 1e-14


def test_decide_rows_takes_a_bare_output_as_exact_and_reports_its_margins():
    r = OVToAttention()
    ov = OVInstance([[1, 0]] * 4, [[1, 1]])
    reduced = r.reduce(ov)
    u = np.array([0.75, 0.25, 0.0, -0.5])
    rows = r.decide_rows(reduced, _column(u))
    assert rows.certified and not rows.undecided.any()
    assert rows.yes.tolist() == [True, False, False, False]
    # margin = log(2u) for u > 0 and -inf otherwise (negative outputs included)
    assert rows.margin.tolist() == [math.log(0.75) + math.log(2.0), math.log(0.25) + math.log(2.0), -math.inf,
                                    -math.inf]
    from instances.solutions import CertifiedOutput

    point = r.decide_rows(reduced, CertifiedOutput(_column(u)))
    assert point.certified is False and point.yes.tolist() == [True, False, False, False]
    assert point.margin.tolist() == rows.margin.tolist()


def test_decide_rows_decides_exactly_the_rows_whose_interval_is_on_one_side():
    from instances.solutions import CertifiedOutput

    r = OVToAttention()
    ov = OVInstance([[1, 0]] * 8, [[1, 1]])
    reduced = r.reduce(ov)
    #                 YES   NO    open  open  NO    NO     open  YES
    value = np.array([0.7, 0.3, 0.55, 0.45, 0.2, -0.95, 0.5, 0.45])
    lower = np.array([0.6, 0.2, 0.4, 0.35, -0.9, -1.0, 0.5, 0.55])
    upper = np.array([0.8, 0.4, 0.6, 0.5, 0.4, -0.9, 0.7, 0.6])
    rows = r.decide_rows(reduced, CertifiedOutput(_column(value), _column(lower), _column(upper)))
    assert rows.certified
    # an interval touching 1/2 (row 3's upper, row 6's lower) is not on one side; negative bounds are below 1/2;
    # a certified interval above 1/2 wins over a point answer below it (row 7)
    assert rows.undecided.tolist() == [False, False, True, True, False, False, True, False]
    assert rows.yes.tolist() == [True, False, True, False, False, False, True, True]
    assert rows.margin[0] == math.log(0.7) + math.log(2.0) and rows.margin[5] == -math.inf


def test_extract_skips_undecided_rows_without_a_partner_and_finds_a_later_pair():
    from instances.solutions import GapANNAnswer

    r = OVToAttention()
    ov = OVInstance([[1, 1], [1, 0]], [[0, 1]])
    reduced = r.reduce(ov)
    rows = GapANNAnswer(np.array([True, True]), undecided=np.array([True, False]))
    got = r.extract(reduced, rows)
    assert (got.i, got.j) == (1, 0)
