"""torch oracles (extra ``torch``): the exact log-space oracle on torch tensors, and SDPA as an uncertified oracle.

* :func:`torch_exact` runs the exact oracle of :mod:`.exact` with its score products, ``exp`` and thin products
  on torch float64 tensors, on CUDA when it is available (or ``device=``) and on the CPU otherwise. The
  preparation (:func:`.exact.prepare`), the recomputation of numerators that underflow could have touched, the
  multiprecision cancellation fix-up and the error bound (:func:`.exact.finish`) are the exact oracle's own, in
  numpy: the certificate is the same formula (:func:`.exact._error_nats`), whose standard model of float64
  arithmetic holds for torch's float64 GEMM and ``exp`` on the CPU and on CUDA (IEEE double, no flush to zero;
  ``exp`` within 1 ulp, inside the bound's factor-2 margin).
* :func:`sdpa` calls :func:`torch.nn.functional.scaled_dot_product_attention` in float32, float16, bfloat16 or
  float64 and certifies nothing. The scale is always passed explicitly: the paper's ``1/d`` by default, not
  SDPA's ``1/sqrt(d)``. Its outputs are plain floats: on Lemma 4.7's instances (outputs near ``e^{-2500}``)
  every real row underflows to 0, which the pipeline's underflow detection reports.

Both accept ``device=`` ("cpu", "cuda", "cuda:1", a ``torch.device``); the default is CUDA when
``torch.cuda.is_available()`` and the CPU otherwise. The tests run them on the CPU (the same code path).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from instances.errors import NumericalError, ParameterError
from instances.logspace import LogArray

from .exact import (
    _LOG_SUBNORMAL,
    _SAFE_NATS,
    CUT,
    DEFAULT_TILE_BYTES,
    KeyGroup,
    _recompute,
    answer_with_bound,
    block_rows,
    finish,
    merge_parts,
    prepare,
)
from .protocol import UNCERTIFIED, OracleAnswer, check_attention_inputs

#: Extra that provides torch.
EXTRA = "torch"
#: dtypes accepted by :func:`sdpa`, by name.
SDPA_DTYPES = ("float32", "float16", "bfloat16", "float64")


def _torch():
    try:
        import torch
    except ImportError:
        raise ParameterError(f"the torch oracles need torch: pip install 'finegrained[{EXTRA}]'") from None
    return torch


def resolve_device(device: Any = None):
    """``device`` as a ``torch.device``; None means CUDA when available, else the CPU.

    A CUDA device asked for on a machine without CUDA is a :class:`ParameterError`.
    """
    torch = _torch()
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"unknown torch device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} asked for, but torch reports no CUDA device on this machine")
    return dev


def _group_part_torch(Qs_t, g: KeyGroup, tg: tuple, Qs_np: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`.exact.group_part` with the two products and ``exp`` in torch; flagged numerators in numpy."""
    torch = _torch()
    KT_t, W_t, cols_t = tg
    c = g.c
    Qb = Qs_t if cols_t is None else Qs_t.index_select(1, cols_t)
    S = Qb @ KT_t
    m = S.max(dim=1).values
    S.sub_(m[:, None]).exp_()
    P = S @ W_t
    lp = torch.log(P).cpu().numpy()
    m = m.cpu().numpy()
    unsafe = lp[:, :c] < np.maximum(CUT + g.log_wmax[:c], _LOG_SUBNORMAL) + np.log(g.size) + _SAFE_NATS
    if unsafe.any():
        # The exact log-sum-exp over the column's support, in numpy on the same float64 inputs.
        _recompute(lp, unsafe, Qs_np if g.cols is None else Qs_np[:, g.cols], g.KT, g.W, m)
    return lp[:, :c] + m[:, None], lp[:, c] + m


def _torch_exact(Q, K, V, *, scale: float | None, device: Any, tile_bytes: int,
                 dedupe: bool) -> tuple[LogArray, np.ndarray | None, dict]:
    torch = _torch()
    dev = resolve_device(device)
    prep = prepare(Q, K, V, scale=scale, dedupe=dedupe)
    rows = block_rows(prep, tile_bytes)
    Qs_t = torch.from_numpy(prep.Qs).to(dev)
    tgroups = [(torch.from_numpy(g.KT).to(dev), torch.from_numpy(g.W).to(dev),
                None if g.cols is None else torch.from_numpy(g.cols).to(dev)) for g in prep.groups]
    log_num = np.empty((prep.n_q, prep.c))
    log_den = np.empty(prep.n_q)
    with torch.no_grad():
        for start in range(0, prep.n_q, rows):
            stop = min(prep.n_q, start + rows)
            parts = [_group_part_torch(Qs_t[start:stop], g, tg, prep.Qs[start:stop])
                     for g, tg in zip(prep.groups, tgroups)]
            log_num[start:stop], log_den[start:stop] = merge_parts(parts)
    out, bound = finish(prep, log_num, log_den)
    return out, bound, {"backend": "torch", "device": str(dev), "block_rows": rows}


def torch_exact(Q, K, V, *, scale: float | None = None, log_eps: float | None = None, device: Any = None,
                tile_bytes: int = DEFAULT_TILE_BYTES, dedupe: bool = True) -> OracleAnswer:
    """The ``"torch_exact"`` oracle: :func:`.exact.exact_oracle` with its products on torch (CPU or CUDA).

    Same algorithm, tiling and ``"log"`` certificate as :func:`.exact.exact_oracle` (module docstring);
    ``log_eps`` is accepted and ignored (float64 fixes the accuracy, and the certificate states it).

    Examples
    --------
    >>> ans = torch_exact(np.eye(2), np.eye(2), np.array([[1.0], [-1.0]]), scale=1.0, device="cpu")
    >>> np.round(ans.output.to_float().ravel(), 6).tolist(), ans.certificate.kind
    ([0.462117, -0.462117], 'log')
    """
    out, bound, info = _torch_exact(Q, K, V, scale=scale, device=device, tile_bytes=tile_bytes, dedupe=dedupe)
    return answer_with_bound(out, bound, info)


def sdpa(Q, K, V, *, scale: float | None = None, log_eps: float | None = None, dtype: str = "float32",
         device: Any = None) -> OracleAnswer:
    """The ``"sdpa"`` oracle: ``torch.nn.functional.scaled_dot_product_attention``, uncertified.

    ``scale`` defaults to the paper's ``1/d`` (Definition 1.2) and is always passed to SDPA explicitly (SDPA's
    own default is ``1/sqrt(d)``). ``dtype`` is one of :data:`SDPA_DTYPES`. The output is plain floats
    (``from_float=True``): entries below the dtype's range come back as 0, and NaN or inf (a float16 score
    overflow, say) raise a :class:`NumericalError`.

    Examples
    --------
    >>> ans = sdpa(np.eye(2), np.eye(2), np.array([[1.0], [-1.0]]), scale=1.0, dtype="float64", device="cpu")
    >>> np.round(ans.output.to_float().ravel(), 6).tolist(), ans.certificate.kind
    ([0.462117, -0.462117], 'none')
    """
    torch = _torch()
    Q, K, V, scale = check_attention_inputs(Q, K, V, scale)
    if dtype not in SDPA_DTYPES:
        raise ParameterError(f"sdpa dtype must be one of {', '.join(SDPA_DTYPES)}, got {dtype!r}")
    dev = resolve_device(device)
    tdt = getattr(torch, dtype)
    finfo = torch.finfo(tdt)
    for name, X in (("Q", Q), ("K", K), ("V", V)):
        top = float(np.abs(X).max(initial=0.0))
        if top > finfo.max:
            raise NumericalError(f"{name} has entries up to {top:.3g}, beyond {dtype}'s range ({finfo.max:.3g})")
    q, k, v = (torch.from_numpy(np.ascontiguousarray(X)).to(device=dev, dtype=tdt)[None] for X in (Q, K, V))
    with torch.no_grad():
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=float(scale))[0]
    arr = out.to(torch.float64).cpu().numpy()
    if not np.isfinite(arr).all():
        raise NumericalError(f"sdpa in {dtype} returned NaN or infinite values (scores overflow {dtype}); "
                             "use a wider dtype or torch_exact")
    return OracleAnswer(LogArray.from_float(arr), UNCERTIFIED, from_float=True,
                        float_log_tiny=math.log(torch.finfo(tdt).tiny),
                        info={"backend": "torch", "device": str(dev), "dtype": dtype,
                              "scale": scale, "scale_is_one_over_d": math.isclose(scale, 1.0 / max(Q.shape[1], 1))})


__all__ = ["EXTRA", "SDPA_DTYPES", "resolve_device", "sdpa", "torch_exact"]
