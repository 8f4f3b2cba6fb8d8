"""LMDB datasets: reading them (``LmdbDataset``, over one lazily opened environment per process) and
writing them (``write_lmdb``). The ``lmdb`` package is imported only when an LMDB is used.

LMDB (deep-text-recognition-benchmark layout, also PaddleOCR's and MMOCR's): ``num-samples`` holds the
count as ASCII digits; ``image-%09d`` the encoded image and ``label-%09d`` the UTF-8 label, from 1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crnn_cli.core.datasets.base import Dataset, check_options
from crnn_cli.core.datasets.paths import PathLike
from crnn_cli.core.datasets.samples import (
    MISSING_RECORD,
    UNDECODABLE,
    DatasetStats,
    LabelFilter,
    Sample,
    SampleError,
)
from crnn_cli.core.errors import DatasetError, UsageError
from crnn_cli.core.labelfiles import NOT_UTF8

# One read-only environment per LMDB file per process. py-lmdb refuses to open the same files twice in
# a process (two datasets on one LMDB would fail), and LMDB forbids using a handle across fork(), so a
# forked child (a DataLoader worker) closes what it inherited and opens its own. Closing is safe there:
# with lock=False and readonly=True it only unmaps the child's copy and closes the child's descriptor.
_ENVS: dict[tuple[int, int], Any] = {}
_ENVS_PID = os.getpid()


def _open_lmdb(path: Path) -> Any:
    import lmdb  # lazily: only LMDB users need the package

    try:
        # Read-only, no lock file (works on read-only media and between processes), no readahead
        # (random access over a large file), no zeroing of buffers we never write.
        return lmdb.open(
            str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=512, subdir=True
        )
    except lmdb.Error as exc:
        raise DatasetError(f"cannot open LMDB {path}: {exc}") from None


def lmdb_env(path: Path) -> Any:
    """This process's read-only environment for the LMDB folder ``path`` (opened on first use)."""
    global _ENVS_PID
    if os.getpid() != _ENVS_PID:
        for env in _ENVS.values():
            env.close()
        _ENVS.clear()
        _ENVS_PID = os.getpid()
    try:
        st = os.stat(path / "data.mdb")
    except OSError as exc:
        raise DatasetError(f"cannot open LMDB {path}: {exc.strerror or exc}") from None
    # Keyed by file identity, not path: an LMDB rewritten in place (write_lmdb) is a new file.
    key = (st.st_dev, st.st_ino)
    env = _ENVS.get(key)
    if env is None:
        env = _ENVS[key] = _open_lmdb(path)
    return env


def close_lmdb_envs() -> None:
    """Close this process's LMDB environments (they reopen on next use), e.g. before deleting files."""
    if os.getpid() == _ENVS_PID:
        for env in _ENVS.values():
            env.close()
    _ENVS.clear()


class LmdbDataset(Dataset):
    """A DTRB / PaddleOCR LMDB (see the module docstring). ``path``: the folder holding data.mdb.

    Opening reads every label once (to filter and count) but no image; images are checked when read.
    The dataset holds no handle: each process, forked or spawned, opens its own (see ``lmdb_env``).
    keep_unreadable: as for LabelFileDataset: absent or empty records stay, and raise SampleError.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        label_filter: LabelFilter | None = None,
        keep_unreadable: bool = False,
        name: str | None = None,
        decode: bool = True,
        on_error: Literal["next", "raise"] = "next",
    ) -> None:
        path = Path(path)
        if path.name == "data.mdb":
            path = path.parent
        if not (path / "data.mdb").is_file():
            raise DatasetError(f"{path} is not an LMDB folder (no data.mdb inside)")
        self.path = path
        self.name = name or path.name
        self.stats = DatasetStats(self.name)
        self.decode, self.on_error = check_options(decode, on_error)
        # record number -> (skip reason, label or None) of the kept unreadable records
        self._problems: dict[int, tuple[str, str | None]] = {}
        self._index = self._scan(label_filter or LabelFilter(), keep_unreadable)

    def _scan(self, label_filter: LabelFilter, keep_unreadable: bool) -> np.ndarray:
        stats, keep = self.stats, []

        def lost(i: int, reason: str, example: str, label: str | None) -> None:
            stats.skip(reason, example)
            if keep_unreadable:
                self._problems[i] = (reason, label)
                keep.append(i)

        with lmdb_env(self.path).begin(buffers=True) as txn:
            raw = txn.get(b"num-samples")
            try:
                n = int(bytes(raw).decode("ascii").strip()) if raw is not None else -1
            except (UnicodeDecodeError, ValueError):
                n = -1
            if n < 0:
                shown = None if raw is None else bytes(raw)[:20]
                raise DatasetError(
                    f"{self.path}: b'num-samples' is {shown!r}, not a count: not a DTRB/PaddleOCR LMDB"
                )
            for i in range(1, n + 1):
                stats.seen += 1
                where = f"{self.name}:{i}"
                label_raw = txn.get(b"label-%09d" % i)
                image_raw = txn.get(b"image-%09d" % i)
                if label_raw is None:
                    lost(i, MISSING_RECORD, f"{where} (label)", None)
                    continue
                try:
                    label = bytes(label_raw).decode("utf-8").strip()
                except UnicodeDecodeError:
                    lost(i, NOT_UTF8, f"{where} label", None)
                    continue
                reason = label_filter.reason(label, stats)
                if reason is not None:
                    stats.skip(reason, f"{where} {label[:40]!r}")
                    continue
                if image_raw is None:
                    lost(i, MISSING_RECORD, f"{where} (image)", label)
                    continue
                if len(image_raw) == 0:
                    lost(i, UNDECODABLE, f"{where} (0 bytes)", label)
                    continue
                stats.kept += 1
                keep.append(i)
        return np.asarray(keep, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._index)

    def read(self, index: int) -> Sample:
        i = int(self._index[index])
        key = f"{self.name}:{i}"
        problem = self._problems.get(i)
        if problem is not None:
            raise SampleError(f"{key}: {problem[0]}", *problem)
        with lmdb_env(self.path).begin() as txn:
            label_raw = txn.get(b"label-%09d" % i)
            data = txn.get(b"image-%09d" % i)
        if data is None or label_raw is None:
            raise SampleError(f"{key}: record vanished from the LMDB since it was opened", MISSING_RECORD)
        return Sample(data, label_raw.decode("utf-8", "replace").strip(), key)


def write_lmdb(
    out_dir: PathLike,
    samples: Iterable[tuple[bytes, str]],
    *,
    overwrite: bool = False,
    commit_every: int = 1000,
    map_size: int = 64 << 20,
) -> int:
    """Write (encoded image, label) pairs as a DTRB LMDB at ``out_dir``; returns the sample count.

    The LMDB is built in a hidden sibling folder and renamed into place at the end, so an interrupted
    run never leaves a half-written dataset under ``out_dir``. The map grows as needed from ``map_size``
    bytes. An existing ``out_dir`` is replaced only with ``overwrite=True``.
    """
    import lmdb

    out = Path(out_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out} already exists; choose another folder or allow overwriting")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    env = lmdb.open(str(tmp), map_size=map_size, subdir=True, readahead=False, meminit=False)
    count, pending = 0, []

    def flush(final: dict[bytes, bytes] | None = None) -> None:
        # Retries the whole batch after growing the map: LMDB cannot grow a map mid-transaction.
        nonlocal pending
        while True:
            try:
                with env.begin(write=True) as txn:
                    for key, value in pending:
                        txn.put(key, value)
                    for key, value in (final or {}).items():
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                env.set_mapsize(env.info()["map_size"] * 2)
        pending = []

    try:
        for image, label in samples:
            if not isinstance(image, (bytes, bytearray, memoryview)) or len(image) == 0:
                raise UsageError(f"sample {count + 1}: image must be non-empty encoded bytes")
            if not isinstance(label, str) or not label.strip():
                raise UsageError(f"sample {count + 1}: label must be a non-empty string, got {label!r}")
            count += 1
            pending.append((b"image-%09d" % count, bytes(image)))
            pending.append((b"label-%09d" % count, label.encode("utf-8")))
            if len(pending) >= 2 * commit_every:
                flush()
        flush({b"num-samples": str(count).encode("ascii")})
        env.sync(True)
        env.close()
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        env.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return count
