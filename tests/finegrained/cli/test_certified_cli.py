"""The CLI's side of certified decisions: one line and exit 1 when the certificate cannot decide, the routes,
and uncertified answers labelled in text and JSON."""

from __future__ import annotations

import json
import textwrap

import pytest

from finegrained.cli import main

MODULE = textwrap.dedent('''
    import math
    import numpy as np
    from finegrained.attention import exact
    from finegrained.attention.protocol import Certificate, OracleAnswer

    def coarse(Q, K, V, *, scale=None):
        return OracleAnswer(exact(Q, K, V, scale=scale), Certificate("additive", math.log(1e-6)))

    def softmax(Q, K, V, *, scale=None):
        S = scale * (Q @ K.T)
        W = np.exp(S - S.max(axis=1, keepdims=True))
        return (W @ V) / W.sum(axis=1, keepdims=True)
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    (tmp_path / "fg_cli_plugin.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fg_cli_plugin"


def test_too_coarse_certificate_exits_1_with_one_line(plugin, capsys):
    assert main(["chain", "--example", "php-3-2", "--oracle", f"{plugin}:coarse", "--no-cdcl"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "certifies additive error <= 1e-06" in err[0] and "needs additive error" in err[0]


def test_float_kernel_routes(plugin, capsys):
    assert main(["chain", "--example", "random3sat-n20", "--oracle", f"{plugin}:softmax", "--no-cdcl"]) == 1
    err = capsys.readouterr().err
    assert "below every float format" in err and err.count("\n") == 1
    assert main(["chain", "--example", "random3sat-n20", "--oracle", f"{plugin}:softmax", "--route",
                 "attention", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["route"] == "attention" and data["satisfiable"] and data["certified"] and data["verified"]
    assert [s["problem"] for s in data["stages"]] == ["k-SAT", "OV", "Attention"]


def test_uncertified_unsat_is_labelled_in_text_and_competition(capsys):
    assert main(["chain", "--example", "php-3-2", "--oracle", "lev", "--no-cdcl"]) == 0
    out = capsys.readouterr().out
    assert "UNSATISFIABLE (uncertified)" in out and "certifies nothing" in out
    assert main(["chain", "--example", "php-3-2", "--oracle", "lev", "--no-cdcl", "--format", "competition"]) == 0
    assert "s UNKNOWN" in capsys.readouterr().out
    assert main(["chain", "--example", "php-3-2", "--format", "competition"]) == 20


def test_route_attention_refuses_lemma_constants(capsys):
    assert main(["chain", "--example", "tiny4", "--route", "attention", "--params", "paper"]) == 2
    assert "attention route" in capsys.readouterr().err
