"""Calibration crops for INT8 quantization: read from a labelled dataset or a folder, split seeded.

A seeded share of the crops (20 % by default) is held out and never used for calibration: the FP32 and
the INT8 model both read it afterwards (crnn_cli/quantization.py) to measure what quantization cost.
Every quantizer (a plugin's, per target format) gets the same batches, preprocessed as the Recognizer does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crnn_cli.core.errors import DatasetError, ImageError, UsageError
from crnn_cli.core.images import load_image
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CALIBRATION_BATCH = 16  # crops per calibration run; ranges are min/max, so batching only sets speed


@dataclass
class CalibrationData:
    """Crops for calibration and a disjoint held-out share (BGR uint8 arrays)."""

    source: str
    calibration: list[np.ndarray]
    holdout: list[np.ndarray]
    holdout_labels: list[str] | None  # None: the folder had no labels
    unreadable: int = 0


def _split(n: int, holdout: float, max_samples: int, seed: int) -> tuple[list[int], list[int]]:
    """(calibration indices, held-out indices): disjoint, seeded, each at most ``max_samples``."""
    order = np.random.default_rng(seed).permutation(n)
    n_hold = min(int(round(n * holdout)), max_samples)
    return sorted(order[n_hold:][:max_samples].tolist()), sorted(order[:n_hold].tolist())


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.name[0] != "."
    )


def load_calibration(
    path: str | os.PathLike[str], holdout: float = 0.2, max_samples: int = 256, seed: int = 0
) -> CalibrationData:
    """Read calibration crops from ``path``: a labelled dataset, else every image below the folder.

    A labelled dataset is whatever crnn_cli.core.datasets finds at ``path`` (a label file, an LMDB, or
    folders of them); its problems are errors, not a reason to fall back to reading bare images.
    """
    from crnn_cli.core.datasets import discover_datasets, open_dataset

    path = Path(path)
    if not path.exists():
        raise UsageError(f"calibration data {path} does not exist")
    dataset = None
    if not (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
        try:
            discover_datasets(path)
        except DatasetError:
            pass  # no labels anywhere: a folder of crops
        else:
            dataset = open_dataset(path, decode=False)
    data = CalibrationData(str(path), [], [], None)
    if dataset is not None:
        data.holdout_labels = []
        calib, held = _split(len(dataset), holdout, max_samples, seed)
        for indices, out, labels in (
            (calib, data.calibration, None),
            (held, data.holdout, data.holdout_labels),
        ):
            for i in indices:
                try:
                    sample = dataset.get(i, decode=True)
                except ImageError:
                    data.unreadable += 1
                    continue
                out.append(sample.image)
                if labels is not None:
                    labels.append(sample.label)
    else:
        files = _image_files(path) if path.is_dir() else [path]
        calib, held = _split(len(files), holdout, max_samples, seed)
        for indices, out in ((calib, data.calibration), (held, data.holdout)):
            for i in indices:
                try:
                    out.append(load_image(str(files[i])))
                except ImageError:
                    data.unreadable += 1
    if not data.calibration:
        raise UsageError(
            f"calibration data {path} gave no readable crops (expected a labelled dataset or image files"
            + (f"; {data.unreadable} could not be read)" if data.unreadable else ")")
        )
    return data


def calibration_batches(images: list[np.ndarray], config: PreprocessConfig) -> list[np.ndarray]:
    """Crops preprocessed exactly as the Recognizer does, grouped by padded width: N x C x H x W each."""
    pre = Preprocessor(config)
    by_width: dict[int, list[np.ndarray]] = {}
    for img in images:
        x = pre(img)
        by_width.setdefault(x.shape[2], []).append(x)
    batches = []
    for width in sorted(by_width):
        group = by_width[width]
        for start in range(0, len(group), CALIBRATION_BATCH):
            batches.append(np.stack(group[start : start + CALIBRATION_BATCH]))
    return batches
