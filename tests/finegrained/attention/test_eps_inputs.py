"""A Python int beyond float64 as ``eps`` (or ``log_eps``, or a certificate's log-bound) is one ParameterError with
the whole message, never a raw OverflowError from float()."""

import math
from functools import partial

import numpy as np
import pytest

from finegrained.attention.anytemp import anytemp, anytemp_oracle
from finegrained.attention.grad import anytemp_grad, poly_grad
from finegrained.attention.poly import poly, poly_oracle
from finegrained.attention.protocol import Certificate
from instances.errors import NumericalError, ParameterError
from instances.errors import short_repr as _short_repr

HUGE = (10**400, -(10**400), 2**1024, 10**5000)  # 2**1024: the first power of two float64 cannot hold
IDS = ("1e400", "-1e400", "2**1024", "1e5000")

Q = np.array([[0.5, -0.25], [0.1, 0.3]])
K = np.array([[0.2, 0.4], [-0.3, 0.1], [0.0, 0.5]])
V = np.array([[1.0], [-2.0], [0.5]])
DO = np.array([[1.0], [-1.0]])


def _message(call, kind=ParameterError) -> str:
    with pytest.raises(kind) as exc:
        call()
    assert type(exc.value) is kind  # not an OverflowError that happens to be caught as something else
    return str(exc.value)


@pytest.mark.parametrize("big", HUGE, ids=IDS)
def test_gradients_refuse_a_huge_int_eps(big):
    assert _message(lambda: poly_grad(Q, K, V, DO, eps=big)) == f"eps must lie in (0, 1), got {_short_repr(big)}"
    assert _message(lambda: anytemp_grad(Q, K, V, DO, eps=big)) == f"eps must lie in (0, 1), got {_short_repr(big)}"


@pytest.mark.parametrize("fn", [poly_grad, anytemp_grad])
def test_gradients_refuse_other_non_real_eps_and_keep_the_range_messages(fn):
    for bad in ("abc", None, 1j):
        assert _message(partial(fn, Q, K, V, DO, eps=bad)) == f"eps must lie in (0, 1), got {_short_repr(bad)}"
    assert _message(partial(fn, Q, K, V, DO, eps=2)) == "eps must lie in (0, 1), got 2.0"
    assert _message(partial(fn, Q, K, V, DO, eps=math.nan)) == "eps must lie in (0, 1), got nan"
    assert _message(partial(fn, Q, K, V, DO, eps=0.0)) == "eps must lie in (0, 1), got 0.0"
    assert _message(lambda: anytemp_grad(Q, K, V, DO, eps=math.inf)) == "eps must lie in (0, 1), got inf"


@pytest.mark.parametrize("big", HUGE, ids=IDS)
def test_anytemp_refuses_a_huge_int_eps_and_log_eps(big):
    want = f"eps must be a finite positive number, got {_short_repr(big)}"
    assert _message(lambda: anytemp(Q, K, V, eps=big)) == want
    assert _message(lambda: anytemp_oracle(Q, K, V, eps=big)) == want
    assert _message(lambda: anytemp_oracle(Q, K, V, log_eps=big)) == (
        f"log_eps must be a real number, got {_short_repr(big)}")


def test_anytemp_keeps_its_messages_for_other_eps():
    assert _message(lambda: anytemp(Q, K, V, eps="x")) == "eps must be a finite positive number, got 'x'"
    assert _message(lambda: anytemp(Q, K, V, eps=-1)) == "eps must be a finite positive number, got -1.0"
    assert _message(lambda: anytemp_oracle(Q, K, V, log_eps=math.inf)) == (
        "log_eps must be a real number below +inf, got inf")


@pytest.mark.parametrize("big", HUGE, ids=IDS)
def test_poly_refuses_a_huge_int_eps_and_log_eps(big):
    want = f"eps must be a real number within float64 range, got {_short_repr(big)}"
    assert _message(lambda: poly(Q, K, V, eps=big)) == want
    assert _message(lambda: poly_oracle(Q, K, V, eps=big)) == want
    assert _message(lambda: poly_oracle(Q, K, V, log_eps=big)) == (
        f"log_eps must be a real number within float64 range, got {_short_repr(big)}")


def test_poly_keeps_its_messages_for_other_eps():
    assert _message(lambda: poly(Q, K, V, eps=True)) == "eps must be a real number, got True"
    assert _message(lambda: poly(Q, K, V, eps=math.inf)) == "eps must be a finite real number, got inf"
    assert _message(lambda: poly(Q, K, V, eps=1)) == "eps must lie in (0, 1), got 1.0"
    assert poly(Q, K, V, eps=np.float64(0.5)).error_bound >= 0  # in range, as a numpy scalar: accepted


@pytest.mark.parametrize("kind", ["additive", "relative", "log"])
@pytest.mark.parametrize("big", HUGE, ids=IDS)
def test_certificate_refuses_a_huge_int_log_bound(kind, big):
    article = "an" if kind == "additive" else "a"
    assert _message(lambda: Certificate(kind, big)) == (
        f"{article} {kind} certificate needs a log-bound within float64 range, got {_short_repr(big)}")
    assert _message(lambda: Certificate(kind, [[-1.0], [big]])) == (
        f"{article} {kind} certificate needs a log-bound within float64 range, got {_short_repr([[-1.0], [big]])}")


def test_certificate_keeps_its_messages_for_other_log_bounds():
    assert _message(lambda: Certificate("additive", "x"), NumericalError) == (
        "an additive certificate needs a real log-bound, got 'x'")
    assert _message(lambda: Certificate("additive", math.inf), NumericalError) == (
        "an additive certificate has a NaN or infinite bound: it certifies nothing")
    assert Certificate("additive", -(10**300)).log_bound == -1e300  # a big int float64 holds is a bound
    assert Certificate("none", 10**400).log_bound == math.inf  # "none" ignores its bound


NOT_REAL = ("0.01", b"0.01", True, np.complex128(0.01 + 0j), 0.01 + 0j)


@pytest.mark.parametrize("bad", NOT_REAL, ids=("str", "bytes", "bool", "np.complex128", "complex"))
def test_every_eps_refuses_strings_bools_and_complex_alike(bad):
    # one rule (instances.errors.real_number) for every eps: float() would accept "0.01" and True, and drop a
    # numpy complex's imaginary part with only a ComplexWarning
    with np.errstate(all="raise"):
        assert _message(lambda: poly_grad(Q, K, V, DO, eps=bad)) == f"eps must lie in (0, 1), got {_short_repr(bad)}"
        assert _message(lambda: anytemp_grad(Q, K, V, DO, eps=bad)) == (
            f"eps must lie in (0, 1), got {_short_repr(bad)}")
        assert _message(lambda: anytemp(Q, K, V, eps=bad)) == (
            f"eps must be a finite positive number, got {_short_repr(bad)}")
        assert _message(lambda: anytemp_oracle(Q, K, V, log_eps=bad)) == (
            f"log_eps must be a real number, got {_short_repr(bad)}")
        assert "eps must be a real number" in _message(lambda: poly(Q, K, V, eps=bad))


def test_every_eps_accepts_numpy_and_fraction_reals():
    from decimal import Decimal
    from fractions import Fraction

    for good in (np.float32(0.01), np.float64(0.01), Fraction(1, 100), Decimal("0.01"), np.array(0.01)):
        assert anytemp(Q, K, V, eps=good).error_bound <= 0.0100001
        assert np.isfinite(poly_grad(Q, K, V, DO, eps=good).dQ).all()


def test_a_signalling_nan_decimal_is_one_parameter_error():
    from decimal import Decimal

    # float(Decimal("sNaN")) raises ValueError, which leaked through every eps check
    assert _message(lambda: anytemp(Q, K, V, eps=Decimal("sNaN"))) == (
        "eps must be a finite positive number, got Decimal('sNaN')")
    assert _message(lambda: poly_grad(Q, K, V, DO, eps=Decimal("sNaN"))) == (
        "eps must lie in (0, 1), got Decimal('sNaN')")
    assert "eps must be a real number" in _message(lambda: poly(Q, K, V, eps=Decimal("sNaN")))
