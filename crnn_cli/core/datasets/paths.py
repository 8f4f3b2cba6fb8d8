"""Image paths in label files: the ``PathLike`` readers accept, and ``PathGuard``, which joins a
label file's relative paths to its data folder and, for label files not trusted, refuses those that
leave it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Union

from crnn_cli.core.datasets.samples import MISSING_IMAGE, OUTSIDE

PathLike = Union[str, os.PathLike]


class PathGuard:
    """Turns label-file paths into files under ``root``; with ``allow_outside`` False, refuses paths
    that leave it (absolute, ``../``, symlinks out).

    Real paths of parent folders are cached, so each line costs one ``lstat`` (which the missing-image
    check needs anyway) rather than a full ``realpath``; symlinked files are resolved one by one.
    """

    def __init__(self, root: Path, allow_outside: bool) -> None:
        self.root = os.path.realpath(root)
        self.prefix = self.root.rstrip(os.sep) + os.sep
        self.allow_outside = allow_outside
        self._parents: dict[str, str] = {}

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.prefix)

    def resolve(self, rel: str) -> tuple[str | None, str | None]:
        """(absolute path, None) or (None, skip reason)."""
        if os.path.isabs(rel):
            if not self.allow_outside:
                return None, OUTSIDE
            joined = os.path.normpath(rel)
        else:
            joined = os.path.normpath(os.path.join(self.root, rel))
            if not self.allow_outside and not self._inside(joined):
                return None, OUTSIDE  # ../ leaving the folder, caught before touching the disk
        parent, base = os.path.split(joined)
        real_parent = self._parents.get(parent)
        if real_parent is None:
            real_parent = self._parents[parent] = os.path.realpath(parent)
        if not self.allow_outside and not self._inside(real_parent):
            return None, OUTSIDE  # a symlinked folder pointing elsewhere
        full = os.path.join(real_parent, base)
        try:
            mode = os.lstat(full).st_mode
        except OSError:
            return None, MISSING_IMAGE
        if stat.S_ISLNK(mode):
            real = os.path.realpath(full)
            if not self.allow_outside and not self._inside(real):
                return None, OUTSIDE
            if not os.path.isfile(real):
                return None, MISSING_IMAGE
        elif not stat.S_ISREG(mode):
            return None, MISSING_IMAGE
        return full, None
