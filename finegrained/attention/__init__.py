"""Attention algorithms behind one oracle protocol.

An *oracle* is a callable ``oracle(Q, K, V, *, scale=None) -> LogArray`` returning (an approximation of)
``D^{-1} exp(scale Q K^T) V`` in signed log space. :data:`ORACLES` maps the names accepted by
``finegrained chain --oracle NAME`` to such callables.
"""

from __future__ import annotations

from collections.abc import Callable

from instances.logspace import LogArray

from .anytemp import anytemp_oracle
from .exact import exact
from .lev import lev_oracle
from .poly import poly_oracle
from .random_features import random_features_oracle
from .reference import reference

Oracle = Callable[..., LogArray]

#: Oracles selectable by name on the command line and in :func:`finegrained.run_chain`.
ORACLES: dict[str, Oracle] = {
    "anytemp": anytemp_oracle,
    "exact": exact,
    "lev": lev_oracle,
    "poly": poly_oracle,
    "random_features": random_features_oracle,
    "reference": reference,
}

__all__ = ["ORACLES", "Oracle", "exact", "lev_oracle", "poly_oracle", "random_features_oracle"]
