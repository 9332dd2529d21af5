"""Bad arguments of ``finegrained bench NAME``: one line on stderr, exit 2, no traceback, no empty table.

Nothing here runs a real benchmark grid: every refused case fails before any timing starts, and the few accepted
cases use tiny sizes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from finegrained.bench import lev as bench_lev
from finegrained.bench import poly as bench_poly
from finegrained.cli import main
from instances.errors import FinegrainedError, ParameterError

#: Arguments that keep an accepted run tiny (used to show that a refusal is not caused by the rest of the line).
TINY = {
    "chain": ["--n-min", "3", "--n-max", "4", "--step", "1", "--repeat", "1"],
    "poly": ["--ds", "2", "--Bs", "1", "--epss", "0.1", "--min-log2-n", "3", "--max-log2-n", "4"],
    "anytemp": ["--dims", "2", "--bs", "1", "--laws", "uniform", "--min-log2-n", "3", "--max-log2-n", "4"],
    "ann": ["--dims", "64", "--log2-n-min", "3", "--log2-n-max", "3", "--no-narrow"],
    "compare": ["--min-log2-n", "3", "--max-log2-n", "4", "--algorithms", "exact", "--repeat", "1"],
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
        (["chain", "--n-min", "5", "--n-max", "2"], ["--n-min (5) must be at most --n-max (2)"]),
        (["chain", "--n-min", "1", "--n-max", "2"], ["--n-min must be at least 3"]),
        (["chain", "--n-min", "3", "--n-max", "3", "--ratio", "0.1"], ["no clauses"]),
        (["chain", "--n-min", "60", "--n-max", "60"], ["would need about", "bytes"]),
        (["chain", "--n-min", "10", "--n-max", "10", "--max-memory", "1K"], ["would need about"]),
        # bench lev
        (["lev", "--max-log2-n", "1"], ["--max-log2-n must be between 2 and 24"]),
        (["lev", "--max-log2-n", "100"], ["--max-log2-n must be between 2 and 24"]),
        (["lev", "--max-log2-n", "20", "--d", "1000000"], ["would need about"]),
        (["lev", "--eps", "2"], ["--eps must lie in (0, 1]"]),
        (["lev", "--eps", "nan"], ["--eps", "finite"]),
        (["lev", "--d", "0"], ["--d", "positive integer"]),
        (["lev", "--repeats", "0"], ["--repeats", "positive integer"]),
        # bench poly
        (["poly", "--Bs", "-1"], ["--Bs", "positive number"]),
        (["poly", "--Bs", "nan"], ["--Bs", "finite"]),
        (["poly", "--epss", "0"], ["--epss", "strictly between 0 and 1"]),
        (["poly", "--epss", "1e-3,1.5"], ["--epss", "strictly between 0 and 1"]),
        (["poly", "--ds", "0"], ["--ds", "positive integer"]),
        (["poly", "--ds", "x"], ["--ds", "'x'"]),
        (["poly", "--sample-rows", "0"], ["--sample-rows", "positive integer"]),
        (["poly", "--max-memory", "-1"], ["--max-memory", "positive"]),
        (["poly", "--min-log2-n", "6", "--max-log2-n", "4"], ["--min-log2-n (6) must be at most --max-log2-n (4)"]),
        (["poly", "--scaling", "--scaling-max-log2-n", "4"], ["--scaling-max-log2-n must be at least 12"]),
        (["poly", "--plot", "/nonexistent-dir-xyz/x.png"], ["/nonexistent-dir-xyz/x.png", "does not exist"]),
        # bench anytemp
        (["anytemp", "--dims", "x"], ["--dims", "'x'"]),
        (["anytemp", "--dims", "0"], ["--dims", "positive integer"]),
        (["anytemp", "--bs", "-1"], ["--bs", "positive number"]),
        (["anytemp", "--laws", "foo"], ["--laws", "uniform, sphere", "'foo'"]),
        (["anytemp", "--eps-rel", "0"], ["--eps-rel", "positive"]),
        (["anytemp", "--rows", "0"], ["--rows", "positive integer"]),
        (["anytemp", "--min-log2-n", "6", "--max-log2-n", "4"], ["--min-log2-n (6) must be at most"]),
        (["anytemp", "--laws", "sphere", "--dims", "1"], ["sphere law needs d >= 2"]),
        (["anytemp", "--max-log2-n", "100"], ["would need about"]),
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
        (["compare", "--d", "0"], ["--d", "positive integer"]),
        (["compare", "--repeat", "0"], ["--repeat", "positive integer"]),
        (["compare", "--min-log2-n", "-1"], ["--min-log2-n", "non-negative"]),
        (["compare", "--min-log2-n", "5", "--max-log2-n", "3"], ["--min-log2-n <= --max-log2-n"]),
        (["compare", "--max-log2-n", "60"], ["would need about"]),
        (["compare", "--plot", "/nonexistent-dir-xyz/t.png"], ["/nonexistent-dir-xyz/t.png", "does not exist"]),
    ],
)
def test_bad_bench_arguments_are_one_line(capsys, argv, needles):
    name, rest = argv[0], argv[1:]
    # the tiny grid first, so the refusal comes from the bad option and nothing slow runs if it were accepted
    code, out, err = run(capsys, "bench", name, *TINY.get(name, []), *rest)
    assert_one_line_error(code, out, err, *needles)


def test_tiny_runs_still_work(capsys):
    code, out, err = run(capsys, "bench", "chain", *TINY["chain"], "--json")
    assert code == 0 and err == "" and [r["N"] for r in json.loads(out)["rows"]] == [3, 4]
    code, out, err = run(capsys, "bench", "poly", "--ds", "2,3", "4", *TINY["poly"][2:], "--json")
    data = json.loads(out)
    assert code == 0 and err == "" and [c["d"] for c in data["cases"]] == [2, 3, 4]
    code, out, err = run(capsys, "bench", "anytemp", *TINY["anytemp"], "--json")
    assert code == 0 and err == "" and len(json.loads(out)["cases"]) == 2
    code, out, err = run(capsys, "bench", "compare", *TINY["compare"], "--json")
    assert code == 0 and err == "" and len(json.loads(out)["rows"]) == 2


def test_lev_scaling_adapts_the_grid_to_small_sizes():
    res = bench_lev.scaling(3, 4, 0.5, np.random.default_rng(0), 1)
    assert [r["n"] for r in res["rows"]] == [4, 8] and res["fit_n"] == [4, 8]
    assert np.isfinite(res["exponent"])
    res = bench_lev.scaling(12, 4, 0.5, np.random.default_rng(0), 1)
    assert res["rows"][0]["n"] == 2**10 and res["fit_n"] == [2**11, 2**12]
    with pytest.raises(ParameterError, match="between 2 and 24"):
        bench_lev.scaling(1, 4, 0.5, np.random.default_rng(0), 1)


def test_poly_plot_write_error_names_the_file(tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "plot.png"  # a path under a regular file: the save raises an OSError
    with pytest.raises(FinegrainedError, match=r"cannot write .*plot\.png") as info:
        bench_poly.plot_degree_rank(str(target), 6, 1e-3, [2])
    assert "\n" not in str(info.value)
