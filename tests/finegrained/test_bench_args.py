"""Bad arguments of ``finegrained bench NAME``: one line on stderr, exit 2, no traceback, no empty table.

Nothing here runs a real benchmark grid: every refused case fails before any timing starts, and the few accepted
cases use tiny sizes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from finegrained.bench import lev as bench_lev
from finegrained.cli import main
from finegrained.cli.plots import plot_degree_rank
from instances.errors import FinegrainedError, ParameterError

#: Arguments that keep an accepted run tiny (used to show that a refusal is not caused by the rest of the line).
TINY = {
    "chain": ["--vars-min", "3", "--vars-max", "4", "--step", "1", "--repeat", "1"],
    "poly": ["--dims", "2", "--B", "1", "--eps", "0.1", "--log2-n-min", "3", "--log2-n-max", "4"],
    "anytemp": ["--dims", "2", "--B", "1", "--laws", "uniform", "--log2-n-min", "3", "--log2-n-max", "4"],
    "ann": ["--dims", "64", "--log2-n-min", "3", "--log2-n-max", "3", "--no-narrow"],
    "compare": ["--log2-n-min", "3", "--log2-n-max", "4", "--algorithms", "exact", "--repeat", "1"],
}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize("name", ["lev", "ann", "compare", "anytemp", "poly", "chain"])
def test_negative_seed_is_refused(capsys, name):
    code, out, err = run(capsys, "bench", name, "--seed", "-1")
    assert_one_line_error(code, out, err, "--seed", "non-negative integer", "-1")


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        # bench chain
        (["chain", "--step", "0"], ["--step", "positive integer"]),
        (["chain", "--step", "-1"], ["--step", "non-negative integer"]),
        (["chain", "--ratio", "nan"], ["--ratio", "finite"]),
        (["chain", "--ratio", "0"], ["--ratio", "positive"]),
        (["chain", "--repeat", "0"], ["--repeat", "positive"]),
        (["chain", "--vars-min", "5", "--vars-max", "2"], ["--vars-min (5) must be at most --vars-max (2)"]),
        (["chain", "--vars-min", "1", "--vars-max", "2"], ["--vars-min must be at least 3"]),
        (["chain", "--vars-min", "3", "--vars-max", "3", "--ratio", "0.1"], ["no clauses"]),
        (["chain", "--vars-min", "60", "--vars-max", "60"], ["would need about", "bytes"]),
        (["chain", "--vars-min", "10", "--vars-max", "10", "--max-memory", "1K"], ["would need about", "--max-memory"]),
        # a clause count past float64 (round(inf) would leak an OverflowError), or past 2^53, is refused by name
        (["chain", "--ratio", "1e308"], ["--ratio 1e+308 gives inf clauses at N = 3", "2^53"]),
        (["chain", "--vars-min", "4", "--vars-max", "4", "--ratio", "1e300"], ["4e+300 clauses at N = 4"]),
        (["sizes", "--vars-min", "4", "--vars-max", "6", "--ratio", "1e308"], ["--ratio 1e+308 gives inf clauses"]),
        (["kernels", "--vars-min", "4", "--vars-max", "4", "--ratio", "1e308"], ["--ratio 1e+308 gives inf clauses"]),
        (["scale", "--vars-min", "4", "--vars-max", "4", "--workers", "0", "--ratio", "1e308"],
         ["--ratio 1e+308 gives inf clauses"]),
        # a LocalCluster of 100000 processes would hang the machine before anything is measured
        (["scale", "--workers", "100000"], ["--workers", "from 0 to 64", "100000"]),
        (["scale", "--workers", "1,65"], ["--workers", "from 0 to 64", "65"]),
        # a 400-digit size is read exactly (float() would make it inf, and int(inf) an OverflowError)
        (["chain", "--vars-min", "60", "--vars-max", "60", "--max-memory", "1" + "0" * 400 + "G", "--ratio", "1e16"],
         ["2^53"]),
        # bench lev
        (["lev", "--log2-n-max", "1"], ["--log2-n-max must be between 2 and 24"]),
        (["lev", "--log2-n-max", "100"], ["--log2-n-max must be between 2 and 24"]),
        (["lev", "--log2-n-max", "20", "--dims", "1000000"], ["would need about"]),
        (["lev", "--dims", "4,8"], ["--dims takes one value"]),
        (["lev", "--eps", "2"], ["--eps must lie in (0, 1]"]),
        (["lev", "--eps", "nan"], ["--eps", "finite"]),
        (["lev", "--dims", "0"], ["--dims", "positive integer"]),
        (["lev", "--repeat", "0"], ["--repeat", "positive integer"]),
        # bench poly
        (["poly", "--B", "-1"], ["--B", "positive number"]),
        (["poly", "--B", "nan"], ["--B", "finite"]),
        (["poly", "--eps", "0"], ["--eps", "strictly between 0 and 1"]),
        (["poly", "--eps", "1e-3,1.5"], ["--eps", "strictly between 0 and 1"]),
        (["poly", "--dims", "0"], ["--dims", "positive integer"]),
        (["poly", "--dims", "x"], ["--dims", "'x'"]),
        (["poly", "--sample-rows", "0"], ["--sample-rows", "positive integer"]),
        (["poly", "--max-memory", "-1"], ["--max-memory", "positive"]),
        (["poly", "--max-memory", "24"], ["--max-memory", "24G"]),
        (["poly", "--log2-n-min", "6", "--log2-n-max", "4"], ["--log2-n-min (6) must be at most --log2-n-max (4)"]),
        (["poly", "--scaling", "--scaling-log2-n-max", "4"], ["--scaling-log2-n-max must be at least 12"]),
        (["poly", "--plot", "x.jpg"], ["x.jpg", ".png, .pdf or .svg"]),
        (["poly", "--plot", "/nonexistent-dir-xyz/x.png"], ["/nonexistent-dir-xyz/x.png", "does not exist"]),
        # bench anytemp
        (["anytemp", "--dims", "x"], ["--dims", "'x'"]),
        (["anytemp", "--dims", "0"], ["--dims", "positive integer"]),
        (["anytemp", "--B", "-1"], ["--B", "positive number"]),
        (["anytemp", "--laws", "foo"], ["--laws", "uniform, sphere", "'foo'"]),
        (["anytemp", "--eps", "0"], ["--eps", "positive"]),
        (["anytemp", "--rows", "0"], ["--rows", "positive integer"]),
        (["anytemp", "--log2-n-min", "6", "--log2-n-max", "4"], ["--log2-n-min (6) must be at most"]),
        (["anytemp", "--laws", "sphere", "--dims", "1"], ["sphere law needs d >= 2"]),
        (["anytemp", "--log2-n-max", "100"], ["would need about"]),
        # bench ann
        (["ann", "--dims", "x"], ["--dims", "'x'"]),
        (["ann", "--dims", "63"], ["--dims must be even"]),
        (["ann", "--narrow-t", "-1"], ["--narrow-t", "positive"]),
        (["ann", "--ball-max-seconds", "nan"], ["--ball-max-seconds", "finite"]),
        (["ann", "--log2-n-min", "5", "--log2-n-max", "3"], ["--log2-n-min (5) must be at most"]),
        (["ann", "--log2-n-max", "40"], ["would need about"]),
        # bench compare
        (["compare", "--B", "nan"], ["--B", "finite"]),
        (["compare", "--B", "-1"], ["--B", "positive"]),
        (["compare", "--eps", "1"], ["--eps", "strictly between 0 and 1"]),
        (["compare", "--dims", "0"], ["--dims", "positive integer"]),
        (["compare", "--repeat", "0"], ["--repeat", "positive integer"]),
        (["compare", "--log2-n-min", "-1"], ["--log2-n-min", "non-negative"]),
        (["compare", "--log2-n-min", "5", "--log2-n-max", "3"], ["--log2-n-min <= --log2-n-max"]),
        (["compare", "--log2-n-max", "60"], ["would need about"]),
        (["compare", "--dims", "2,4", "--plot", "t.png"], ["--plot draws one case"]),
        (["compare", "--plot", "/nonexistent-dir-xyz/t.png"], ["/nonexistent-dir-xyz/t.png", "does not exist"]),
    ],
)
def test_bad_bench_arguments_are_one_line(capsys, argv, needles):
    name, rest = argv[0], argv[1:]
    # the tiny grid first, so the refusal comes from the bad option and nothing slow runs if it were accepted
    code, out, err = run(capsys, "bench", name, *TINY.get(name, []), *rest)
    assert_one_line_error(code, out, err, *needles)


def test_scale_library_caps_its_workers_like_the_cli():
    from finegrained.bench import scale

    assert scale.MAX_WORKERS == 64  # the CLI's --workers range (0..64) says the same number
    with pytest.raises(ParameterError, match="at most 64 local Dask workers are started, got 65"):
        scale.run(vars_min=4, vars_max=4, workers=(65,), gpu=False, project=(), repeat=1)


def test_clause_count_refuses_what_round_cannot_count():
    from finegrained.bench.chain import clause_count

    assert clause_count(4.26, 20) == 85 and clause_count(1, 2**52) == 2**52
    from fractions import Fraction

    assert clause_count(Fraction(17, 4), 20) == 85
    for ratio in (1e308, float("inf"), float("nan"), 0.0, -1.0, "4", True, 10**400, 2.0**53, 10**5000,
                  Fraction(10**300)):
        with pytest.raises(ParameterError, match="--ratio"):
            clause_count(ratio, 2)


def test_tiny_runs_still_work(capsys):
    code, out, err = run(capsys, "bench", "chain", *TINY["chain"], "--json")
    assert code == 0 and err == "" and [r["N"] for r in json.loads(out)["rows"]] == [3, 4]
    code, out, err = run(capsys, "bench", "poly", "--dims", "2,3,4", *TINY["poly"][2:], "--json")
    data = json.loads(out)
    assert code == 0 and err == "" and [c["d"] for c in data["cases"]] == [2, 3, 4]
    code, out, err = run(capsys, "bench", "anytemp", *TINY["anytemp"], "--json")
    assert code == 0 and err == "" and len(json.loads(out)["cases"]) == 2
    code, out, err = run(capsys, "bench", "compare", *TINY["compare"], "--json")
    assert code == 0 and err == "" and len(json.loads(out)["rows"]) == 2
    # several values of a list option give one case each
    code, out, err = run(capsys, "bench", "compare", *TINY["compare"], "--dims", "2,3", "--json")
    assert code == 0 and [c["d"] for c in json.loads(out)["cases"]] == [2, 3]


def test_old_spellings_are_still_accepted(capsys):
    """Scripts written for the older option names keep working (the names are hidden from --help)."""
    code, out, _ = run(capsys, "bench", "chain", "--n-min", "3", "--n-max", "3", "--step", "1", "--repeat", "1",
                       "--json")
    assert code == 0 and [r["N"] for r in json.loads(out)["rows"]] == [3]
    code, out, _ = run(capsys, "bench", "poly", "--ds", "2", "--Bs", "1", "--epss", "0.1", "--min-log2-n", "3",
                       "--max-log2-n", "3", "--json")
    assert code == 0 and [(c["d"], c["B"], c["eps"]) for c in json.loads(out)["cases"]] == [(2, 1.0, 0.1)]


def test_lev_scaling_adapts_the_grid_to_small_sizes():
    res = bench_lev.scaling(log2_n_max=3, d=4, eps=0.5, rng=np.random.default_rng(0))
    assert [r["n"] for r in res["rows"]] == [4, 8] and res["fit_n"] == [4, 8]
    assert np.isfinite(res["exponent"])
    res = bench_lev.scaling(log2_n_max=12, d=4, eps=0.5, rng=np.random.default_rng(0))
    assert res["rows"][0]["n"] == 2**10 and res["fit_n"] == [2**11, 2**12]
    with pytest.raises(ParameterError, match="between 2 and 24"):
        bench_lev.scaling(log2_n_max=1, d=4, eps=0.5, rng=np.random.default_rng(0))


def test_poly_plot_write_error_names_the_file(tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "plot.png"  # a path under a regular file: the save raises an OSError
    with pytest.raises(FinegrainedError, match=r"cannot write .*plot\.png") as info:
        plot_degree_rank(str(target), 6, 1e-3, [2])
    assert "\n" not in str(info.value)
