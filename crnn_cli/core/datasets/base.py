"""The ``Dataset`` interface every reader implements: random access (``ds[i]`` moves past unreadable
samples, up to ``MAX_FALLBACKS``), iteration that skips and counts them (``iter_samples``), and
``ConcatDataset``, several datasets as one, each sampled at a ratio.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np

from crnn_cli.core.datasets.samples import UNDECODABLE, DatasetStats, Sample
from crnn_cli.core.errors import DatasetError, ImageError, UsageError
from crnn_cli.core.images import decode_image

# How many times __getitem__ moves on to the next sample when one cannot be decoded.
MAX_FALLBACKS = 16


def ratio_indices(n: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Indices 0..n-1 sampled at ``ratio``: below 1 a random subset (file order kept), above 1 repeats."""
    if ratio <= 0:
        raise UsageError(f"a sampling ratio must be > 0, got {ratio}")
    whole, frac = divmod(ratio, 1.0)
    repeated = np.tile(np.arange(n, dtype=np.int64), int(whole))
    extra = min(int(round(n * frac)), n)
    if not extra:
        return repeated
    return np.concatenate([repeated, np.sort(rng.choice(n, size=extra, replace=False))])


def check_options(decode: bool, on_error: str) -> tuple[bool, Literal["next", "raise"]]:
    if on_error not in ("next", "raise"):
        raise UsageError(f"on_error must be 'next' or 'raise', got {on_error!r}")
    return bool(decode), on_error  # type: ignore[return-value]


class Dataset(ABC):
    """Random access to labelled crops: ``len(ds)``, ``ds[i] -> Sample``, and iteration for evaluation.

    decode: ``ds[i].image`` is a BGR uint8 array (True) or the encoded bytes (False).
    on_error: what ``ds[i]`` does when the image cannot be read or decoded: "next" substitutes the next
    readable sample (a training run should not die on one corrupt file; the failure is counted in
    ``stats``, in the process that hit it), "raise" raises ImageError. Iteration always skips and counts.
    """

    name: str
    stats: DatasetStats
    decode: bool = True
    on_error: Literal["next", "raise"] = "next"

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int) -> Sample:
        """Sample ``index`` with encoded image bytes. Raises ImageError when the image is unreadable."""

    def get(self, index: int, decode: bool | None = None) -> Sample:
        """Sample ``index``, decoded if asked (default: ``self.decode``). Raises ImageError."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{self.name}: index {index} out of range for {n} samples")
        sample = self.read(index)
        if decode if decode is not None else self.decode:
            data = sample.image
            assert isinstance(data, bytes)  # read() contract, not user input
            return Sample(decode_image(data, sample.key), sample.label, sample.key)
        return sample

    def count_failure(self, index: int, exc: ImageError) -> None:
        """Record that sample ``index`` could not be read (in the process that tried)."""
        self.stats.skip(UNDECODABLE, str(exc))

    def __getitem__(self, index: int) -> Sample:
        n = len(self)
        first_error: ImageError | None = None
        for step in range(min(MAX_FALLBACKS, max(n, 1))):
            j = index if step == 0 else (index + step) % n
            try:
                return self.get(j)
            except ImageError as exc:
                if self.on_error == "raise":
                    raise
                self.count_failure(j, exc)
                first_error = first_error or exc
        raise DatasetError(
            f"{self.name}: {min(MAX_FALLBACKS, n)} samples in a row from index {index} cannot be read "
            f"(first: {first_error}); is the dataset corrupt?"
        )

    def __iter__(self) -> Iterator[Sample]:
        return iter_samples(self)


def iter_samples(dataset: Dataset, decode: bool | None = None) -> Iterator[Sample]:
    """Every readable sample in order; unreadable ones are counted in ``dataset.stats`` and skipped.

    Unlike ``dataset[i]`` nothing is substituted, which is what evaluation needs.
    """
    for i in range(len(dataset)):
        try:
            yield dataset.get(i, decode)
        except ImageError as exc:
            dataset.count_failure(i, exc)


class ConcatDataset(Dataset):
    """Several datasets as one, each optionally sampled at a ratio (drawn once with ``seed``)."""

    def __init__(
        self,
        datasets: Sequence[Dataset],
        *,
        ratios: Sequence[float] | None = None,
        seed: int = 0,
        name: str = "concat",
        decode: bool = True,
        on_error: Literal["next", "raise"] = "next",
    ) -> None:
        if not datasets:
            raise UsageError("no dataset to concatenate")
        if ratios is not None and len(ratios) != len(datasets):
            raise UsageError(f"{len(datasets)} datasets but {len(ratios)} sampling ratios")
        self.datasets = list(datasets)
        self.name = name
        self.decode, self.on_error = check_options(decode, on_error)
        rng = np.random.default_rng(seed)
        which, local = [], []
        for d, ds in enumerate(self.datasets):
            idx = np.arange(len(ds)) if ratios is None else ratio_indices(len(ds), ratios[d], rng)
            which.append(np.full(len(idx), d, dtype=np.int32))
            local.append(idx.astype(np.int64))
        self._which = np.concatenate(which)
        self._local = np.concatenate(local)

    @property
    def stats(self) -> DatasetStats:  # type: ignore[override]
        merged = DatasetStats(self.name)
        for ds in self.datasets:
            merged.merge(ds.stats)
        return merged

    def __len__(self) -> int:
        return len(self._which)

    def read(self, index: int) -> Sample:
        return self.datasets[self._which[index]].read(int(self._local[index]))

    def count_failure(self, index: int, exc: ImageError) -> None:
        # ``stats`` here is a merged copy: count in the part the sample came from.
        self.datasets[self._which[index]].stats.skip(UNDECODABLE, str(exc))
