"""crnn's small per-user cache: JSON files under ``$XDG_CACHE_HOME/crnn`` (``~/.cache/crnn``).

What goes there can always be recomputed (the plugin list, which backend ran a model fastest), so a
missing, corrupt or unwritable cache is never an error: reads give None and writes are skipped.
Writes are atomic. ``CRNN_NO_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cache_dir() -> Path | None:
    if os.environ.get("CRNN_NO_CACHE"):
        return None
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "crnn"


def read_json(name: str) -> Any | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return json.loads((folder / name).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def write_json(name: str, data: Any) -> None:
    folder = cache_dir()
    if folder is None:
        return
    try:
        from crnn_cli.core.fileio import write_bytes_atomic

        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(folder / name, json.dumps(data, indent=1).encode("utf-8"))
    except Exception:  # a read-only home is no reason to fail; the next run recomputes
        pass
