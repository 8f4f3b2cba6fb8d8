"""What every reader yields and what it leaves out: ``Sample``, ``SampleError``, the skip reasons,
``DatasetStats`` (counts by reason, with examples) and ``LabelFilter`` (which labels a model can learn).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from crnn_cli.core.charset import Charset
from crnn_cli.core.errors import ImageError, UsageError
from crnn_cli.core.labelfiles import (
    EMPTY_LABEL,
    EMPTY_PATH,
    MISSING_SPACE,
    MISSING_TAB,
    NOT_CSV,
    NOT_ICDAR,
    NOT_JSON,
    NOT_UTF8,
)

# Skip reasons: the words a user reads in a report, so they are phrases, not codes.
MISSING_IMAGE = "missing image"
OUTSIDE = "path outside the data folder"
MISSING_RECORD = "missing LMDB record"
UNDECODABLE = "undecodable image"
UNKNOWN_SYMBOL = "symbol not in dictionary"
TOO_LONG = "label too long"
UNREADABLE_FILE = "unreadable image file"

# What evaluation calls a sample it cannot score (each counts as wrong there): the image is not there ...
MISSING_REASONS = frozenset({MISSING_IMAGE, OUTSIDE, MISSING_RECORD})
# ... or it, or its line, cannot be read.
UNREADABLE_REASONS = frozenset(
    {
        UNDECODABLE,
        UNREADABLE_FILE,
        NOT_UTF8,
        MISSING_TAB,
        MISSING_SPACE,
        EMPTY_PATH,
        NOT_JSON,
        NOT_ICDAR,
        NOT_CSV,
    }
)


class SampleError(ImageError):
    """A labelled sample that cannot be read. reason: one of MISSING_REASONS / UNREADABLE_REASONS;
    label: its label, or None when the line or record could not be parsed that far."""

    def __init__(self, message: str, reason: str, label: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.label = label


class Sample(NamedTuple):
    """One labelled crop. image: encoded bytes, or H x W x 3 uint8 BGR once decoded."""

    image: bytes | np.ndarray
    label: str
    key: str


@dataclass
class DatasetStats:
    """What a reader kept and what it left out, by reason, with the first few examples of each."""

    name: str = ""
    seen: int = 0  # lines / records looked at (blank lines not counted)
    kept: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> first few "where: what"
    unknown_symbols: Counter = field(default_factory=Counter)  # symbol -> labels it made us skip
    max_examples: int = 3

    def skip(self, reason: str, example: str) -> None:
        self.skipped[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < self.max_examples:
            shown.append(example)

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def merge(self, other: DatasetStats) -> None:
        """Add another reader's counts to these (e.g. the parts of a concatenated dataset)."""
        self.seen += other.seen
        self.kept += other.kept
        self.skipped.update(other.skipped)
        self.unknown_symbols.update(other.unknown_symbols)
        for reason, shown in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(shown[: max(0, self.max_examples - len(mine))])

    def summary(self) -> str:
        """One human line: 'name: kept of seen; skipped N reason (e.g. ...), ...'."""
        head = f"{self.name or 'dataset'}: kept {self.kept} of {self.seen}"
        if not self.skipped:
            return head
        parts = []
        for reason, count in self.skipped.most_common():
            example = self.examples.get(reason)
            parts.append(f"{count} {reason}" + (f" (e.g. {example[0]})" if example else ""))
        line = f"{head}; skipped {', '.join(parts)}"
        if self.unknown_symbols:
            symbols = " ".join(repr(s) for s, _ in self.unknown_symbols.most_common(10))
            line += f"; unknown symbols: {symbols}"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seen": self.seen,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "examples": {k: list(v) for k, v in self.examples.items()},
            "unknown_symbols": dict(self.unknown_symbols),
        }


@dataclass(frozen=True)
class LabelFilter:
    """Which labels a model can learn: encodable by ``charset`` and at most ``max_text_length`` long.

    Lengths count symbols after the charset's normalisation (lowercasing for ``ic15``), as PaddleOCR's
    ``max_text_length`` does (25 in its CRNN configs). None disables a check; empty labels are always out.
    """

    charset: Charset | None = None
    max_text_length: int | None = None

    def __post_init__(self) -> None:
        if self.max_text_length is not None and self.max_text_length < 1:
            raise UsageError(f"max_text_length must be >= 1, got {self.max_text_length}")

    def reason(self, label: str, stats: DatasetStats | None = None) -> str | None:
        """None if ``label`` is usable, else the skip reason (unknown symbols counted into ``stats``)."""
        if not label:
            return EMPTY_LABEL
        if self.charset is not None:
            unknown = self.charset.unknown_symbols(label)
            if unknown:
                if stats is not None:
                    stats.unknown_symbols.update(unknown)
                return UNKNOWN_SYMBOL
        if self.max_text_length is not None:
            text = self.charset.normalize(label) if self.charset is not None else label
            if len(text) > self.max_text_length:
                return TOO_LONG
        return None
