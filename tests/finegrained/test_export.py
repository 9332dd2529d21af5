"""Exported hard instances: ten lines of numpy reproduce the expected decisions on both routes."""

from __future__ import annotations

import numpy as np
import pytest

from finegrained.export import export_instance, score_exported
from instances import CNFFormula, example_path
from instances.errors import ParameterError
from instances.generators import random_ksat


def _log_space_kernel(a):
    """The scorer docs/export.md shows: exact attention in log space with numpy alone."""
    S = a["scale"] * a["Q"] @ a["K"].T
    with np.errstate(divide="ignore"):
        log_v = np.log(a["V"][:, 0])
    return np.logaddexp.reduce(S + log_v, axis=1) - np.logaddexp.reduce(S, axis=1)


def _float32_softmax(a):
    S = (a["scale"] * a["Q"] @ a["K"].T).astype(np.float32)
    w = np.exp(S - S.max(axis=1, keepdims=True))
    u = (w @ a["V"].astype(np.float32))[:, 0] / w.sum(axis=1)
    with np.errstate(divide="ignore"):
        return np.log(u.astype(np.float64))


@pytest.mark.parametrize("route", ["aattc", "attention"])
def test_round_trip_reproduces_expected(route):
    for seed in range(12):
        f = random_ksat(8, 24 + seed, 3, seed=seed)
        ex = export_instance(f, route=route)
        a = ex.arrays
        assert score_exported(a, _log_space_kernel(a))["accuracy"] == 1.0
        assert bool(a["satisfiable"]) == (f.solve_cdcl() is not None)
        assert a["expected"][: int(a["rows_decoded"])].any() == bool(a["satisfiable"])
        assert not a["expected"][int(a["rows_decoded"]):].any()


def test_float32_decides_the_attention_route_but_not_aattc():
    f = CNFFormula.read(example_path("random3sat-n20"))
    att = export_instance(f, route="attention").arrays
    assert score_exported(att, _float32_softmax(att))["accuracy"] == 1.0
    hard = export_instance(f).arrays
    assert hard["log_threshold"] < -2000  # below every float format
    res = score_exported(hard, _float32_softmax(hard))
    assert res["accuracy"] < 1.0 and res["correct"] >= hard["expected"].size - int(hard["expected"].sum())


def test_metadata_and_bad_options():
    ex = export_instance(CNFFormula([[1]]), params="paper")
    m = ex.metadata
    assert m["route"] == "aattc" and m["params"] == "paper" and len(m["input_sha256"]) == 64 and m["version"]
    with pytest.raises(ParameterError):
        export_instance(CNFFormula([[1]]), route="nope")
    with pytest.raises(ParameterError):
        export_instance(CNFFormula([[1]]), route="attention", params="paper")


def test_cli_export_npz_safetensors_and_errors(tmp_path, capsys):
    from finegrained.cli import main

    out = tmp_path / "inst.npz"
    assert main(["export", "--example", "tiny4", "-o", str(out)]) == 0
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    assert score_exported(arrays, _log_space_kernel(arrays))["accuracy"] == 1.0
    import json

    meta = json.loads(str(arrays["metadata"]))
    assert meta["route"] == "aattc" and meta["schema"] == "finegrained.export/1"
    assert main(["export", "--example", "tiny4", "-o", str(tmp_path / "x.pdf")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists()
    safetensors = pytest.importorskip("safetensors.numpy")
    st = tmp_path / "inst.safetensors"
    assert main(["export", "--example", "tiny4", "--route", "attention", "-o", str(st)]) == 0
    loaded = safetensors.load_file(str(st))
    assert score_exported(loaded, _float32_softmax(loaded))["accuracy"] == 1.0
