"""Labelled text-image datasets: PaddleOCR label files, DTRB/PaddleOCR LMDBs and folders of them.

Every reader yields ``Sample(image, label, key)``: encoded image bytes (or a decoded H x W x 3 uint8 BGR
array), the label text, and ``key`` ("dataset:where") that names the sample in error messages.

Bad samples never stop a run. A line without a tab, an empty label, a missing image, a path that leaves
the data folder, an LMDB record that is absent or undecodable, a label the dictionary cannot encode or
that is too long: each is counted by reason in the dataset's ``DatasetStats``, with the first few
examples, and left out. Only a dataset that cannot be read at all raises ``DatasetError``.

Label files (PaddleOCR SimpleDataSet): ``relative/path<TAB>label`` per line, UTF-8 (a BOM and CRLF line
ends are tolerated), the path relative to the data folder (by default the label file's folder). The
label is everything after the first tab, with surrounding whitespace removed (it cannot be seen in a
crop). Blank lines are ignored.

LMDB (deep-text-recognition-benchmark layout, also PaddleOCR's and MMOCR's): ``num-samples`` holds the
count as ASCII digits; ``image-%09d`` the encoded image and ``label-%09d`` the UTF-8 label, from 1.

Datasets are index-built once (labels read, filtered, paths checked) and then random-access, which is
what a PyTorch ``Dataset`` wrapper needs; LMDB environments open lazily in each process, so a dataset
may be handed to forked or spawned DataLoader workers. Nothing here imports torch.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crnn_cli.core.datasets.base import (
    MAX_FALLBACKS,
    ConcatDataset,
    Dataset,
    check_options,
    iter_samples,
    ratio_indices,
)
from crnn_cli.core.datasets.paths import PathGuard, PathLike
from crnn_cli.core.datasets.samples import (
    MISSING_IMAGE,
    MISSING_REASONS,
    MISSING_RECORD,
    OUTSIDE,
    TOO_LONG,
    UNDECODABLE,
    UNKNOWN_SYMBOL,
    UNREADABLE_FILE,
    UNREADABLE_REASONS,
    DatasetStats,
    LabelFilter,
    Sample,
    SampleError,
)
from crnn_cli.core.errors import DatasetError, UsageError
from crnn_cli.core.labelfiles import (
    EMPTY_LABEL,
    EMPTY_PATH,
    MISSING_SPACE,
    MISSING_TAB,
    NOT_CSV,
    NOT_ICDAR,
    NOT_JSON,
    NOT_UTF8,
    LabelLine,
    LabelLineError,
    check_format,
    has_per_image_labels,
    parse_label_line,
    per_image_labels,
    read_label_file,
)

# The public API, whichever module of the package now holds each name.
__all__ = [
    # samples: what a reader yields and why it leaves one out
    "MISSING_IMAGE",
    "MISSING_REASONS",
    "MISSING_RECORD",
    "OUTSIDE",
    "TOO_LONG",
    "UNDECODABLE",
    "UNKNOWN_SYMBOL",
    "UNREADABLE_FILE",
    "UNREADABLE_REASONS",
    "DatasetStats",
    "LabelFilter",
    "Sample",
    "SampleError",
    # labelfiles: line problems, and the one-line parser
    "EMPTY_LABEL",
    "EMPTY_PATH",
    "MISSING_SPACE",
    "MISSING_TAB",
    "NOT_CSV",
    "NOT_ICDAR",
    "NOT_JSON",
    "NOT_UTF8",
    "LabelLineError",
    "parse_label_line",
    # paths
    "PathLike",
    # base: the interface, and several datasets as one
    "MAX_FALLBACKS",
    "ConcatDataset",
    "Dataset",
    "iter_samples",
    # labelfile
    "LABEL_FILE_NAMES",
    "LabelFileDataset",
    # lmdbstore
    "LmdbDataset",
    "close_lmdb_envs",
    "lmdb_env",
    "write_lmdb",
    # discovery
    "DatasetSpec",
    "discover_datasets",
    "open_dataset",
    "open_spec",
]

# File names that make a folder a label-file dataset (checked in this order).
LABEL_FILE_NAMES = ("labels.tsv", "labels.txt", "label.txt", "gt.txt", "labels.jsonl", "labels.csv")


class LabelFileDataset(Dataset):
    """Label files: PaddleOCR's ``relative/path<TAB>label`` lines (see the module docstring) or another
    layout (``label_format``, see labelfiles.py), or a folder of images with one ``.txt`` each.

    label_files: one or several files (or per-image folders), read in order.
    data_dir: folder the paths are relative to: one for all files, one per file, or None for each
        file's own folder.
    ratios: per file, the share of its usable samples to keep (like PaddleOCR's ratio_list; above 1
        repeats the file), drawn once with ``seed``. Sampling happens after filtering.
    label_format: one of labelfiles.LABEL_FORMATS; "auto" detects it per file (a folder: per-image).
    confine_paths: refuse absolute paths and paths (or symlinks) that leave the data folder, for label
        files you do not trust. Off by default: like PaddleOCR, a path is joined to the data folder,
        and datasets are often symlinked from other disks.
    keep_unreadable: keep the lines that cannot be read (image missing or refused, line unparseable)
        as samples whose ``read`` raises SampleError, so that evaluation can count them; they are
        also counted in ``stats`` as skipped. Lines the filter refuses are left out either way.
    """

    def __init__(
        self,
        label_files: PathLike | Sequence[PathLike],
        data_dir: PathLike | Sequence[PathLike] | None = None,
        *,
        ratios: Sequence[float] | None = None,
        seed: int = 0,
        label_filter: LabelFilter | None = None,
        label_format: str = "auto",
        confine_paths: bool = False,
        keep_unreadable: bool = False,
        name: str | None = None,
        decode: bool = True,
        on_error: Literal["next", "raise"] = "next",
    ) -> None:
        files = (
            [Path(label_files)]
            if isinstance(label_files, (str, os.PathLike))
            else [Path(f) for f in label_files]
        )
        if not files:
            raise UsageError("no label file given")
        if data_dir is None or isinstance(data_dir, (str, os.PathLike)):
            dirs = [Path(data_dir) if data_dir is not None else f.parent for f in files]
        else:
            dirs = [Path(d) for d in data_dir]
        if len(dirs) != len(files):
            raise UsageError(f"{len(files)} label files but {len(dirs)} data folders")
        if ratios is not None and len(ratios) != len(files):
            raise UsageError(f"{len(files)} label files but {len(ratios)} sampling ratios")
        self.name = name or _default_name(files[0])
        self.stats = DatasetStats(self.name)
        self.decode, self.on_error = check_options(decode, on_error)
        label_filter = label_filter or LabelFilter()
        check_format(label_format)
        rng = np.random.default_rng(seed)
        self._paths: list[str] = []
        self._labels: list[str] = []
        self._keys: list[str] = []
        # index -> (skip reason, label or None) of the kept unreadable lines (keep_unreadable)
        self._problems: dict[int, tuple[str, str | None]] = {}
        for i, (file, folder) in enumerate(zip(files, dirs)):
            entries = self._read_file(
                file, folder, label_filter, label_format, confine_paths, keep_unreadable
            )
            chosen = range(len(entries)) if ratios is None else ratio_indices(len(entries), ratios[i], rng)
            for j in chosen:
                path, label, key, problem = entries[int(j)]
                if problem is not None:
                    self._problems[len(self._paths)] = (problem, label)
                self._paths.append(path or "")
                self._labels.append(label or "")
                self._keys.append(key)

    def _read_file(
        self,
        file: Path,
        folder: Path,
        label_filter: LabelFilter,
        label_format: str,
        confine_paths: bool,
        keep_unreadable: bool,
    ) -> list[tuple[str | None, str | None, str, str | None]]:
        """(path, label, key, problem) per sample line: problem is None, or the reason the line cannot
        be read (only with keep_unreadable; otherwise such lines are left out)."""
        lines: Iterable[LabelLine]
        if label_format == "per-image" or (label_format == "auto" and file.is_dir()):
            lines, folder = per_image_labels(file), file
        else:
            if not file.is_file():
                raise DatasetError(f"cannot read label file {file}: no such file")
            if not folder.is_dir():
                raise DatasetError(f"data folder {folder} of label file {file} does not exist")
            lines = read_label_file(file, label_format)
        guard = PathGuard(folder, allow_outside=not confine_paths)
        stats, out = self.stats, []
        for where, rel, label, problem in lines:
            stats.seen += 1
            if problem is not None:
                stats.skip(problem, where)
                if keep_unreadable and problem != EMPTY_LABEL:
                    out.append((None, None, f"{self.name}:{where}", problem))
                continue
            assert rel is not None and label is not None
            reason = label_filter.reason(label, stats)
            if reason is not None:
                stats.skip(reason, f"{where} {rel} {label[:40]!r}")
                continue
            path, reason = guard.resolve(rel)
            if reason is not None:
                stats.skip(reason, f"{where} {rel} {label[:40]!r}")
                if keep_unreadable:
                    out.append((None, label, f"{self.name}:{rel} ({where})", reason))
                continue
            stats.kept += 1
            out.append((path, label, f"{self.name}:{rel}", None))
        return out

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def labels(self) -> list[str]:
        return self._labels

    def read(self, index: int) -> Sample:
        key, label = self._keys[index], self._labels[index]
        problem = self._problems.get(index)
        if problem is not None:
            raise SampleError(f"{key}: {problem[0]}", *problem)
        try:
            data = Path(self._paths[index]).read_bytes()
        except OSError as exc:
            raise SampleError(f"{key}: cannot read ({exc.strerror or exc})", UNREADABLE_FILE, label) from None
        return Sample(data, label, key)


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


# -- discovery -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives: an LMDB folder, a label file (images relative to ``data_dir``), or a
    folder of images with a ``.txt`` label each (kind "labels", ``path`` the folder)."""

    kind: Literal["lmdb", "labels"]
    path: Path
    data_dir: Path | None = None


def _default_name(label_file: Path) -> str:
    return label_file.parent.name if label_file.name in LABEL_FILE_NAMES else label_file.stem


def _spec_of_folder(folder: Path) -> DatasetSpec | None:
    if (folder / "data.mdb").is_file():
        return DatasetSpec("lmdb", folder)
    for fname in LABEL_FILE_NAMES:
        if (folder / fname).is_file():
            return DatasetSpec("labels", folder / fname, folder)
    if has_per_image_labels(folder):
        return DatasetSpec("labels", folder, folder)
    return None


def discover_datasets(path: PathLike, max_depth: int = 4) -> list[tuple[str, DatasetSpec]]:
    """The datasets at ``path``, as (name, spec) sorted by name.

    ``path`` may be a label file, an LMDB folder (or its data.mdb), a folder with a label file (one of
    ``LABEL_FILE_NAMES``), a folder of images with one ``.txt`` label each, or a folder holding such
    datasets at any depth up to ``max_depth``; nested names are their relative paths ("training/MJ").
    """
    path = Path(path)
    if path.is_file():
        if path.name == "data.mdb":
            return [(path.parent.name, DatasetSpec("lmdb", path.parent))]
        return [(_default_name(path), DatasetSpec("labels", path, path.parent))]
    if not path.is_dir():
        raise DatasetError(f"dataset path {path} does not exist")
    own = _spec_of_folder(path)
    if own is not None:
        return [(path.resolve().name, own)]
    found: list[tuple[str, DatasetSpec]] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            spec = _spec_of_folder(child)
            if spec is not None:
                found.append((child.relative_to(path).as_posix(), spec))
            elif depth < max_depth:
                walk(child, depth + 1)

    walk(path, 1)
    if not found:
        raise DatasetError(
            f"no dataset in {path}: expected an LMDB (data.mdb), a label file "
            f"({', '.join(LABEL_FILE_NAMES)}) or images with a .txt label each, in it or in its sub-folders"
        )
    return sorted(found, key=lambda item: item[0])


def open_spec(name: str, spec: DatasetSpec, **options: Any) -> Dataset:
    """Open one discovered dataset; ``options`` go to LmdbDataset / LabelFileDataset."""
    if spec.kind == "lmdb":
        options = {k: v for k, v in options.items() if k not in ("label_format", "confine_paths")}
        return LmdbDataset(spec.path, name=name, **options)
    return LabelFileDataset(spec.path, spec.data_dir, name=name, **options)


def open_dataset(path: PathLike, **options: Any) -> Dataset:
    """Everything at ``path`` (see discover_datasets) as one dataset; several become a ConcatDataset."""
    found = discover_datasets(path)
    parts = [open_spec(name, spec, **options) for name, spec in found]
    if len(parts) == 1:
        return parts[0]
    keep = {k: v for k, v in options.items() if k in ("decode", "on_error")}
    return ConcatDataset(parts, name=Path(path).name, **keep)


# -- writing ---------------------------------------------------------------------------------------------


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
