"""``finegrained chain --dask`` and ``--device`` (issue 17): the backend and its workers are in the JSON, and the
decision is the local one."""

from __future__ import annotations

import json

import pytest

from finegrained.cli import main

pytest.importorskip("distributed")


def test_chain_on_a_local_dask_cluster_reports_backend_and_workers(capsys):
    assert main(["chain", "--example", "php-3-2", "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main(["chain", "--example", "php-3-2", "--dask", "--json"]) == 0
    dask = json.loads(capsys.readouterr().out)
    assert dask["oracle_info"]["backend"] == "dask" and dask["oracle_info"]["workers"] >= 1
    assert local["oracle_info"]["backend"] == "local"
    assert dask["satisfiable"] == local["satisfiable"] is False and dask["certified"]
    assert dask["decision"] == local["decision"]


def test_backend_options_are_checked(capsys):
    assert main(["chain", "--example", "tiny4", "--dask", "--oracle", "lev"]) == 2
    assert "has no Dask backend" in capsys.readouterr().err
    assert main(["chain", "--example", "tiny4", "--device", "cpu"]) == 2
    assert "--device selects the torch device" in capsys.readouterr().err
