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
