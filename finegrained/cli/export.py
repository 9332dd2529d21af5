"""``finegrained export``: a formula's hard attention instance, with its threshold and expected decisions, for an
outside kernel (``.npz``, or ``.safetensors`` when the package is installed). See docs/export.md."""

from __future__ import annotations

import argparse
import io
import json

from .argtypes import finite_float
from .formatting import emit, json_report, note, output_format, write_atomic
from .inputs import add_input_arguments, read_cnf

HELP = "write a formula's hard attention instance (Q, K, V, threshold, expected decisions) for outside kernels"
DESCRIPTION = ("Run a DIMACS formula through one route to attention and write Q, K, V, the scale, the threshold "
               "(and its log), eps_a, the expected decision of every query row (brute force on the OV instance), "
               "the formula's answer and a JSON metadata entry (versions, route, params, input hash). "
               "Route 'aattc' (Lemma 4.7) needs log-space kernels; route 'attention' (k-SAT -> OV -> Attention) "
               "is decided by float32 kernels.")
FORMATS = {".npz": "npz", ".safetensors": "safetensors"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from instances.examples import DEFAULT_EXAMPLE, list_examples

    add_input_arguments(parser, list_examples(), DEFAULT_EXAMPLE)
    parser.add_argument("--route", choices=("aattc", "attention"), default="aattc",
                        help="aattc: Alman-Song Lemma 4.7; attention: Gupta et al. k-SAT -> OV -> Attention")
    parser.add_argument("--params", default="tight", choices=("tight", "paper"), help="Lemma 4.7 constants")
    parser.add_argument("--safety", type=finite_float, default=None,
                        help="factor on beta_min in tight mode (default 1.25)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="output file, written exactly and atomically ('-': standard output, npz only)")
    parser.add_argument("--format", choices=sorted(set(FORMATS.values())), default=None,
                        help="file format (default: from the extension, else npz)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary of what was written")


def _npz_bytes(arrays: dict, metadata: dict) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, metadata=np.array(json.dumps(metadata, sort_keys=True)), **arrays)
    return buf.getvalue()


def _safetensors_bytes(arrays: dict, metadata: dict) -> bytes:
    try:
        from safetensors.numpy import save
    except ImportError:
        from instances.errors import ParameterError

        raise ParameterError("--format safetensors needs the safetensors package: pip install safetensors") from None
    import numpy as np

    # safetensors holds tensors only: 0-d scalars become shape-(1,) arrays, booleans stay bool
    tensors = {k: np.ascontiguousarray(np.atleast_1d(v)) for k, v in arrays.items()}
    return save(tensors, metadata={"finegrained": json.dumps(metadata, sort_keys=True)})


def run(args: argparse.Namespace) -> int:
    import os

    from instances.errors import ParameterError
    from instances.examples import DEFAULT_EXAMPLE

    from ..export import export_instance

    ext = os.path.splitext(args.output)[1].lower()
    if args.output != "-" and args.format is None and ext and ext not in FORMATS:
        raise ParameterError(f"cannot tell the format of {args.output}: name it .npz or .safetensors, or give "
                             "--format")
    fmt = output_format(args.output if args.output != "-" else None, args.format, FORMATS, "npz")
    cnf, source = read_cnf(args, DEFAULT_EXAMPLE)
    ex = export_instance(cnf, route=args.route, params=args.params, safety=args.safety)
    data = _npz_bytes(ex.arrays, ex.metadata) if fmt == "npz" else _safetensors_bytes(ex.arrays, ex.metadata)
    if args.output == "-":
        if fmt != "npz":
            raise ParameterError("-o - writes npz only")
        if args.json:
            raise ParameterError("-o - writes the npz to standard output; --json would mix a summary in")
        from .formatting import write_stdout_bytes

        write_stdout_bytes(data)
        return 0
    write_atomic(args.output, data, error="{path}: cannot write: {reason}")
    a = ex.arrays
    summary = {"file": args.output, "format": fmt, "input": source, "route": args.route,
               "n_q": int(a["Q"].shape[0]), "n_k": int(a["K"].shape[0]), "d": int(a["Q"].shape[1]),
               "yes_rows": int(a["expected"].sum()), "log_threshold": float(a["log_threshold"]),
               "satisfiable": bool(a["satisfiable"]), "metadata": ex.metadata}
    if args.json:
        emit(json_report(summary, schema="finegrained.export.summary/1"))
    else:
        note(f"wrote {args.output} ({fmt}): {summary['n_q']} x {summary['n_k']} attention in dimension "
             f"{summary['d']}, route {args.route}, {summary['yes_rows']} YES rows, log threshold "
             f"{summary['log_threshold']:.6g}, formula {'SAT' if summary['satisfiable'] else 'UNSAT'}")
    return 0
