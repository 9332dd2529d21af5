"""The LevAttention torch layer and the lev-train benchmark's tiny mode (extra ``torch``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from finegrained.attention.lev import leverage_scores as np_leverage  # noqa: E402
from finegrained.attention.lev_torch import (  # noqa: E402
    LevMultiheadAttention,
    lev_scaled_dot_product_attention,
    leverage_scores,
)
from finegrained.bench.lev_train import run  # noqa: E402
from instances.errors import ParameterError  # noqa: E402


def test_leverage_scores_match_numpy():
    rng = np.random.default_rng(0)
    K = rng.standard_t(2, size=(3, 40, 5))
    K[1, :, 4] = K[1, :, 0]  # rank 4
    got = leverage_scores(torch.tensor(K)).numpy()
    for b in range(3):
        assert np.allclose(got[b], np_leverage(K[b]), atol=1e-10)
    assert np.isclose(got[1].sum(), 4.0)


def test_full_keep_is_torch_attention_and_selection_is_by_leverage():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 10, 4), torch.randn(2, 3, 12, 4), torch.randn(2, 3, 12, 6)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(lev_scaled_dot_product_attention(q, k, v, None), ref, atol=1e-6)
    assert torch.allclose(lev_scaled_dot_product_attention(q, k, v, 12), ref, atol=1e-6)
    out = lev_scaled_dot_product_attention(q, k, v, 3)
    idx = leverage_scores(k).topk(3, dim=-1).indices
    for b in range(2):
        for h in range(3):
            kk, vv = k[b, h, idx[b, h]], v[b, h, idx[b, h]]
            want = torch.softmax(q[b, h] @ kk.T / 2.0, dim=-1) @ vv
            assert torch.allclose(out[b, h], want, atol=1e-6)
    with pytest.raises(ParameterError):
        lev_scaled_dot_product_attention(q, k, v, 0)


def test_module_gradients_flow():
    torch.manual_seed(1)
    layer = LevMultiheadAttention(8, 2, keep=4)
    x = torch.randn(3, 9, 8, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ParameterError):
        LevMultiheadAttention(9, 2)


def test_bench_lev_train_tiny():
    res = run(mode="tiny", ks=(8,), seed=0)
    d = res.to_dict()
    assert 0.0 <= d["full_accuracy"] <= 1.0 and d["tokens"] == 65
    assert [(e["k"], e["mode"]) for e in d["lev"]] == [(8, "scratch"), (8, "finetune")]
    assert all(0.0 <= e["accuracy"] <= 1.0 for e in d["lev"])
    with pytest.raises(ParameterError):
        run(mode="huge")
    with pytest.raises(ParameterError):
        run(mode="tiny", ks=(70,))


def test_leverage_scores_use_numpys_matrix_rank_tolerance_for_both_shapes():
    """tol = max(n, d) u s_max (numpy.linalg.matrix_rank): a singular value 1e-14 is dropped for n or d = 1000."""
    rng = np.random.default_rng(3)
    for n, d in ((1000, 2), (2, 1000)):
        U = np.linalg.qr(rng.normal(size=(n, 2)))[0]
        V = np.linalg.qr(rng.normal(size=(d, 2)))[0]
        K = (U * [1.0, 1e-14]) @ V.T
        assert np.linalg.matrix_rank(K) == 1
        tau = leverage_scores(torch.tensor(K[None])).numpy()[0]
        np.testing.assert_allclose(tau, U[:, 0] ** 2, atol=1e-12)
        assert tau.sum() == pytest.approx(1.0, abs=1e-12)
    # a zero matrix has rank 0 (s_max = 0 gives tol = 0; a zero singular value is not above it)
    assert leverage_scores(torch.zeros(2, 4, 3, dtype=torch.float64)).abs().max().item() == 0.0
    # the dtype of the input is kept (computed in float64, returned as float32)
    k32 = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(0))
    out = leverage_scores(k32)
    assert out.dtype == torch.float32 and out.shape == (3, 5)
    for b in range(3):  # the definition: the diagonal of the projection K K^+ onto K's column space
        Kb = k32[b].double().numpy()
        np.testing.assert_allclose(out[b].numpy(), np.diag(Kb @ np.linalg.pinv(Kb)), rtol=1e-5, atol=1e-6)


def test_selection_on_three_dimensional_inputs_with_an_explicit_scale():
    """(heads, n, d_h) tensors, keep = 1 and keep = 3 with scale = 0.3: softmax over the top-leverage keys."""
    torch.manual_seed(2)
    q, k, v = torch.randn(2, 5, 4, dtype=torch.float64), torch.randn(2, 9, 4, dtype=torch.float64), \
        torch.randn(2, 9, 3, dtype=torch.float64)
    for keep in (1, 3, 6):
        out = lev_scaled_dot_product_attention(q, k, v, keep, scale=0.3)
        idx = leverage_scores(k).topk(keep, dim=-1).indices
        for h in range(2):
            kk, vv = k[h, idx[h]], v[h, idx[h]]
            want = torch.softmax(0.3 * q[h] @ kk.T, dim=-1) @ vv
            assert torch.allclose(out[h], want, atol=1e-12)
    full = lev_scaled_dot_product_attention(q, k, v, None, scale=0.3)
    assert torch.allclose(full, torch.softmax(0.3 * q @ k.transpose(-2, -1), dim=-1) @ v, atol=1e-12)
    with pytest.raises(ParameterError) as info:
        lev_scaled_dot_product_attention(q, k, v, 0)
    assert str(info.value) == "keep must be >= 1, got 0"


def test_module_forward_is_the_documented_composition():
    """forward = proj(concat_heads(lev_sdpa(q, k, v, keep))) with q, k, v the head splits of qkv(x)."""
    torch.manual_seed(4)
    b, n, e, h = 2, 7, 6, 3
    layer = LevMultiheadAttention(e, h, keep=2).double()
    x = torch.randn(b, n, e, dtype=torch.float64)
    qkv = layer.qkv(x)
    q, k, v = (qkv[..., i * e:(i + 1) * e].reshape(b, n, h, e // h).transpose(1, 2) for i in range(3))
    heads = lev_scaled_dot_product_attention(q, k, v, 2)
    want = layer.proj(torch.cat([heads[:, i] for i in range(h)], dim=-1))
    assert torch.allclose(layer(x), want, atol=1e-12)
    assert not torch.allclose(want, layer.proj(torch.cat(list(lev_scaled_dot_product_attention(q, k, v, None)
                                                             .unbind(1)), dim=-1)), atol=1e-6)
    with pytest.raises(ParameterError) as info:
        LevMultiheadAttention(9, 2)
    assert str(info.value) == "embed_dim 9 is not a multiple of num_heads 2"
