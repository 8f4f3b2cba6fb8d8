"""Accuracy evaluation on labeled datasets, shared by `crnn eval` and training's in-loop evaluation.

A dataset streams through a predictor (a Recognizer, or any function from BGR crops to decoded text),
and an Accumulator scores it under one protocol (see core/metrics.py).

Every labelled line is in the denominator: a sample whose image is missing (``missing``) or cannot be
read or decoded, or whose line cannot be parsed (``unreadable``), counts as wrong, so a CI gate cannot
pass because images vanished. Only the protocol's filter (and empty labels) leave a sample out
(``filtered``); it judges the label alone, so a missing image with a label it drops is filtered. The
JSON form is versioned (``EVAL_SCHEMA_VERSION``) and described by crnn_cli/schemas/eval.schema.json.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crnn_cli.core.ctc import Decoded
from crnn_cli.core.datasets import (
    EMPTY_LABEL,
    MISSING_REASONS,
    UNDECODABLE,
    Dataset,
    SampleError,
)
from crnn_cli.core.errors import ImageError
from crnn_cli.core.metrics import Accumulator, levenshtein, normalize_label, normalize_pred

EVAL_SCHEMA_VERSION = 2
MAX_EXAMPLES = 10  # unreadable samples named per dataset
Predictor = Callable[[list[np.ndarray]], list[Decoded]]


@dataclass(order=True)
class Failure:
    """A wrong prediction kept for the gallery; ordered so the worst sort last (heap of the worst N)."""

    badness: tuple[float, float]  # (normalised edit distance, confidence): confidently far off is worst
    key: str = field(compare=False)
    label: str = field(compare=False)
    prediction: str = field(compare=False)
    confidence: float = field(compare=False)
    image: bytes = field(compare=False, repr=False)


@dataclass
class DatasetReport:
    name: str
    path: str
    acc: Accumulator
    missing: Counter = field(default_factory=Counter)  # reason -> samples whose image is not there
    unreadable: Counter = field(default_factory=Counter)  # reason -> unreadable images / lines
    problem_examples: list[str] = field(default_factory=list)  # the first few, "key: reason"
    load_skipped: dict[str, int] = field(default_factory=dict)  # what the dataset reader left out, by reason
    images: int = 0  # images that went through the model
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    @property
    def bad_samples(self) -> int:
        """Samples counted as wrong because they could not be read (missing or unreadable)."""
        return sum(self.missing.values()) + sum(self.unreadable.values())

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def lost(self, reason: str, label: str | None, message: str) -> None:
        """A sample that cannot be scored: wrong, unless the protocol filters its label anyway."""
        if self.acc.add_unscored(label):
            return
        (self.missing if reason in MISSING_REASONS else self.unreadable)[reason] += 1
        if len(self.problem_examples) < MAX_EXAMPLES:
            self.problem_examples.append(message)

    def to_json(self, top_confusions: int = 20) -> dict[str, Any]:
        a = self.acc
        return {
            "name": self.name,
            "path": self.path,
            "count": a.count,
            "scored": a.count - a.unscored,
            "missing": sum(self.missing.values()),
            "unreadable": sum(self.unreadable.values()),
            "problem_reasons": dict(self.missing + self.unreadable),
            "filtered": sum(a.filtered.values()),
            "filtered_reasons": dict(a.filtered),
            "bad_samples": self.bad_samples,
            "bad_examples": self.problem_examples[:MAX_EXAMPLES],
            "load_skipped": self.load_skipped,
            "correct": a.correct,
            "accuracy": a.accuracy,
            "norm_edit_distance": a.norm_edit_distance,
            "mean_confidence": a.mean_confidence,
            "images_per_second": self.images_per_second,
            "by_length": {str(k): {"correct": v[0], "total": v[1]} for k, v in sorted(a.by_length.items())},
            "top_confusions": [
                {"label": lab, "prediction": pred, "count": n}
                for (lab, pred), n in a.confusions.most_common(top_confusions)
            ],
        }


def evaluate_dataset(
    name: str,
    dataset: Dataset,
    recognize: Callable[[Iterator[bytes], Iterator[str]], Iterator[Any]],
    *,
    path: str = "",
    protocol: str = "benchmark",
    filter_mode: str = "drop",
    limit: int | None = None,
    keep_failures: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> DatasetReport:
    """Score one dataset. ``recognize(images, names)`` yields results with .text/.confidence/.error in order.

    (A Recognizer's ``recognize`` method fits directly.) ``dataset`` should be opened with
    ``keep_unreadable=True``, so that samples it cannot read reach the count (see the module docstring);
    lines the reader left out by its own rules (empty labels) are reported as filtered.
    """
    acc = Accumulator(protocol, filter_mode)
    report = DatasetReport(name, path, acc, load_skipped=dict(dataset.stats.skipped))
    if dataset.stats.skipped.get(EMPTY_LABEL):
        acc.filtered[EMPTY_LABEL] += dataset.stats.skipped[EMPTY_LABEL]
    labels: deque[tuple[str, str, bytes]] = deque()
    n_total = len(dataset) if limit is None else min(limit, len(dataset))
    done = 0

    def images() -> Iterator[bytes]:
        nonlocal done
        for i in range(n_total):
            try:
                sample = dataset.get(i, decode=False)
            except SampleError as exc:
                report.lost(exc.reason, exc.label, str(exc))
            except ImageError as exc:
                report.lost(UNDECODABLE, None, str(exc))
            else:
                assert isinstance(sample.image, bytes)
                labels.append((sample.label, sample.key, sample.image if keep_failures else b""))
                yield sample.image
                continue
            done += 1
            if on_progress is not None:
                on_progress(done)

    def names() -> Iterator[str]:
        while True:
            yield labels[-1][1] if labels else "?"

    heap: list[Failure] = []
    start = time.perf_counter()
    for result in recognize(images(), names()):
        label, key, image = labels.popleft()
        done += 1
        report.images += 1
        if on_progress is not None:
            on_progress(done)
        if result.error is not None:
            report.lost(UNDECODABLE, label, result.error)
            continue
        ok = acc.add(result.text, label, result.confidence)
        if ok is False and keep_failures:
            lab = normalize_label(label, protocol, filter_mode) or label
            pred = normalize_pred(result.text, protocol)
            ned = levenshtein(pred, lab) / max(len(pred), len(lab), 1)
            item = Failure((ned, result.confidence), key, label, result.text, result.confidence, image)
            if len(heap) < keep_failures:
                heapq.heappush(heap, item)
            else:
                heapq.heappushpop(heap, item)
    report.seconds = time.perf_counter() - start
    report.failures = sorted(heap, reverse=True)
    return report


def summarize(reports: list[DatasetReport]) -> dict[str, Any]:
    """Unweighted mean over datasets (what papers report) and the sample-weighted mean."""
    counted = [r for r in reports if r.acc.count > 0]
    total = sum(r.acc.count for r in counted)
    unweighted = {
        "accuracy": float(np.mean([r.acc.accuracy for r in counted])) if counted else 0.0,
        "norm_edit_distance": float(np.mean([r.acc.norm_edit_distance for r in counted])) if counted else 0.0,
    }
    weighted = {
        "accuracy": sum(r.acc.correct for r in counted) / total if total else 0.0,
        "norm_edit_distance": sum(r.acc.norm_edit_distance * r.acc.count for r in counted) / total
        if total
        else 0.0,
    }
    return {"datasets": len(reports), "count": total, "mean": unweighted, "weighted_mean": weighted}


def to_json(reports: list[DatasetReport], run: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": EVAL_SCHEMA_VERSION,
        **run,
        "datasets": [r.to_json() for r in reports],
        "summary": summarize(reports),
    }
