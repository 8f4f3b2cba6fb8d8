"""Labelled text-image datasets: PaddleOCR label files, DTRB/PaddleOCR LMDBs and folders of them.

Every reader yields ``Sample(image, label, key)``: encoded image bytes (or a decoded H x W x 3 uint8 BGR
array), the label text, and ``key`` ("dataset:where") that names the sample in error messages.

Bad samples never stop a run. A line without a tab, an empty label, a missing image, a path that leaves
the data folder, an LMDB record that is absent or undecodable, a label the dictionary cannot encode or
that is too long: each is counted by reason in the dataset's ``DatasetStats``, with the first few
examples, and left out. Only a dataset that cannot be read at all raises ``DatasetError``.

Datasets are index-built once (labels read, filtered, paths checked) and then random-access, which is
what a PyTorch ``Dataset`` wrapper needs; LMDB environments open lazily in each process, so a dataset
may be handed to forked or spawned DataLoader workers. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from crnn_cli.core.datasets.base import MAX_FALLBACKS, ConcatDataset, Dataset, iter_samples
from crnn_cli.core.datasets.labelfile import LABEL_FILE_NAMES, LabelFileDataset, default_name
from crnn_cli.core.datasets.lmdbstore import LmdbDataset, close_lmdb_envs, lmdb_env, write_lmdb
from crnn_cli.core.datasets.paths import PathLike
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
from crnn_cli.core.errors import DatasetError
from crnn_cli.core.labelfiles import (
    EMPTY_LABEL,
    EMPTY_PATH,
    MISSING_SPACE,
    MISSING_TAB,
    NOT_CSV,
    NOT_ICDAR,
    NOT_JSON,
    NOT_UTF8,
    LabelLineError,
    has_per_image_labels,
    parse_label_line,
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

# -- discovery -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives: an LMDB folder, a label file (images relative to ``data_dir``), or a
    folder of images with a ``.txt`` label each (kind "labels", ``path`` the folder)."""

    kind: Literal["lmdb", "labels"]
    path: Path
    data_dir: Path | None = None


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
        return [(default_name(path), DatasetSpec("labels", path, path.parent))]
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
