"""Where words come from: word lists and label files named in the config, the most frequent English
words (wordfreq), pseudo-words from the letter n-grams of the given words, and built-in pseudo-words
made of syllables.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from crnn_cli.core.errors import UsageError
from crnn_cli.synth.sampling import _pick, _table

# Built-in pseudo-English syllables (onset, nucleus, coda) with rough weights: enough to look like words.
_ONSETS = (
    ("", 5), ("b", 3), ("c", 3), ("d", 3), ("f", 2), ("g", 2), ("h", 3), ("j", 1), ("k", 1), ("l", 3),
    ("m", 3), ("n", 3), ("p", 3), ("r", 3), ("s", 4), ("t", 4), ("v", 1), ("w", 2), ("y", 1), ("z", 0.3),
    ("bl", 1), ("br", 1), ("ch", 1.5), ("cl", 1), ("cr", 1), ("dr", 1), ("fl", 1), ("fr", 1), ("gr", 1),
    ("pl", 1), ("pr", 1.5), ("sh", 1.5), ("sp", 1), ("st", 2), ("str", 0.5), ("th", 2), ("tr", 1.5),
    ("wh", 0.5), ("qu", 0.5), ("sc", 0.5), ("sl", 0.5), ("sm", 0.4), ("sn", 0.3), ("sw", 0.4), ("ph", 0.4),
)  # fmt: skip
_NUCLEI = (
    ("a", 8), ("e", 10), ("i", 7), ("o", 7), ("u", 3), ("y", 1), ("ea", 1.5), ("ee", 1), ("oo", 1),
    ("ou", 1.5), ("ai", 1), ("ie", 0.7), ("oa", 0.4), ("au", 0.4), ("io", 0.6), ("ay", 0.6), ("ey", 0.3),
)  # fmt: skip
_CODAS = (
    ("", 8), ("n", 4), ("r", 4), ("s", 4), ("t", 3), ("l", 2.5), ("d", 2), ("m", 1.5), ("ng", 1.5),
    ("nd", 1.2), ("st", 1), ("ck", 0.7), ("ll", 0.8), ("ss", 0.5), ("rt", 0.6), ("nt", 1), ("rs", 0.5),
    ("x", 0.3), ("p", 0.8), ("k", 0.5), ("ch", 0.4), ("sh", 0.4), ("th", 0.4), ("rd", 0.4), ("ts", 0.4),
)  # fmt: skip
_SUFFIXES = (("", 20), ("s", 2), ("ing", 1), ("ed", 1), ("er", 1), ("ly", 0.5), ("tion", 0.6), ("es", 0.6))


class CharNgram:
    """A letter n-gram model of words, learned at run time from the texts given; samples pseudo-words."""

    START, END = "\x02", "\x03"

    def __init__(self, words: Iterable[str], order: int = 3) -> None:
        self.order = order
        counts: dict[str, Counter] = {}
        for word in words:
            padded = self.START * (order - 1) + word + self.END
            for i in range(order - 1, len(padded)):
                counts.setdefault(padded[i - order + 1 : i], Counter())[padded[i]] += 1
        self._table = {ctx: _table(sorted(c.items())) for ctx, c in sorted(counts.items())}

    def __bool__(self) -> bool:
        return bool(self._table)

    def sample(self, rng: np.random.Generator, max_len: int) -> str:
        ctx, out = self.START * (self.order - 1), []
        while len(out) < max_len:
            table = self._table.get(ctx)
            if table is None:
                break
            ch = _pick(table, rng)
            if ch == self.END:
                break
            out.append(ch)
            ctx = (ctx + ch)[-(self.order - 1) :]
        return "".join(out)


def read_texts(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Texts from word lists (one a line) or label files (``path<TAB>text``: the text part)."""
    texts: list[str] = []
    for path in paths:
        try:
            content = Path(path).read_text("utf-8-sig", errors="replace")
        except OSError as exc:
            raise UsageError(f"cannot read text file {path}: {exc.strerror or exc}") from None
        for line in content.splitlines():
            text = line.split("\t", 1)[1] if "\t" in line else line
            if text.strip():
                texts.append(text.strip())
    return texts


@lru_cache(maxsize=4)
def common_words(count: int) -> tuple[str, ...]:
    """The ``count`` most frequent English words, most frequent first (wordfreq; empty for 0)."""
    if count <= 0:
        return ()
    try:
        import wordfreq
    except ImportError:
        raise UsageError(
            f"SynthConfig.common_words = {count} needs the wordfreq package: pip install 'crnn[synth]' "
            "(or set common_words to 0)"
        ) from None
    return tuple(wordfreq.top_n_list("en", count, wordlist="best"))
