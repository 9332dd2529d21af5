"""The torch oracles (finegrained.attention.torch_backend) on the CPU: the same code path as on CUDA."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import reductions  # noqa: E402
from finegrained.attention import ORACLES, exact_oracle  # noqa: E402
from finegrained.attention.protocol import resolve_oracle  # noqa: E402
from finegrained.attention.torch_backend import resolve_device, sdpa, torch_exact  # noqa: E402
from finegrained.pipeline import decide  # noqa: E402
from instances.errors import NumericalError, ParameterError, UncertifiedError  # noqa: E402
from instances.generators import random_ksat  # noqa: E402

CHAIN = reductions.path("k-SAT", "AAttC")


@pytest.mark.parametrize(("n", "seed"), [(6, 0), (8, 1), (10, 2), (12, 3)])
def test_torch_exact_agrees_with_exact_on_chain_instances(n, seed):
    a = CHAIN.forward(random_ksat(n, round(4.26 * n), 3, seed=seed))
    ref = exact_oracle(a.Q, a.K, a.V, scale=a.scale)
    got = torch_exact(a.Q, a.K, a.V, scale=a.scale, device="cpu", tile_bytes=2**12)  # several blocks
    assert got.info["device"] == "cpu"
    assert np.array_equal(got.output.sign, ref.output.sign)
    nz = ref.output.sign != 0
    rel = np.abs(got.output.log_abs[nz] - ref.output.log_abs[nz])  # |log a - log b| ~ relative difference
    assert rel.max() <= 1e-10
    assert got.certificate.kind == ref.certificate.kind == "log"
    assert np.allclose(got.certificate.log_bound, ref.certificate.log_bound, rtol=1e-9, atol=0)


def test_torch_exact_certificate_holds_with_cancellation_and_tiny_weights():
    from finegrained.attention.reference import reference

    rng = np.random.default_rng(11)
    Q, K = rng.normal(size=(40, 3)) * 300, rng.normal(size=(9, 3))
    V = rng.normal(size=(9, 2)) * np.where(rng.random((9, 2)) < 0.5, 1e-200, 1.0)
    ans = torch_exact(Q, K, V, scale=1.0, device="cpu", tile_bytes=8)
    ref = reference(Q, K, V, scale=1.0, dps=80)
    assert np.array_equal(ans.output.sign, ref.sign)
    nz = ref.sign != 0
    bound = np.broadcast_to(np.exp(ans.certificate.log_bound), ans.output.shape)
    assert (np.abs(ans.output.log_abs[nz] - ref.log_abs[nz]) <= bound[nz]).all()


def test_sdpa_passes_the_papers_scale_and_returns_floats():
    rng = np.random.default_rng(0)
    Q, K, V = rng.normal(size=(5, 4)), rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    ans = sdpa(Q, K, V, dtype="float64", device="cpu")  # default scale 1/d, not 1/sqrt(d)
    ref = exact_oracle(Q, K, V, scale=1 / 4).output.to_float()
    assert ans.certificate.kind == "none" and ans.from_float
    assert np.allclose(ans.output.to_float(), ref, rtol=1e-12, atol=1e-14)
    assert not np.allclose(ans.output.to_float(), exact_oracle(Q, K, V, scale=0.5).output.to_float())
    for dtype, tol in (("float32", 1e-5), ("bfloat16", 5e-2), ("float16", 5e-3)):
        out = sdpa(Q, K, V, dtype=dtype, device="cpu").output.to_float()
        assert np.allclose(out, ref, atol=tol * 4, rtol=tol * 4)


def test_sdpa_float32_underflows_on_the_chain_and_the_pipeline_says_so():
    f = random_ksat(12, 51, 3, seed=1)
    a = CHAIN.forward(f)
    assert a.meta["lemma47"]["log_threshold"] < -745  # below float64's range, let alone float32's
    ans = sdpa(a.Q, a.K, a.V, scale=a.scale, dtype="float32", device="cpu")
    real = a.meta["lemma47"]["n_a"]
    assert ans.output.shape == (a.Q.shape[0], 1)
    assert (ans.output.sign[:real] == 0).all()  # the true outputs are near e^-1000: exactly 0 in float32
    with pytest.raises(UncertifiedError, match="log-space outputs"):
        decide(CHAIN, f, "sdpa")
    # Where the threshold is inside float64's range a float64 answer is still never certified; a float32 one is
    # refused, since the threshold (about e^-523 here) is below float32's range too.
    small = random_ksat(8, 34, 3, seed=0)

    def sdpa64(Q, K, V, *, scale=None):
        return sdpa(Q, K, V, scale=scale, dtype="float64", device="cpu")

    d64 = decide(CHAIN, small, sdpa64)
    assert small.solve_cdcl() is not None  # satisfiable: float64 finds and verifies it, float32 would read 0s
    assert d64.status == "certified" and d64.verified
    with pytest.raises(UncertifiedError, match="range of the oracle's float type"):
        decide(CHAIN, small, "sdpa")


def test_registration_devices_and_errors(monkeypatch):
    assert ORACLES["torch_exact"] is torch_exact and ORACLES["sdpa"] is sdpa
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(ParameterError, match="dtype"):
        sdpa(np.eye(2), np.eye(2), np.ones((2, 1)), dtype="int8")
    with pytest.raises(NumericalError, match="range"):
        sdpa(np.eye(2) * 1e5, np.eye(2), np.ones((2, 1)), dtype="float16")
    # Without torch the names are not registered, and asking for one names the extra.
    builtin = {k: v for k, v in ORACLES.items() if k not in ("sdpa", "torch_exact")}
    with pytest.raises(ParameterError, match=r"finegrained\[torch\]"):
        resolve_oracle("torch_exact", builtin, {"sdpa": "torch", "torch_exact": "torch"})
