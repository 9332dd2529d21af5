"""Session-4 mutation triage of instances/: the input-cap and FIFO-timeout settings of instances.io, the
brute-force boundaries of CNFFormula and AAttCInstance, and the 18-digit literal limit of parse_dimacs.

Every input is built inside its test (mutmut ties a mutant only to the tests that call the mutated code).
"""

import math
import re
import warnings

import numpy as np
import pytest

import instances.aattc as aattc_mod
import instances.cnf as cnf_mod
from instances.aattc import AAttCInstance
from instances.cnf import CNFFormula, parse_dimacs
from instances.errors import DimacsError, ParameterError
from instances.io import (
    DEFAULT_MAX_INPUT,
    FIFO_TIMEOUT,
    FIFO_TIMEOUT_ENV,
    MAX_INPUT_ENV,
    fifo_timeout,
    max_input_bytes,
)


def _exact(msg: str) -> str:
    return "^" + re.escape(msg) + "$"


# ------------------------------------------------------------------------------------------ max_input_bytes


def test_max_input_bytes_keyword_boundaries_and_refusals(monkeypatch):
    monkeypatch.delenv(MAX_INPUT_ENV, raising=False)
    # 1 byte is the smallest cap accepted, and is returned as given
    assert max_input_bytes(1) == 1 and type(max_input_bytes(1)) is int
    assert max_input_bytes(2) == 2
    assert max_input_bytes(2**40) == 2**40
    for bad in (0, -1, True, False, 2.5, 1.0, "x", "1M"):
        with pytest.raises(ParameterError, match=_exact(
                f"max_bytes must be a positive integer number of bytes, got {bad!r}")):
            max_input_bytes(bad)


def test_max_input_bytes_reads_the_environment(monkeypatch):
    monkeypatch.delenv(MAX_INPUT_ENV, raising=False)
    assert max_input_bytes() == DEFAULT_MAX_INPUT
    monkeypatch.setenv(MAX_INPUT_ENV, "")  # empty: the default
    assert max_input_bytes() == DEFAULT_MAX_INPUT
    monkeypatch.setenv(MAX_INPUT_ENV, "1M")
    assert max_input_bytes() == 2**20
    monkeypatch.setenv(MAX_INPUT_ENV, "4096")
    assert max_input_bytes() == 4096
    assert max_input_bytes(7) == 7  # the keyword wins over the environment
    monkeypatch.setenv(MAX_INPUT_ENV, "lots")
    with pytest.raises(ParameterError, match=_exact(
            f"cannot read ${MAX_INPUT_ENV} 'lots'; expected a number with an optional K/M/G/T suffix")):
        max_input_bytes()
    monkeypatch.setenv(MAX_INPUT_ENV, "0")
    with pytest.raises(ParameterError, match=_exact(f"${MAX_INPUT_ENV} must be at least 1 byte, got '0'")):
        max_input_bytes()


# --------------------------------------------------------------------------------------------- fifo_timeout


def test_fifo_timeout_reads_the_environment(monkeypatch):
    monkeypatch.delenv(FIFO_TIMEOUT_ENV, raising=False)
    assert fifo_timeout() == FIFO_TIMEOUT == 10.0
    monkeypatch.setenv(FIFO_TIMEOUT_ENV, "")
    assert fifo_timeout() == FIFO_TIMEOUT
    monkeypatch.setenv(FIFO_TIMEOUT_ENV, "0.25")
    got = fifo_timeout()
    assert got == 0.25 and type(got) is float
    assert fifo_timeout(3) == 3.0 and type(fifo_timeout(3)) is float  # the keyword wins
    monkeypatch.setenv(FIFO_TIMEOUT_ENV, "soon")
    with pytest.raises(ParameterError, match=_exact(
            f"${FIFO_TIMEOUT_ENV} must be a number of seconds, got 'soon'")):
        fifo_timeout()
    for text, shown in (("0", "0.0"), ("-2", "-2.0"), ("inf", "inf"), ("nan", "nan")):
        monkeypatch.setenv(FIFO_TIMEOUT_ENV, text)
        with pytest.raises(ParameterError, match=_exact(
                f"the FIFO timeout must be a positive number of seconds, got {shown}")):
            fifo_timeout()


def test_fifo_timeout_keyword_boundaries(monkeypatch):
    monkeypatch.delenv(FIFO_TIMEOUT_ENV, raising=False)
    assert fifo_timeout(5e-324) == 5e-324  # any positive finite number, however small
    assert fifo_timeout(1e300) == 1e300
    for bad in (0.0, 0, -0.0, -1.0, math.inf, -math.inf, math.nan):
        with pytest.raises(ParameterError, match=_exact(
                f"the FIFO timeout must be a positive number of seconds, got {bad!r}")):
            fifo_timeout(bad)


# --------------------------------------------------------------------------------------------- cnf / aattc


def test_cnf_brute_force_returns_the_first_satisfying_assignment():
    # assignments are enumerated with variable v as bit v-1 of the index: the first model is the smallest index
    assert CNFFormula([[1]]).brute_force_solve() == [1]
    assert CNFFormula([[-1]]).brute_force_solve() == [-1]
    assert CNFFormula([[2], [-1, 3]]).brute_force_solve() == [-1, 2, -3]
    assert CNFFormula([[1, 2], [-1, -2], [1]]).brute_force_solve() == [1, -2]
    assert CNFFormula([[1], [-1]]).brute_force_solve() is None


def test_cnf_brute_force_cap_is_inclusive(monkeypatch):
    # BRUTE_FORCE_MAX_VARS = 24 would need 2^24 x 24 temporaries; the comparison is checked at a smaller cap
    assert cnf_mod.BRUTE_FORCE_MAX_VARS == 24
    monkeypatch.setattr(cnf_mod, "BRUTE_FORCE_MAX_VARS", 3)
    assert CNFFormula([[3]]).brute_force_solve() == [-1, -2, 3]  # exactly at the cap: solved
    with pytest.raises(ParameterError, match=_exact("brute force is limited to 3 variables, formula has 4")):
        CNFFormula([[4]]).brute_force_solve()


def test_parse_dimacs_accepts_18_digit_literals_and_refuses_19():
    big = "9" * 18
    assert parse_dimacs(f"p cnf {big} 1\n{big} -{big} 0\n") == (int(big), [[int(big), -int(big)]])
    with pytest.raises(DimacsError, match=_exact(
            f"<string>:2: literal {'1' + '0' * 18} is out of range: the header declares {big} variables")):
        parse_dimacs(f"p cnf {big} 1\n{'1' + '0' * 18} 0\n")


def test_aattc_brute_force_cap_is_inclusive(monkeypatch):
    assert aattc_mod.BRUTE_FORCE_MAX_ENTRIES == 2**24
    monkeypatch.setattr(aattc_mod, "BRUTE_FORCE_MAX_ENTRIES", 6)
    rng = np.random.default_rng(5)
    Q, K, V = rng.standard_normal((2, 2)), rng.standard_normal((3, 2)), rng.standard_normal((3, 1))
    out = AAttCInstance(Q, K, V, B=5.0, log_eps_a=-30.0, scale=0.5).brute_force_solve()  # 2 x 3 = 6 scores
    S = 0.5 * Q @ K.T
    A = np.exp(S - S.max(axis=1, keepdims=True))
    ref = (A / A.sum(axis=1, keepdims=True)) @ V
    np.testing.assert_allclose(out.to_float(), ref, rtol=1e-12)
    K4, V4 = rng.standard_normal((4, 2)), rng.standard_normal((4, 1))
    with pytest.raises(ParameterError, match=_exact("dense AAttC solve limited to 6 scores, instance has 8")):
        AAttCInstance(Q, K4, V4, B=5.0, log_eps_a=-30.0, scale=0.5).brute_force_solve()


# ------------------------------------------------------------------------------------- gap_ann_builders


def test_planted_redraw_rounds_emit_no_warning_and_keep_the_ground_truth():
    from instances.gap_ann_builders import planted

    # 16 planted rows in d = 32 with t = 5, eps = 1: the far side (distance >= 10) fails for a few rows, so their
    # rows and partners are redrawn and folded into the other rows' minima (the partner's own pair excluded)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the library never prints: no numpy RuntimeWarning either
        res = planted(16, 32, 5.0, 1.0, planted=16, seed=0)
    assert res.rounds >= 1 and res.redrawn >= 1
    A, B = res.instance.A.astype(np.int64), res.instance.B.astype(np.int64)
    D = (A[:, None, :] != B[None, :, :]).sum(axis=2)  # brute-force Hamming distances
    partner = np.full(A.shape[0], -1)
    partner[res.planted_rows] = res.partners
    for i in range(A.shape[0]):
        others = np.delete(D[i], partner[i]) if partner[i] >= 0 else D[i]
        assert others.min() >= 10  # every non-partner pair is far
        if partner[i] >= 0:
            assert D[i, partner[i]] == res.planted_distance == 4
    np.testing.assert_array_equal(res.min_distances, np.where(partner >= 0, 4, D.min(axis=1)))


# --------------------------------------------------------------- reductions.sizes (no file of this triage there)


def test_implies_refuses_every_non_finite_exponent_sympy_can_return(monkeypatch):
    import sympy as sp

    from reductions import path
    from reductions.sizes import implies

    steps = path("k-SAT", "AAttC").steps
    assert str(implies(steps, "n^(2-delta)").source_time) == "1 - delta/2"
    # Every accepted running time gives a finite limit or zoo (a zero factor: log 0); sympy's limit may also
    # answer oo, -oo or nan, which the guard must refuse like zoo: injected, one at a time
    for bad in (sp.oo, -sp.oo, sp.nan, sp.zoo):
        monkeypatch.setattr(sp, "limit", lambda *a, bad=bad, **k: bad)
        with pytest.raises(ParameterError, match=_exact(
                f"the exponent of T(n) = n**(2 - delta) along this path is {bad}, not a finite expression in "
                "delta: give T(n) as n^a times factors polylogarithmic in n and polynomial in d")):
            implies(steps, "n^(2-delta)")
