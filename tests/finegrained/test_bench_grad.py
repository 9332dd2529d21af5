"""``finegrained bench grad``: the library function, the registry and the command line."""

from __future__ import annotations

import pytest

from finegrained.bench import BENCHES
from finegrained.bench.grad import run
from instances.errors import ParameterError


def test_small_grid():
    res = run(log2_n_min=4, log2_n_max=6, dims=(1, 2), B=(1.0, 100.0))
    rows = res.to_dict()["rows"]
    assert len(rows) == 2 * 2 * 3 * 3
    assert all(r["within"] for r in rows if r["refused"] is None)
    refused = {(r["method"], r["B"]) for r in rows if r["refused"]}
    assert refused == {("poly", 100.0)}
    fits = {(f["method"], f["d"], f["B"]): f["exponent"] for f in res.fits}
    assert fits[("poly", 1, 100.0)] is None and fits[("exact", 1, 1.0)] is not None
    with pytest.raises(ParameterError):
        run(methods=("nope",))
    with pytest.raises(ParameterError):
        run(log2_n_min=5, log2_n_max=4)
    # two sizes are no fit: the upper half would be a single point
    two = run(log2_n_min=4, log2_n_max=5, dims=(1,), B=(1.0,), methods=("exact",))
    assert all(f["exponent"] is None for f in two.fits)
    # poly_grad gets the memory limit and refuses before allocating
    big = run(log2_n_min=4, log2_n_max=4, dims=(2000,), B=(1.0,), methods=("exact", "poly"), max_memory=2**30)
    assert any(r["refused"] and "max_memory" in r["refused"] for r in big.rows if r["method"] == "poly")


def test_registered_and_cli():
    assert BENCHES["grad"] == "finegrained.bench.grad"
    from finegrained.cli import build_parser
    from finegrained.cli.benches.grad import format_text
    from finegrained.cli.benches.grad import run as cli_run

    args = build_parser().parse_args(["bench", "grad", "--log2-n-min", "4", "--log2-n-max", "5", "--dims", "1",
                                      "--B", "1", "--methods", "exact,poly"])
    res = cli_run(args, None)
    text = format_text(res)
    assert "| poly | 1 | 1 | 32 |" in text and "exponent" in text
