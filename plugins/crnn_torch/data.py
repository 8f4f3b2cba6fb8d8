"""Training data: dataset configs -> sample sources -> a resumable epoch plan -> PyTorch DataLoader batches.

Sources ("leaves") are real datasets from crnn_cli.core.datasets (one per label file or LMDB, labels
filtered against the dictionary and max_text_length with counts kept) and synthetic streams from
crnn_cli.synth, rendered on the fly. Each leaf contributes a quota of samples per epoch: its size times
its ratio, or, inside a MixDataSet, its share of the mix (an epoch of a mix is one pass over its real
data; synthetic children fill their share with fresh images every epoch).

``EpochPlan.epoch(e)`` lists an epoch's (leaf, index) pairs: a pure function of (seed, epoch), so the
order never depends on workers, and ``EpochBatchSampler`` can restart mid-epoch from a saved position
(``state_dict``). Each sample also carries (epoch, slot), which seeds its augmentation. DDP ranks take
interleaved slices of the same plan.

Workers decode, augment and resize (crnn_cli.core.preprocess, PaddleOCR's resize); the collate function
pads a batch to its widest crop (fixed-width configs: always the configured width) and normalises.
With dynamic widths a worker task is a chunk of several batches (``Train.loader.bucket_batches``): its
crops are sorted by width and cut into batches of similar widths, so little of a batch is padding.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from torch.utils.data import Dataset as TorchDataset

from crnn_cli.core.charset import Charset
from crnn_cli.core.datasets import (
    Dataset,
    DatasetStats,
    LabelFileDataset,
    LabelFilter,
    LmdbDataset,
    discover_datasets,
)
from crnn_cli.core.errors import ConfigError, DatasetError
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor
from crnn_torch.augment import augment_warped
from crnn_torch.config import augment_op, resize_op, synth_config
from crnn_torch.config_schema import DatasetConfig, LoaderConfig
from crnn_torch.distill import STUDENT_FRAME_PX, SoftTarget, TargetTable, collate_soft

WORKER_PRIORITY_ENV = "CRNN_WORKER_NICE"  # data workers' scheduling; see worker_priority()
EVAL_SEED_OFFSET = 100_003  # an eval SynthDataSet without its own seed draws from Global.seed + this


class SynthSource:
    """A SynthRenderer behind a lazy handle: fonts are scanned in the process that first draws."""

    def __init__(self, synth_config: Any, charset: Charset, seed: int, size: int, name: str) -> None:
        self.synth_config, self.charset, self.seed, self.size, self.name = (
            synth_config,
            charset,
            seed,
            size,
            name,
        )
        self._renderer: Any = None
        self.stats = DatasetStats(name, seen=size, kept=size)

    def __len__(self) -> int:
        return self.size

    def renderer(self) -> Any:
        if self._renderer is None:
            from crnn_cli.synth import SynthRenderer

            self._renderer = SynthRenderer(self.synth_config, self.charset, self.seed)
        return self._renderer

    def sample(self, index: int) -> tuple[np.ndarray, str]:
        return self.renderer().sample(int(index))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_renderer"] = None  # a spawned worker builds its own
        return state


@dataclass
class Leaf:
    """One source of samples and its per-epoch quota."""

    name: str
    source: Dataset | SynthSource
    natural: float  # samples per epoch before mixing: size x ratio (synthetic: the configured size)
    synthetic: bool
    augment: dict[str, float] | None  # RecAug probabilities, None = no augmentation
    quota: int = 0  # samples per epoch after mixing
    label_file: str | None = None  # a SimpleDataSet leaf's label file (as the config names it)
    distill: bool = False  # its crops take the teacher's soft targets (distill.py)

    def get(self, index: int) -> tuple[np.ndarray, str, str]:
        """(image, label, key) of sample ``index``; a synthetic sample's key is empty."""
        if self.synthetic:
            return (*self.source.sample(index), "")  # type: ignore[union-attr]
        sample = self.source[int(index)]
        return sample.image, sample.label, sample.key  # type: ignore[return-value]


def _leaves(
    ds: DatasetConfig, charset: Charset, label_filter: LabelFilter, seed: int, path: str, for_eval: bool
) -> list[Leaf]:
    """Leaves of one dataset config (recursing into MixDataSet), with quotas set relative to each other."""
    aug = None if for_eval else augment_op(ds)
    probs = aug.probabilities() if aug is not None else None
    if ds.name == "MixDataSet":
        children = [
            _leaves(c, charset, label_filter, seed + 7 * (i + 1), f"{path}.datasets[{i}]", for_eval)
            for i, c in enumerate(ds.datasets)
        ]
        shares = np.asarray(ds.ratios(len(children)), dtype=np.float64)
        shares = shares / shares.sum()
        totals = [sum(leaf.natural for leaf in child) for child in children]
        real = [
            i for i, child in enumerate(children) if shares[i] > 0 and not all(lf.synthetic for lf in child)
        ]
        if ds.size:
            epoch = float(ds.size)
        elif real:  # one epoch = one pass over the real data that the mix needs most of
            epoch = max(totals[i] / shares[i] for i in real)
        else:
            epoch = float(sum(totals))
        out = []
        for i, child in enumerate(children):
            for leaf in child:
                leaf.natural = epoch * shares[i] * leaf.natural / totals[i] if totals[i] else 0.0
                if probs is not None and leaf.augment is None and not leaf.synthetic:
                    leaf.augment = probs  # a RecAug on the mix applies to its real children
                out.append(leaf)
        return out
    if ds.name == "SynthDataSet":
        own_seed = ds.seed if ds.seed is not None else seed + (EVAL_SEED_OFFSET if for_eval else 0)
        source = SynthSource(synth_config(ds, path), charset, own_seed, ds.size, f"synth({path})")
        return [Leaf(source.name, source, float(ds.size), True, probs)]
    opened: list[tuple[Dataset, float, str | None]] = []
    if ds.name == "SimpleDataSet":
        ratios = ds.ratios(len(ds.label_file_list))
        # PaddleOCR's delimiter: a tab (the default: other layouts are detected, see labelfiles.py) or
        # a space (`path label`, MMOCR's txt).
        label_format = {"\t": "auto", " ": "space"}.get(ds.delimiter)
        if label_format is None:
            raise DatasetError(f"{path}.delimiter: {ds.delimiter!r} is not supported; use a tab or a space")
        for file, ratio in zip(ds.label_file_list, ratios):
            data = LabelFileDataset(
                file, ds.data_dir, label_filter=label_filter, seed=seed, label_format=label_format
            )
            opened.append((data, ratio, file))
    else:  # LMDBDataSet: every LMDB found under data_dir, like PaddleOCR
        found = [(n, s) for n, s in discover_datasets(ds.data_dir or ".") if s.kind == "lmdb"]
        if not found:
            raise DatasetError(f"{path}.data_dir: no LMDB (data.mdb) under {ds.data_dir}")
        ratios = ds.ratios(len(found))
        for (name, spec), ratio in zip(found, ratios):
            opened.append((LmdbDataset(spec.path, label_filter=label_filter, name=name), ratio, None))
    return [Leaf(d.name, d, len(d) * r, False, probs, label_file=f) for d, r, f in opened]


def build_leaves(
    ds: DatasetConfig, charset: Charset, max_text_length: int, seed: int, path: str, for_eval: bool = False
) -> list[Leaf]:
    """Open every source of ``ds`` and set each leaf's integer quota per epoch."""
    label_filter = LabelFilter(charset, max_text_length)
    leaves = _leaves(ds, charset, label_filter, seed, path, for_eval)
    for leaf in leaves:
        leaf.quota = int(round(leaf.natural))
    if sum(leaf.quota for leaf in leaves) == 0:
        detail = "; ".join(leaf.source.stats.summary() for leaf in leaves)
        raise DatasetError(f"{path}: no usable samples ({detail})")
    return leaves


class EpochPlan:
    """Which (leaf, index) pairs make up each epoch. A pure function of (seed, epoch)."""

    def __init__(self, leaves: Sequence[Leaf], seed: int, shuffle: bool) -> None:
        self.leaves, self.seed, self.shuffle = list(leaves), int(seed), shuffle
        self.size = sum(leaf.quota for leaf in self.leaves)

    def epoch(self, epoch: int) -> np.ndarray:
        """(size, 2) int64 array of (leaf number, index within the leaf)."""
        rng = np.random.default_rng([self.seed, epoch])
        parts = []
        for number, leaf in enumerate(self.leaves):
            q = leaf.quota
            if q == 0:
                continue
            if leaf.synthetic:
                index = np.arange(q, dtype=np.int64) + np.int64(epoch) * q  # fresh images every epoch
            else:
                n = len(leaf.source)
                reps = math.ceil(q / n)
                if self.shuffle:
                    index = np.concatenate([rng.permutation(n) for _ in range(reps)])[:q]
                else:
                    index = np.tile(np.arange(n, dtype=np.int64), reps)[:q]
            parts.append(np.stack([np.full(q, number, dtype=np.int64), index.astype(np.int64)], axis=1))
        plan = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)
        return plan[rng.permutation(len(plan))] if self.shuffle else plan


class EpochBatchSampler(Sampler):
    """Batches of sample keys ``(leaf, index, epoch, slot)`` for one rank, restartable mid-epoch.

    Training (drop_last): every rank gets ``size // world`` slots, interleaved, then full batches only,
    so all ranks take the same number of steps. Evaluation: rank r takes slots r, r + world, ...
    """

    def __init__(
        self, plan: EpochPlan, batch_size: int, drop_last: bool, rank: int = 0, world: int = 1
    ) -> None:
        super().__init__()
        self.plan, self.batch_size, self.drop_last = plan, batch_size, drop_last
        self.rank, self.world = rank, world
        self.epoch, self.start_batch = 0, 0

    def _slots(self) -> np.ndarray:
        n = self.plan.size
        if self.drop_last:
            per_rank = n // self.world
            return np.arange(self.rank, per_rank * self.world, self.world)
        return np.arange(self.rank, n, self.world)

    def __len__(self) -> int:
        n = len(self._slots())
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def state_dict(self, batches_done: int) -> dict[str, int]:
        """The data position after ``batches_done`` batches of the current epoch."""
        return {
            "epoch": self.epoch,
            "batch": int(batches_done),
            "seed": self.plan.seed,
            "world_size": self.world,
        }

    def __iter__(self) -> Iterator[list[tuple[int, int, int, int]]]:
        return self.batches(self.start_batch)

    def batches(self, start: int) -> Iterator[list[tuple[int, int, int, int]]]:
        """This epoch's batches of keys from batch ``start`` on."""
        pairs = self.plan.epoch(self.epoch)
        slots = self._slots()
        epoch = self.epoch
        for b in range(start, len(self)):
            chosen = slots[b * self.batch_size : (b + 1) * self.batch_size]
            yield [(int(pairs[s, 0]), int(pairs[s, 1]), epoch, int(s)) for s in chosen]


class ChunkSampler(Sampler):
    """Groups ``group`` consecutive batches of an EpochBatchSampler into one loader task (a chunk).

    A worker loads a whole chunk, sorts it by width and cuts it into batches of similar widths
    (ChunkCollate), so a dynamic-width batch pads its crops to a near neighbour's width instead of the
    widest crop of a random draw. Chunk c always holds the samples of batches c*group .. c*group+group-1,
    so a run resumed at any batch rebuilds the same chunk and skips the batches it already trained on.
    """

    def __init__(self, batches: EpochBatchSampler, group: int) -> None:
        super().__init__()
        self.base, self.group = batches, max(1, int(group))

    @property
    def first_chunk(self) -> int:
        return self.base.start_batch // self.group

    def __len__(self) -> int:
        return max(0, -(-len(self.base) // self.group) - self.first_chunk)

    def __iter__(self) -> Iterator[list[tuple[int, int, int, int]]]:
        chunk: list[tuple[int, int, int, int]] = []
        count = 0
        for keys in self.base.batches(self.first_chunk * self.group):
            chunk += keys
            count += 1
            if count == self.group:
                yield chunk
                chunk, count = [], 0
        if chunk:
            yield chunk


class Item(NamedTuple):
    """One prepared training sample, as a worker hands it to the collate function."""

    resized: np.ndarray  # H x w x C uint8, unpadded
    padded: int  # its padded width
    ids: list[int]  # class ids of the label
    text: str  # the normalised label
    source: int  # its leaf's number
    soft: SoftTarget | None = None  # the teacher's soft target (distillation), if it has one


class SampleSet(TorchDataset):
    """Sample key -> Item (resized crop, padded width, class ids, label text, ...). Runs in workers.

    targets: the teacher's table (distillation); leaves with ``distill`` set look their crops up in it.
    """

    def __init__(
        self,
        leaves: Sequence[Leaf],
        preprocess: PreprocessConfig,
        charset: Charset,
        seed: int,
        targets: TargetTable | None = None,
    ) -> None:
        self.leaves, self.charset, self.seed = list(leaves), charset, int(seed)
        self.preprocessor = Preprocessor(preprocess)
        self.targets = targets

    def __len__(self) -> int:
        return sum(leaf.quota for leaf in self.leaves)

    def __getitem__(self, key: tuple[int, int, int, int]) -> Item:
        number, index, epoch, slot = key
        leaf = self.leaves[number]
        img, text, sample_key = leaf.get(index)
        warped = False
        if leaf.augment:
            rng = np.random.default_rng([self.seed, epoch, slot, 1])
            img, warped = augment_warped(img, leaf.augment, rng)
        ids = self.charset.encode(text)
        if ids is None:
            unknown = "".join(sorted(self.charset.unknown_symbols(text)))
            raise DatasetError(f"{leaf.name}: text {text!r} has symbols not in the dictionary: {unknown!r}")
        resized, padded = self.preprocessor.fit(img)
        soft = None
        if leaf.distill and self.targets is not None and not warped:
            soft = self.targets.target(sample_key, resized.shape[1], padded)
        return Item(resized, padded, ids, self.charset.normalize(text), number, soft)


@dataclass
class Collate:
    """Pads crops to the widest padded width in the batch, normalises, and packs CTC targets."""

    preprocess: PreprocessConfig
    _pre: Preprocessor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pre = Preprocessor(self.preprocess)

    def __call__(self, items: list[Item]) -> dict[str, Any]:
        cfg = self.preprocess
        width = max(item.padded for item in items)
        images = np.zeros((len(items), cfg.channels, cfg.height, width), np.float32)
        for i, item in enumerate(items):
            self._pre.normalize_into(item.resized[:, :width], images[i])
        batch = {
            "images": torch.from_numpy(images),  # N, C, H, W float32, normalised
            # concatenated class ids (no blanks)
            "targets": torch.tensor([i for item in items for i in item.ids], dtype=torch.long),
            "target_lengths": torch.tensor([len(item.ids) for item in items], dtype=torch.long),
            "widths": torch.tensor([item.padded for item in items], dtype=torch.long),  # each crop's own
            "texts": [item.text for item in items],  # normalised labels, for metrics
            "sources": [item.source for item in items],  # leaf of each sample, for per-dataset metrics
        }
        # Distillation: the teacher's soft targets at the student's frames (one per 4 px of width).
        soft = collate_soft([item.soft for item in items], width // STUDENT_FRAME_PX)
        if soft is not None:
            batch.update(soft)
        return batch


@dataclass
class ChunkCollate:
    """A chunk of samples -> its batches: sorted by padded width (stable), cut into ``batch_size``."""

    collate: Collate
    batch_size: int

    def __call__(self, items: list[Item]) -> list[dict[str, Any]]:
        ordered = sorted(items, key=lambda item: item.padded)
        return [
            self.collate(ordered[i : i + self.batch_size]) for i in range(0, len(ordered), self.batch_size)
        ]


class BatchStream:
    """What the trainer iterates: the loader's chunks unpacked into batches, from the sampler's position.

    Training shuffles the batches of each chunk (seeded by epoch and chunk, so a resumed run sees the
    same order) so that narrow and wide batches alternate; evaluation keeps them in order.
    """

    def __init__(self, loader: DataLoader, chunks: ChunkSampler, seed: int, shuffle: bool) -> None:
        self.loader, self.chunks, self.seed, self.shuffle = loader, chunks, int(seed), shuffle

    def __len__(self) -> int:
        return max(0, len(self.chunks.base) - self.chunks.base.start_batch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        base, group = self.chunks.base, self.chunks.group
        skip = base.start_batch % group
        for number, batches in enumerate(self.loader, start=self.chunks.first_chunk):
            order = np.arange(len(batches))
            if self.shuffle and len(batches) > 1:
                order = np.random.default_rng([self.seed, base.epoch, number, 5]).permutation(len(batches))
            for i in order[skip:]:
                yield batches[int(i)]
            skip = 0


def worker_priority() -> str:
    """The data workers' scheduling from $CRNN_WORKER_NICE: "idle" (the default), a niceness, or "0".

    Workers go below the training threads: a worker that takes a core in the middle of a parallel op
    stalls the model's other threads at the op's next barrier, costing more than its own share of the
    CPU. "idle" is Linux's SCHED_IDLE (a worker runs only on a core the model leaves free; nice 19
    where the OS lacks it). scripts/bench_train.py on 2 cores, default-model recipe, share of the bare
    loop's speed: nice 10 0.79-0.83, nice 19 and SCHED_IDLE 0.85-0.97 (README, Performance).
    """
    raw = os.environ.get(WORKER_PRIORITY_ENV, "idle")
    text = raw.strip().lower()
    if text == "idle" or (text.isdigit() and 0 <= int(text) <= 19):
        return text
    raise ConfigError(
        f"{WORKER_PRIORITY_ENV}={raw!r}: expected 'idle' or a niceness from 0 (leave the data workers "
        "as they are) to 19; unset it for the default, 'idle'"
    )


def _lower_priority(priority: str) -> None:
    """Put this (worker) process at ``priority`` (a worker_priority() value); best effort."""
    with contextlib.suppress(OSError, AttributeError):
        if priority == "idle":
            if hasattr(os, "SCHED_IDLE"):
                os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
                return
            priority = "19"
        if int(priority):
            os.nice(int(priority))


def _worker_init(priority: str, worker_id: int) -> None:
    # Workers only decode and resize: one thread each, so they leave the cores to the model. They
    # ignore Ctrl-C / SIGTERM: the training process decides when to stop and shuts them down.
    torch.set_num_threads(1)
    from crnn_cli.core.images import cv2

    cv2.setNumThreads(1)
    _lower_priority(priority)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(
    leaves: Sequence[Leaf],
    preprocess: PreprocessConfig,
    charset: Charset,
    loader: LoaderConfig,
    seed: int,
    *,
    train: bool,
    rank: int = 0,
    world: int = 1,
    pin_memory: bool = False,
    targets: TargetTable | None = None,
) -> tuple[BatchStream, EpochBatchSampler]:
    """Batches over ``leaves`` (a BatchStream) whose order the returned sampler controls and can resume.

    Dynamic-width configs load ``loader.bucket_batches`` batches per worker task and regroup them by
    width (ChunkSampler); fixed-width batches all have the same shape, so they go one per task.
    """
    plan = EpochPlan(leaves, seed, shuffle=loader.shuffle and train)
    sampler = EpochBatchSampler(
        plan, loader.batch_size_per_card, drop_last=loader.drop_last and train, rank=rank, world=world
    )
    group = loader.bucket_batches if preprocess.dynamic_width else 1
    chunks = ChunkSampler(sampler, group)
    workers = loader.num_workers
    kwargs: dict[str, Any] = {}
    if workers > 0:
        kwargs.update(
            persistent_workers=True,
            prefetch_factor=loader.prefetch_factor,
            worker_init_fn=functools.partial(_worker_init, worker_priority()),
            # Not fork: forking a process that already runs thread pools (ONNX Runtime, OpenVINO, a
            # Recognizer's loaders, torch's own) can deadlock a worker on a lock held by a thread that
            # did not survive the fork. forkserver starts workers from a clean single-threaded process.
            multiprocessing_context="forkserver",
        )
    dl = DataLoader(
        SampleSet(leaves, preprocess, charset, seed, targets),
        batch_sampler=chunks,
        num_workers=workers,
        collate_fn=ChunkCollate(Collate(preprocess), loader.batch_size_per_card),
        pin_memory=pin_memory,
        # A private generator: creating an iterator must not draw from the global torch RNG, or a run
        # resumed mid-epoch would see other dropout masks than the uninterrupted run.
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )
    return BatchStream(dl, chunks, seed, shuffle=train and loader.shuffle), sampler


def preprocess_config(ds: DatasetConfig, fallback: PreprocessConfig | None = None) -> PreprocessConfig:
    """The PreprocessConfig that ``ds``'s RecResizeImg describes (training never rotates tall crops)."""
    op = resize_op(ds)
    if op is None:
        if fallback is not None:
            return fallback
        raise ConfigError("Train.dataset.transforms: a RecResizeImg with image_shape [C, H, W] is required")
    c, h, w = (int(v) for v in op.image_shape)
    return PreprocessConfig(
        channels=c,
        height=h,
        width=w,
        dynamic_width=op.dynamic_width,
        max_width=max(op.max_width, w),
        width_step=op.width_step,
        min_aspect=None if op.min_aspect is None else float(op.min_aspect),
        mean=(0.5,) * c,  # PaddleOCR's (x / 255 - 0.5) / 0.5, per channel
        std=(0.5,) * c,
        rotate_vertical=False,
    )


def stats_lines(leaves: Sequence[Leaf]) -> list[str]:
    """One line per leaf: what was kept and skipped, and its quota per epoch."""
    out = []
    for leaf in leaves:
        if leaf.synthetic:
            out.append(f"{leaf.name}: synthetic, {leaf.quota} per epoch")
        else:
            out.append(f"{leaf.source.stats.summary()}; {leaf.quota} per epoch")
    return out


def stats_dict(leaves: Sequence[Leaf]) -> list[dict[str, Any]]:
    return [
        {"name": leaf.name, "synthetic": leaf.synthetic, "per_epoch": leaf.quota}
        | ({} if leaf.synthetic else leaf.source.stats.as_dict())
        for leaf in leaves
    ]
