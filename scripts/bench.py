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
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from benchkit.crops import folder_paths, label_paths
from benchkit.machine import installed_version, machine
from benchkit.models import Model, cached, prepare_models
from benchkit.paddle_side import PADDLE_BATCH, PaddleWorker, paddle_padding
from benchkit.report import Report, Row, render, write_json
from benchkit.runners import open_recognizer, ort_bare, ov_bare, paddle_run, pipeline_run, record_batches
from benchkit.timing import at_least, at_most, interleave, med

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_PADDLE = {"mv3": 1.5, "default": 1.5, "r34": 1.1}
TARGET_OVERHEAD = 0.9
TARGET_COLD = 1.6
TARGET_REAL = 0.85
REAL_SETS = ("iiit5k_train", "ic15_train")  # section 9: real crops of varied size
MEMORY_LIMIT_MB = 400.0


# -- measurements --------------------------------------------------------------------------------------


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


def bench_cold_start(model: Model | None, image: str, args: argparse.Namespace, report: Report) -> None:
    crnn = Path(sys.executable).with_name("crnn")
    cmd = [str(crnn)] if crnn.exists() else [sys.executable, "-m", "crnn_cli"]
    cmd += ["recognize", image]
    what = "bundled model"
    try:
        from crnn_cli.core.recognizer import default_model_path

        default_model_path()
    except Exception:
        if model is None:
            report.note("3 cold start: skipped (no bundled model and no model to run)")
            return
        cmd[-1:-1] = ["--model", str(model.onnx)]
        what = f"--model {model.name} (no bundled model)"
    imports = [sys.executable, "-c", "import numpy, cv2, onnxruntime"]

    def timed(c: list[str]) -> Callable[[], float]:
        def run() -> float:
            t = time.perf_counter()
            p = subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
            s = time.perf_counter() - t
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(c)} exited {p.returncode}: {p.stderr.decode()[-300:]}")
            return s

        return run

    times = interleave({"crnn": timed(cmd), "imports": timed(imports)}, args.cold_repeats)
    a, b = med(times["crnn"]), med(times["imports"])
    met, verdict = at_most(a / b, TARGET_COLD)
    report.raw["cold_start"] = {"command": cmd, "seconds": times}
    report.add(Row("3 cold start", "crnn recognize one.png / imports (s)", what, f"median of {args.cold_repeats}",
                   f"{a:.2f} s", f"{b:.2f} s", a / b, verdict, met))  # fmt: skip


# Runs a command and prints its peak RSS (kB) and wall seconds. ru_maxrss counts a forked child's pages
# from before its exec, so the measuring parent must be small: this, or /usr/bin/time, never the bench.
_RSS_WRAPPER = """
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(p.pid, 0)
print(usage.ru_maxrss, time.perf_counter() - t, os.waitstatus_to_exitcode(status), file=sys.stderr)
"""


def peak_rss(cmd: list[str], stdin_path: Path, timeout: float) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit status) of ``cmd`` reading ``stdin_path``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rss"
        if Path("/usr/bin/time").exists():
            wrapped = ["/usr/bin/time", "-o", str(out), "-f", "%M %e %x", *cmd]
        else:
            wrapped = [sys.executable, "-c", _RSS_WRAPPER, *cmd]
        with open(stdin_path, "rb") as stdin, open(out.with_suffix(".err"), "wb") as err:
            proc = subprocess.Popen(
                wrapped, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, start_new_session=True
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and the crnn it started
                proc.wait()
                return float("nan"), timeout, -1
        text = (out.read_text() if out.exists() else out.with_suffix(".err").read_text()).split()
    kb, seconds, status = float(text[-3]), float(text[-2]), int(text[-1])
    return kb / 1024, seconds, status


def bench_memory(model: Model | None, pool: list[str], args: argparse.Namespace, report: Report) -> None:
    if model is None:
        report.note("5 memory: skipped (no model)")
        return
    crnn = Path(sys.executable).with_name("crnn")
    cmd = [str(crnn)] if crnn.exists() else [sys.executable, "-m", "crnn_cli"]
    cmd += ["recognize", "-q", "--model", str(model.onnx), "-"]
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.mem_sizes:
            stdin = Path(tmp) / f"paths{n}.txt"
            stdin.write_text("".join(pool[i % len(pool)] + "\n" for i in range(n)))
            rss, seconds, status = peak_rss(cmd, stdin, args.mem_timeout)
            report.log(f"memory: {n} paths: {rss:.0f} MB peak, {seconds:.1f} s, exit {status}")
            found[n] = {"rss_mb": rss, "seconds": seconds, "status": status}
    report.raw["memory"] = {"command": cmd, "runs": found}
    small, large = min(found), max(found)
    a, b = found[large]["rss_mb"], found[small]["rss_mb"]
    done = all(v["status"] == 0 for v in found.values())
    growth = a / b
    met = a < MEMORY_LIMIT_MB and growth <= 1.10 and done
    verdict = (
        "met (< 400 MB, within 10 %)" if met else
        "MISSED: " + "; ".join(x for x in (
            f"{a:.0f} MB >= 400 MB" if a >= MEMORY_LIMIT_MB else "",
            f"grew {100 * (growth - 1):.0f} %" if growth > 1.10 else "",
            "a run failed or timed out" if not done else "") if x)
    )  # fmt: skip
    report.add(Row("5 memory", f"peak RSS {large} paths / {small} paths", model.name, "paths on stdin",
                   f"{a:.0f} MB", f"{b:.0f} MB", growth, verdict, met,
                   f"{large / found[large]['seconds']:.0f} img/s over stdin"))  # fmt: skip


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


def photo_crops(sources: list[str], out_dir: Path, seed: int = 9) -> list[str]:
    """``sources`` upscaled to photo-like sizes (shorter side 96 to 768 px, bicubic), saved as JPEG (q 90).

    The real sets' originals are at most 64 px high; crops cut from camera photos are often ten times
    that, and their decode then costs more than the model. Written once into ``out_dir``.
    """
    import cv2

    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, src in enumerate(sources):
        img = cv2.imread(src, cv2.IMREAD_COLOR)
        h, w = img.shape[:2]
        scale = rng.uniform(96, 768) / min(h, w)
        scale = min(scale, math.sqrt(8e6 / (h * w)))  # at most 8 MP
        big = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        path = out_dir / f"{i:05d}.jpg"
        cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append(str(path))
    return out


def real_sets(args: argparse.Namespace, report: Report) -> dict[str, list[str]]:
    """Section 9's crops: samples of the real sets as they are, and the first set's crops photo-sized."""
    n = args.real_size
    if args.images is not None:
        sets = {args.images.name: folder_paths(args.images, n)}
    else:
        real = args.shared / "data" / "real"
        sets = {name: label_paths(real / name / "labels.tsv", n, 9) for name in REAL_SETS}
    first = next(iter(sets.values()))[: args.photo_size]
    folder = args.work / "photo"

    def make(listing: Path) -> None:
        listing.write_text("\n".join(photo_crops(first, folder)))

    listing = cached(folder / "paths.txt", [Path(p) for p in first], make, report, "photo-sized crops")
    sets[f"{next(iter(sets))} photo"] = listing.read_text().splitlines()
    return sets


def own_width_batches(rec: Any, paths: list[str], batch: int) -> tuple[list[np.ndarray], int]:
    """The bare runtime's best case: each crop decoded whole and resized to the model's height at its
    own width (no minimum, no step; a fixed-width model: its width), sorted by width, in batches of
    ``batch`` padded to their widest. Also the padded columns."""
    from crnn_cli.core.images import load_image
    from crnn_cli.core.preprocess import Preprocessor

    cfg = rec.preprocess_config
    if cfg.dynamic_width:
        cfg = replace(cfg, min_width=1, width_step=1)
    pre = Preprocessor(replace(cfg, rotate_vertical=False))
    resized = sorted((pre.resize(load_image(p)) for p in paths), key=lambda r: r.shape[1])
    batches, padded = [], 0
    for first in range(0, len(resized), batch):
        chunk = resized[first : first + batch]
        width = cfg.width if not cfg.dynamic_width else max(max(r.shape[1] for r in chunk), 4)
        out = np.zeros((len(chunk), cfg.channels, cfg.height, width), np.float32)
        for row, r in enumerate(chunk):
            pre.normalize_into(r, out[row])
            padded += width - r.shape[1]
        batches.append(out)
    return batches, padded


def bench_real(model: Model | None, args: argparse.Namespace, report: Report) -> None:
    """Section 9: Recognizer.recognize over real crops of varied size vs bare ONNX Runtime at own width."""
    if model is None:
        report.note("9 real: skipped (no model)")
        return
    from crnn_cli.core import images

    sets = real_sets(args, report)
    rec = open_recognizer(model.onnx, "onnxruntime", args.threads, batch=args.batch)
    cfg = rec.preprocess_config
    try:
        for data, paths in sets.items():
            batches, bare_pad = own_width_batches(rec, paths, args.batch)
            bare_cols = sum(b.shape[0] * b.shape[3] for b in batches)
            rec.padding_stats[:] = [0, 0]
            variants = {"ours": pipeline_run(rec, paths), "bare": ort_bare(model.onnx, args.threads, batches)}
            times = interleave(variants, args.repeats)
            n = len(paths)
            paired = [b / o for o, b in zip(times["ours"], times["bare"])]
            ratio = med(paired)
            pad_ours = rec.padding_stats[0] / max(rec.padding_stats[1], 1)
            reduced = 0
            for p in paths:
                with open(p, "rb") as f:
                    head = f.read(1 << 16)
                size = images._header_size(head) if head[:2] == b"\xff\xd8" else None
                reduced += images.jpeg_flags(size, 2 * cfg.height) != images.cv2.IMREAD_COLOR
            met, verdict = at_least(ratio, TARGET_REAL)
            ips = {k: n / med(v) for k, v in times.items()}
            report.raw[f"real/{model.name}/{data}"] = {
                "crops": n, "seconds": times, "paired": paired, "padded_share_ours": pad_ours,
                "padded_share_bare": bare_pad / max(bare_cols, 1), "decoded_reduced": reduced,
            }  # fmt: skip
            report.add(Row("9 real", "Recognizer / bare ORT at own width (img/s)", model.name, f"{data} {n}",
                           f"{ips['ours']:.1f}", f"{ips['bare']:.1f}", ratio, verdict, met,
                           f"repeats {' '.join(f'{r:.2f}' for r in paired)}; padded columns: ours "
                           f"{100 * pad_ours:.1f} %, bare {100 * bare_pad / max(bare_cols, 1):.1f} %; "
                           f"min width {cfg.min_width or cfg.width}, step {cfg.width_step}; "
                           f"{reduced} JPEGs decoded reduced"))  # fmt: skip
    finally:
        rec.close()


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
            model.onnx, out, quantize.calibration_batches(calib, rec32.preprocess_config), "conv"
        )
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
                       note=f"{'/'.join(quantize.OP_SETS['conv'][0])} (static) and LSTM (dynamic) int8; same text as FP32 on {100 * same:.0f} %; "
                            f"bare ORT on the same batches: INT8 / FP32 {bare:.2f}; "
                            f"{int8.stat().st_size / 1e6:.1f} MB vs {model.onnx.stat().st_size / 1e6:.1f} MB"))  # fmt: skip
    finally:
        rec8.close()
        rec32.close()


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
    sys.path.insert(0, str(HERE))
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
