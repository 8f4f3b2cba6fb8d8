"""Dictionaries: the ordered symbols a CTC model predicts, with the blank at class 0.

PaddleOCR's convention, which every model we read follows: class 0 is the CTC blank, classes 1..n are the
dictionary's symbols in file order, and ``use_space_char`` appends " " as the last class. Without a
dictionary a model predicts ``0-9a-z`` (the built-in ``ic15``) and labels are lowercased.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crnn_cli.core.errors import UsageError

BUILTIN_DICTIONARIES = ("ic15", "en")


@dataclass(frozen=True)
class Charset:
    """The class list of a CTC model (blank excluded) and how labels map onto it.

    symbols: class i+1 is symbols[i]; class 0 is the blank.
    lowercase: labels are lowercased before encoding (the case-less ``ic15`` dictionary).
    """

    symbols: tuple[str, ...]
    lowercase: bool = False
    name: str = "custom"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.symbols:
            raise UsageError("a dictionary needs at least one symbol")
        index: dict[str, int] = {}
        for i, symbol in enumerate(self.symbols):
            index.setdefault(symbol, i + 1)  # duplicates: the first one wins, as in PaddleOCR
        object.__setattr__(self, "_index", index)

    @property
    def num_classes(self) -> int:
        """Symbols plus the blank: what the model's last axis must be."""
        return len(self.symbols) + 1

    @property
    def use_space_char(self) -> bool:
        return bool(self.symbols) and self.symbols[-1] == " "

    def normalize(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def encode(self, text: str) -> list[int] | None:
        """Class ids of ``text`` (blank never emitted), or None if a symbol is not in the dictionary."""
        ids = []
        for ch in self.normalize(text):
            i = self._index.get(ch)
            if i is None:
                return None
            ids.append(i)
        return ids

    def unknown_symbols(self, text: str) -> set[str]:
        return {ch for ch in self.normalize(text) if ch not in self._index}

    def decode(self, ids: Sequence[int]) -> str:
        """Join the symbols of non-blank class ids (no CTC collapsing: see ctc.py for that)."""
        symbols = self.symbols
        return "".join(symbols[i - 1] for i in ids if i > 0)

    def check_classes(self, num_classes: int, source: str = "the model") -> None:
        """Raise a clear error when a model's class count does not fit this dictionary."""
        if num_classes == self.num_classes:
            return
        hint = ""
        if num_classes == self.num_classes + 1 and not self.use_space_char:
            hint = " The model has one class more: try --use-space-char."
        elif num_classes == self.num_classes - 1 and self.use_space_char:
            hint = " The model has one class less: drop --use-space-char."
        raise UsageError(
            f"dictionary '{self.name}' gives {self.num_classes} classes ({len(self.symbols)} symbols + blank) "
            f"but {source} predicts {num_classes}.{hint} Pass the dictionary the model was trained with "
            "(--dict NAME|PATH)."
        )


def _builtin_text(name: str) -> str:
    """A shipped dictionary's text, from the installed package (or a source checkout run in place)."""
    from importlib import resources  # here, not at import: 7 ms of every cold start otherwise

    try:
        return resources.files("crnn_cli.dictionaries").joinpath(f"{name}.txt").read_text("utf-8")
    except ModuleNotFoundError:
        # Running from an uninstalled source tree, where dictionaries/ sits beside crnn_cli/.
        return (Path(__file__).resolve().parents[2] / "dictionaries" / f"{name}.txt").read_text("utf-8")


def _read_lines(text: str) -> list[str]:
    # One symbol per line; strip only the line ending so that a line holding a space stays a space.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def load_charset(spec: str | Path | None = None, use_space_char: bool = False) -> Charset:
    """Load a dictionary by built-in name (``ic15``, ``en``) or file path; None means PaddleOCR's default.

    The default (no dictionary) is ``ic15`` with lowercased labels, exactly as PaddleOCR does.
    """
    if spec is None or str(spec) in BUILTIN_DICTIONARIES:
        name = "ic15" if spec is None else str(spec)
        lowercase = name == "ic15"  # PaddleOCR lowercases labels for its case-less default
        text = _builtin_text(name)
        symbols = _read_lines(text)
    else:
        path = Path(spec)
        if not path.is_file():
            raise UsageError(
                f"dictionary '{spec}' is neither a built-in ({', '.join(BUILTIN_DICTIONARIES)}) nor a file"
            )
        try:
            text = path.read_text("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(f"dictionary file {path} is not UTF-8: {exc}") from None
        symbols = _read_lines(text)
        name, lowercase = str(path), False
    if use_space_char:  # appended even if the file ends in a space, as PaddleOCR does
        symbols.append(" ")
    return Charset(tuple(symbols), lowercase=lowercase, name=name)


def charset_from_symbols(symbols: Sequence[str], name: str = "embedded", lowercase: bool = False) -> Charset:
    """A charset from the full class list stored in a model (blank excluded, space included if used)."""
    return Charset(tuple(symbols), lowercase=lowercase, name=name)
