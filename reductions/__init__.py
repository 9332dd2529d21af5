"""Reductions with forward and backward maps, composed along paths of the reduction graph.

Every reduction maps instances forward (:meth:`Reduction.reduce` gives a :class:`Reduced` that extracts solutions
back), raises :class:`~instances.errors.ReductionError` for bad input and
:class:`~instances.errors.WrongAnswerError` (e.g. :class:`CertificateError`) for a wrong target solution, and is
checked Karp-style by :func:`check_reduction`.
"""

from .base import CertificateError, Chain, ChainReduced, Reduced, Reduction
from .checking import Counterexample, agree_answers, check_reduction
from .gap_ann_to_attention import (
    GapANNToAAttC,
    Lemma47Parameters,
    certified_threshold_test,
    lemma47_parameters,
    threshold_test,
)
from .maxip_to_attention import MaxIPToAttention, OVToMaxIP
from .ov_to_attention import OVToAttention
from .ov_to_gap_ann import OVToGapANN
from .registry import path, reduction_graph
from .sat_to_ov import SatToOV

__all__ = [
    "CertificateError",
    "Chain",
    "ChainReduced",
    "Counterexample",
    "GapANNToAAttC",
    "Lemma47Parameters",
    "MaxIPToAttention",
    "OVToAttention",
    "OVToGapANN",
    "OVToMaxIP",
    "Reduced",
    "Reduction",
    "SatToOV",
    "agree_answers",
    "certified_threshold_test",
    "check_reduction",
    "lemma47_parameters",
    "path",
    "reduction_graph",
    "threshold_test",
]
