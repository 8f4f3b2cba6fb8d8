"""Sections 1, 2, 4 and 7, per model and data set: pipeline overhead, PaddleOCR, OpenVINO hints and
padding, from one interleaved set of timed runs."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .models import Model
from .paddle_side import PADDLE_BATCH, PaddleWorker, paddle_padding
from .report import Report, Row
from .runners import open_recognizer, ort_bare, ov_bare, paddle_run, pipeline_run, record_batches
from .timing import at_least, interleave, med

TARGET_PADDLE = {"mv3": 1.5, "default": 1.5, "r34": 1.1}
TARGET_OVERHEAD = 0.9


def bench_model(
    m: Model,
    datasets: dict[str, list[str]],
    args: argparse.Namespace,
    report: Report,
    worker: PaddleWorker | None,
) -> None:
    from crnn_cli.core.backend import SessionOptions
    from crnn_cli.core.images import cv2
    from crnn_cli.core.registry import require_available

    threads = args.threads
    rec_ort = open_recognizer(m.onnx, "onnxruntime", threads, batch=args.batch)
    ov_model = m.xml or m.onnx
    have_ov = "openvino" in args.backends
    recs: dict[str, Any] = {"ORT": rec_ort}
    sessions: dict[str, Any] = {}
    if have_ov:
        recs["OV-LAT"] = open_recognizer(ov_model, "openvino", threads, "LATENCY", args.batch)
        recs["OV-THR"] = open_recognizer(ov_model, "openvino", threads, "THROUGHPUT", args.batch)
        ov = require_available("openvino")
        sessions["OV-LAT"] = ov.open(ov_model, SessionOptions(threads=threads, performance_hint="LATENCY"))
        sessions["OV-THR"] = ov.open(ov_model, SessionOptions(threads=threads, performance_hint="THROUGHPUT"))
    meta = rec_ort.metadata
    cfg = rec_ort.preprocess_config
    paddle_key = None
    if worker is not None and m.paddle is not None and "paddle" in args.sections_set:
        paddle_key = m.name
        worker.call(
            cmd="load", key=m.name, model=str(m.paddle[0]), params=str(m.paddle[1]), threads=threads,
            height=cfg.height, width=cfg.width, symbols=list(rec_ort.charset.symbols),
        )  # fmt: skip
        check_twin(m, rec_ort, datasets, worker, report)
    elif "paddle" in args.sections_set:
        why = "Paddle not available" if worker is None else "no Paddle inference model for it"
        report.note(f"{m.name}: section 2 skipped ({why})")
    try:
        for data, all_paths in datasets.items():
            n = args.sizes[(m.size, data)]
            if n == 0:
                continue
            paths = all_paths[:n]
            batches, results = record_batches(rec_ort, paths)
            texts_ours = [r.text for r in results]
            variants: dict[str, Callable[[], float]] = {
                "ours ORT": pipeline_run(rec_ort, paths),
                "bare ORT": ort_bare(m.onnx, threads, batches),
            }
            if have_ov:
                variants["ours OV-LAT"] = pipeline_run(recs["OV-LAT"], paths)
                variants["ours OV-THR"] = pipeline_run(recs["OV-THR"], paths)
                variants["bare OV-LAT"] = ov_bare(sessions["OV-LAT"], batches, many=False)
                variants["bare OV-THR"] = ov_bare(sessions["OV-THR"], batches, many=True)
            paddle_texts: list[str] = []
            paddle_shapes: list[Any] = []
            if paddle_key is not None:
                for b in sorted({PADDLE_BATCH, args.batch}):
                    keep = (paddle_texts, paddle_shapes) if b == PADDLE_BATCH else None
                    variants[f"paddle b{b}"] = paddle_run(worker, paddle_key, paths, b, keep)
            report.log(
                f"{m.name}/{data}: {n} crops, {len(batches)} batches, {len(variants)} variants x {args.repeats}"
            )
            times = interleave(variants, args.repeats)
            ips = {k: n / med(v) for k, v in times.items()}
            report.raw[f"{m.name}/{data}"] = {
                "crops": n,
                "batch_shapes": [list(b.shape) for b in batches],
                "seconds": times,
                "images_per_s": ips,
            }
            report.log("  " + ", ".join(f"{k} {v:.1f}/s" for k, v in ips.items()))
            # 1: pipeline overhead. "ours ORT" and "bare ORT" run back to back in every repeat (interleave
            # reverses the order, keeping them neighbours): each repeat's ratio compares like with like.
            paired = [b / o for o, b in zip(times["ours ORT"], times["bare ORT"])]
            ratio = med(paired)
            met, verdict = at_least(ratio, TARGET_OVERHEAD)
            report.raw[f"{m.name}/{data}"]["overhead_paired"] = paired
            report.add(Row("1 overhead", "Recognizer / bare ORT (img/s)", m.name, f"{data} {n}",
                           f"{ips['ours ORT']:.1f}", f"{ips['bare ORT']:.1f}", ratio, verdict, met,
                           f"{len(batches)} batches, same shapes; repeats "
                           f"{' '.join(f'{r:.2f}' for r in paired)}, ratio of medians "
                           f"{ips['ours ORT'] / ips['bare ORT']:.2f}"))  # fmt: skip
            # 4: OpenVINO hints vs ONNX Runtime
            if have_ov:
                for mode in ("bare", "ours"):
                    label = "run / run_many" if mode == "bare" else "Recognizer"
                    thr, lat, base = (ips[f"{mode} {k}"] for k in ("OV-THR", "OV-LAT", "ORT"))
                    report.add(Row("4 openvino", f"OV THROUGHPUT | LATENCY vs ORT, {label}", m.name,
                                   f"{data} {n}", f"{thr:.1f} | {lat:.1f}", f"{base:.1f}", thr / base,
                                   note=f"THROUGHPUT/ORT {thr / base:.2f}, LATENCY/ORT {lat / base:.2f} (img/s)"))  # fmt: skip
            # 2: against PaddleOCR
            if paddle_key is not None:
                ours_best = max((k for k in ips if k.startswith("ours")), key=lambda k: ips[k])
                paddle_best = max((k for k in ips if k.startswith("paddle")), key=lambda k: ips[k])
                r = ips[ours_best] / ips[paddle_best]
                target = TARGET_PADDLE.get(m.name)
                met, verdict = at_least(r, target) if target else (None, "")
                agree = sum(a == b for a, b in zip(texts_ours, paddle_texts)) / max(len(paddle_texts), 1)
                others = ", ".join(
                    f"{k} {ips[k]:.1f}" for k in ips if k.startswith("paddle") and k != paddle_best
                )
                report.add(Row("2 paddle", f"{ours_best[5:]} / PaddleOCR {paddle_best[7:]} (img/s)", m.name,
                               f"{data} {n}", f"{ips[ours_best]:.1f}", f"{ips[paddle_best]:.1f}", r, verdict, met,
                               f"same text {100 * agree:.0f} %; Paddle {others}"))  # fmt: skip
                report.raw[f"{m.name}/{data}"]["paddle_shapes"] = paddle_shapes
            # 7: padding
            rec_ort.padding_stats[:] = [0, 0]
            list(rec_ort.recognize(paths))
            pad_ours = rec_ort.padding_stats[0] / max(rec_ort.padding_stats[1], 1)
            sizes = []
            for p in paths:
                img = cv2.imread(p)
                h, w = img.shape[:2]
                if cfg.rotate_vertical and h >= 1.5 * w:
                    h, w = w, h
                sizes.append((h, w))
            shares = {}
            for b in sorted({PADDLE_BATCH, args.batch}):
                pp, pt = paddle_padding(sizes, cfg.height, cfg.width, b)
                shares[b] = pp / max(pt, 1)
            pad_paddle = shares[PADDLE_BATCH]
            report.add(Row("7 padding", "padded share of input columns", m.name, f"{data} {n}",
                           f"{100 * pad_ours:.1f} %",
                           " | ".join(f"b{b} {100 * v:.1f} %" for b, v in shares.items()),
                           pad_ours / pad_paddle if pad_paddle else None,
                           note=f"ratio vs PaddleOCR b{PADDLE_BATCH}; ours: each crop its own width "
                                f"({'dynamic' if meta.dynamic_width else 'fixed'}), batch {args.batch}; "
                                "PaddleOCR: sorted by ratio, batch pads to its widest"))  # fmt: skip
    finally:
        for rec in recs.values():
            rec.close()
        for s in sessions.values():
            s.close()


def check_twin(
    m: Model, rec: Any, datasets: dict[str, list[str]], worker: PaddleWorker, report: Report
) -> None:
    """The Paddle model against our ONNX on a few real crops: max |dp| and argmax agreement."""
    from crnn_cli.core.images import load_image

    paths = next(iter(datasets.values()))[:8]
    batch = rec.preprocessor.batch([load_image(p) for p in paths])
    if batch.shape[3] < rec.preprocess_config.width:
        return
    with tempfile.TemporaryDirectory() as tmp:
        x, y = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(x, batch)
        worker.call(cmd="infer", key=m.name, input=str(x), output=str(y))
        theirs = np.load(y)
    ours = rec.session.run(batch)
    if theirs.shape != ours.shape:
        report.note(f"{m.name}: Paddle model output {theirs.shape} vs ours {ours.shape}")
        return
    diff = float(np.abs(theirs - ours).max())
    same = float((theirs.argmax(2) == ours.argmax(2)).mean())
    msg = f"{m.name}: Paddle model ({m.paddle_note}) vs our ONNX on {len(paths)} crops: max |dp| {diff:.1e}, argmax {100 * same:.1f} % equal"
    if "random weights" in m.paddle_note:
        msg = f"{m.name}: Paddle model is {m.paddle_note}"
    elif diff > 1e-3:
        msg += " (they differ: the comparison is not like for like)"
    report.note(msg)
