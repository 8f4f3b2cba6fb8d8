"""Recognition metrics and the label normalisations of the published evaluation protocols.

Protocols:
  paddle     PaddleOCR RecMetric: spaces removed from prediction and label, exact match.
  benchmark  Scene-text benchmark protocol (DTRB / PARSeq): case-insensitive, alphanumeric only (36
             symbols). With filter "drop", samples whose label has other symbols or is longer than 25
             are left out (DTRB); with "strip", other symbols are removed from both sides (PARSeq).
  exact      The strings as they are.
  caseless   Case-insensitive, every symbol counts, runs of spaces read as one: text lines whose labels
             are capitals only (SROIE receipts) scored on what a reader would call right.
Normalised edit distance is PaddleOCR's: 1 - mean(lev(p, l) / max(len(p), len(l), 1)).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

PROTOCOLS = ("paddle", "benchmark", "exact", "caseless")
FILTERS = ("drop", "strip")
BENCHMARK_MAX_LEN = 25
_NON_ALNUM = re.compile(r"[^0-9a-z]")


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute all cost 1)."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def alignment(pred: str, label: str) -> list[tuple[str, str]]:
    """Substitution pairs (label char, predicted char) of one optimal alignment; '' marks ins/del."""
    n, m = len(label), len(pred)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (label[i - 1] != pred[j - 1]))
    pairs: list[tuple[str, str]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (label[i - 1] != pred[j - 1]):
            if label[i - 1] != pred[j - 1]:
                pairs.append((label[i - 1], pred[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            pairs.append((label[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", pred[j - 1]))
            j -= 1
    return pairs[::-1]


def normalize_label(label: str, protocol: str, filter_mode: str = "drop") -> str | None:
    """The label as the protocol compares it, or None when the protocol leaves the sample out."""
    if protocol == "paddle":
        return label.replace(" ", "")
    if protocol == "exact":
        return label
    if protocol == "caseless":
        return " ".join(label.casefold().split())
    if protocol == "benchmark":
        low = label.lower()
        if filter_mode == "drop":
            if _NON_ALNUM.search(low) or len(low) > BENCHMARK_MAX_LEN or not low:
                return None
            return low
        return _NON_ALNUM.sub("", low)
    raise ValueError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")


def normalize_pred(pred: str, protocol: str) -> str:
    if protocol == "paddle":
        return pred.replace(" ", "")
    if protocol == "exact":
        return pred
    if protocol == "caseless":
        return " ".join(pred.casefold().split())
    if protocol == "benchmark":
        return _NON_ALNUM.sub("", pred.lower())
    raise ValueError(f"unknown protocol {protocol!r}")


def filter_reason(label: str, protocol: str, filter_mode: str = "drop") -> str | None:
    """Why a protocol leaves a label out (None when kept)."""
    if protocol != "benchmark" or filter_mode != "drop":
        return None
    low = label.lower()
    if not low:
        return "empty label"
    if len(low) > BENCHMARK_MAX_LEN:
        return f"longer than {BENCHMARK_MAX_LEN}"
    if _NON_ALNUM.search(low):
        return "non-alphanumeric symbols"
    return None


@dataclass
class Accumulator:
    """Running word accuracy, normalised edit distance and per-character statistics."""

    protocol: str = "paddle"
    filter_mode: str = "drop"
    count: int = 0
    correct: int = 0
    ned_sum: float = 0.0
    conf_sum: float = 0.0
    unscored: int = 0  # samples in ``count`` that could not be read: wrong, without a prediction
    filtered: Counter = field(default_factory=Counter)
    confusions: Counter = field(default_factory=Counter)  # (label char, pred char) -> n; '' = ins/del
    by_length: dict[int, list[int]] = field(default_factory=dict)  # len -> [correct, total]

    def add(self, pred: str, label: str, confidence: float = 0.0) -> bool | None:
        """Score one sample; returns whether it was right, or None if the protocol filtered it out."""
        reason = filter_reason(label, self.protocol, self.filter_mode)
        if reason is not None:
            self.filtered[reason] += 1
            return None
        lab = normalize_label(label, self.protocol, self.filter_mode)
        assert lab is not None  # filter_reason() returned None above
        p = normalize_pred(pred, self.protocol)
        ok = p == lab
        self.count += 1
        self.correct += ok
        self.ned_sum += levenshtein(p, lab) / max(len(p), len(lab), 1)
        self.conf_sum += confidence
        bucket = self.by_length.setdefault(len(lab), [0, 0])
        bucket[0] += ok
        bucket[1] += 1
        if not ok:
            self.confusions.update(alignment(p, lab))
        return ok

    def add_unscored(self, label: str | None) -> bool:
        """Count a sample whose image (or line) could not be read as wrong, at edit distance 1.

        Returns False, or True when the protocol filters ``label`` out anyway (counted as filtered):
        the protocol decides on the label alone. An unknown label (unparseable line) always counts.
        """
        if label is not None:
            reason = filter_reason(label, self.protocol, self.filter_mode)
            if reason is not None:
                self.filtered[reason] += 1
                return True
        self.count += 1
        self.unscored += 1
        self.ned_sum += 1.0
        if label is not None:
            lab = normalize_label(label, self.protocol, self.filter_mode) or ""
            self.by_length.setdefault(len(lab), [0, 0])[1] += 1
        return False

    def extend(self, pairs: Iterable[tuple[str, str]]) -> None:
        for pred, label in pairs:
            self.add(pred, label)

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else 0.0

    @property
    def norm_edit_distance(self) -> float:
        """PaddleOCR's norm_edit_dis: 1 - mean normalised distance (higher is better)."""
        return 1.0 - self.ned_sum / self.count if self.count else 0.0

    @property
    def mean_confidence(self) -> float:
        """Over the samples that were read (an unread one has no prediction to be confident in)."""
        read = self.count - self.unscored
        return self.conf_sum / read if read else 0.0
