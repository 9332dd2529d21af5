"""The attention package exports callables with one calling convention (issue 12)."""

from __future__ import annotations

import inspect

import numpy as np

import finegrained.attention as fa
from finegrained.attention import ORACLES, anytemp, exact, lev_attention, poly


def test_package_exports_functions_not_modules():
    for fn in (exact, poly, anytemp, lev_attention, fa.reference, fa.random_features, fa.exact_grad):
        assert callable(fn) and not inspect.ismodule(fn)
    assert set(fa.__all__) <= set(dir(fa))


def _check_keyword_only(fn) -> None:
    params = list(inspect.signature(fn).parameters.values())
    assert [p.name for p in params[:3]] == ["Q", "K", "V"], fn
    for p in params[3:]:
        assert p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD), (fn, p)


def test_every_oracle_and_algorithm_takes_options_keyword_only():
    for fn in list(ORACLES.values()) + [exact, poly, anytemp, lev_attention]:
        _check_keyword_only(fn)
    for fn in (poly, anytemp, lev_attention):
        assert inspect.signature(fn).parameters["eps"].kind is inspect.Parameter.KEYWORD_ONLY


def test_every_builtin_oracle_returns_an_answer_with_a_certificate():
    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(6, 2)), rng.normal(size=(7, 2)), rng.random((7, 1))
    for name, fn in ORACLES.items():
        ans = fn(Q, K, V, scale=0.5)
        assert isinstance(ans, fa.OracleAnswer), name
        assert ans.output.shape == (6, 1)
        assert ans.certificate.kind in ("none", "additive", "relative", "log"), name
        if name in ("exact", "reference", "anytemp", "poly", "torch_exact"):
            assert ans.certificate.certified, name
        if name in ("lev", "random_features", "sdpa"):
            assert not ans.certificate.certified, name
