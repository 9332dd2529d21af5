"""``bench kernels`` (finegrained.bench.kernels): one tiny grid through the library and the command line.

The exact oracle decides every row of both routes; SDPA in float32 decides the attention route and is refused on
the aattc route with the underflow reason (never a silent UNSAT); a float64 numpy plug-in given on the command line
decides the attention route and, at N = 12 where the threshold e^-1019 is below float64's range, is refused too.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from finegrained.bench import BENCHES
from finegrained.bench.kernels import run
from finegrained.cli import main
from instances.errors import ParameterError

pytest.importorskip("torch")  # the [torch] extra: CI installs it (sdpa is one of the kernels this test is about)

PLUGIN = textwrap.dedent("""
    import numpy as np

    def softmax64(Q, K, V, *, scale=None):
        S = (Q @ K.T) * (1.0 / Q.shape[1] if scale is None else scale)
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return (P @ V) / P.sum(axis=1, keepdims=True)
""")
KEYS = ("route", "N", "kernel", "status", "reason_kind", "rows", "correct")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "kb_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "kb_plugin:softmax64"


def _by(rows):
    return {(r["route"], r["N"], r["kernel"]): r for r in rows}


def test_library_and_cli_rows_agree(plugin, capsys):
    res = run(vars_min=8, vars_max=12, step=4, kernels=("exact", "sdpa"), dtypes=("float32",), plugins=(plugin,),
              repeat=1, seed=0)
    rows = _by(res.rows)
    assert set(rows) == {(route, n, k) for route in ("aattc", "attention") for n in (8, 12)
                         for k in ("exact", "sdpa/float32", plugin)}
    for n in (8, 12):
        for route in ("aattc", "attention"):
            ex = rows[(route, n, "exact")]
            assert ex["status"] == "certified" and ex["accuracy"] == 1.0 and ex["rows"] == ex["correct"] > 0
            assert ex["ratio"] == pytest.approx(ex["seconds"] / ex["gemm_s"]) and ex["certificate"] == "log"
        att = rows[("attention", n, "sdpa/float32")]
        assert att["status"] == "certified" and att["accuracy"] == 1.0 and att["certificate"] == "none"
        low = rows[("aattc", n, "sdpa/float32")]
        assert low["status"] == "refused" and low["reason_kind"] == "underflow" and "float32" in low["reason"]
        assert rows[("attention", n, plugin)]["accuracy"] == 1.0
    # float64 carries e^-523 (N = 8) but not e^-1019 (N = 12): the plug-in decides the first and is refused on
    # the second, with the pipeline's own underflow line
    assert rows[("aattc", 8, plugin)]["accuracy"] == 1.0 and rows[("aattc", 8, plugin)]["status"] != "refused"
    big = rows[("aattc", 12, plugin)]
    assert big["status"] == "refused" and big["reason_kind"] == "underflow"
    assert "k-SAT -> OV -> Attention" in big["reason"]
    assert {s["kernel"] for s in res.summary()} == {"exact", "sdpa/float32", plugin}

    assert main(["bench", "kernels", "--vars-min", "8", "--vars-max", "12", "--step", "4", "--kernels",
                 "exact,sdpa", "--dtypes", "float32", "--oracle", plugin, "--repeat", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["schema"] == "finegrained.bench.kernels/1"
    cli = _by(payload["rows"])
    assert set(cli) == set(rows)
    for key, r in rows.items():
        assert {k: cli[key][k] for k in KEYS} == {k: r[k] for k in KEYS}, key

    assert main(["bench", "kernels", "--vars-min", "8", "--vars-max", "8", "--routes", "attention", "--kernels",
                 "exact,poly", "--repeat", "1"]) == 0
    text = capsys.readouterr().out
    assert "certified" in text and "100.0%" in text and "resource limit" in text  # poly refuses the gadget


def test_kernels_arguments_and_registration():
    assert BENCHES["kernels"] == "finegrained.bench.kernels"
    with pytest.raises(ParameterError):
        run(vars_min=12, vars_max=8)
    with pytest.raises(ParameterError):
        run(vars_min=8, vars_max=8, routes=("nope",))
    with pytest.raises(ParameterError):
        run(vars_min=8, vars_max=8, kernels=("exact", "nope"))
    with pytest.raises(ParameterError):
        run(vars_min=8, vars_max=8, kernels=("sdpa",), dtypes=("float8",))
