"""The ``"anytemp"`` oracle under the oracle protocol: requested accuracy, quick refusals, and the SAT chain."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from finegrained.attention import OracleAnswer, call_oracle, exact_oracle, reference_oracle
from finegrained.attention.anytemp import LOG_ETA_MIN, anytemp_oracle
from finegrained.chain import run_chain
from instances.cnf import CNFFormula
from instances.errors import ParameterError, UncertifiedError
from reductions import path
from reductions.gap_ann_to_attention import certified_threshold_test, lemma47_parameters

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
# the package exports the function anytemp under the module's name, so fetch the module itself
anytemp_mod = importlib.import_module("finegrained.attention.anytemp")


def _interval_contains(ans: OracleAnswer, truth: OracleAnswer) -> bool:
    """anytemp's certified interval contains the truth's whole certified interval (both in floats)."""
    b, t = ans.bounds(), truth.bounds()
    return bool(np.all(b.lower.to_float() <= t.lower.to_float()) and np.all(t.upper.to_float() <= b.upper.to_float()))


def _no_tree(*_args, **_kwargs):
    raise AssertionError("the refusal must come before the tree is built")


def test_requested_accuracy_is_met_and_true():
    rng = np.random.default_rng(0)
    Q, K, V = rng.uniform(-3, 3, (25, 2)), rng.uniform(-3, 3, (200, 2)), rng.uniform(-1, 1, (200, 2))
    for log_eps in (-5.0, -15.0, -25.0):
        ans = anytemp_oracle(Q, K, V, scale=1.0, log_eps=log_eps)
        assert ans.certificate.kind == "additive" and ans.certificate.worst_log_bound <= log_eps
        assert np.shape(ans.certificate.log_bound) == (25, 2)
        assert _interval_contains(ans, reference_oracle(Q, K, V, scale=1.0))
        assert ans.info["method"] == "tree" and math.isfinite(ans.info["log_error_bound"])
    # a looser request gives a wider window-limited answer, still certified
    loose = anytemp_oracle(Q, K, V, scale=1.0, log_eps=2.0)
    assert loose.certificate.worst_log_bound <= 2.0


def test_window_floor_refused_before_the_tree(monkeypatch):
    rng = np.random.default_rng(1)
    Q, K, V = rng.normal(size=(10, 2)), rng.normal(size=(50, 2)), rng.uniform(0, 1, (50, 1))
    monkeypatch.setattr(anytemp_mod, "build_tree", _no_tree)
    with pytest.raises(UncertifiedError) as info:
        anytemp_oracle(Q, K, V, log_eps=-2484.0)
    msg = str(info.value)
    assert "\n" not in msg and "e^-2484" in msg and "subnormal" in msg
    floor = math.log(4 * 50 * np.abs(V).max()) + LOG_ETA_MIN
    assert f"e^{floor:.4g}" in msg  # the best it can certify here, stated


def test_score_rounding_floor_refused_for_mixed_signs(monkeypatch):
    """Scores near 10^6 round by ~1e-9 nats; with V of both signs that costs ||V|| (e^{2 delta} - 1)."""
    rng = np.random.default_rng(2)
    Q, K = rng.uniform(-1e3, 1e3, (10, 2)), rng.uniform(-1e3, 1e3, (60, 2))
    V = rng.uniform(-1, 1, (60, 1))
    monkeypatch.setattr(anytemp_mod, "build_tree", _no_tree)
    with pytest.raises(UncertifiedError, match="rounding of scores") as info:
        anytemp_oracle(Q, K, V, scale=1.0, log_eps=-30.0)
    assert "\n" not in str(info.value) and "both signs" in str(info.value)
    monkeypatch.undo()
    # With V of one sign the rounding is relative to |T|, so nothing is refused a priori. Here T ~ 0.5: the
    # bound anytemp proves (~1e-8) misses the request; the answer carries that true bound and says so.
    ans = anytemp_oracle(Q, K, np.abs(V), scale=1.0, log_eps=-30.0)
    assert ans.info["request_met"] is False and -30.0 < ans.certificate.worst_log_bound < math.log(1e-6)
    assert _interval_contains(ans, reference_oracle(Q, K, np.abs(V), scale=1.0))
    # ... and where T is small against ||V|| (one heavy value on a key that no query weighs) it certifies e^-30.
    Qp = np.abs(Q)
    Vp = np.full((60, 1), 1e-9)
    K2 = K.copy()
    K2[0], Vp[0] = -1e3, 1.0
    ans = anytemp_oracle(Qp, K2, Vp, scale=1.0, log_eps=-30.0)
    assert ans.certificate.worst_log_bound <= -30.0 and ans.info["request_met"] is True
    assert _interval_contains(ans, reference_oracle(Qp, K2, Vp, scale=1.0))


def test_eps_mode_returns_the_honest_certificate():
    """Without log_eps nothing is refused: the certificate may exceed eps (rounding) but is true."""
    rng = np.random.default_rng(3)
    Q, K = rng.uniform(-1e3, 1e3, (10, 2)), rng.uniform(-1e3, 1e3, (60, 2))
    V = rng.uniform(-1, 1, (60, 1))
    ans = anytemp_oracle(Q, K, V, scale=1.0, eps=1e-14)
    assert ans.certificate.worst_log_bound > math.log(1e-14)
    assert _interval_contains(ans, reference_oracle(Q, K, V, scale=1.0))


@pytest.mark.parametrize("kw,err", [({"eps": 1e-3, "log_eps": -3.0}, ParameterError),
                                    ({"log_eps": float("nan")}, ParameterError),
                                    ({"log_eps": float("inf")}, ParameterError),
                                    ({"log_eps": "x"}, ParameterError),
                                    ({"eps": -1.0}, ParameterError),
                                    ({"log_eps": -float("inf")}, UncertifiedError)])
def test_bad_requests(kw, err):
    rng = np.random.default_rng(4)
    Q, K, V = rng.normal(size=(3, 2)), rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    with pytest.raises(err):
        anytemp_oracle(Q, K, V, **kw)


def test_call_oracle_passes_log_eps():
    rng = np.random.default_rng(5)
    Q, K, V = rng.normal(size=(4, 2)), rng.normal(size=(30, 2)), rng.uniform(0, 1, (30, 1))
    ans, _ = call_oracle("anytemp", anytemp_oracle, Q, K, V, scale=0.5, log_eps=-22.0)
    assert ans.certificate.worst_log_bound <= -22.0
    with pytest.raises(UncertifiedError):
        call_oracle("anytemp", anytemp_oracle, Q, K, V, scale=0.5, log_eps=-900.0)


def test_exact_fallback_certificate_is_additive_and_true():
    rng = np.random.default_rng(6)
    Q, K, V = rng.normal(size=(12, 7)), rng.normal(size=(40, 7)), rng.normal(size=(40, 1))
    ans = anytemp_oracle(Q, K, V, log_eps=-20.0)
    assert ans.info["method"] == "exact-fallback" and ans.certificate.kind == "additive"
    assert _interval_contains(ans, reference_oracle(Q, K, V))
    ex = exact_oracle(Q, K, V)
    assert np.allclose(ans.output.log_abs, ex.output.log_abs)


# ------------------------------------------------------------------------ the SAT chain (issue 11 item 1)


def _formulas():
    """``p cnf N 0`` and random 3-SAT formulas with a planted assignment (satisfiable) or not, N <= 8."""
    out = [CNFFormula([], num_vars=n) for n in (1, 3, 6, 12)]
    rng = np.random.default_rng(7)
    for i in range(10):
        n = int(rng.integers(3, 9))
        m = int(rng.integers(1, 3 * n))
        planted = rng.random(n) < 0.5
        clauses = []
        while len(clauses) < m:
            vs = rng.choice(n, size=min(3, n), replace=False)
            lits = [int(v + 1) if rng.random() < 0.5 else -int(v + 1) for v in vs]
            if i % 3 == 2 or any((lit > 0) == planted[abs(lit) - 1] for lit in lits):
                clauses.append(lits)
        out.append(CNFFormula(clauses, num_vars=n))
    return out


@pytest.mark.parametrize("index", range(14))
def test_oracle_on_chain_instances(index):
    """On AAttC instances of k-SAT formulas: refused, or every certified interval contains the truth, and every
    row the certified threshold test decides is decided as the exact output decides it."""
    f = _formulas()[index]
    att = path("k-SAT", "AAttC").forward_trace(f)[-1]
    p = att.meta["lemma47"]
    params = lemma47_parameters(p["n_a"], p["n"], p["d"], p["t"], p["eps"], mode=p["mode"])
    try:
        ans = anytemp_oracle(att.Q, att.K, att.V, scale=att.scale, log_eps=params.log_eps_needed)
    except UncertifiedError as exc:
        assert "\n" not in str(exc)
        return
    truth = reference_oracle(att.Q, att.K, att.V, scale=att.scale) if att.Q.shape[0] <= 64 else \
        exact_oracle(att.Q, att.K, att.V, scale=att.scale)
    assert _interval_contains(ans, truth)
    got = certified_threshold_test(params, ans.bounds()[: params.n_a, 0])
    ref = certified_threshold_test(params, truth.output[: params.n_a, 0])
    decided = ~got.undecided
    assert np.array_equal(got.yes[decided], ref.yes[decided])


@pytest.mark.parametrize("mode", ["tight", "paper"])
def test_chain_never_answers_unsat_on_a_satisfiable_formula(mode):
    certified = 0
    for f in _formulas():
        sat = f.brute_force_solve() is not None
        try:
            res = run_chain(f, oracle="anytemp", params=mode, cdcl=False)
        except UncertifiedError:
            continue
        if res.certified:
            certified += 1
            assert res.satisfiable == sat, f.to_dimacs()
        if res.satisfiable:
            assert f.is_satisfied_by(res.assignment)
    assert certified >= len(_formulas()) // 2  # the test is about certified answers: most must be certified
