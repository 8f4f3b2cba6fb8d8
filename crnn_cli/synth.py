"""Synthetic text crops for training: random text, rendered with random fonts, colours and distortions.

``SynthRenderer(config, charset, seed).sample(index)`` returns ``(bgr uint8 image, text)``, a pure
function of (seed, index, the font set, the config): any number of DataLoader workers can draw from the
same renderer, as an endless stream or as a fixed-size dataset, and get the same images every epoch.

Fonts are found at run time: matplotlib's bundled TTFs (DejaVu, STIX, Computer Modern), the system font
folders, and any extra folders given. Each font is checked symbol by symbol (glyph present, glyph name
not that of another character, not the "missing glyph" box), so a symbol font never draws tofu or a
wrong glyph under a label; every text is drawn with a font that covers all of its symbols.

Text comes from words (a word list or label files given in the config, pseudo-words from their letter
n-grams, built-in pseudo-words from syllables), multi-word lines, random symbol strings, numbers, dates,
times, prices, codes and e-mail/web addresses; only symbols of the charset that some font covers are
used. Images are 32-64 px high by default and as wide as the text; the model's preprocessing resizes.

This module is training tooling, not part of the numpy-only core: it imports Pillow (and fontTools,
which ships with matplotlib).
"""

from __future__ import annotations

import logging
import math
import os
import string
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crnn_cli.core.charset import Charset, load_charset
from crnn_cli.core.errors import UsageError
from crnn_cli.core.images import cv2

FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
SYSTEM_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.fonts",
    "~/.local/share/fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "C:/Windows/Fonts",
)
TEXT_KINDS = ("word", "line", "random", "number", "date", "price", "code", "email", "label", "receipt")
BACKGROUND_KINDS = ("solid", "gradient", "noise", "image")
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class SynthConfig:
    """What the renderer draws. Probabilities are per image; lengths are in pixels unless stated."""

    # -- output and text ------------------------------------------------------------------------------
    height_range: tuple[int, int] = (32, 64)  # output height, drawn uniformly; width follows the text
    font_size_range: tuple[int, int] = (20, 64)  # px size glyphs are rasterised at, before the resize
    min_text_length: int = 1  # symbols
    max_text_length: int = 25  # symbols; PaddleOCR's CRNN max_text_length, longer labels are dropped
    max_line_words: int = 5  # multi-word lines (only when the charset has " ") hold 2..this words
    # Which text generators are used, relative weights (kinds: see TEXT_KINDS).
    text_weights: tuple[tuple[str, float], ...] = (
        ("word", 0.45),
        ("line", 0.14),
        ("random", 0.07),
        ("number", 0.09),
        ("date", 0.06),
        ("price", 0.06),
        ("code", 0.08),
        ("email", 0.05),
    )
    case_weights: tuple[float, float, float] = (0.45, 0.25, 0.30)  # lower, Title, UPPER words
    text_files: tuple[str, ...] = ()  # word lists (one a line) or label files (path<TAB>text) to learn from
    # -- fonts and backgrounds --------------------------------------------------------------------------
    common_words: int = 0  # also draw real words from the N most frequent English words (wordfreq)
    font_dirs: tuple[str, ...] = ()  # extra folders searched recursively for .ttf/.otf/.ttc
    matplotlib_fonts: bool = True  # matplotlib's bundled DejaVu/STIX/Computer Modern fonts
    package_fonts: bool = True  # fonts of installed pip font packages (font-roboto, font-lato, ...)
    system_fonts: bool = True  # /usr/share/fonts and friends (the set differs between machines)
    background_dir: str | None = None  # folder of images (recursive) to crop backgrounds from
    background_weights: tuple[float, float, float, float] = (0.3, 0.2, 0.35, 0.15)  # BACKGROUND_KINDS
    # -- colour ---------------------------------------------------------------------------------------
    p_invert: float = 0.3  # light text on a dark background
    p_clutter: float = 0.15  # a sign edge, stripe or frame line in the background
    min_contrast: float = 45.0  # text vs background luminance difference, 0..255
    # -- glyph styling --------------------------------------------------------------------------------
    p_spacing: float = 0.2  # extra letter spacing
    max_spacing: float = 0.25  # in font sizes, skewed towards small; a little negative spacing too
    p_underline: float = 0.04
    p_outline: float = 0.07  # a contrasting stroke around the glyphs
    p_shadow: float = 0.08  # an offset, blurred drop shadow
    p_bold: float = 0.1  # fake bold (a thin stroke in the text colour)
    p_faded: float = 0.15  # ink at 65-100 % opacity (worn paint, faint print)
    # Receipt and till printers: glyphs built of separate dots (dot-matrix), and a halftone screen of
    # dots shading the background (a grey band behind a shop's name). The one dev receipt printed
    # that way held 35 of the stage-3 model's 95 misread lines.
    p_dot_matrix: float = 0.04
    p_halftone: float = 0.04
    # The same band after a coarse scan: sparse dots nearly as dark as the print, about nine to a crop's
    # height, some missing (stage 5 still read them as ':' and '*' between words).
    p_stipple: float = 0.04
    p_text_gradient: float = 0.1  # text colour changing along the line
    # -- geometry -------------------------------------------------------------------------------------
    p_rotate: float = 0.4
    max_rotation: float = 4.0  # degrees
    p_shear: float = 0.15
    max_shear: float = 0.3  # x shift per unit height (synthetic italics)
    p_perspective: float = 0.3
    max_perspective: float = 0.12  # corner jitter, in text heights
    p_curve: float = 0.06  # a bent baseline
    max_curve: float = 0.18  # amplitude, in text heights
    # Text set along a circle, each glyph turned with it (round logos, jerseys, curved shop fronts);
    # half above the centre, half below. The angle the whole text spans, in degrees.
    p_arc: float = 0.0
    max_arc: float = 150.0
    # One end of the text seen farther away than the other (a sign from below or at an angle): the far
    # edge shrinks to this fraction of its height at most.
    p_vanish: float = 0.0
    max_vanish: float = 0.5
    p_stretch: float = 0.4  # horizontal squash or stretch of the whole crop
    max_stretch: float = 0.25  # +- relative width change
    p_tight: float = 0.35  # tight crop (nearly touching the ink) instead of a loose one
    p_cut: float = 0.0  # of the tight crops: the box edge cuts a sliver off the first or last glyph
    max_margin: float = 0.45  # loose crop margins, in text heights
    # -- degradation ----------------------------------------------------------------------------------
    p_blur: float = 0.4
    max_blur: float = 1.3  # gaussian sigma at output size
    p_motion_blur: float = 0.05
    p_lowres: float = 0.3  # downsample and upsample again
    max_lowres: float = 3.0  # downsampling factor
    p_noise: float = 0.3
    max_noise: float = 12.0  # gaussian noise sigma, 0..255 scale
    p_contrast: float = 0.4  # contrast, brightness and gamma changes
    p_gray: float = 0.1  # grayscale (scans, faxes)
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (15, 75)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not 0.0 <= value <= 1.0:
                raise UsageError(f"SynthConfig.{f.name} is a probability in [0, 1], got {value}")
            if f.name.startswith("max_") and value < 0:
                raise UsageError(f"SynthConfig.{f.name} must be >= 0, got {value}")
        for name, lo_min, hi_max in (
            ("height_range", 8, 1024),
            ("font_size_range", 6, 512),
            ("jpeg_quality", 1, 100),
        ):
            lo, hi = getattr(self, name)
            if not lo_min <= lo <= hi <= hi_max:
                raise UsageError(f"SynthConfig.{name} must be (lo, hi) with {lo_min} <= lo <= hi <= {hi_max}")
        if not 0 <= self.common_words <= 1_000_000:
            raise UsageError(f"SynthConfig.common_words must be in 0..1000000, got {self.common_words}")
        if not 1 <= self.min_text_length <= self.max_text_length:
            raise UsageError("SynthConfig needs 1 <= min_text_length <= max_text_length")
        unknown = [k for k, _ in self.text_weights if k not in TEXT_KINDS]
        if unknown or not any(w > 0 for _, w in self.text_weights):
            raise UsageError(
                f"SynthConfig.text_weights: kinds are {', '.join(TEXT_KINDS)} with a positive weight"
            )
        if len(self.background_weights) != len(BACKGROUND_KINDS) or min(self.background_weights) < 0:
            raise UsageError(f"SynthConfig.background_weights needs {len(BACKGROUND_KINDS)} weights >= 0")


# -- fonts ------------------------------------------------------------------------------------------------


def package_font_dirs() -> list[Path]:
    """Folders of fonts that installed pip packages ship: the "Python Fonts" packages (``font-*``,
    each a ``font_x/files/`` folder; crnn's ``synth`` extra installs a dozen families)."""
    from importlib import metadata

    dirs: set[Path] = set()
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        if not name.startswith("font-"):
            continue
        for file in dist.files or ():
            if Path(str(file)).suffix.lower() in FONT_SUFFIXES:
                dirs.add(Path(str(dist.locate_file(file))).parent)
    return sorted(dirs)


def discover_fonts(
    extra_dirs: Iterable[str | os.PathLike] = (),
    matplotlib_fonts: bool = True,
    system_fonts: bool = True,
    package_fonts: bool = False,
) -> list[Path]:
    """Font files in the given places, sorted; a face found twice (same file name, or the same name as
    .otf and .ttf) is kept once, the first place wins."""
    roots: list[Path] = [Path(d).expanduser() for d in extra_dirs]
    if matplotlib_fonts:
        try:
            import matplotlib

            roots.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
        except ImportError:
            pass
    if package_fonts:
        roots.extend(package_font_dirs())
    if system_fonts:
        roots.extend(Path(d).expanduser() for d in SYSTEM_FONT_DIRS)
    seen: set[str] = set()
    found: list[Path] = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in FONT_SUFFIXES and path.stem.lower() not in seen and path.is_file():
                seen.add(path.stem.lower())
                found.append(path)
    return found


# Glyph names that may stand for an ASCII character besides its standard name (TeX fonts use curly
# quotes for ' and ", and some fonts map - to minus and ~ to the accent).
_NAME_ALIASES = {
    "'": {"quoteright", "quotesingle"},
    '"': {"quotedblright", "quotedbl"},
    "-": {"hyphen", "minus", "uni2010", "uni2212"},
    "~": {"asciitilde", "tilde"},
    "^": {"asciicircum", "circumflex"},
    "`": {"grave", "quoteleft"},
}


def _glyph_code(tt: object, name: str) -> bytes | None:
    """The compiled outline of glyph ``name`` (TrueType or CFF), or None when it cannot be had cheaply."""
    try:
        if "glyf" in tt:  # type: ignore[operator]
            glyf = tt["glyf"]  # type: ignore[index]
            return glyf.glyphs[name].compile(glyf)  # lazy glyphs compile to their stored bytes
        if "CFF " in tt:  # type: ignore[operator]
            charstring = tt["CFF "].cff.topDictIndex[0].CharStrings[name]  # type: ignore[index]
            charstring.compile()
            return charstring.bytecode
    except Exception:  # an odd font: the Pillow check alone decides
        return None
    return None


@lru_cache(maxsize=256)
def font_coverage(path: str, symbols: tuple[str, ...]) -> frozenset[str]:
    """The symbols ``path`` draws correctly. Empty for fonts that are not text fonts.

    A symbol counts when the font maps it to a glyph whose name is not that of another character (TeX
    and symbol fonts put arrows or accents on ASCII codes), and, for up to 512 symbols, when Pillow
    draws it non-empty and its outline is not a copy of the missing-glyph box (.notdef). A font must
    cover 56 of the 62 ASCII letters and digits to be used at all (this drops symbol, display and
    last-resort fonts).
    """
    log = logging.getLogger("fontTools")
    level = log.level
    log.setLevel(logging.ERROR)  # old fonts make fontTools warn about odd header dates
    try:
        return _coverage(path, symbols)
    except Exception:  # an unreadable or broken font is simply not used
        return frozenset()
    finally:
        log.setLevel(level)


def _coverage(path: str, symbols: tuple[str, ...]) -> frozenset[str]:
    from fontTools.agl import AGL2UV, UV2AGL
    from fontTools.ttLib import TTFont

    tt = TTFont(path, lazy=True, fontNumber=0)
    # cmap format 13 maps whole ranges to one glyph: a last-resort font, all tofu (and slow to read).
    if any(getattr(t, "format", None) == 13 for t in tt["cmap"].tables):
        return frozenset()
    cmap = tt.getBestCmap() or {}

    def name_ok(ch: str) -> bool:
        cp = ord(ch)
        name = cmap.get(cp)
        if name is None:
            return False
        if name in (f"uni{cp:04X}", f"u{cp:04X}", f"u{cp:05X}") or name in _NAME_ALIASES.get(ch, ()):
            return True
        if cp < 128 and ch != " ":
            return name == UV2AGL.get(cp, name)
        other = AGL2UV.get(name)
        return other is None or other == cp

    if sum(name_ok(ch) for ch in _ALNUM) < 56 or len({cmap.get(ord(c)) for c in _ALNUM}) < 56:
        return frozenset()
    covered = {ch for ch in symbols if name_ok(ch)}
    font = ImageFont.truetype(path, 32, layout_engine=ImageFont.Layout.BASIC)
    # Keycap and boxed fonts draw every symbol inside a frame: even "l" and "!" come out square.
    narrow = [font.getmask(ch).getbbox() for ch in "l!"]
    if all(b is not None and b[2] - b[0] > 0.6 * (b[3] - b[1]) for b in narrow):
        return frozenset()
    try:
        metrics = tt["hmtx"].metrics
    except Exception:
        metrics = {}
    notdef_metrics = metrics.get(".notdef")
    tofu: bytes | None = None
    for ch in sorted(covered)[:512]:
        name = cmap[ord(ch)]
        if name == ".notdef":
            covered.discard(ch)
            continue
        if ch.isspace():
            continue
        # Empty as Pillow (our renderer) draws it, or the missing-glyph box under another name
        # (outlines compared only where the metrics already match: loading outlines is slow).
        if font.getmask(ch).getbbox() is None:
            covered.discard(ch)
        elif notdef_metrics is not None and metrics.get(name) == notdef_metrics:
            tofu = tofu if tofu is not None else (_glyph_code(tt, ".notdef") or b"")
            if tofu and _glyph_code(tt, name) == tofu:
                covered.discard(ch)
    return frozenset(covered)


@lru_cache(maxsize=1024)
def font_family(path: str) -> str:
    """The font's typographic family (name ID 16, else 1): fonts are drawn family first, then face, so
    a family that ships twenty weights is not twenty times as likely as one that ships one."""
    from fontTools.ttLib import TTFont

    try:
        names = TTFont(path, lazy=True, fontNumber=0)["name"]
        for name_id in (16, 1):
            name = names.getDebugName(name_id)
            if name and name.strip():
                return name.strip()
    except Exception:
        pass
    return Path(path).stem.split("-")[0]


_CASE_PAIRS = "abdefghnqrt"  # letters whose lower case is not a smaller copy of the capital


def _glyph_shape(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
    """The glyph's ink, cropped, scaled to 24 x 24, blurred and normalised (zero mean, unit norm)."""
    canvas = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(canvas).text((40, 40), ch, font=font, fill=255)
    ink = np.asarray(canvas)
    rows, cols = np.flatnonzero(ink.max(1) > 127), np.flatnonzero(ink.max(0) > 127)
    if rows.size == 0:
        return np.zeros(24 * 24, np.float32)
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
    shape = cv2.GaussianBlur(cv2.resize(crop, (24, 24), interpolation=cv2.INTER_AREA), (0, 0), 1.5).ravel()
    shape -= shape.mean()
    return shape / (float(np.linalg.norm(shape)) + 1e-6)


@lru_cache(maxsize=1024)
def draws_small_caps(path: str) -> bool:
    """True for a font whose lower-case letters are capitals (small caps, as Amatic SC's): it may only
    draw upper-case texts, or its images would teach the model the wrong case.

    Each of a, b, d, e, ... is compared with all 26 capitals of the font: in a text font few find
    their own capital most alike (4 of 11 at most among 300 fonts tried), in a small-caps font most do.
    """
    try:
        font = ImageFont.truetype(path, 64, layout_engine=ImageFont.Layout.BASIC)
    except Exception:
        return False
    capitals = np.stack([_glyph_shape(font, c) for c in string.ascii_uppercase])
    own = sum(
        string.ascii_uppercase[int(np.argmax(capitals @ _glyph_shape(font, ch)))] == ch.upper()
        for ch in _CASE_PAIRS
    )
    return own >= 8


@lru_cache(maxsize=1024)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: faster than raqm and the same on every machine (determinism across workers).
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


# -- text -------------------------------------------------------------------------------------------------

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


def _table(items: Sequence[tuple[str, float]]) -> tuple[tuple[str, ...], np.ndarray]:
    weights = np.asarray([w for _, w in items], dtype=np.float64)
    return tuple(s for s, _ in items), np.cumsum(weights / weights.sum())


def _pick(table: tuple[tuple[str, ...], np.ndarray], rng: np.random.Generator) -> str:
    values, cum = table
    return values[min(int(np.searchsorted(cum, rng.random(), side="right")), len(values) - 1)]


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


# -- rendering --------------------------------------------------------------------------------------------

_LUMA = np.asarray([0.114, 0.587, 0.299], dtype=np.float32)  # BGR weights of perceived brightness
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _color(rng: np.random.Generator, luma: float, saturation: float) -> np.ndarray:
    """A BGR colour (float32, 3) near brightness ``luma`` with a random hue of strength ``saturation``."""
    d = rng.standard_normal(3).astype(np.float32)
    d -= (d @ _LUMA) / (_LUMA @ _LUMA) * _LUMA  # a hue direction that leaves brightness unchanged
    d /= float(np.abs(d).max()) + 1e-6
    return np.clip(luma + saturation * 160.0 * d, 0, 255).astype(np.float32)


_NOISE_TABLE_SIZE = 1 << 20


@lru_cache(maxsize=1)
def _noise_table() -> np.ndarray:
    """A fixed million standard normal float32 values (4 MB, made once per process, same everywhere)."""
    table = np.random.default_rng(20240607).standard_normal(_NOISE_TABLE_SIZE, dtype=np.float32)
    table.flags.writeable = False
    return table


def _gaussian(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise of ``shape`` (read-only): a window of _noise_table at a random offset.

    Drawing tens of thousands of normals per crop took about 0.3 ms, a fifth of a rendered crop's cost
    in the data workers; a window costs one draw. Within a crop the values are as independent as fresh
    ones; two crops may share shifted stretches of the table, which no pixel neighbourhood reveals.
    """
    n = math.prod(shape)
    if n > _NOISE_TABLE_SIZE:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, _NOISE_TABLE_SIZE - n + 1))
    return _noise_table()[start : start + n].reshape(shape)


@lru_cache(maxsize=32)
def _background_image(path: str) -> np.ndarray | None:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None or min(img.shape[:2]) < 8 else img


def _dot_screen(
    h: int,
    w: int,
    pitch: float,
    angle: float,
    radius: float,
    keep: float = 1.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """H x W float32 in 0..1: round dots on a square grid of ``pitch`` px turned by ``angle`` degrees,
    each ``radius`` pitches across from its centre, edges antialiased over about a pixel. With ``keep``
    < 1, each dot is there with that probability (drawn from ``rng``)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a = math.radians(angle)
    u = (xs * math.cos(a) + ys * math.sin(a)) / pitch
    v = (ys * math.cos(a) - xs * math.sin(a)) / pitch
    cu, cv = np.round(u), np.round(v)
    dist = np.hypot(u - cu, v - cv) * pitch  # px to the nearest dot centre
    screen = np.clip(radius * pitch - dist + 0.5, 0.0, 1.0)
    if keep < 1.0:
        rng = rng if rng is not None else np.random.default_rng()
        iu, iv = (cu - cu.min()).astype(np.intp), (cv - cv.min()).astype(np.intp)
        there = rng.random((int(iv.max()) + 1, int(iu.max()) + 1)) < keep  # one draw per dot
        screen *= there[iv, iu]
    return screen


def _arc(layers: np.ndarray, mid_y: float, max_arc: float, rng: np.random.Generator) -> np.ndarray:
    """The flat layers bent along a circle: column x goes to the angle (x - w/2) / R around the centre,
    row mid_y lies on radius R, and every glyph turns with the circle (a remap, not a column shift).

    The text's middle row keeps its length; the circle's centre lies below the text (an arch) or above
    it (a bowl) with equal odds. The result's canvas holds the whole bent layer.
    """
    h, w = layers.shape[:2]
    theta = math.radians(rng.uniform(min(25.0, max_arc), max(max_arc, 25.0)))
    radius = max(w / theta, 1.2 * h)  # the inner edge stays a positive distance from the centre
    arch = rng.random() < 0.5
    # Where the source border lands: the bent canvas's bounding box.
    xs = np.concatenate([np.linspace(0, w, 64), np.linspace(0, w, 64), np.zeros(8), np.full(8, w)])
    ys = np.concatenate([np.zeros(64), np.full(64, h), np.linspace(0, h, 8), np.linspace(0, h, 8)])
    phi = (xs - w / 2.0) / radius
    r = radius + ((mid_y - ys) if arch else (ys - mid_y))
    px, py = r * np.sin(phi), (-r * np.cos(phi)) if arch else (r * np.cos(phi))
    x0, y0 = math.floor(px.min()) - 1, math.floor(py.min()) - 1
    out_w, out_h = math.ceil(px.max()) + 2 - x0, math.ceil(py.max()) + 2 - y0
    if out_w > 8 * w + 8 * h or out_h > 8 * h + w:  # degenerate: keep the text flat
        return layers
    gx = np.arange(out_w, dtype=np.float32)[None, :] + np.float32(x0)
    gy = np.arange(out_h, dtype=np.float32)[:, None] + np.float32(y0)
    dy = -gy if arch else gy
    rr = np.sqrt(gx * gx + dy * dy)
    map_x = (np.arctan2(gx, dy) * np.float32(radius) + np.float32(w / 2.0)).astype(np.float32)
    map_y = ((mid_y - (rr - radius)) if arch else (mid_y + (rr - radius))).astype(np.float32)
    return cv2.remap(layers, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _window(arr: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """arr[y0:y1, x0:x1] with zeros where the window leaves the array."""
    h, w = arr.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + arr.shape[2:], dtype=arr.dtype)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = arr[sy0:sy1, sx0:sx1]
    return out


class SynthRenderer:
    """Renders synthetic text crops. ``sample(index)`` is deterministic given (seed, index).

    config: what to draw (SynthConfig defaults when None).
    charset: the symbols texts may use (default: the ``en`` dictionary plus space). With a lowercasing
        charset (``ic15``) upper-case letters are drawn too, since their labels encode the same.
    """

    def __init__(
        self, config: SynthConfig | None = None, charset: Charset | None = None, seed: int = 0
    ) -> None:
        self.config = config = config or SynthConfig()
        self.charset = charset = charset or load_charset("en", use_space_char=True)
        self.seed = int(seed)
        wanted = set(charset.symbols)
        if charset.lowercase:
            wanted |= {s.upper() for s in charset.symbols if len(s.upper()) == 1 and s.upper().lower() == s}
        symbols = tuple(sorted(wanted))
        paths = discover_fonts(
            config.font_dirs, config.matplotlib_fonts, config.system_fonts, config.package_fonts
        )
        self.fonts: list[tuple[str, frozenset[str]]] = []
        for path in paths:
            coverage = font_coverage(str(path), symbols)
            if coverage:
                self.fonts.append((str(path), coverage))
        if not self.fonts:
            raise UsageError(
                "no usable font for synthetic text: install matplotlib (it ships DejaVu fonts) "
                "or give a folder of .ttf/.otf fonts in SynthConfig.font_dirs"
            )
        self.families = {path: font_family(path) for path, _ in self.fonts}
        self.small_caps = frozenset(path for path, _ in self.fonts if draws_small_caps(path))
        # The same facts as arrays, for picking a font per sample without a loop over hundreds of fonts:
        # coverage (font x symbol), each font's family number (in name order) and whether it is small caps.
        self._symbol_index = {s: i for i, s in enumerate(symbols)}
        self._coverage = np.array([[s in cov for s in symbols] for _, cov in self.fonts], dtype=bool)
        names = sorted(set(self.families.values()))
        self._family_of = np.array([names.index(self.families[p]) for p, _ in self.fonts])
        self._is_small_caps = np.array([p in self.small_caps for p, _ in self.fonts], dtype=bool)
        covered = frozenset().union(*(c for _, c in self.fonts))
        self.uncovered = frozenset(wanted - covered)  # symbols no font draws: never generated
        self.text_source = TextSource(
            config, covered, read_texts(config.text_files), common_words(config.common_words)
        )
        self.backgrounds: list[str] = []
        if config.background_dir:
            root = Path(config.background_dir)
            if not root.is_dir():
                raise UsageError(f"background folder {root} does not exist")
            self.backgrounds = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        weights = list(config.background_weights)
        if not self.backgrounds:
            weights[BACKGROUND_KINDS.index("image")] = 0.0
        self._bg_kinds = _table(list(zip(BACKGROUND_KINDS, [w if sum(weights) else 1.0 for w in weights])))
        self._rng = np.random.default_rng([self.seed, 2**63 - 1])  # render() without an rng

    # -- public -----------------------------------------------------------------------------------------
    def sample(self, index: int) -> tuple[np.ndarray, str]:
        """The ``index``-th sample of this seed: (H x W x 3 uint8 BGR, text). Same inputs, same image."""
        if index < 0:
            raise UsageError(f"sample index must be >= 0, got {index}")
        return self.render(rng=np.random.default_rng([self.seed, int(index)]))

    def render(
        self, text: str | None = None, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, str]:
        """Render ``text`` (or a generated one): (H x W x 3 uint8 BGR, text). Draws from ``rng``."""
        rng = rng if rng is not None else self._rng
        if text is None:
            text = self.text_source(rng)
        elif not text.strip():
            raise UsageError("cannot render an empty text")
        needed = set(text)
        usable = np.zeros(len(self.fonts), dtype=bool)
        if needed <= self._symbol_index.keys():
            usable = self._coverage[:, [self._symbol_index[c] for c in needed]].all(axis=1)
            if text != text.upper():
                usable &= ~self._is_small_caps
        if not usable.any():
            missing = set(text) - frozenset().union(*(c for _, c in self.fonts))
            raise UsageError(
                f"no font draws all of {text!r} (missing: {''.join(sorted(missing)) or 'no single font'})"
            )
        cfg = self.config
        out_h = int(rng.integers(cfg.height_range[0], cfg.height_range[1] + 1))
        lo, hi = cfg.font_size_range
        size = int(
            np.clip(round(out_h * rng.uniform(0.55, 1.0) / 2) * 2, lo, hi)
        )  # even sizes: fewer cached fonts
        families = np.unique(self._family_of[usable])  # a family first, then one of its faces
        family = families[int(rng.integers(len(families)))]
        faces = np.flatnonzero(usable & (self._family_of == family))
        font = _font(self.fonts[int(faces[int(rng.integers(len(faces)))])][0], size)
        layers, cap_top, base_y = self._rasterize(text, font, size, rng)
        layers = self._distort(layers, size, cap_top, base_y, rng)
        crop = self._crop(layers, size, rng)
        img = self._compose(crop, size, rng)
        return self._degrade(img, out_h, rng), text

    # -- steps ------------------------------------------------------------------------------------------
    def _rasterize(
        self, text: str, font: ImageFont.FreeTypeFont, size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, int, int]:
        """H x W x 3 uint8 layers (fill, outline, cap-height guide), the guide's top row and the baseline."""
        cfg = self.config
        ascent, descent = font.getmetrics()
        spacing = 0
        if len(text) > 1 and rng.random() < cfg.p_spacing:
            spacing = int(round(size * (rng.random() ** 2 * (cfg.max_spacing + 0.04) - 0.04)))
        outline = max(1, int(round(size * rng.uniform(0.03, 0.08)))) if rng.random() < cfg.p_outline else 0
        bold = max(1, size // 28) if rng.random() < cfg.p_bold else 0
        x0, _, x1, _ = font.getbbox(text, anchor="ls")
        advances = [font.getlength(ch) for ch in text] if spacing else []
        width = (sum(advances) + spacing * (len(text) - 1)) if spacing else (x1 - min(x0, 0))
        pad = size // 2 + outline + bold + 2
        w, h = int(math.ceil(width)) + 2 * pad + size // 4, ascent + descent + 2 * pad
        base_y, x_org = pad + ascent, pad - min(x0, 0)
        fill = Image.new("L", (w, h), 0)
        layers = [fill, Image.new("L", (w, h), 0)]
        for layer, stroke in ((fill, bold), (layers[1], bold + outline)) if outline else ((fill, bold),):
            draw = ImageDraw.Draw(layer)
            if not spacing:
                draw.text(
                    (x_org, base_y),
                    text,
                    font=font,
                    fill=255,
                    anchor="ls",
                    stroke_width=stroke,
                    stroke_fill=255,
                )
                continue
            x = float(x_org)
            for ch, adv in zip(text, advances):
                draw.text(
                    (x, base_y), ch, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255
                )
                x += adv + spacing
        if rng.random() < cfg.p_underline:
            y = base_y + max(1, int(descent * rng.uniform(0.2, 0.6)))
            ImageDraw.Draw(fill).line([(x_org, y), (x_org + width, y)], fill=255, width=max(1, size // 16))
        cap_top = base_y + int(font.getbbox("H", anchor="ls")[1])
        out = np.zeros((h, w, 3), dtype=np.uint8)
        out[:, :, 0] = np.asarray(fill)
        if outline:
            out[:, :, 1] = np.asarray(layers[1])
        out[cap_top:base_y, x_org : x_org + max(1, int(width)), 2] = 255
        return out, cap_top, base_y

    def _distort(
        self, layers: np.ndarray, size: int, cap_top: int, base_y: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Curved baseline, then one perspective warp for rotation, shear and corner jitter."""
        cfg = self.config
        h, w = layers.shape[:2]
        if rng.random() < cfg.p_curve:
            amp = rng.uniform(0.05, max(cfg.max_curve, 0.05)) * size * rng.choice([-1.0, 1.0])
            xs = np.arange(w, dtype=np.float32) / max(w - 1, 1)
            if rng.random() < 0.6:
                dy = amp * ((2 * xs - 1) ** 2 - 0.5)  # arc
            else:
                dy = amp * np.sin(2 * np.pi * (xs * rng.uniform(0.5, 1.5) + rng.random()))  # wave
            map_x = np.broadcast_to(np.arange(w, dtype=np.float32), (h, w))
            map_y = np.arange(h, dtype=np.float32)[:, None] + dy[None, :].astype(np.float32)
            layers = cv2.remap(layers, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
        cy = (cap_top + base_y) / 2.0
        if rng.random() < cfg.p_arc:
            layers = _arc(layers, cy, cfg.max_arc, rng)
            h, w = layers.shape[:2]
            cy = h / 2.0
        m = np.eye(3)
        moved = False  # np.allclose(m, eye) costs more than the warp's other bookkeeping
        cx = w / 2.0
        if rng.random() < cfg.p_vanish:
            moved = True
            # The far edge (right or left) shrinks about the text's middle row and may sit higher or lower.
            k = rng.uniform(1.0 - cfg.max_vanish, 0.9)
            lift = rng.uniform(-0.3, 0.3) * size
            src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
            dst = src.copy()
            far = (1, 2) if rng.random() < 0.5 else (0, 3)
            for i in far:
                dst[i, 1] = cy + (src[i, 1] - cy) * k + lift
            m = cv2.getPerspectiveTransform(src, dst) @ m
        if rng.random() < cfg.p_perspective:
            moved = True
            j = cfg.max_perspective * size
            # Jitter the whole canvas's corners: a quad inside the canvas would extrapolate its corners,
            # possibly past the horizon, and cut the text.
            src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
            dst = (src + rng.uniform(-j, j, size=(4, 2))).astype(np.float32)
            m = cv2.getPerspectiveTransform(src, dst) @ m
        if rng.random() < cfg.p_shear:
            moved = True
            s = rng.uniform(-0.3, 1.0) * cfg.max_shear  # mostly forward-leaning, like italics
            m = np.array([[1, -s, s * cy], [0, 1, 0], [0, 0, 1]]) @ m
        if rng.random() < cfg.p_rotate:
            moved = True
            a = math.radians(
                float(np.clip(rng.normal(0, cfg.max_rotation / 2), -cfg.max_rotation, cfg.max_rotation))
            )
            c, s_ = math.cos(a), math.sin(a)
            rot = np.array([[c, s_, 0], [-s_, c, 0], [0, 0, 1]])
            m = (
                np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
                @ rot
                @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
                @ m
            )
        if not moved:
            return layers
        corners = cv2.perspectiveTransform(np.float32([[[0, 0], [w, 0], [w, h], [0, h]]]), m)[0]
        (mx, my), (nx, ny) = corners.min(0), corners.max(0)
        m = np.array([[1, 0, -mx], [0, 1, -my], [0, 0, 1]]) @ m
        out_w, out_h = int(math.ceil(nx - mx)), int(math.ceil(ny - my))
        if out_w > 8 * w or out_h > 8 * h:  # a degenerate jitter: keep the text flat instead
            return layers
        return cv2.warpPerspective(layers, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)

    def _crop(self, layers: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        """Cut the crop around the ink (and usually the cap-height band) with random margins."""
        cfg = self.config
        ink = np.maximum(layers[:, :, 0], layers[:, :, 1])
        rows, cols = np.flatnonzero(ink.max(1) > 40), np.flatnonzero(ink.max(0) > 40)
        guide = np.flatnonzero(layers[:, :, 2].max(1) > 127)
        if rows.size == 0:
            rows = guide if guide.size else np.arange(layers.shape[0])
            cols = np.flatnonzero(layers[:, :, 2].max(0) > 127) if guide.size else np.arange(layers.shape[1])
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        if guide.size and rng.random() < 0.8:  # a detector's box spans the line, not only the ink
            y0, y1 = min(y0, int(guide[0])), max(y1, int(guide[-1]) + 1)
        th = max(y1 - y0, size // 3)
        if rng.random() < cfg.p_tight:
            m = rng.uniform(0.0, 0.08, size=4) * th
            if rng.random() < cfg.p_cut:  # a detector's box a little short of the ink at one end
                m[2 + int(rng.integers(2))] = -rng.uniform(0.03, 0.12) * th
        else:
            m = rng.uniform(0.02, max(cfg.max_margin, 0.03), size=4) * th * np.array([0.7, 0.7, 1.0, 1.0])
        return _window(layers, y0 - int(m[0]), y1 + int(m[1]), x0 - int(m[2]), x1 + int(m[3]))

    def _background(self, h: int, w: int, dark: bool, rng: np.random.Generator) -> np.ndarray:
        kind = _pick(self._bg_kinds, rng)
        luma = rng.uniform(0, 110) if dark else rng.uniform(135, 255)
        base = _color(rng, luma, rng.random() ** 4 * 0.7)  # mostly paper, wall and sign greys
        if kind == "image":
            img = _background_image(self.backgrounds[int(rng.integers(len(self.backgrounds)))])
            if img is not None:
                bh, bw = img.shape[:2]
                scale = rng.uniform(0.3, 1.5)
                ch, cw = max(1, min(bh, int(h * scale))), max(1, min(bw, int(w * scale)))
                y, x = int(rng.integers(0, bh - ch + 1)), int(rng.integers(0, bw - cw + 1))
                tex = cv2.resize(img[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
                # Seen through a flat tint, so a busy photo stays a texture rather than competing text.
                k = rng.uniform(0.3, 0.8)
                return (tex.astype(np.float32) * k + base * (1 - k)).astype(np.float32)
            kind = "noise"
        bg = np.empty((h, w, 3), dtype=np.float32)
        bg[:] = base
        if kind == "gradient":
            other = _color(rng, np.clip(luma + rng.uniform(-60, 60), 0, 255), rng.random() ** 4 * 0.7)
            angle = rng.uniform(0, 2 * np.pi)
            t = (
                np.cos(angle) * np.linspace(0, 1, w, dtype=np.float32)[None, :]
                + np.sin(angle) * np.linspace(0, 1, h, dtype=np.float32)[:, None]
            )
            t = (t - t.min()) / (float(t.max() - t.min()) + 1e-6)
            bg += t[:, :, None] * (other - base)
        elif kind == "noise":
            gh, gw = int(rng.integers(2, 6)), int(rng.integers(2, 12))
            # Mostly brightness blotches (dirt, lighting), a little colour.
            blobs = rng.standard_normal((gh, gw, 1)).astype(np.float32) + 0.25 * rng.standard_normal(
                (gh, gw, 3)
            )
            blobs = (blobs * rng.uniform(4, 30)).astype(np.float32)
            bg += cv2.resize(blobs, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, 3)
            grain = rng.uniform(0, 8)
            if grain > 1:
                bg += _gaussian(rng, (h, w, 1)) * grain
        if rng.random() < self.config.p_clutter:
            self._clutter(bg, luma, rng)
        return bg

    @staticmethod
    def _clutter(bg: np.ndarray, luma: float, rng: np.random.Generator) -> None:
        """Things a detector's box catches besides the text: a sign's edge, a stripe, a frame."""
        h, w = bg.shape[:2]
        color = tuple(
            float(v)
            for v in _color(
                rng,
                float(np.clip(luma + rng.choice([-1, 1]) * rng.uniform(40, 120), 0, 255)),
                rng.random() * 0.6,
            )
        )
        r = rng.random()
        if r < 0.4:  # the edge of the board: a band along the top or the bottom
            k = int(rng.integers(1, max(2, h // 6)))
            if rng.random() < 0.5:
                bg[:k] = color
            else:
                bg[h - k :] = color
        elif r < 0.7:  # a thin stripe or rule across the crop
            y = int(rng.choice([rng.integers(0, max(1, h // 5)), rng.integers(h - max(1, h // 5), h)]))
            cv2.line(bg, (0, y), (w - 1, y + int(rng.integers(-2, 3))), color, int(rng.integers(1, 3)))
        else:  # a frame around the text
            t = int(rng.integers(1, 3))
            cv2.rectangle(bg, (t // 2, t // 2), (w - 1 - t // 2, h - 1 - t // 2), color, t)

    def _compose(self, crop: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        h, w = crop.shape[:2]
        bg = self._background(h, w, rng.random() < cfg.p_invert, rng)
        bg_luma = float(bg[::3, ::3].reshape(-1, 3).mean(0) @ _LUMA)  # every 9th pixel: enough for a mean
        contrast = rng.uniform(cfg.min_contrast, max(cfg.min_contrast, 230))
        if bg_luma >= 128:  # dark text, skewed towards black
            luma = max(bg_luma - contrast, 0.0) * rng.random() ** 1.5
        else:
            luma = 255 - (255 - min(bg_luma + contrast, 255.0)) * rng.random() ** 1.5
        color = _color(rng, luma, rng.random() ** 3 * 0.9)
        fill = crop[:, :, 0].astype(np.float32) * (1 / 255)
        if rng.random() < cfg.p_dot_matrix:
            fill *= _dot_screen(h, w, max(2.5, size / rng.uniform(7.0, 10.0)), 0.0, rng.uniform(0.3, 0.5))
        if rng.random() < cfg.p_faded:
            fill *= rng.uniform(0.65, 1.0)
        if rng.random() < cfg.p_halftone:
            shade = _dot_screen(h, w, rng.uniform(2.5, 5.0), rng.choice([0.0, 45.0]), rng.uniform(0.25, 0.45))
            # dots between paper and text in lightness: the screen never outdoes the print on it
            ink = _color(rng, bg_luma + (luma - bg_luma) * rng.uniform(0.3, 0.65), 0.1)
            bg = bg + (ink - bg) * (shade * rng.uniform(0.6, 1.0))[:, :, None]
        if rng.random() < cfg.p_stipple:
            pitch = h / rng.uniform(7.0, 11.0)
            dots = _dot_screen(
                h, w, pitch, rng.choice([0.0, 45.0]), rng.uniform(0.15, 0.25), rng.uniform(0.3, 0.7), rng
            )
            ink = _color(rng, bg_luma + (luma - bg_luma) * rng.uniform(0.6, 1.0), 0.1)
            bg = bg + (ink - bg) * dots[:, :, None]
        img = bg
        if rng.random() < cfg.p_shadow:
            ink = np.maximum(fill, crop[:, :, 1].astype(np.float32) * (1 / 255))
            dx, dy = (int(round(v)) for v in rng.uniform(0.03, 0.1, 2) * size * rng.choice([-1, 1], 2))
            shadow = cv2.warpAffine(ink, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h))
            shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(0.5, 2.5))[:, :, None] * rng.uniform(
                0.4, 0.9
            )
            img = img * (1 - shadow) + _color(rng, luma * 0.5, 0.2) * shadow
        if crop[:, :, 1].any():
            outline = crop[:, :, 1].astype(np.float32)[:, :, None] * (1 / 255)
            other = _color(rng, 255 - luma, rng.random() * 0.8)
            img = img * (1 - outline) + other * outline
        if rng.random() < cfg.p_text_gradient:
            end = _color(rng, luma, rng.random() * 0.9)
            color = color + np.linspace(0, 1, w, dtype=np.float32)[None, :, None] * (end - color)
        img = img * (1 - fill[:, :, None]) + color * fill[:, :, None]
        return np.clip(img, 0, 255)

    def _degrade(self, img: np.ndarray, out_h: int, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        h, w = img.shape[:2]
        stretch = (
            1.0 + rng.uniform(-cfg.max_stretch, cfg.max_stretch) if rng.random() < cfg.p_stretch else 1.0
        )
        out_w = max(1, int(round(w * out_h / h * stretch)))
        interp = cv2.INTER_AREA if out_h < h else cv2.INTER_LINEAR
        img = cv2.resize(img, (out_w, out_h), interpolation=interp)
        if rng.random() < cfg.p_lowres:
            f = rng.uniform(1.3, max(cfg.max_lowres, 1.3))
            small = cv2.resize(
                img, (max(1, int(out_w / f)), max(1, int(out_h / f))), interpolation=cv2.INTER_AREA
            )
            up = cv2.INTER_NEAREST if rng.random() < 0.15 else cv2.INTER_LINEAR
            img = cv2.resize(small, (out_w, out_h), interpolation=up)
        if rng.random() < cfg.p_blur:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, max(cfg.max_blur, 0.3)))
        if rng.random() < cfg.p_motion_blur:
            k = int(rng.integers(3, 8))
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(-30, 30), 1.0)
            kernel = cv2.warpAffine(kernel, rot, (k, k))
            img = cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1e-6))
        if rng.random() < cfg.p_contrast:
            img = img * rng.uniform(0.6, 1.25) + rng.uniform(-35, 35)
            if rng.random() < 0.3:
                img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)
        if rng.random() < cfg.p_noise:
            sigma = rng.uniform(1.0, max(cfg.max_noise, 1.0))
            img = img + _gaussian(rng, img.shape) * sigma
        out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        if rng.random() < cfg.p_gray:
            out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if rng.random() < cfg.p_jpeg:
            q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok:
                out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return np.ascontiguousarray(out)


def render_grid(renderer: SynthRenderer, count: int = 40, columns: int = 2, start: int = 0) -> np.ndarray:
    """Samples start..start+count-1 tiled on a gray sheet (for looking at them), BGR uint8."""
    cell_h, cell_w = 72, 400
    rows = -(-count // columns)
    sheet = np.full((rows * cell_h, columns * cell_w, 3), 128, np.uint8)
    for i in range(count):
        img, _ = renderer.sample(start + i)
        h, w = img.shape[:2]
        scale = min(1.0, (cell_w - 4) / w, (cell_h - 4) / h)
        if scale < 1.0:
            img = cv2.resize(
                img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA
            )
        r, c = divmod(i, columns)
        sheet[
            r * cell_h + 2 : r * cell_h + 2 + img.shape[0], c * cell_w + 2 : c * cell_w + 2 + img.shape[1]
        ] = img
    return sheet


if __name__ == "__main__":  # python -m crnn_cli.synth OUT.png [COUNT]: a quick look at the defaults
    grid = render_grid(SynthRenderer(), int(sys.argv[2]) if len(sys.argv) > 2 else 40)
    cv2.imwrite(sys.argv[1] if len(sys.argv) > 1 else "synth_grid.png", grid)
