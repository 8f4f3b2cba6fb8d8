"""Datasets read from label files: ``LabelFileDataset``, and the file names that make a folder one.

Label files (PaddleOCR SimpleDataSet): ``relative/path<TAB>label`` per line, UTF-8 (a BOM and CRLF line
ends are tolerated), the path relative to the data folder (by default the label file's folder). The
label is everything after the first tab, with surrounding whitespace removed (it cannot be seen in a
crop). Blank lines are ignored.

Other layouts (MMOCR, ICDAR, EasyOCR, a .txt per image) are parsed by crnn_cli.core.labelfiles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from crnn_cli.core.datasets.base import Dataset, check_options, ratio_indices
from crnn_cli.core.datasets.paths import PathGuard, PathLike
from crnn_cli.core.datasets.samples import UNREADABLE_FILE, DatasetStats, LabelFilter, Sample, SampleError
from crnn_cli.core.errors import DatasetError, UsageError
from crnn_cli.core.labelfiles import EMPTY_LABEL, LabelLine, check_format, per_image_labels, read_label_file

# File names that make a folder a label-file dataset (checked in this order).
LABEL_FILE_NAMES = ("labels.tsv", "labels.txt", "label.txt", "gt.txt", "labels.jsonl", "labels.csv")


def default_name(label_file: Path) -> str:
    return label_file.parent.name if label_file.name in LABEL_FILE_NAMES else label_file.stem


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
        self.name = name or default_name(files[0])
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

    @property
    def keys(self) -> list[str]:
        """Each sample's key (its path as the label file gives it), in order."""
        return self._keys

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
