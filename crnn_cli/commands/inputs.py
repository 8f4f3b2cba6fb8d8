"""Turning command-line INPUT arguments into a lazy stream of image paths.

INPUT is a file, a directory (its images; --recursive walks below), a glob pattern, or "-" for paths on
stdin, one per line. Nothing is listed ahead: a million paths on stdin stream through.

Directory walks and recursive ``**`` patterns follow symlinked folders but visit each real folder once,
so a symlink loop (``a/b -> ..``) ends instead of recursing until the kernel's ELOOP limit (which, with
two loops, takes exponential time in glob.glob).
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable, Iterable, Iterator
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
    for path, _ in _walk(root, recursive, is_image_name):
        yield path


def _walk(root: str, recursive: bool, want: Callable[[str], bool]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(path, parts relative to root) of non-directories whose name ``want``s, sorted, each folder once.

    Folders are recognised by (device, inode), so a symlink loop, or one folder reached by two routes,
    is visited once.
    """
    seen: set[tuple[int, int]] = set()

    def visit(directory: str, rel: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
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
                subdirs.append(entry)
            elif want(entry.name):
                yield entry.path, rel + (entry.name,)  # broken links too: loading reports them by name
        if recursive:
            for sub in subdirs:
                yield from visit(sub.path, rel + (sub.name,))

    yield from visit(root, ())


def _match_parts(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """glob's rules per path component: ``**`` spans any number of components; no wildcard matches a
    leading dot (hidden files and folders must be named)."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        for k in range(len(parts) + 1):
            if k and parts[k - 1].startswith("."):
                break
            if _match_parts(rest, parts[k:]):
                return True
        return False
    if not parts:
        return False
    if parts[0].startswith(".") and not head.startswith("."):
        return False
    return fnmatch.fnmatchcase(parts[0], head) and _match_parts(rest, parts[1:])


def glob_recursive(pattern: str) -> list[str]:
    """Files matching a pattern with ``**`` (sorted), like glob.glob(recursive=True), but loop-safe."""
    parts = pattern.split(os.sep)
    first = next(i for i, p in enumerate(parts) if _GLOB_CHARS & set(p))
    base = os.sep.join(parts[:first]) if first else ""
    if not base and pattern.startswith(os.sep):
        base = os.sep
    wanted = tuple(p for p in parts[first:] if p)
    found = (
        path for path, rel in _walk(base or os.curdir, True, lambda name: True) if _match_parts(wanted, rel)
    )
    return sorted(found if base else (os.path.relpath(p) for p in found))


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
            if recursive and "**" in item:
                yield from glob_recursive(item) or [item]
                continue
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
