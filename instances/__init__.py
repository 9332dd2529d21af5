"""Problem instances, solution types, generators and DIMACS I/O (the bottom layer: imports nothing above it)."""

from .aattc import AAttCInstance
from .cnf import CNFFormula, parse_dimacs, read_formula
from .errors import (
    DimacsError,
    FinegrainedError,
    NumericalError,
    ParameterError,
    ReductionError,
    ResourceLimitError,
    UncertifiedError,
    WrongAnswerError,
)
from .examples import example_path, list_examples
from .gap_ann import GapANNInstance, balance
from .generators import planted_ksat, random_ksat
from .logspace import LogArray
from .maxip import MaxIPAnswer, MaxIPInstance
from .ov import OVInstance
from .solutions import GapANNAnswer, OrthogonalPair

__all__ = [
    "AAttCInstance",
    "CNFFormula",
    "DimacsError",
    "FinegrainedError",
    "GapANNAnswer",
    "GapANNInstance",
    "LogArray",
    "MaxIPAnswer",
    "MaxIPInstance",
    "NumericalError",
    "OVInstance",
    "OrthogonalPair",
    "ParameterError",
    "ReductionError",
    "ResourceLimitError",
    "UncertifiedError",
    "WrongAnswerError",
    "balance",
    "example_path",
    "list_examples",
    "parse_dimacs",
    "planted_ksat",
    "random_ksat",
    "read_formula",
]
