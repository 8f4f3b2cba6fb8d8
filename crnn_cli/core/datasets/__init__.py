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

Import from here; each name lives in one module of the package:
  samples    Sample, SampleError, the skip reasons, DatasetStats, LabelFilter
  paths      PathLike, and PathGuard, which keeps a label file's image paths in its data folder
  base       the Dataset interface (fallback and iter_samples), ConcatDataset
  labelfile  LabelFileDataset, over any layout crnn_cli.core.labelfiles reads
  lmdbstore  LmdbDataset and its per-process environments, write_lmdb
  discovery  discover_datasets, open_spec, open_dataset: what a path holds, opened
"""

from __future__ import annotations

from crnn_cli.core.datasets.base import MAX_FALLBACKS, ConcatDataset, Dataset, iter_samples
from crnn_cli.core.datasets.discovery import DatasetSpec, discover_datasets, open_dataset, open_spec
from crnn_cli.core.datasets.labelfile import LABEL_FILE_NAMES, LabelFileDataset
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
    parse_label_line,
)

# The public API: callers import these names from here, whichever module defines them.
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
