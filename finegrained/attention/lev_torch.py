"""LevAttention as a torch layer for training (Kannan et al. 2024; extra ``torch``).

Per sample and per head, the keys ``K`` (``n x d_h``) get their leverage scores ``tau_j = k_j^T (K^T K)^+ k_j``
(squared row norms of an orthonormal basis of ``K``'s column space, from a batched SVD with the
``numpy.linalg.matrix_rank`` tolerance). The ``keep`` keys of largest leverage are the universal set of the layer:
every key with ``tau_j >= eps`` is among them as soon as ``keep >= rank / eps``, because the scores sum to the rank.
Softmax attention is then taken over those keys only. The selection is a discrete choice and carries no gradient;
the gradient flows through the selected keys and values, as in the paper's training experiments.

:func:`lev_scaled_dot_product_attention` has the call shape of
``torch.nn.functional.scaled_dot_product_attention`` (tensors ``(..., n, d_h)``) and
:class:`LevMultiheadAttention` is a self-attention module whose ``keep=None`` is full attention, so one set of
weights serves both (fine-tuning a full model into a LevAttention one only sets ``keep``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from instances.errors import ParameterError


def leverage_scores(K: torch.Tensor) -> torch.Tensor:
    """Leverage scores of the rows of every ``(n, d_h)`` matrix of ``K`` (shape ``(..., n, d_h)``), no gradient."""
    with torch.no_grad():
        U, S, _ = torch.linalg.svd(K.double(), full_matrices=False)
        n, d = K.shape[-2], K.shape[-1]
        tol = S[..., :1] * max(n, d) * torch.finfo(torch.float64).eps
        mask = (S > tol).to(U.dtype)
        return ((U * mask[..., None, :]) ** 2).sum(-1).to(K.dtype)


def lev_scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: int | None,
                                     scale: float | None = None) -> torch.Tensor:
    """Softmax attention of every query over the ``keep`` keys of largest leverage score (all keys if ``None``).

    Shapes ``(..., n_q, d_h)``, ``(..., n_k, d_h)``, ``(..., n_k, d_v)``; ``scale`` defaults to ``1/sqrt(d_h)``
    as in torch.
    """
    d_h = q.shape[-1]
    scale = 1.0 / math.sqrt(d_h) if scale is None else float(scale)
    n_k = k.shape[-2]
    if keep is not None:
        keep = int(keep)
        if keep < 1:
            raise ParameterError(f"keep must be >= 1, got {keep}")
    if keep is not None and keep < n_k:
        idx = leverage_scores(k).topk(keep, dim=-1).indices  # (..., keep)
        k = torch.gather(k, -2, idx[..., None].expand(*idx.shape, k.shape[-1]))
        v = torch.gather(v, -2, idx[..., None].expand(*idx.shape, v.shape[-1]))
    attn = torch.softmax(scale * (q @ k.transpose(-2, -1)), dim=-1)
    return attn @ v


class LevMultiheadAttention(nn.Module):
    """Multi-head self-attention on ``(batch, n, embed_dim)`` with LevAttention key selection per head.

    Parameters
    ----------
    embed_dim, num_heads : int
    keep : int or None
        Keys kept per head (``None``: full softmax attention).
    """

    def __init__(self, embed_dim: int, num_heads: int, keep: int | None = None) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ParameterError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.num_heads, self.keep = num_heads, keep
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, e = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, e // self.num_heads).permute(2, 0, 3, 1, 4)
        out = lev_scaled_dot_product_attention(q, k, v, self.keep)
        return self.proj(out.transpose(1, 2).reshape(b, n, e))


__all__ = ["LevMultiheadAttention", "lev_scaled_dot_product_attention", "leverage_scores"]
