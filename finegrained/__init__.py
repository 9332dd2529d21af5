"""finegrained: executable fine-grained hardness reductions.

The top layer: attention algorithms (:mod:`finegrained.attention`), the end-to-end chain
(:func:`run_chain`) and the ``finegrained`` command line.
"""

from .chain import ChainResult, run_chain

__version__ = "0.1.0"

__all__ = ["ChainResult", "__version__", "run_chain"]
