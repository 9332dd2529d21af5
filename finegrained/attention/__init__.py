"""Attention algorithms behind one oracle protocol (:mod:`finegrained.attention.protocol`).

An *oracle* is a callable ``oracle(Q, K, V, *, scale=None, log_eps=None)`` returning an
:class:`~finegrained.attention.protocol.OracleAnswer` (the output in signed log space and the error it
certifies), a bare LogArray or a float array (both uncertified). :data:`ORACLES` maps the names accepted by
``finegrained chain --oracle NAME`` to oracles; ``package.module:function`` and the ``finegrained.oracles``
entry-point group add more. The algorithms themselves are exported as functions.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from .anytemp import anytemp, anytemp_oracle
from .exact import exact, exact_oracle
from .grad import GradResult, anytemp_grad, exact_grad, poly_grad
from .lev import heavy_entries, heavy_entries_with_values, lev_attention, lev_attention_with_keys, lev_oracle
from .poly import poly, poly_oracle
from .protocol import (
    UNCERTIFIED,
    Certificate,
    Oracle,
    OracleAnswer,
    as_answer,
    call_oracle,
    check_attention_inputs,
    oracle_names,
)
from .protocol import resolve_oracle as _resolve
from .random_features import random_features, random_features_oracle
from .reference import reference, reference_oracle

#: Oracles selectable by name on the command line and in :func:`finegrained.run_chain`.
ORACLES: dict[str, Callable[..., object]] = {
    "anytemp": anytemp_oracle,
    "exact": exact_oracle,
    "lev": lev_oracle,
    "poly": poly_oracle,
    "random_features": random_features_oracle,
    "reference": reference_oracle,
}

#: Oracle names that need an extra which is not installed here: name -> extra (see :func:`resolve_oracle`).
UNAVAILABLE: dict[str, str] = {}

# The torch oracles (extra ``torch``); torch itself is imported only when one of them is called.
if importlib.util.find_spec("torch") is not None:
    from .torch_backend import sdpa, torch_exact

    ORACLES.update({"sdpa": sdpa, "torch_exact": torch_exact})
else:
    UNAVAILABLE.update({"sdpa": "torch", "torch_exact": "torch"})



def resolve_oracle(oracle: str | Callable[..., object]) -> tuple[str, Callable[..., object]]:
    """The name and callable of an oracle: a name of :data:`ORACLES`, ``package.module:function``, a name of the
    ``finegrained.oracles`` entry-point group, or a callable (:func:`.protocol.resolve_oracle`).

    Examples
    --------
    >>> name, fn = resolve_oracle("exact")
    >>> name, fn is ORACLES["exact"]
    ('exact', True)
    >>> resolve_oracle("numpy:linalg.norm")[0]
    'numpy:linalg.norm'
    """
    return _resolve(oracle, ORACLES, UNAVAILABLE)


def available_oracles() -> list[str]:
    """Every oracle name that resolves here: built-ins plus entry points.

    Examples
    --------
    >>> {"exact", "anytemp", "poly", "lev", "reference", "random_features"} <= set(available_oracles())
    True
    """
    return oracle_names(ORACLES)


__all__ = [
    "ORACLES",
    "UNCERTIFIED",
    "Certificate",
    "GradResult",
    "Oracle",
    "OracleAnswer",
    "anytemp",
    "anytemp_grad",
    "anytemp_oracle",
    "as_answer",
    "available_oracles",
    "call_oracle",
    "check_attention_inputs",
    "exact",
    "exact_grad",
    "exact_oracle",
    "heavy_entries",
    "heavy_entries_with_values",
    "lev_attention",
    "lev_attention_with_keys",
    "lev_oracle",
    "poly",
    "poly_grad",
    "poly_oracle",
    "random_features",
    "random_features_oracle",
    "reference",
    "reference_oracle",
    "resolve_oracle",
]
