"""Section 8: the bundled-model issue's speed figure, ONNX Runtime alone on fixed 3 x 32 x 100 batches."""

from __future__ import annotations

import argparse
from dataclasses import replace

from .models import Model
from .report import Report, Row
from .runners import open_recognizer, ort_bare
from .timing import interleave, med


def bench_fixed(model: Model | None, paths: list[str], args: argparse.Namespace, report: Report) -> None:
    """Section 8: img/s of ONNX Runtime alone on batches of 32 real crops resized to 3 x 32 x 100."""
    if model is None:
        report.note("8 fixed: skipped (no model)")
        return
    from crnn_cli.core.images import load_image
    from crnn_cli.core.preprocess import Preprocessor

    rec = open_recognizer(model.onnx, "onnxruntime", args.threads, batch=args.batch)
    config = rec.preprocess_config
    rec.close()
    pre = Preprocessor(replace(config, dynamic_width=False, width=100))
    crops = [load_image(p) for p in paths[: 32 * (4 if args.quick else 16)]]
    batches = [pre.batch(crops[i : i + 32]) for i in range(0, len(crops) - 31, 32)]
    times = interleave({"bare": ort_bare(model.onnx, args.threads, batches)}, args.repeats)
    ips = 32 * len(batches) / med(times["bare"])
    met, verdict = (ips >= 500, "met (>= 500 img/s)") if ips >= 500 else (
        False, f"MISSED by {100 * (500 - ips) / 500:.0f} % ({ips:.0f} < 500 img/s)")  # fmt: skip
    report.raw["fixed"] = {"model": model.name, "seconds": times, "batches": len(batches)}
    report.add(Row("8 fixed", "ONNX Runtime alone, batch 32 of 3x32x100 (img/s)", model.name,
                   f"words {32 * len(batches)}", f"{ips:.0f}", "500", ips / 500, verdict, met,
                   "real crops squashed or padded to width 100"))  # fmt: skip
