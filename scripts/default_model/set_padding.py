#!/usr/bin/env python3
"""Record in an exported ONNX model how narrow its padded inputs may be (input.min_width, input.width_step)
and, optionally, below which aspect ratio crops are stretched instead (input.min_aspect).

`crnn export` writes neither key, so a fresh export pads like a PaddleOCR CRNN (at least 100 px, then
multiples of 32). The bundled model reads as well from 32 px in steps of 8 (README, Preprocessing), which
spares most of the padding real crops would get. The graph is not touched; the file is replaced atomically.

    python scripts/default_model/set_padding.py crnn_cli/models/default.onnx --min-width 32 --width-step 8 \
        --min-aspect 2
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import onnx

from crnn_cli.core.errors import UsageError
from crnn_cli.core.fileio import write_bytes_atomic
from crnn_cli.core.metadata import ModelMetadata, set_onnx_metadata


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--min-width", type=int, required=True)
    ap.add_argument("--width-step", type=int, required=True)
    aspect = ap.add_mutually_exclusive_group()
    aspect.add_argument(
        "--min-aspect", type=float, help="stretch crops narrower than this times the height (default: as is)"
    )
    aspect.add_argument("--no-min-aspect", action="store_true", help="remove min_aspect: never stretch")
    args = ap.parse_args()
    proto = onnx.load(str(args.model))
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    if meta is None:
        raise SystemExit(f"{args.model} carries no crnn metadata: export it with `crnn export` first")
    if not meta.dynamic_width:
        raise SystemExit(
            f"{args.model} has a static width ({meta.width}); padding keys apply to dynamic widths"
        )
    # min_aspect comes from training (RecResizeImg.min_aspect): kept unless asked otherwise.
    min_aspect = (
        None if args.no_min_aspect else (meta.min_aspect if args.min_aspect is None else args.min_aspect)
    )
    meta = dataclasses.replace(
        meta, min_width=args.min_width, width_step=args.width_step, min_aspect=min_aspect
    )
    try:
        meta.preprocess()  # the keys must describe an input crnn can build
    except UsageError as exc:
        raise SystemExit(f"{args.model}: not changed: {exc}") from None
    set_onnx_metadata(proto, meta.to_props())
    write_bytes_atomic(args.model, proto.SerializeToString())
    print(
        f"{args.model}: min_width {args.min_width}, width_step {args.width_step}, "
        f"min_aspect {min_aspect or 'none'}"
    )


if __name__ == "__main__":
    main()
