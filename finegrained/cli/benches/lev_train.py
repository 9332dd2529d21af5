"""``finegrained bench lev-train``."""

from __future__ import annotations

import argparse

from ..argtypes import add_max_memory, add_repeat, add_seed, choice_of, list_of, pos_int

DESCRIPTION = ("LevAttention in training (needs the torch extra). A tiny vision transformer on scikit-learn's "
               "digits (8x8 images, one patch per pixel, 64 patches plus a class token) trained with full softmax "
               "attention, then with LevAttention keeping the k keys of largest leverage score per head, from "
               "scratch and fine-tuned from the full model. Reports the test accuracies, their ratio to the full "
               "model and the training times. --mode tiny runs in seconds, --mode full in a few minutes on a CPU.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", type=choice_of("tiny", "full"), default="full", help="tiny or full")
    parser.add_argument("--ks", type=list_of(pos_int), default="8,16,32", metavar="K[,K...]",
                        help="comma-separated numbers of keys kept per head")
    add_repeat(parser, 1)
    add_seed(parser)
    add_max_memory(parser)


def run(args: argparse.Namespace, progress):
    from ...bench.lev_train import run as bench

    return bench(mode=args.mode, ks=tuple(args.ks), seed=args.seed, repeat=args.repeat, max_memory=args.max_memory,
                 progress=progress)


def format_text(res) -> str:
    """Accuracies against the full model."""
    lines = [f"Full attention (65 keys): test accuracy {res.full_accuracy:.4f} ({res.train_size} training, "
             f"{res.test_size} test images, {res.full_seconds:.1f} s)", "",
             "| k | mode | accuracy | ratio to full | seconds |", "|---|---|---|---|---|"]
    for r in res.lev:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3f}"
        lines.append(f"| {r['k']} | {r['mode']} | {r['accuracy']:.4f} | {ratio} | {r['seconds']:.1f} |")
    return "\n".join(lines)
