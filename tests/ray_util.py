"""Helpers for the Ray tests: a small real corpus, and the single-machine answers to compare with."""

from __future__ import annotations

import shutil
from pathlib import Path

from crnn_cli.core.recognizer import Recognizer

# Small Ray: the tests share two cores and 24 GB with everything else on the machine.
RAY_INIT = {
    "num_cpus": 2,
    "object_store_memory": 200 * 2**20,
    "include_dashboard": False,
    "log_to_driver": False,
    "logging_level": "ERROR",
}


def make_corpus(data_dir: Path, root: Path, n: int = 40) -> tuple[list[str], list[str]]:
    """n real word crops (IIIT5K) copied under root/crops, one undecodable file among them, and a
    missing path at the end. Returns (paths, labels of the readable ones' lines for a labels.tsv)."""
    crops = root / "crops"
    crops.mkdir(parents=True)
    lines = (data_dir / "iiit5k_train" / "labels.tsv").read_text("utf-8").splitlines()[:n]
    paths, labels = [], []
    for k, line in enumerate(lines):
        rel, label = line.split("\t")
        dst = crops / f"{k:03d}_{Path(rel).name}"
        shutil.copy(data_dir / "iiit5k_train" / rel, dst)
        paths.append(str(dst))
        labels.append(f"crops/{dst.name}\t{label}")
    bad = crops / "050_bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths.insert(n // 2, str(bad))
    labels.insert(n // 2, f"crops/{bad.name}\tbad")
    paths.append(str(root / "missing.png"))
    return paths, labels


def reference(paths: list[str], **options) -> list[tuple[str, str, float, str | None]]:
    """(source, text, confidence, error) per input from the plain single-machine Recognizer."""
    with Recognizer(threads=1, **options) as rec:
        return [(r.source, r.text, r.confidence, r.error) for r in rec.recognize(paths)]


def as_tuples(results) -> list[tuple[str, str, float, str | None]]:
    return [(r.source, r.text, r.confidence, r.error) for r in results]
