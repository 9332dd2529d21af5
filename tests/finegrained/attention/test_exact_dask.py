"""The exact oracle on Dask (finegrained.attention.dask_backend) against the local oracle, on a LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import reductions  # noqa: E402
from finegrained.attention import exact, exact_oracle  # noqa: E402
from finegrained.attention.dask_backend import exact_dask  # noqa: E402
from instances.cnf import CNFFormula  # noqa: E402
from instances.errors import ParameterError  # noqa: E402
from instances.generators import random_ksat  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


def _chain_instances():
    yield random_ksat(8, 34, 3, seed=0)
    yield random_ksat(10, 43, 3, seed=4)
    yield CNFFormula([[1], [-1]], num_vars=2)  # unsatisfiable
    yield random_ksat(12, 51, 3, seed=2)


@pytest.mark.parametrize("tile", [8, 2**26])
def test_dask_is_bit_for_bit_the_local_oracle_on_chain_instances(client, tile):
    chain = reductions.path("k-SAT", "AAttC")
    for f in _chain_instances():
        a = chain.forward(f)
        local = exact_oracle(a.Q, a.K, a.V, scale=a.scale, tile_bytes=tile)
        dist = exact_oracle(a.Q, a.K, a.V, scale=a.scale, tile_bytes=tile, backend="dask", client=client)
        assert dist.info["backend"] == "dask" and dist.info["workers"] == 2
        assert np.array_equal(dist.output.sign, local.output.sign)
        assert np.array_equal(dist.output.log_abs, local.output.log_abs)
        assert dist.certificate.kind == local.certificate.kind == "log"
        assert np.array_equal(dist.certificate.log_bound, local.certificate.log_bound)
        thr = a.meta["lemma47"]["log_threshold"]
        assert np.array_equal(dist.output.log_abs >= thr, local.output.log_abs >= thr)


def test_dask_with_cancellation_and_several_groups(client):
    # Mixed-sign V that cancels (multiprecision fix-up after the merge) and values with different supports.
    rng = np.random.default_rng(3)
    Q, K = rng.normal(size=(90, 4)) * 20, rng.normal(size=(11, 4))
    V = rng.normal(size=(11, 3)) * (rng.random((11, 3)) < 0.6)
    V[:2, 0] = [1.0, -1.0]
    K[1] = K[0]
    out_l = exact(Q, K, V, scale=1.0, tile_bytes=8)
    out_d, bound, info = exact_dask(Q, K, V, scale=1.0, tile_bytes=8, client=client)
    assert info["tasks"] > 2
    assert np.array_equal(out_l.sign, out_d.sign) and np.array_equal(out_l.log_abs, out_d.log_abs)


def test_progress_bar_only_when_asked(client, capsys):
    Q = np.eye(3)
    exact(Q, Q, np.ones((3, 1)), backend="dask", client=client)
    assert capsys.readouterr().out == ""
    exact(Q, Q, np.ones((3, 1)), backend="dask", client=client, progress=True)
    assert "100%" in capsys.readouterr().out  # Dask's own text progress bar


def test_local_cluster_started_without_a_client():
    Q = np.array([[1.0, 0.0], [0.0, 1.0]])
    out, _, info = exact_dask(Q, Q, np.array([[1.0], [-1.0]]), scale=1.0, n_workers=1, processes=False)
    assert info["workers"] == 1
    assert np.round(out.to_float().ravel(), 6).tolist() == [0.462117, -0.462117]


def test_backend_errors():
    Q = np.eye(2)
    with pytest.raises(ParameterError, match="unknown backend"):
        exact(Q, Q, np.ones((2, 1)), backend="spark")
    with pytest.raises(ParameterError, match="client= is for backend='dask'"):
        exact(Q, Q, np.ones((2, 1)), client=object())
