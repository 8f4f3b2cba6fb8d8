"""Section 6: ONNX Runtime INT8 (crnn_onnxruntime.quantize) against FP32, end to end and bare."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .models import Model, cached
from .report import Report, Row
from .runners import open_recognizer, ort_bare, pipeline_run, record_batches
from .timing import interleave, med


def bench_int8(model: Model | None, paths: list[str], args: argparse.Namespace, report: Report) -> None:
    if model is None:
        report.note("6 int8: skipped (no model)")
        return
    try:
        from crnn_onnxruntime import quantize

        quantize.require_quantizer("onnx")
    except Exception as exc:
        report.note(f"6 int8: skipped: quantize.py not usable here ({type(exc).__name__}: {exc})")
        return
    from crnn_cli.core.images import load_image

    rec32 = open_recognizer(model.onnx, "onnxruntime", args.threads, batch=args.batch)
    calib = [load_image(p) for p in paths[-args.calibration :]]

    def make(out: Path) -> None:
        import onnx

        from crnn_cli.core.metadata import set_onnx_metadata

        quantize.quantize_onnx(
            model.onnx, out, quantize.calibration_batches(calib, rec32.preprocess_config), "conv", lstm=True
        )  # the fastest INT8 form (`--int8-lstm`), which the section's target was set for
        proto = onnx.load(str(out))
        set_onnx_metadata(proto, rec32.metadata.to_props())
        onnx.save(proto, str(out))

    try:
        int8 = cached(
            args.work / model.name / f"{model.name}.int8.onnx",
            [model.onnx, Path(quantize.__file__)],  # a changed quantizer makes a new model
            make,
            report,
            f"{model.name} INT8",
        )
        rec8 = open_recognizer(int8, "onnxruntime", args.threads, batch=args.batch)
    except Exception as exc:
        report.note(f"6 int8: skipped: quantization failed ({type(exc).__name__}: {exc})")
        rec32.close()
        return
    try:
        timed = paths[: args.sizes[(model.size, "words")]]
        batches, _ = record_batches(rec32, timed)
        times = interleave(
            {
                "fp32": pipeline_run(rec32, timed),
                "int8": pipeline_run(rec8, timed),
                "bare fp32": ort_bare(model.onnx, args.threads, batches),
                "bare int8": ort_bare(int8, args.threads, batches),
            },
            args.repeats,
        )
        a, b = len(timed) / med(times["int8"]), len(timed) / med(times["fp32"])
        bare = med(times["bare fp32"]) / med(times["bare int8"])
        same = np.mean([x.text == y.text for x, y in zip(rec8.recognize(timed), rec32.recognize(timed))])
        report.raw["int8"] = {"model": model.name, "seconds": times}
        report.add(Row("6 int8", "INT8 / FP32, ONNX Runtime end to end (img/s)", model.name, f"words {len(timed)}",
                       f"{a:.1f}", f"{b:.1f}", a / b,
                       note=f"{'/'.join(quantize.OP_SETS['conv'][0])} (static) and LSTM (dynamic, --int8-lstm) int8; same text as FP32 on {100 * same:.0f} %; "
                            f"bare ORT on the same batches: INT8 / FP32 {bare:.2f}; "
                            f"{int8.stat().st_size / 1e6:.1f} MB vs {model.onnx.stat().st_size / 1e6:.1f} MB"))  # fmt: skip
    finally:
        rec8.close()
        rec32.close()
