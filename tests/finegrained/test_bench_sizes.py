"""``finegrained bench sizes``: measured sizes against the declared maps, oracle time against n_q n_k d."""

from __future__ import annotations

import json

import pytest

from finegrained.bench import sizes as bench
from finegrained.cli import main
from instances.errors import ParameterError, ResourceLimitError
from reductions.gap_ann_to_attention import GapANNToAAttC


def test_measured_sizes_equal_the_declared_map():
    result = bench.run(vars_min=3, vars_max=9, repeat=1)
    assert [r["N"] for r in result.rows] == list(range(3, 10))
    assert result.max_mismatch_integer == 0 and result.consistent
    # beta is rounded up by a relative 1e-12 on purpose (Lemma 4.7 tight mode); nothing else is off by more
    assert result.max_mismatch_real <= 2e-12
    for r in result.rows:
        n, m = r["N"], r["m"]
        assert r["sizes"]["OV.n_a"] == [2 ** -(-n // 2), 2 ** -(-n // 2)]
        assert r["sizes"]["AAttC.d"] == [12 * m, 12 * m]
        assert r["work"] == r["n_q"] * r["n_k"] * r["d"] and r["oracle_s"] > 0
    assert result.exponent is not None and result.exponent_upper_half is not None
    json.dumps(result.to_dict(), allow_nan=False)


def test_a_wrong_declared_map_is_reported(monkeypatch):
    # a declared d~ of 11m instead of 12m must show up as an integer mismatch and a failing exit status
    import sympy as sp

    from finegrained.cli.benches.sizes import exit_status

    real = GapANNToAAttC.sizes
    wrong = sp.Rational(11, 6) * sp.Symbol("d", positive=True)
    monkeypatch.setattr(GapANNToAAttC, "sizes", property(lambda self: {**real.fget(self), "d": wrong}))
    result = bench.run(vars_min=4, vars_max=5, repeat=1)
    assert result.max_mismatch_integer == pytest.approx(1 / 12) and not result.consistent
    assert exit_status(result) == 1


def test_cli_table_json_and_plot(capsys, tmp_path):
    png = tmp_path / "sizes.png"
    assert main(["bench", "sizes", "--vars-min", "4", "--vars-max", "7", "--repeat", "1", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "fitted exponent of oracle time against n_q n_k d" in out and "integer 0" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["bench", "sizes", "--vars-min", "4", "--vars-max", "5", "--repeat", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "finegrained.bench.sizes/1" and data["consistent"] is True
    assert data["max_mismatch_integer"] == 0 and len(data["rows"]) == 2


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"vars_min": 2}, ParameterError),
    ({"vars_min": 9, "vars_max": 8}, ParameterError),
    ({"ratio": float("nan")}, ParameterError),
    ({"params": "loose"}, ParameterError),
    ({"vars_max": 40, "max_memory": 2**30}, ResourceLimitError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        bench.run(**{"vars_max": 6, "repeat": 1, **kwargs})
