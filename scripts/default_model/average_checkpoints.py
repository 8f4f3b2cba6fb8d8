#!/usr/bin/env python3
"""The weights halfway (or WEIGHT of the way) from one training checkpoint to a fine-tune of it.

A fine-tune that teaches a model something new (stage 10: real crops bent along a circle) can cost it
some of what it read before; the average of the two networks, taken weight by weight, often keeps most
of both (Wortsman et al., "Robust fine-tuning of zero-shot models", 2022, call it WiSE-FT). Both
checkpoints must come from the same lineage (the second fine-tuned from the first, or both from one
start): averaging unrelated networks gives noise.

    python scripts/default_model/average_checkpoints.py runs/default/stage9-control/latest.pt \\
        runs/default/stage10/latest.pt --weight 0.5 -o runs/default/stage10-avg/latest.pt

The result holds the network only: the second checkpoint's architecture, dictionary and metadata, and
``model`` weights (the ones `crnn export` ships: the EMA when training kept one) of
``(1 - weight) * first + weight * second``. Only the floating-point tensors are averaged (BatchNorm's
batch counters are the second's). It keeps no training state (optimiser, EMA, raw weights, step, RNG):
those belong to the second run and would undo the average on `crnn train --resume`, which refuses the
file; a run starts from it with ``Global.pretrained_model``, and `crnn export` reads it as it reads any
checkpoint. Both files are read without running code, and the result is written atomically
(crnn_torch.checkpoint).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from crnn_torch.checkpoint import load_checkpoint, save_checkpoint

# What describes the network (kept from the second checkpoint); the rest of a checkpoint is run state.
NETWORK_KEYS = (
    "format", "format_version", "crnn_version", "torch_version",
    "arch", "arch_kwargs", "num_classes", "characters", "metadata", "config",
)  # fmt: skip


def _entry(ck: dict, key: str, other: dict) -> object:
    """A checkpoint's entry as compared with ``other``'s. A network recovered from ONNX by
    onnx_to_checkpoint.py (before it wrote them) has its dictionary in the metadata only and names only
    the architecture arguments it needed (hidden_size, where training also records in_channels): the
    dictionary comes from the metadata, and only the arguments both name are compared (the weights'
    names and shapes, compared below, settle the rest)."""
    if key == "characters" and ck.get(key) is None:
        return list((ck.get("metadata") or {}).get("characters") or []) or None
    if key == "arch_kwargs":
        mine, theirs = ck.get(key) or {}, other.get(key) or {}
        return {k: v for k, v in mine.items() if k in theirs}
    return ck.get(key)


def average(first: dict, second: dict, weight: float) -> dict:
    """A weights-only checkpoint: ``second``'s network with its weights moved to
    (1 - weight) * first's + weight * second's."""
    for key in ("arch", "arch_kwargs", "num_classes", "characters"):
        if _entry(first, key, second) != _entry(second, key, first):
            raise SystemExit(
                f"average_checkpoints: the checkpoints differ in {key}; they are not one network"
            )
    a, b = first["model"], second["model"]
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in b):
        raise SystemExit("average_checkpoints: the checkpoints' weights differ in names or shapes")
    mixed = {k: (1 - weight) * a[k] + weight * v if v.is_floating_point() else v for k, v in b.items()}
    network = {k: second[k] for k in NETWORK_KEYS if k in second}
    return {**network, "model": mixed, "source": f"average: {1 - weight:g} x first + {weight:g} x second"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("first", type=Path, help="the starting checkpoint (weight 0)")
    ap.add_argument("second", type=Path, help="its fine-tune (weight 1)")
    ap.add_argument("--weight", type=float, default=0.5, help="how far towards the second (0-1)")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    if not 0.0 <= args.weight <= 1.0:
        ap.error(f"--weight must lie in [0, 1], got {args.weight}")
    out = average(load_checkpoint(args.first), load_checkpoint(args.second), args.weight)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, args.output)
    print(f"{args.output}: {1 - args.weight:g} x {args.first} + {args.weight:g} x {args.second}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
