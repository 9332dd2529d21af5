"""Reductions with forward and backward maps, composed along paths of the reduction graph."""

from .base import Chain, Reduction
from .gap_ann_to_attention import GapANNToAAttC, Lemma47Parameters, lemma47_parameters, threshold_test
from .ov_to_gap_ann import CertificateError, OVToGapANN
from .registry import path, reduction_graph
from .sat_to_ov import SatToOV

__all__ = [
    "CertificateError",
    "Chain",
    "GapANNToAAttC",
    "Lemma47Parameters",
    "OVToGapANN",
    "Reduction",
    "SatToOV",
    "lemma47_parameters",
    "path",
    "reduction_graph",
    "threshold_test",
]
