"""Label layouts that public recognition datasets ship, read into (path, label) lines.

Formats (``LABEL_FORMATS``):
  tsv        ``path<TAB>label`` (PaddleOCR SimpleDataSet); split at the first tab.
  space      ``path label`` (MMOCR's txt, many benchmark copies); split at the first space, so the
             label may hold spaces and the path may not.
  jsonl      one JSON object a line with ``filename`` and ``text`` (MMOCR's jsonl).
  icdar      ``word_1.png, "Genaxis Theatre"`` (ICDAR 2013/2015 gt.txt); ``\\"`` inside the quotes is
             a quote.
  csv        ``filename,words`` with that header (EasyOCR's labels.csv); standard CSV quoting.
  per-image  a folder of images, each with a ``.txt`` of the same stem holding its label.
``auto`` picks one from the file's name and its first lines (see ``detect_format``).

Every parsed line is ``LabelLine(where, path, label, problem)``: ``where`` is "file:line" for messages,
``problem`` None or the reason the line is not a sample (path or label then None). A file none of whose
lines parses raises DatasetError naming the file, its first line and the formats to try.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from crnn_cli.core.errors import DatasetError, UsageError

LABEL_FORMATS = ("auto", "tsv", "space", "jsonl", "icdar", "csv", "per-image")

# Line problems: the words a user reads in a report.
MISSING_TAB = "no tab between path and label"
MISSING_SPACE = "no space between path and label"
EMPTY_PATH = "empty image path"
EMPTY_LABEL = "empty label"
NOT_UTF8 = "not UTF-8"
NOT_JSON = "not a JSON object with filename and text"
NOT_ICDAR = 'not path, "label"'
NOT_CSV = "not a CSV row of path and label"

CSV_PATH_COLUMNS = ("filename", "file_name", "path", "image", "img_path")
CSV_LABEL_COLUMNS = ("words", "text", "label", "transcription")
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pbm", ".pgm", ".ppm"}
)
_ICDAR = re.compile(r'^\s*([^,"]+?)\s*,\s*"(.*)"\s*$')
_DETECT_LINES = 50


class LabelLine(NamedTuple):
    where: str  # "folder/file:line" for messages
    path: str | None
    label: str | None
    problem: str | None


def check_format(fmt: str) -> str:
    if fmt not in LABEL_FORMATS:
        raise UsageError(f"label format must be one of {', '.join(LABEL_FORMATS)}, got {fmt!r}")
    return fmt


def _is_csv_header(line: str) -> bool:
    cells = [c.strip().lower() for c in next(csv.reader([line]), [])]
    return len(cells) >= 2 and cells[0] in CSV_PATH_COLUMNS and any(c in CSV_LABEL_COLUMNS for c in cells)


def detect_format(name: str, lines: list[str]) -> str:
    """The format of a label file called ``name`` whose first non-blank lines are ``lines``."""
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson") or (lines and lines[0].lstrip().startswith("{")):
        return "jsonl"
    if any("\t" in line for line in lines):
        return "tsv"
    if suffix == ".csv" or (lines and _is_csv_header(lines[0])):
        return "csv"
    if lines and all(_ICDAR.match(line) for line in lines):
        return "icdar"
    if any(" " in line.strip() for line in lines):
        return "space"
    return "tsv"


def split_line(line: str, sep: str, no_sep: str) -> tuple[str | None, str | None, str | None]:
    path, found, label = line.partition(sep)
    if not found:
        return None, None, no_sep
    path, label = path.strip(), label.strip()
    if not path:
        return None, None, EMPTY_PATH
    if not label:
        return path, None, EMPTY_LABEL
    return path, label, None


class LabelLineError(ValueError):
    """A label-file line that is not ``path<TAB>label``; ``reason`` is one of the skip reasons."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_label_line(line: str) -> tuple[str, str]:
    """``'path<TAB>label'`` -> (path, label). Splits at the first tab; strips the line end and blanks.

    Raises LabelLineError (reason: no tab, empty path, empty label) for lines that are not a sample.
    """
    path, label, problem = split_line(line, "\t", MISSING_TAB)  # its strip() takes a \r\n line end
    if problem is not None:
        raise LabelLineError(problem)
    assert path is not None and label is not None
    return path, label


def _json_line(line: str) -> tuple[str | None, str | None, str | None]:
    try:
        obj = json.loads(line)
    except ValueError:
        return None, None, NOT_JSON
    if not isinstance(obj, dict) or not isinstance(obj.get("filename"), str):
        return None, None, NOT_JSON
    text = obj.get("text")
    if not isinstance(text, str):
        return None, None, NOT_JSON
    path, label = obj["filename"].strip(), text.strip()
    if not path:
        return None, None, EMPTY_PATH
    return (path, label, None) if label else (path, None, EMPTY_LABEL)


def _icdar_line(line: str) -> tuple[str | None, str | None, str | None]:
    m = _ICDAR.match(line)
    if m is None:
        return None, None, NOT_ICDAR
    label = re.sub(r"\\(.)", r"\1", m.group(2)).strip()  # \" is a quote, \\ a backslash
    return (m.group(1), label, None) if label else (m.group(1), None, EMPTY_LABEL)


class _Csv:
    """Rows of path and label; the header (if any) names the columns."""

    def __init__(self) -> None:
        self.columns: tuple[int, int] | None = None

    def __call__(self, line: str) -> tuple[str | None, str | None, str | None]:
        cells = next(csv.reader([line]), [])
        if self.columns is None:
            self.columns = (0, 1)
            if _is_csv_header(line):
                low = [c.strip().lower() for c in cells]
                self.columns = (
                    next(i for i, c in enumerate(low) if c in CSV_PATH_COLUMNS),
                    next(i for i, c in enumerate(low) if c in CSV_LABEL_COLUMNS),
                )
                return None, None, None  # the header: not a sample
        p, lab = self.columns
        if len(cells) <= max(p, lab):
            return None, None, NOT_CSV
        path, label = cells[p].strip(), cells[lab].strip()
        if not path:
            return None, None, EMPTY_PATH
        return (path, label, None) if label else (path, None, EMPTY_LABEL)


def read_label_file(file: Path, fmt: str = "auto") -> Iterator[LabelLine]:
    """The sample lines of one label file (blank lines and a CSV header left out). See the module doc."""
    check_format(fmt)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read label file {file}: {exc.strerror or exc}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # Split bytes, not text: a stray non-UTF-8 line costs that line only, and str.splitlines would
    # also break at characters such as U+2028 that may legitimately sit inside a label.
    raw_lines = data.split(b"\n")
    if fmt == "auto":
        sample = []
        for raw in raw_lines:
            text = raw.decode("utf-8", "replace").rstrip("\r")
            if text.strip():
                sample.append(text)
                if len(sample) >= _DETECT_LINES:
                    break
        fmt = detect_format(file.name, sample)
    if fmt == "per-image":
        raise UsageError(f"{file}: --label-format per-image reads a folder of images, not a label file")
    parse = {
        "tsv": lambda s: split_line(s, "\t", MISSING_TAB),
        "space": lambda s: split_line(s.strip(), " ", MISSING_SPACE),
        "jsonl": _json_line,
        "icdar": _icdar_line,
        "csv": _Csv(),
    }[fmt]
    prefix = f"{file.parent.name}/{file.name}"
    lines, parsed, first = 0, 0, None
    for number, raw in enumerate(raw_lines, 1):
        where = f"{prefix}:{number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            lines += 1
            yield LabelLine(where, None, None, NOT_UTF8)
            continue
        if not line.strip():
            continue
        path, label, problem = parse(line.rstrip("\r\n"))
        if path is None and label is None and problem is None:
            continue  # a header
        lines += 1
        first = first or (where, line.strip()[:60])
        if problem in (None, EMPTY_LABEL):
            parsed += 1
        yield LabelLine(f"{where} {line.strip()[:60]!r}" if path is None else where, path, label, problem)
    if lines and not parsed:
        assert first is not None
        raise DatasetError(
            f"{file}: none of its {lines} lines reads as {fmt} (line {first[0].rsplit(':', 1)[1]}: "
            f"{first[1]!r}); name the layout with --label-format "
            f"({', '.join(f for f in LABEL_FORMATS if f not in ('auto', 'per-image'))})"
        )


def per_image_labels(folder: Path) -> Iterator[LabelLine]:
    """(image, label) of every image in ``folder`` (not its sub-folders) that has a ``.txt`` beside it."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.is_file())
    except OSError as exc:
        raise DatasetError(f"cannot list {folder}: {exc.strerror or exc}") from None
    present = set(names)
    found = 0
    for name in names:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in IMAGE_SUFFIXES or f"{stem}.txt" not in present:
            continue
        found += 1
        where = f"{folder.name}/{stem}.txt"
        try:
            text = (folder / f"{stem}.txt").read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            yield LabelLine(where, None, None, NOT_UTF8)
            continue
        except OSError as exc:
            raise DatasetError(f"cannot read {folder / (stem + '.txt')}: {exc.strerror or exc}") from None
        label = " ".join(text.split())  # a label split over lines is one line of text
        yield LabelLine(where, name, label or None, None if label else EMPTY_LABEL)
    if not found:
        raise DatasetError(f"{folder}: no image with a .txt label of the same name beside it")


def has_per_image_labels(folder: Path) -> bool:
    """Whether ``folder`` holds at least one image with a ``.txt`` of the same stem (cheap scan)."""
    try:
        names = {e.name for e in os.scandir(folder) if e.is_file()}
    except OSError:
        return False
    return any(
        os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES and f"{os.path.splitext(n)[0]}.txt" in names
        for n in names
    )
