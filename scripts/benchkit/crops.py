"""Which crops are timed: seeded samples of a PaddleOCR label file, or every image of a folder."""

from __future__ import annotations

import random
from pathlib import Path


def label_paths(tsv: Path, n: int, seed: int) -> list[str]:
    """``n`` image paths from a PaddleOCR label file, a seeded sample (cycled when the file is shorter)."""
    lines = [ln for ln in tsv.read_text("utf-8").splitlines() if ln.strip()]
    paths = [str(tsv.parent / ln.split("\t")[0]) for ln in lines]
    random.Random(seed).shuffle(paths)
    return [paths[i % len(paths)] for i in range(n)]


def folder_paths(folder: Path, n: int) -> list[str]:
    from crnn_cli.commands.inputs import walk_images

    found = list(walk_images(str(folder), True))
    if not found:
        raise SystemExit(f"bench: no images in {folder}")
    return [found[i % len(found)] for i in range(n)]
