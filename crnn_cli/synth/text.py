"""TextSource: the label texts. Words (from words.py), multi-word lines, random symbol strings, numbers,
dates, times, prices, codes, e-mail/web addresses, receipt fields and whole lines of the label files;
only symbols of the charset that some font covers are used.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

import numpy as np

from crnn_cli.synth.config import SynthConfig
from crnn_cli.synth.sampling import _pick, _table
from crnn_cli.synth.words import _CODAS, _NUCLEI, _ONSETS, _SUFFIXES, CharNgram

_TLDS = ("com", "net", "org", "io", "co", "de", "uk", "my", "edu", "info", "com.my", "co.uk")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CURRENCIES = ("$", "RM", "USD", "EUR", "€", "£", "¥", "Rs", "S$")
_RECEIPT_KEYS = (
    "Total", "Sub Total", "Subtotal", "Grand Total", "Total (RM)", "Total Incl. GST", "Cash", "Change",
    "Change Due", "Rounding", "Rounding Adj", "Discount", "GST", "GST 6%", "SST", "Tax", "VAT", "Service Chg",
    "Amount", "Amt", "Qty", "Total Qty", "Price", "Unit Price", "Date", "Time", "Invoice No", "Inv No",
    "Receipt No", "Bill No", "Doc No", "Ref", "Table", "Cashier", "Counter", "Staff", "Tel", "Fax", "Phone",
    "GST Reg No", "Co Reg No", "Member", "Points", "Visa", "Mastercard", "Card No", "Approval Code", "Terminal",
)  # fmt: skip


class TextSource:
    """Draws label texts made only of ``symbols`` (the renderable part of the charset).

    texts: lines of the configured text files: their words feed the word lists and the letter n-grams,
        and the "label" kind draws them whole (receipt lines, say, in other fonts and looks).
    common: real words by frequency (``common_words``); drawn with a weight that falls off slowly
        with the rank, so everyday words come often and rarer ones still come.
    """

    def __init__(
        self,
        config: SynthConfig,
        symbols: Iterable[str],
        texts: Sequence[str] = (),
        common: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.symbols = frozenset(symbols)
        self._symbol_list = sorted(self.symbols)
        self._has_space = " " in self.symbols
        self._has_upper = any(c.isupper() for c in self.symbols)
        words = sorted({w for t in texts for w in t.split() if w})
        self.words = [w for w in words if set(w) <= self.symbols and len(w) <= config.max_text_length]
        self.labels = sorted({t for t in texts if self._fits(t)})
        self.common = [
            w for w in common if w.isalpha() and len(w) <= config.max_text_length and set(w) <= self.symbols
        ]
        rank_weight = (np.arange(len(self.common), dtype=np.float64) + 200.0) ** -0.5
        self._common_cum = np.cumsum(rank_weight / rank_weight.sum()) if self.common else None
        self.ngram = CharNgram(w.lower() for w in words if w.isalpha())
        self._onsets, self._nuclei = _table(_ONSETS), _table(_NUCLEI)
        self._codas, self._suffixes = _table(_CODAS), _table(_SUFFIXES)
        kinds = [
            (k, w)
            for k, w in config.text_weights
            if w > 0 and (k not in ("line", "receipt") or self._has_space) and (k != "label" or self.labels)
        ]
        if not kinds:
            kinds = [("word", 1.0)]
        self._kinds = _table(kinds)

    # Each generator may produce symbols the charset lacks; __call__ retries or falls back.
    def _syllable_word(self, rng: np.random.Generator) -> str:
        parts = []
        for _ in range(int(rng.choice([1, 1, 1, 2, 2, 2, 2, 3]))):
            parts += [_pick(self._onsets, rng), _pick(self._nuclei, rng), _pick(self._codas, rng)]
        return "".join(parts) + _pick(self._suffixes, rng)

    def _lower_word(self, rng: np.random.Generator) -> str:
        r = rng.random()
        if self._common_cum is not None:
            if r < 0.55:
                i = int(np.searchsorted(self._common_cum, rng.random(), side="right"))
                return self.common[min(i, len(self.common) - 1)]
            r = (r - 0.55) / 0.45  # the rest as without common words
        if self.words and r < 0.45:
            return self.words[int(rng.integers(len(self.words)))]
        if self.ngram and r < 0.8:
            word = self.ngram.sample(rng, self.config.max_text_length)
            if word:
                return word
        return self._syllable_word(rng)

    def _case(self, word: str, rng: np.random.Generator | None) -> str:
        """A random casing (lower, Title, UPPER) for a lower-case word; rng None: the UPPER form."""
        if rng is None:
            return word.upper()
        if any(c.isupper() for c in word[1:]):  # a list word with its own casing (e.g. "iPhone")
            return word
        lower, title, _ = self.config.case_weights
        r = rng.random() * sum(self.config.case_weights)
        if r < lower:
            return word.lower()
        if r < lower + title:
            return word[:1].upper() + word[1:].lower()
        return word.upper()

    def word(self, rng: np.random.Generator) -> str:
        word = self._case(self._lower_word(rng), rng)
        r = rng.random()
        if r < 0.05:
            return word + str(rng.choice(list(".,:!?;")))
        if r < 0.07:
            return f'"{word}"' if rng.random() < 0.5 else f"({word})"
        if r < 0.09:
            return word + "-" + self._case(self._lower_word(rng), rng)
        if r < 0.11:
            return word + "'s"
        return word

    def number(self, rng: np.random.Generator) -> str:
        r = rng.random()
        if r < 0.35:
            return str(int(10 ** rng.uniform(0, 6)))
        if r < 0.55:
            return f"{rng.uniform(0, 10 ** rng.integers(1, 5)):.{int(rng.integers(1, 4))}f}"
        if r < 0.7:
            return f"{int(10 ** rng.uniform(3, 8)):,}"
        if r < 0.8:
            return f"{rng.integers(0, 101)}%"
        if r < 0.9:  # phone numbers
            return f"{rng.integers(0, 1000):03d}-{rng.integers(0, 1000):03d} {rng.integers(0, 10000):04d}"
        return f"{rng.choice(['+', '-', 'x', '#', 'No.'])}{rng.integers(0, 1000)}"

    def date(self, rng: np.random.Generator) -> str:
        y, m, d = int(rng.integers(1970, 2036)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        hh, mm, ss = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
        mon = _MONTHS[m - 1]
        forms = (
            f"{y}-{m:02d}-{d:02d}",
            f"{d:02d}/{m:02d}/{y}",
            f"{m}/{d}/{y % 100:02d}",
            f"{d}.{m}.{y}",
            f"{d} {mon.upper()} {y}",
            f"{mon.title()} {d}, {y}",
            f"{d:02d}-{mon.title()}-{y % 100:02d}",
            f"{hh:02d}:{mm:02d}",
            f"{hh:02d}:{mm:02d}:{ss:02d}",
            f"{(hh % 12) or 12}:{mm:02d} {'AM' if hh < 12 else 'PM'}",
            f"{d:02d}/{m:02d}/{y} {hh:02d}:{mm:02d}",
        )
        return forms[int(rng.integers(len(forms)))]

    def price(self, rng: np.random.Generator) -> str:
        value = 10 ** rng.uniform(-1, 4)
        amount = f"{value:,.2f}" if rng.random() < 0.8 else f"{value:.0f}"
        if rng.random() < 0.15:
            amount = amount.replace(".", "#").replace(",", ".").replace("#", ",")  # 1.234,50
        cur = _CURRENCIES[int(rng.integers(len(_CURRENCIES)))]
        r = rng.random()
        if r < 0.35:
            return amount
        if r < 0.8:
            return cur + (" " if len(cur) > 1 and rng.random() < 0.5 else "") + amount
        return f"{amount} {cur}" if rng.random() < 0.5 else f"{amount}{rng.choice(['SR', 'ZR', '-', ''])}"

    def code(self, rng: np.random.Generator) -> str:
        def chunk(n: int, pool: str) -> str:
            return "".join(pool[int(i)] for i in rng.integers(0, len(pool), n))

        upper, digits = string.ascii_uppercase, string.digits
        r = rng.random()
        if r < 0.3:
            return f"{chunk(int(rng.integers(1, 4)), upper)}{rng.choice(['-', '', ' ', '/'])}{chunk(int(rng.integers(2, 7)), digits)}"
        if r < 0.5:
            return f"{chunk(int(rng.integers(4, 8)), digits)}-{chunk(1, upper)}"
        if r < 0.7:
            return chunk(int(rng.integers(4, 12)), upper + digits)
        if r < 0.85:
            return f"{chunk(3, upper)}/{int(rng.integers(2000, 2036))}/{chunk(4, digits)}"
        return f"{self._case(self._lower_word(rng), rng)} {chunk(int(rng.integers(1, 5)), digits)}"

    def email(self, rng: np.random.Generator) -> str:
        def w() -> str:
            return self._lower_word(rng).lower()

        tld = _TLDS[int(rng.integers(len(_TLDS)))]
        r = rng.random()
        if r < 0.45:
            sep = rng.choice([".", "_", ""])
            return f"{w()}{sep}{w()}@{w()}.{tld}"
        if r < 0.8:
            return f"www.{w()}.{tld}"
        return f"http{'s' if rng.random() < 0.5 else ''}://{w()}.{tld}/{w()}"

    def random(self, rng: np.random.Generator) -> str:
        pool = [s for s in self._symbol_list if not s.isspace()] or self._symbol_list
        n = int(rng.integers(1, 11))
        return "".join(pool[int(i)] for i in rng.integers(0, len(pool), n))

    def line(self, rng: np.random.Generator) -> str:
        n = int(rng.integers(2, max(3, self.config.max_line_words + 1)))
        makers = (self.word, self.word, self.word, self.word, self.number, self.price, self.date, self.code)
        parts = [makers[int(rng.integers(len(makers)))](rng) for _ in range(n)]
        if rng.random() < 0.3:  # receipt style: uniform case
            parts = [p.upper() for p in parts]
        return " ".join(parts)

    def label(self, rng: np.random.Generator) -> str:
        return self.labels[int(rng.integers(len(self.labels)))]

    def receipt(self, rng: np.random.Generator) -> str:
        """A receipt or invoice field: a key, a separator and a value (price, number, date, code)."""
        key = _RECEIPT_KEYS[int(rng.integers(len(_RECEIPT_KEYS)))]
        r = rng.random()
        if r < 0.4:
            value = self.price(rng)
        elif r < 0.55:
            value = self.date(rng)
        elif r < 0.75:
            value = self.code(rng)
        elif r < 0.9:
            value = self.number(rng)
        else:
            value = " ".join(self._case(self._lower_word(rng), None) for _ in range(int(rng.integers(1, 4))))
        text = f"{key}{rng.choice([': ', ':', ' : ', ' ', '  '])}{value}"
        form = rng.random()
        if form < 0.6:
            return text.upper()
        return text if form < 0.85 else text.title()

    def _fits(self, text: str) -> bool:
        return (
            self.config.min_text_length <= len(text) <= self.config.max_text_length
            and text == text.strip()
            and set(text) <= self.symbols
        )

    def __call__(self, rng: np.random.Generator) -> str:
        for _ in range(12):
            kind = _pick(self._kinds, rng)
            text = getattr(self, kind)(rng)
            if kind == "line":  # lines may run long: keep the words that fit
                while len(text) > self.config.max_text_length and " " in text:
                    text = text.rsplit(" ", 1)[0]
            if not self._has_upper and any(c.isupper() for c in text):
                text = text.lower()  # a lowercase-only charset
            if self._fits(text):
                return text
        # Nothing fitted (a tiny or exotic charset): keep what can be drawn, else random symbols.
        kept = "".join(c for c in text if c in self.symbols).strip()[: self.config.max_text_length]
        return (
            kept
            if len(kept) >= self.config.min_text_length
            else self.random(rng)[: self.config.max_text_length]
        )
