"""What a path holds (a label file, an LMDB, a folder of images with a ``.txt`` label each, or a tree
of these) as named ``DatasetSpec``s, and opening them as one dataset (``open_dataset``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from crnn_cli.core.datasets.base import ConcatDataset, Dataset
from crnn_cli.core.datasets.labelfile import LABEL_FILE_NAMES, LabelFileDataset, default_name
from crnn_cli.core.datasets.lmdbstore import LmdbDataset
from crnn_cli.core.datasets.paths import PathLike
from crnn_cli.core.errors import DatasetError
from crnn_cli.core.labelfiles import has_per_image_labels


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
