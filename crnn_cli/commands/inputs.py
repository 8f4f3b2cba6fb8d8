"""Turning command-line INPUT arguments into a lazy stream of image paths.

INPUT is a file, a directory (its images; --recursive walks below), a glob pattern, or "-" for paths on
stdin, one per line. Nothing is listed ahead: a million paths on stdin stream through.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif", ".jp2",
     ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif"}
)  # fmt: skip
_GLOB_CHARS = set("*?[")


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def walk_images(root: str, recursive: bool) -> Iterator[str]:
    """Image files under ``root`` in sorted order; follows directory symlinks but never loops."""
    seen: set[tuple[int, int]] = set()

    def visit(directory: str) -> Iterator[str]:
        try:
            st = os.stat(directory)
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:  # a symlink loop, or the same folder reached twice
            return
        seen.add(key)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return
        subdirs = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()  # follows symlinks; a broken link is neither dir nor file
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(entry.path)
            elif is_image_name(entry.name):
                yield entry.path  # broken links too: loading reports them by name
        if recursive:
            for sub in subdirs:
                yield from visit(sub)

    yield from visit(root)


def read_stdin_paths(stream: BinaryIO) -> Iterator[str]:
    """Paths from a binary stream, one per line; bytes that are not UTF-8 survive (surrogateescape)."""
    for raw in stream:
        line = raw.rstrip(b"\r\n")
        if line.strip():
            yield os.fsdecode(line)


def expand_inputs(inputs: Iterable[str], recursive: bool, stdin: BinaryIO | None) -> Iterator[str]:
    for item in inputs:
        if item == "-":
            if stdin is not None:
                yield from read_stdin_paths(stdin)
        elif os.path.isdir(item):
            yield from walk_images(item, recursive)
        elif not os.path.lexists(item) and _GLOB_CHARS & set(item):
            matches = sorted(glob.glob(item, recursive=recursive))
            for m in matches:
                if os.path.isdir(m):
                    yield from walk_images(m, recursive)
                else:
                    yield m
            if not matches:
                yield item  # reported as "no such file" by the loader, like any missing path
        else:
            yield item
