"""finegrained: executable fine-grained hardness reductions.

The top layer: attention algorithms (:mod:`finegrained.attention`), the end-to-end chain
(:func:`run_chain`) and the ``finegrained`` command line.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .chain import ChainResult, run_chain

__version__ = "0.1.0"

__all__ = ["ChainResult", "__version__", "run_chain"]


def __getattr__(name: str):
    # Lazy, so that ``import finegrained.cli`` is instant and Ctrl-C during the heavy imports reaches the CLI's
    # handler (one line, exit 130) instead of printing a traceback.
    if name in ("ChainResult", "run_chain"):
        from . import chain

        return getattr(chain, name)
    raise AttributeError(f"module 'finegrained' has no attribute {name!r}")
