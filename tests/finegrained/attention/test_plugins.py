"""Plug-in oracles (issue 14): ``package.module:function``, the ``finegrained.oracles`` entry-point group, plain
numpy arrays wrapped automatically, and the underflow refusal on the log-space route."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from finegrained import run_chain
from finegrained.attention.protocol import oracle_names, resolve_oracle
from instances import CNFFormula
from instances.errors import ParameterError, UncertifiedError
from instances.generators import planted_ksat, random_ksat

PLUGIN = textwrap.dedent('''
    import numpy as np

    def softmax(Q, K, V, *, scale=None):
        """float64 softmax attention, the way a user's kernel would write it."""
        S = (1.0 / Q.shape[1] if scale is None else scale) * (Q @ K.T)
        W = np.exp(S - S.max(axis=1, keepdims=True))
        return (W @ V) / W.sum(axis=1, keepdims=True)

    not_callable = 3
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "fg_test_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "fg_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fg-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[finegrained.oracles]\nsoftmax64 = fg_test_plugin:softmax\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fg_test_plugin:softmax"


def _formulas(count):
    rng = np.random.default_rng(14)
    out = []
    for i in range(count):
        n = int(rng.integers(2, 9))
        m = int(rng.integers(1, 4 * n))
        out.append(planted_ksat(n, m, 3 if n >= 3 else 2, seed=i)[0] if i % 2 else random_ksat(n, m, 2, seed=i))
    return out


def test_module_function_and_entry_point_decide_the_attention_route(plugin):
    assert "softmax64" in oracle_names({})
    name, fn = resolve_oracle("softmax64", {})
    assert callable(fn) and name == "softmax64"
    for k, f in enumerate(_formulas(100)):
        spec = plugin if k % 2 else "softmax64"
        r = run_chain(f, oracle=spec, route="attention", cdcl=False)
        truth = f.solve_cdcl() is not None
        assert r.satisfiable == truth, f.clauses
        if r.satisfiable:
            assert r.certified and f.is_satisfied_by(r.assignment)
        else:
            assert not r.certified and r.status == "uncertified"  # a float kernel certifies nothing


def test_log_space_route_stops_with_the_underflow_message(plugin):
    f = random_ksat(16, 60, 3, seed=1)
    with pytest.raises(UncertifiedError, match=r"below every float format.*k-SAT -> OV -> Attention"):
        run_chain(f, oracle=plugin, cdcl=False)


@pytest.mark.parametrize("spec, message", [
    ("fg_no_such_module:f", "cannot import plug-in oracle module"),
    ("fg_test_plugin:missing", "has no attribute"),
    ("fg_test_plugin:not_callable", "is not callable"),
    (":f", "package.module:function"),
    ("nonexistent-oracle", "unknown oracle"),
])
def test_bad_plugins_are_one_line_errors(plugin, spec, message):
    with pytest.raises(ParameterError, match=message) as exc:
        run_chain(CNFFormula([[1]]), oracle=spec, cdcl=False)
    assert "\n" not in str(exc.value)


def test_wrong_shapes_and_types_are_refused(plugin):
    def wrong_shape(Q, K, V, *, scale=None):
        return np.zeros((Q.shape[0] + 1, 1))

    def complex_out(Q, K, V, *, scale=None):
        return np.zeros((Q.shape[0], 1), dtype=complex)

    def nan_out(Q, K, V, *, scale=None):
        return np.full((Q.shape[0], 1), np.nan)

    for bad, message in ((wrong_shape, "shape"), (complex_out, "complex"), (nan_out, "NaN")):
        with pytest.raises(FinegrainedErrorType, match=message):
            run_chain(CNFFormula([[1, 2]]), oracle=bad, route="attention", cdcl=False)


from instances.errors import FinegrainedError as FinegrainedErrorType  # noqa: E402


def test_a_plugin_that_raises_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "fg_raising.py").write_text(
        "def boom(Q, K, V, *, scale=None):\n    raise ZeroDivisionError('division by zero in the kernel')\n"
        "def leaves(Q, K, V, *, scale=None):\n    raise SystemExit(5)\n"
        "def needs(Q, K, V, *, scale=None, extra):\n    return Q\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec, what in (("fg_raising:boom", "ZeroDivisionError"), ("fg_raising:leaves", "SystemExit"),
                       ("fg_raising:needs", "TypeError")):
        with pytest.raises(ParameterError, match=f"failed: {what}") as exc:
            run_chain(CNFFormula([[1, 2]]), oracle=spec, cdcl=False)
        assert "\n" not in str(exc.value)


def test_plugin_specs_split_at_the_first_colon_and_follow_dotted_attributes():
    name, fn = resolve_oracle("numpy:linalg.norm", {})
    assert name == "numpy:linalg.norm" and fn is np.linalg.norm
    # the module is what precedes the first colon; the rest is one attribute path, which has no ':' in it
    with pytest.raises(ParameterError) as exc:
        resolve_oracle("numpy:linalg:norm", {})
    assert str(exc.value) == "plug-in module 'numpy' has no attribute 'linalg:norm'"
    with pytest.raises(ParameterError) as exc:
        resolve_oracle("fg_no_such_module:f", {})
    assert str(exc.value) == ("cannot import plug-in oracle module 'fg_no_such_module': ModuleNotFoundError: "
                              "No module named 'fg_no_such_module'")


def test_available_oracles_are_the_builtins_plus_the_entry_points(plugin):
    from finegrained.attention import ORACLES, available_oracles

    names = available_oracles()
    assert names == sorted(set(names)) and set(ORACLES) | {"softmax64"} <= set(names)
