"""``bench scale`` (finegrained.bench.scale): a small run, its projection, and its command line."""

from __future__ import annotations

import math

import pytest

from finegrained.bench import BENCHES
from finegrained.bench.scale import run
from instances.errors import ParameterError

pytest.importorskip("distributed")


def test_small_scale_run_measures_projects_and_checks_decisions():
    res = run(vars_min=6, vars_max=8, step=2, workers=(1, 2), gpu=False, project=(12, 14), project_workers=(1, 4),
              repeat=1, processes=False)
    backends = {(r["N"], r["backend"], r["workers"]) for r in res.rows}
    assert backends == {(n, b, w) for n in (6, 8) for b, w in (("local", 1), ("dask", 1), ("dask", 2))}
    local = [r for r in res.rows if r["backend"] == "local"]
    assert all(r["ratio"] == pytest.approx(r["seconds"] / r["gemm_s"]) for r in local)
    assert local[1]["work"] > local[0]["work"] > 0
    assert set(res.efficiency) == {"N=6,k=2", "N=8,k=2"}
    proj = {(p["N"], p["target"], p["workers"]): p["seconds"] for p in res.projections}
    assert set(proj) == {(n, t, w) for n in (12, 14) for t, w in (("local", 1), ("dask", 1), ("dask", 4))}
    # Work grows as n_a n_b m: N 12 -> 14 is 4x the pairs times 60/51 clauses.
    assert proj[(14, "local", 1)] / proj[(12, "local", 1)] == pytest.approx(4 * 60 / 51)
    eff = res.efficiency["N=8,k=2"]
    assert proj[(12, "dask", 4)] == pytest.approx(proj[(12, "dask", 1)] / (4 * eff))
    d = res.to_dict()
    assert d["benchmark"] == "scale" and all(math.isfinite(p["seconds"]) for p in d["projections"])


def test_scale_arguments_and_registration(capsys):
    with pytest.raises(ParameterError):
        run(vars_min=8, vars_max=6)
    with pytest.raises(ParameterError):
        run(vars_min=6, vars_max=6, workers=(0,))
    assert BENCHES["scale"] == "finegrained.bench.scale"
    from finegrained.cli import build_parser
    from finegrained.cli.benches.scale import format_text

    args = build_parser().parse_args(["bench", "scale", "--vars-min", "6", "--vars-max", "6", "--workers", "0",
                                      "--gpu", "no", "--project", "10", "--repeat", "1"])
    from finegrained.cli.benches.scale import run as cli_run

    res = cli_run(args, None)
    assert not any(r["backend"] == "dask" for r in res.rows)
    text = format_text(res)
    assert "local" in text and "N = 10 on local" in text
