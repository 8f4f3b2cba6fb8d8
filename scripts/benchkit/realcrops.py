"""Section 9: Recognizer.recognize over real crops of varied size, and photo-sized copies of them,
against bare ONNX Runtime given each crop at its own width."""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .crops import folder_paths, label_paths
from .models import Model, cached
from .report import Report, Row
from .runners import open_recognizer, ort_bare, pipeline_run
from .timing import at_least, interleave, med

TARGET_REAL = 0.85
REAL_SETS = ("iiit5k_train", "ic15_train")  # real crops of varied size


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
    from crnn_cli.core.recognizer import DECODE_MARGIN

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
                reduced += images.jpeg_flags(size, DECODE_MARGIN * cfg.height) != images.cv2.IMREAD_COLOR
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
