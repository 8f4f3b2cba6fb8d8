"""crnn's performance benchmark: one table, every target, on real crops (issue "Performance").

    python scripts/bench.py                      # full run (< 10 min on 2 cores); --json bench.json too
    python scripts/bench.py --quick              # smoke run (< 1 min): small samples, mv3 + default only
    python scripts/bench.py --onnx m.onnx --images DIR --quick   # any ONNX recognizer, any crops

Models (converted once into --work, reused while their sources are unchanged): the PaddleOCR CRNN-mv3
fixture, a random-weight PaddleOCR CRNN-r34 built from its params.tsv, the bundled default model (or
--default-model, an .onnx or a crnn .pt checkpoint), PP-OCRv4 rec (paddle2onnx for ONNX). Sections:

  1 overhead   Recognizer.recognize over image paths (read, decode, preprocess, infer, CTC decode) vs
               ONNX Runtime session.run alone on the very batches the pipeline built. Target >= 0.9,
               on the median of the repeats' paired ratios (the two runs of a repeat are adjacent, so
               a drift in machine speed between repeats cancels); the ratio of medians is in the note.
  2 paddle     PaddleOCR's pipeline (bench_paddle.py: predict_rec batching, resize_norm_img, Paddle
               Inference with oneDNN, same threads) end to end vs our fastest backend end to end.
               Targets >= 1.5 (mv3, default), >= 1.1 (r34). The slower of PaddleOCR's batch 6 and ours.
  3 cold start `crnn recognize one.png` vs `python -c "import numpy, cv2, onnxruntime"`. Target <= 1.6x.
  4 openvino   OpenVINO THROUGHPUT hint with the async queue (run_many) and LATENCY vs ONNX Runtime,
               on the pipeline's batches (bare) and end to end.
  5 memory     peak RSS of `crnn recognize -q -` with N paths on stdin, small N vs large N. < 400 MB, flat.
  6 int8       ONNX Runtime INT8 (crnn_onnxruntime.quantize, Conv ops) vs FP32, end to end.
  7 padding    padded share of the input columns: our per-crop widths vs PaddleOCR's batch-widest.
  8 fixed      the default model on ONNX Runtime alone, batches of 32 crops at 3 x 32 x 100 (the
               bundled-model issue's speed figure). Target >= 500 img/s.
  9 real       the default model: Recognizer.recognize over real crops of varied size (IIIT5K and
               IC15 train samples, and the IIIT5K ones upscaled to photo sizes as JPEG, made once in
               --work) vs ONNX Runtime alone on the same crops, each resized to its own width, sorted,
               in batches padded to their widest (decode and resize not timed). Target >= 0.85, on
               the median of paired ratios as in section 1.

Every timing is a median over --repeats runs, with the variants interleaved (and their order reversed
every other repeat) so drifts in machine speed hit all of them alike.

Where each part lives (benchkit/, next to this file): timing.py (interleave, medians, verdicts),
runners.py (the timed variants), models.py (conversions and their cache), paddle_side.py (the
bench_paddle.py worker and twins), throughput.py (sections 1, 2, 4, 7), coldstart.py (3), memory.py (5),
int8.py (6), fixed.py (8), realcrops.py (9), report.py (rows, table, JSON), machine.py, crops.py.
This file keeps the flags and the order the sections run in.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchkit import ROOT, SCRIPTS
from benchkit.coldstart import bench_cold_start
from benchkit.crops import folder_paths, label_paths
from benchkit.fixed import bench_fixed
from benchkit.int8 import bench_int8
from benchkit.machine import installed_version, machine
from benchkit.memory import bench_memory
from benchkit.models import prepare_models
from benchkit.paddle_side import PaddleWorker
from benchkit.realcrops import bench_real
from benchkit.report import Report, render, write_json
from benchkit.throughput import bench_model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke run: small samples, 1 repeat, mv3 + default")
    p.add_argument("--json", type=Path, help="write every number here")
    p.add_argument("--shared", type=Path, default=Path(os.environ.get("CRNN_SHARED", ROOT.parent / "shared")))
    p.add_argument(
        "--work", type=Path, default=ROOT / "runs" / "bench", help="converted models are kept here"
    )
    p.add_argument(
        "--models",
        default=None,
        help="comma list of mv3,r34,default,ppocrv4 (default: all; --quick: mv3,default)",
    )
    p.add_argument(
        "--onnx", action="append", default=[], help="also benchmark this ONNX recognizer (repeatable)"
    )
    p.add_argument("--default-model", type=Path, help="the default model: .onnx, or a crnn .pt to export")
    p.add_argument(
        "--default-checkpoint",
        type=Path,
        help="the .pt the default .onnx came from: the Paddle twin's weights",
    )
    p.add_argument(
        "--images", type=Path, help="a folder of crops instead of the real-data word and line sets"
    )
    p.add_argument(
        "--sections", default="1,2,3,4,5,6,7,8,9", help="which sections to run (comma list of numbers)"
    )
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--batch", type=int, default=32, help="our batch size (Recognizer default: 32)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per variant (default 3; --quick 1)")
    p.add_argument("--real-size", type=int, default=None, help="crops per set in section 9 (default 800)")
    p.add_argument("--mem-sizes", default=None, help="path counts for section 5 (default 5000,100000)")
    p.add_argument(
        "--mem-timeout", type=float, default=480.0, help="seconds a memory run may take (100 000 paths: ~250)"
    )
    p.add_argument("--no-paddle", action="store_true", help="skip PaddleOCR (section 2)")
    p.add_argument("--prepare", action="store_true", help="only convert the models into --work, then exit")
    p.add_argument("--width", type=int, default=200, help="table width in characters")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    # Some sections run crnn in the repository root: a path given relative to the caller's folder must
    # still name the same file there.
    args.onnx = [str(Path(o).resolve()) for o in args.onnx]
    for name in ("default_model", "default_checkpoint", "images", "work"):
        if getattr(args, name, None) is not None:
            setattr(args, name, getattr(args, name).resolve())
    q = args.quick
    if args.models is None:
        args.models = [] if args.onnx else (["mv3", "default"] if q else ["mv3", "r34", "default", "ppocrv4"])
    else:
        args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.repeats = args.repeats or (1 if q else 3)
    args.cold_repeats = 2 if q else 5
    sizes = args.mem_sizes or ("300,1200" if q else "5000,100000")
    args.mem_sizes = sorted(int(s) for s in sizes.split(","))
    args.calibration = 16 if q else 64
    args.real_size = args.real_size or (64 if q else 800)  # crops per set in section 9
    args.photo_size = min(args.real_size, 32 if q else 400)  # of which made photo-sized
    args.sections_set = {
        {"1": "overhead", "2": "paddle", "3": "cold", "4": "openvino", "5": "memory", "6": "int8", "7": "padding", "8": "fixed", "9": "real"}[s.strip()]
        for s in args.sections.split(",") if s.strip()
    }  # fmt: skip
    # crops per (model size, data set)
    if q:
        args.sizes = {
            ("small", "words"): 64,
            ("small", "lines"): 16,
            ("large", "words"): 16,
            ("large", "lines"): 4,
        }
    else:
        args.sizes = {
            ("small", "words"): 800,
            ("small", "lines"): 200,
            ("large", "words"): 96,
            ("large", "lines"): 24,
        }
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(args.quiet)
    started = time.monotonic()
    sys.path.insert(0, str(SCRIPTS))
    info = machine()
    report.log(f"machine: {info['cpu']} x {info['cpu_count']}; work folder {args.work}")

    from crnn_cli.core.registry import require_available

    args.backends = []
    for name in ("onnxruntime", "openvino"):
        try:
            require_available(name)
            args.backends.append(name)
        except Exception as exc:
            report.note(f"backend {name} not available: {exc}")
    if "onnxruntime" not in args.backends:
        raise SystemExit("bench: ONNX Runtime is required (pip install onnxruntime)")
    worker = None
    if not args.no_paddle and "paddle" in args.sections_set and installed_version("paddlepaddle") != "-":
        args.work.mkdir(parents=True, exist_ok=True)
        worker = PaddleWorker(args.work / "paddle_worker.log")
    elif "paddle" in args.sections_set:
        report.note(
            "2 paddle: skipped ("
            + ("--no-paddle" if args.no_paddle else "paddlepaddle is not installed")
            + ")"
        )
    try:
        with report.stage("prepare"):
            models = prepare_models(args, report, worker)
        if args.prepare:
            for m in models:
                print(f"{m.name}: {m.onnx} {m.xml or ''} {' '.join(map(str, m.paddle or ()))}")
            return 0
        if args.images is not None:
            n = max(args.sizes.values())
            datasets = {args.images.name: folder_paths(args.images, n)}
            for size in ("small", "large"):
                args.sizes[(size, args.images.name)] = args.sizes[(size, "words")]
        else:
            real = args.shared / "data" / "real"
            datasets = {
                "words": label_paths(
                    real / "iiit5k_train" / "labels.tsv", args.sizes[("small", "words")] + args.calibration, 5
                ),
                "lines": label_paths(
                    real / "sroie_lines_train" / "labels.tsv", args.sizes[("small", "lines")], 5
                ),
            }
        per_model = {"overhead", "paddle", "openvino", "padding"}
        if per_model & args.sections_set:
            for m in models:
                try:
                    with report.stage(m.name):
                        bench_model(m, datasets, args, report, worker)
                except Exception as exc:
                    report.note(f"{m.name}: benchmark failed: {type(exc).__name__}: {exc}")
        small = next((m for m in models if m.name == "default"), None) or next(
            (m for m in models if m.size == "small"), None
        )
        first = next(iter(datasets.values()))
        if "cold" in args.sections_set:
            with report.stage("cold start"):
                bench_cold_start(small, first[0], args, report)
        if "memory" in args.sections_set:
            with report.stage("memory"):
                bench_memory(small, first[:256], args, report)
        if "int8" in args.sections_set:
            with report.stage("int8"):
                bench_int8(small, first, args, report)
        if "fixed" in args.sections_set:
            with report.stage("fixed"):
                bench_fixed(small, first, args, report)
        if "real" in args.sections_set:
            with report.stage("real"):
                bench_real(small, args, report)
    finally:
        if worker is not None:
            worker.close()
    elapsed = time.monotonic() - started
    order = {s: i for i, s in enumerate(["1", "2", "3", "4", "5", "6", "7", "8", "9"])}
    report.rows.sort(key=lambda r: order[r.section[0]])
    render(report, info, args, elapsed)
    if args.json:
        write_json(args.json, report, info, args, models, elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
