"""The exact oracle's rarely reached paths, checked against closed forms (issue 18, mutation triage, session 4).

* the exact recomputation of numerators that underflow could have touched (:func:`exact._recompute`), on keys of
  one support group whose weights underflow to exactly 0 while their values carry the numerator;
* the a priori bound's edge cases: keys and queries below 1 in magnitude, one coordinate, a relative error
  ``rho kappa`` between 1/2 and 1 (no certificate) and just below 1/2 (the formula);
* the multiprecision fix-up (:func:`exact._fix_cancellation`): which entries it takes (only cancelling rows and
  columns, never one-signed values), its starting digits and their doubling, seen through the certificate it
  returns (``reference_oracle``'s at exactly those digits), ``d = 0``, and its refusal of too much work, word
  for word;
* repeated queries sharing their bound, and None for an uncertifiable entry; a ``"none"`` answer keeps its output;
* ``backend="dask"`` passing every argument through (a stand-in backend module records them);
* no floating-point warning escapes on the edge inputs, under numpy's default error state.

Every input is built inside its test, so that mutation testing ties the builders to these tests.
"""

from __future__ import annotations

import math
import sys
import types
import warnings

import mpmath
import numpy as np
import pytest

from finegrained.attention.exact import _exact, answer_with_bound, exact, exact_oracle
from finegrained.attention.reference import reference_oracle
from instances.errors import NumericalError
from instances.logspace import LogArray

U = 2.0**-53


def _gamma(m):
    """Higham's ``gamma_m = m u / (1 - m u)`` (infinite from ``m u >= 1/2``), written out here independently."""
    return math.inf if m * U >= 0.5 else m * U / (1 - m * U)


def _log_attention(Q, K, V, scale, dps=60):
    """``(sign, log|T|)`` of every entry of softmax attention, in mpmath at ``dps`` digits (independent of the
    library: plain sums of ``exp(scale <q, k>) v``)."""
    Q, K, V = np.asarray(Q), np.asarray(K), np.asarray(V)
    sign = np.zeros((Q.shape[0], V.shape[1]), dtype=int)
    log_abs = np.full(sign.shape, -np.inf)
    with mpmath.workdps(dps):
        for i, q in enumerate(Q):
            w = [mpmath.exp(mpmath.mpf(scale) * mpmath.fsum(mpmath.mpf(a) * mpmath.mpf(b) for a, b in zip(q, k)))
                 for k in K]
            den = mpmath.fsum(w)
            for j in range(V.shape[1]):
                num = mpmath.fsum(wk * mpmath.mpf(v) for wk, v in zip(w, V[:, j]))
                if num != 0:
                    sign[i, j] = 1 if num > 0 else -1
                    log_abs[i, j] = float(mpmath.log(abs(num) / den))
    return sign, log_abs


@pytest.mark.parametrize("dedupe", [True, False])
def test_underflowing_weights_inside_one_key_group_are_recomputed_exactly(dedupe):
    """Three keys with one support pattern (column 0 negative, column 1 positive): the first scores 800 (760 for
    the second query) above the other two, whose weights ``exp(-800)`` underflow to exactly 0 in float64, yet
    carry ``1e200`` against the first key's ``1e-200``. The float product alone gives ``log T = -460.5 - ...``;
    the exact log-sum-exp over the column's support gives the true ``log T``: two underflowed terms of equal size
    (their sum, not the largest alone), in both query rows, in a column after an all-zero one."""
    Q = np.array([[1.0, 0.0], [0.95, 0.0]])
    K = np.array([[800.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    V = np.array([[-1.0, 1e-200], [-1.0, 1e200], [-1.0, 1e200]])
    for tile in (8, 2**20):
        ans = exact_oracle(Q, K, V, scale=1.0, tile_bytes=tile, dedupe=dedupe)
        sign, log_abs = _log_attention(Q, K, V, 1.0)
        assert sign.tolist() == [[-1, 1], [-1, 1]]
        assert np.array_equal(ans.output.sign, sign)
        # closed form: log T[i, 1] = log(1e-200 e^{s_i} + 2e200) - log(e^{s_i} + 2), s = 800, 760
        for i, s in enumerate((800.0, 760.0)):
            ln = math.log(10.0)
            expect = (np.logaddexp(s - 200 * ln, math.log(2.0) + 200 * ln) - np.logaddexp(s, math.log(2.0)))
            assert abs(log_abs[i, 1] - expect) < 1e-12
        assert np.allclose(ans.output.log_abs, log_abs, rtol=0, atol=1e-11)
        assert ans.certificate.kind == "log"
        err = np.abs(ans.output.log_abs - log_abs)
        assert (err <= np.exp(ans.certificate.log_bound) + 1e-300).all()


def _bound_by_hand(Q, K, V, scale):
    """The a priori bound of ``_error_nats`` (its docstring), recomputed entry by entry with Python floats.

    ``smax = max|s q| max|k| max(d, 1)``; ``delta = gamma_{d+1} smax + 4 u smax + log1p(gamma_{2 n_k + d + 16})
    + 2^-60``; per entry ``delta' = delta + u (|log max(P, N)| + |log D| + smax + 2000)``, ``rho = expm1(delta')``,
    ``rel = rho kappa`` with ``kappa = (P + N)/|P - N|`` (1 where one part is 0); the bound is
    ``2 (-log1p(-rel) + delta')``, or infinite when ``rel >= 1/2``."""
    n_k, d = K.shape
    smax = float(np.abs(Q * scale).max(initial=0.0)) * float(np.abs(K).max(initial=0.0)) * max(d, 1)
    delta = _gamma(d + 1) * smax + 4 * U * smax + math.log1p(_gamma(2 * n_k + d + 16)) + 2.0**-60
    out = np.zeros((Q.shape[0], V.shape[1]))
    for i, q in enumerate(Q):
        s = [scale * math.fsum(float(a) * float(b) for a, b in zip(q, k)) for k in K]
        m = max(s)
        log_den = m + math.log(math.fsum(math.exp(x - m) for x in s))
        for j in range(V.shape[1]):
            P = math.fsum(math.exp(x - m) * max(v, 0.0) for x, v in zip(s, V[:, j]))
            N = math.fsum(math.exp(x - m) * max(-v, 0.0) for x, v in zip(s, V[:, j]))
            if P == N == 0:
                continue
            delta_part = delta + U * (abs(m + math.log(max(P, N))) + abs(log_den) + smax + 2000.0)
            kappa = 1.0 if P == 0 or N == 0 else (P + N) / abs(P - N) if P != N else math.inf
            rel = math.expm1(delta_part) * kappa
            out[i, j] = 2 * (-math.log1p(-rel) + delta_part) if rel < 0.5 else math.inf
    return out


@pytest.mark.parametrize(("n_q", "n_k", "d", "kmag"), [(3, 5, 1, 0.5), (2, 4, 1, 3.0), (3, 6, 3, 0.01)])
def test_error_bound_closed_form_with_small_keys_and_one_coordinate(n_q, n_k, d, kmag):
    """The bound's ``smax`` is ``max|q| max|k| d`` itself: keys below 1 in magnitude are not rounded up to 1, and
    one coordinate counts once (``max(d, 1)`` with ``d = 1``)."""
    rng = np.random.default_rng(n_q * 100 + n_k * 10 + d)
    Q = rng.uniform(-1.0, 1.0, (n_q, d)) * 20.0
    K = rng.uniform(-1.0, 1.0, (n_k, d)) * kmag
    V = np.c_[rng.uniform(0.5, 2.0, n_k), -rng.uniform(0.5, 2.0, n_k), np.where(np.arange(n_k) % 2, 3.0, -1.0)]
    _, bound = _exact(Q, K, V, scale=1.0, tile_bytes=2**20, dedupe=False)
    expect = _bound_by_hand(Q, K, V, 1.0)
    assert np.isfinite(expect).all()
    assert np.allclose(bound, expect, rtol=1e-9, atol=0)


def test_a_relative_error_of_one_half_or_more_is_not_certified():
    """``rel = rho kappa`` in [1/2, 1): ``P - N`` may have lost all its digits, so the bound is infinite and the
    certificate ``"none"``; just below 1/2 the bound is the formula ``2 (-log1p(-rel) + delta')``. The scores are
    0 (a key with entries 1e8 only widens ``smax`` to 2e8, so ``rho`` is about 1.8e-7), and ``kappa`` about 4e6
    stays below the cancellation fix-up's e^18, so the float analysis decides alone."""
    Q = np.array([[1.0, 0.0]])
    K = np.array([[0.0, 0.0], [0.0, 1e-300], [0.0, -1e8]])
    smax, d, n_k = 2e8, 2, 3
    delta = _gamma(d + 1) * smax + 4 * U * smax + math.log1p(_gamma(2 * n_k + d + 16)) + 2.0**-60
    for eps, certified in ((5e-7, False), (4e-7, False), (1e-6, True), (3e-6, True)):
        V = np.array([[1.0], [-(1.0 - eps)], [0.0]])
        delta_part = delta + U * (0.0 + math.log(3.0) + smax + 2000.0)  # |log max(P, N)| = 0, D = 3
        rel = math.expm1(delta_part) * (2.0 - eps) / eps
        assert (rel < 0.5) == certified and rel < 1.0
        _, bound = _exact(Q, K, V, scale=1.0, tile_bytes=2**20, dedupe=True)
        ans = exact_oracle(Q, K, V, scale=1.0)
        sign, log_abs = _log_attention(Q, K, V, 1.0)
        assert ans.output.sign.tolist() == sign.tolist() == [[1]]
        assert abs(ans.output.log_abs[0, 0] - math.log(eps / 3.0)) < 1e-9
        if certified:
            assert ans.certificate.kind == "log"
            assert bound[0, 0] == pytest.approx(2 * (-math.log1p(-rel) + delta_part), rel=1e-9)
        else:
            assert not np.isfinite(bound).any() and bound[0, 0] == math.inf
            assert ans.certificate.kind == "none"
            assert ans.certificate.detail == "cancellation beyond what the float analysis bounds"
            assert np.array_equal(ans.output.log_abs, exact(Q, K, V, scale=1.0).log_abs)


def test_one_signed_values_at_huge_scores_keep_the_float_bound():
    """Values of one sign never cancel, so no entry is sent to the multiprecision fix-up, even where the logs
    are so large (|log P| about 1e8 > e^18) that the fix-up's allowance ``18 - log|log P|`` is negative: the
    bound stays the float analysis' closed form, for positive and for negative values."""
    Q = np.array([[1e4], [-0.5e4]])
    K = np.array([[1e4], [0.0], [0.5e4]])
    for V in (np.array([[1.0], [2.0], [0.5]]), -np.array([[1.0], [2.0], [0.5]])):
        ans = exact_oracle(Q, K, V, scale=1.0)
        _, bound = _exact(Q, K, V, scale=1.0, tile_bytes=2**20, dedupe=True)
        expect = _bound_by_hand(Q, K, V, 1.0)
        assert np.isfinite(expect).all() and (expect > 1e-7).all()
        assert np.allclose(bound, expect, rtol=1e-9, atol=0)
        assert np.array_equal(ans.certificate.log_bound, np.log(bound))
        sign, log_abs = _log_attention(Q, K, V, 1.0, dps=80)
        assert np.array_equal(ans.output.sign, sign)
        assert (np.abs(ans.output.log_abs - log_abs) <= bound).all()


def test_recomputed_entries_carry_the_reference_certificate_at_the_starting_digits():
    """Entries that cancel beyond 18 nats are recomputed with the multiprecision reference, starting at
    ``max(50, 40 + ceil(log10(max(smax, 1) (d + 2))))`` digits (``smax = |scale| max|q| max|k| d``); resolved at
    once, they carry ``reference_oracle``'s certificate at exactly those digits (a certificate that depends on
    the digits, since ``V`` of size 1e25 cancels to 1e-25 of itself: ``kappa`` about 1e25)."""
    cases = [
        # smax = 1e-25: max(smax, 1) (d + 2) = 3, so 50 digits
        (np.array([[1.0]]), np.array([[0.0], [1e-25]]), np.array([[1e25], [-1e25]]), 50),
        # a key of entries 1e12 (its value 0) widens smax to 2e12: 40 + ceil(log10(8e12)) = 53 digits
        (np.array([[1.0, 0.0]]), np.array([[0.0, 0.0], [1e-25, 0.0], [0.0, 1e12]]),
         np.array([[1e25], [-1e25], [0.0]]), 53),
        # smax = 2.2e12: (d + 2) smax = 8.8e12 needs 13 digits more, (d + 3) smax = 1.1e13 would need 14
        (np.array([[1.0, 0.0]]), np.array([[0.0, 0.0], [1e-25, 0.0], [0.0, 1.1e12]]),
         np.array([[1e25], [-1e25], [0.0]]), 53),
        # queries below 1 count as they are: smax = 0.01 * 1e12 * 2 = 2e10, 40 + ceil(log10(8e10)) = 51 digits
        (np.array([[0.01, 0.0]]), np.array([[0.0, 0.0], [1e-23, 0.0], [0.0, 1e12]]),
         np.array([[1e25], [-1e25], [0.0]]), 51),
        # keys below 1 count as they are: smax = 2^40 2^-120, so 50 digits (2^40 in place of max|k| would give 53)
        (np.array([[2.0**40]]), np.array([[0.0], [2.0**-120]]), np.array([[2.0**81], [-(2.0**81)]]), 50),
        # one coordinate counts once: smax = 2e12, 40 + ceil(log10(6e12)) = 53 (twice smax would give 54)
        (np.array([[1.0]]), np.array([[0.0], [2.0**-97], [-2e12]]), np.array([[2.0**98], [-(2.0**98)], [0.0]]), 53),
    ]
    for Q, K, V, digits in cases:
        smax = float(np.abs(Q).max()) * float(np.abs(K).max()) * Q.shape[1]
        assert digits == max(50, 40 + math.ceil(math.log10(max(smax, 1.0) * (Q.shape[1] + 2))))
        out, bound = _exact(Q, K, V, scale=1.0, tile_bytes=2**20, dedupe=True)
        ref = reference_oracle(Q, K, V, scale=1.0, dps=digits)
        assert ref.certificate.kind == "log"
        assert np.array_equal(out.sign, ref.output.sign) and np.array_equal(out.log_abs, ref.output.log_abs)
        assert np.array_equal(np.log(bound), np.broadcast_to(ref.certificate.log_bound, bound.shape))
        for other in (digits - 3, digits + 1):  # the certificate tells the digits apart
            assert not np.array_equal(reference_oracle(Q, K, V, scale=1.0, dps=other).certificate.log_bound,
                                      ref.certificate.log_bound)


@pytest.mark.parametrize(("k", "digits"), [(97, 50), (101, 100), (116, 100), (200, 100)])
def test_a_cancellation_deeper_than_30_digits_doubles_them(k, digits):
    """``V = +-2^(k+1)`` on scores 0 and ``x = 2^-k``: ``T = -2^(k+1) tanh(x/2)``, about -1, while the parts that
    cancel are ``2^k`` (10^29.2 to 10^60.2) times larger. The recomputed entry is resolved once it stands
    ``dps - 20`` digits clear of them: at 50 digits for ``k = 97``, else (for ``k = 200`` the 50-digit value is
    even 0) the digits double once, to 100. The entry carries ``reference_oracle``'s certificate at exactly those
    digits; with ``log|T|`` about ``-2^-2k/3`` that certificate is its ``kappa 10^(1 - dps)`` term, which tells 50,
    100 and 150 digits apart."""
    x, v = 2.0**-k, 2.0 ** (k + 1)
    Q, K, V = np.array([[1.0]]), np.array([[0.0], [x]]), np.array([[v], [-v]])
    out, bound = _exact(Q, K, V, scale=1.0, tile_bytes=2**20, dedupe=True)
    with mpmath.workdps(200):
        expect = float(mpmath.log(mpmath.mpf(v) * mpmath.tanh(mpmath.mpf(x) / 2)))
    assert out.sign.tolist() == [[-1]] and abs(out.log_abs[0, 0] - expect) < 1e-12 and abs(expect) < 1e-50
    ref = reference_oracle(Q, K, V, scale=1.0, dps=digits)
    assert ref.certificate.kind == "log"
    assert np.array_equal(np.log(bound), np.broadcast_to(ref.certificate.log_bound, (1, 1)))
    for other in {50, 100, 150} - {digits}:
        cert = reference_oracle(Q, K, V, scale=1.0, dps=other).certificate
        assert cert.kind == ("none" if other == 50 and k == 200 else "log")  # 50 digits see a zero at k = 200
        assert not np.array_equal(cert.log_bound, ref.certificate.log_bound)
    ans = exact_oracle(Q, K, V, scale=1.0)
    assert ans.certificate.kind == "log" and np.array_equal(ans.certificate.log_bound, np.log(bound))


def test_only_the_cancelling_rows_and_column_are_recomputed():
    """Three coordinates and two value columns: column 0 is positive (1e300 and less: no cancellation, but a larger
    part than column 1's), column 1 holds ``+-2^98`` that cancel to ``2^-97`` of themselves for the first two
    queries, not for the third. Exactly entries (0, 1) and (1, 1) are recomputed, together, at
    ``40 + ceil(log10(5 smax)) = 54`` digits (``smax = 1 * 1e12 * 3``, from a key of entries 1e12), and carry
    ``reference_oracle``'s certificate at 54 digits; every other entry keeps the float analysis' bound."""
    x, v = 2.0**-97, 2.0**98
    Q = np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 1.0, 0.0]])
    K = np.array([[0.0, 0.0, 0.0], [x, 1.0, 0.0], [0.0, 0.0, 1e12]])
    V = np.array([[1e300, v], [2e299, -v], [3e298, 0.0]])
    out, bound = _exact(Q, K, V, scale=1.0, tile_bytes=2**20, dedupe=True)
    sign, log_abs = _log_attention(Q, K, V, 1.0, dps=120)
    assert np.array_equal(out.sign, sign) and sign.tolist() == [[1, -1], [1, -1], [1, -1]]
    assert np.allclose(out.log_abs, log_abs, rtol=0, atol=1e-12)
    ref = reference_oracle(Q[:2], K, V[:, 1:], scale=1.0, dps=54)
    assert ref.certificate.kind == "log"
    assert np.array_equal(np.log(bound[:2, 1:]), np.broadcast_to(ref.certificate.log_bound, (2, 1)))
    assert not np.array_equal(reference_oracle(Q[:2], K, V[:, 1:], scale=1.0, dps=53).certificate.log_bound,
                              ref.certificate.log_bound)
    hand = _bound_by_hand(Q, K, V, 1.0)
    keep = np.array([[True, False], [True, False], [True, True]])
    assert np.isfinite(hand[keep]).all() and np.allclose(bound[keep], hand[keep], rtol=1e-9, atol=0)
    assert (bound[~keep] < 1e-9).all() and (bound[keep] > 1e-4).all()  # scores up to 3e12 widen the float bound


def test_too_many_cancelling_entries_are_refused_with_their_count():
    """4001 distinct queries against 2500 keys (pairs of identical keys with values +1 and -1: every output
    cancels exactly): recomputing them is ``4001 * 2500 * (1 + 1)`` multiprecision operations, over the
    reference's limit of 2e7, so one :class:`NumericalError` says how many entries cancel and what to do."""
    Q = np.linspace(-1.0, 1.0, 4001)[:, None]
    K = np.repeat(np.linspace(-0.5, 0.5, 1250), 2)[:, None]
    V = np.tile([1.0, -1.0], 1250)[:, None]
    with pytest.raises(NumericalError) as err:
        exact(Q, K, V, scale=1.0)
    assert str(err.value) == (
        "4001 output entries cancel to fewer than 8 significant digits (positive and negative parts of V nearly "
        "balance) and are too many to recompute in multiprecision; use finegrained.attention.reference on those "
        "rows")


def test_cancellation_without_coordinates_is_recomputed():
    """``d = 0``: every score is 0 and ``T = mean(V)``; values 1 and ``-(1 - 1e-10)`` cancel by 23 nats, so the
    entry is recomputed in multiprecision (whose digits then start at 50: ``smax = 0``)."""
    Q, K = np.zeros((2, 0)), np.zeros((2, 0))
    V = np.array([[1.0, 2.0], [-(1.0 - 1e-10), 1.0]])
    ans = exact_oracle(Q, K, V, scale=1.0)
    with mpmath.workdps(50):
        expect = float(mpmath.log((mpmath.mpf(1.0) + mpmath.mpf(V[1, 0])) / 2))
    assert ans.output.sign.tolist() == [[1, 1], [1, 1]]
    assert np.allclose(ans.output.log_abs, [[expect, math.log(1.5)]] * 2, rtol=0, atol=1e-13)
    ref = reference_oracle(Q[:1], K, V[:, :1], scale=1.0, dps=50)
    assert ans.certificate.kind == "log"
    assert np.array_equal(ans.certificate.log_bound[:, 0], np.broadcast_to(ref.certificate.log_bound, (1, 1))[0].
                          repeat(2))


def test_repeated_queries_share_their_bound_and_an_uncertifiable_entry_gives_none():
    """The bound is computed per distinct query and expanded like the output; where a recomputed entry cannot be
    certified (an exact zero from parts of both signs), ``_exact``'s bound is None, with or without repeated
    queries, and the oracle's certificate is ``"none"``."""
    Q = np.array([[0.5], [0.5], [-1.0]])
    K = np.array([[1.0], [0.0]])
    V = np.array([[1.0, 1.0], [2.0, -1.0]])
    out, bound = _exact(Q, K, V, scale=1.0, tile_bytes=2**20, dedupe=True)
    out2, bound2 = _exact(Q[1:], K, V, scale=1.0, tile_bytes=2**20, dedupe=True)
    assert bound.shape == (3, 2) and np.array_equal(bound[0], bound[1]) and np.array_equal(bound[1:], bound2)
    assert np.array_equal(out.log_abs[1:], out2.log_abs) and np.array_equal(out.log_abs[0], out.log_abs[1])
    assert np.isfinite(bound).all() and (bound > 0).all()
    for n in (1, 2):
        Z = np.zeros((n, 1))
        out, bound = _exact(Z, np.zeros((2, 1)), np.array([[1.0], [-1.0]]), scale=1.0, tile_bytes=2**20,
                            dedupe=True)
        assert bound is None and out.sign.tolist() == [[0]] * n
        assert exact_oracle(Z, np.zeros((2, 1)), np.array([[1.0], [-1.0]]), scale=1.0).certificate.kind == "none"


def test_an_uncertified_answer_keeps_its_output():
    """A ``"none"`` certificate (no bound, or an infinite one) still returns the computed output itself."""
    out = LogArray(np.array([[1, -1]], dtype=np.int8), np.array([[0.5, -3.0]]))
    for bound in (None, np.array([[1e-3, np.inf]])):
        ans = answer_with_bound(out, bound, {"backend": "local"})
        assert ans.certificate.kind == "none" and ans.output is out and ans.info == {"backend": "local"}
    ans = answer_with_bound(out, np.array([[1e-3, 0.0]]))
    assert ans.output is out and ans.certificate.kind == "log"
    assert np.array_equal(ans.certificate.log_bound, [[math.log(1e-3), -np.inf]])


def test_the_dask_backend_receives_every_argument(monkeypatch):
    """``backend="dask"`` imports :mod:`.dask_backend` by name and passes Q, K, V and every option through
    unchanged (a stand-in module records the call and returns a local run's answer), and ``exact_oracle``'s
    defaults are ``client=None``, ``progress=False``; the info it returns is the backend's."""
    rng = np.random.default_rng(4)
    Q, K, V = rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    calls = []

    def exact_dask(*args, **kwargs):
        calls.append((args, kwargs))
        out, bound = _exact(*args, scale=kwargs["scale"], tile_bytes=kwargs["tile_bytes"], dedupe=kwargs["dedupe"])
        return out, bound, {"backend": "dask", "workers": 3}

    fake = types.ModuleType("finegrained.attention.dask_backend")
    fake.exact_dask = exact_dask
    monkeypatch.setitem(sys.modules, "finegrained.attention.dask_backend", fake)
    client = object()

    def check(args, kwargs, **expect):
        assert len(args) == 3 and args[0] is Q and args[1] is K and args[2] is V
        assert kwargs == expect

    ans = exact_oracle(Q, K, V, scale=0.75, tile_bytes=4096, dedupe=False, backend="dask", client=client,
                       progress=True)
    check(*calls.pop(), scale=0.75, client=client, tile_bytes=4096, dedupe=False, progress=True)
    assert ans.info == {"backend": "dask", "workers": 3} and ans.certificate.kind == "log"
    local = exact_oracle(Q, K, V, scale=0.75, tile_bytes=4096, dedupe=False)
    assert np.array_equal(ans.output.log_abs, local.output.log_abs)
    exact_oracle(Q, K, V, backend="dask")
    check(*calls.pop(), scale=None, client=None, tile_bytes=64 * 2**20, dedupe=True, progress=False)
    out = exact(Q, K, V, scale=2.0, tile_bytes=100, dedupe=True, backend="dask", client="tcp://h:1", progress=True)
    check(*calls.pop(), scale=2.0, client="tcp://h:1", tile_bytes=100, dedupe=True, progress=True)
    assert np.array_equal(out.log_abs, exact(Q, K, V, scale=2.0).log_abs)
    exact(Q, K, V, backend="dask")
    check(*calls.pop(), scale=None, client=None, tile_bytes=64 * 2**20, dedupe=True, progress=False)
    assert not calls


def test_edge_inputs_emit_no_floating_point_warnings():
    """Under numpy's default error state (warnings for divide, overflow and invalid), the exact oracle's edge
    cases emit no warning: zero value columns (``log 0``, a zero bound), underflowing weights, exact and deep
    cancellation, scores so large that the bound overflows, values spanning the float range."""
    ln = math.log(10.0)
    cases = [
        (np.array([[1e10]]), np.array([[1e10], [0.0], [-1e10]]), np.array([[1.0], [2.0], [-1.0]])),
        (np.array([[1.0]]), np.array([[0.0], [0.0], [-2.6e16]]), np.array([[1.0], [-1.0], [0.0]])),
        (np.array([[1.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 1e-300], [0.0, -1e8]]),
         np.array([[1.0], [-(1 - 5e-7)], [0.0]])),
        (np.array([[1.0]]), np.array([[0.0], [800.0]]), np.array([[1e200], [1e-200]])),
        (np.array([[1.0]]), np.array([[1e4], [0.0]]), np.array([[0.0], [1.0]])),
        (np.zeros((1, 1)), np.zeros((2, 1)), np.array([[1.0], [-1.0]])),
        (np.array([[1.0]]), np.array([[10000.0], [10000.0], [9983.0]]), np.array([[1.0], [-1.0], [1.0]])),
        (np.array([[1.0]]), np.array([[0.0], [2000.0], [1776.0]]), np.array([[1e300], [1e-300], [-1e-250]])),
        (np.ones((2, 2)), np.ones((3, 2)), np.zeros((3, 2))),
        (np.array([[1.0, 0.0], [0.95, 0.0]]), np.array([[800.0, 0.0], [0.0, 0.0], [0.0, 1.0]]),
         np.array([[-1.0, 1e-200], [-1.0, 1e200], [-1.0, 1e200]])),
        (np.array([[1.0, 0.5]]), np.array([[0.0, 3.0], [1.0, 0.0], [2.0, 2.0]]), np.array([[0.0, 1.0], [0.0, 0.0],
                                                                                          [0.0, -2.0]])),
    ]
    kinds = []
    for Q, K, V in cases:
        for dedupe in (True, False):
            with warnings.catch_warnings(), np.errstate(divide="warn", over="warn", invalid="warn", under="ignore"):
                warnings.simplefilter("error")
                ans = exact_oracle(Q, K, V, scale=1.0, dedupe=dedupe, tile_bytes=8)
            kinds.append(ans.certificate.kind)
    assert kinds.count("none") == 6 and kinds.count("log") == 16  # the 2nd, 3rd and 6th case are not certified
    zero = exact_oracle(np.ones((2, 2)), np.ones((3, 2)), np.zeros((3, 2)), scale=1.0)
    assert (zero.output.sign == 0).all() and np.isneginf(zero.certificate.log_bound).all()
    assert abs(exact_oracle(*cases[3][:3], scale=1.0).output.log_abs[0, 0]
               - (np.logaddexp(200 * ln, 800 - 200 * ln) - np.logaddexp(0.0, 800.0))) < 1e-12
