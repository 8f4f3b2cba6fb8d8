"""Fonts for the renderer: where they are found, which symbols each draws, its family, small caps.

Fonts are found at run time: matplotlib's bundled TTFs (DejaVu, STIX, Computer Modern), the fonts of pip
font packages, the system font folders, and any extra folders given. Each font is checked symbol by
symbol (glyph present, glyph name not that of another character, not the "missing glyph" box), so a
symbol font never draws tofu or a wrong glyph under a label.
"""

from __future__ import annotations

import logging
import os
import string
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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
_ALNUM = string.ascii_letters + string.digits


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
