"""SynthRenderer: finds the fonts and builds the text source once, then renders a sample by running the
steps (text, font, layers, geometry, paint, degradation) in a fixed order from one generator. A text is
drawn with a font that covers all of its symbols: a family first, then one of its faces.
render_grid tiles samples on a sheet for a look.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crnn_cli.core.charset import Charset, load_charset
from crnn_cli.core.errors import UsageError
from crnn_cli.core.images import cv2
from crnn_cli.synth.config import BACKGROUND_KINDS, SynthConfig
from crnn_cli.synth.degradation import degrade
from crnn_cli.synth.fonts import _font, discover_fonts, draws_small_caps, font_coverage, font_family
from crnn_cli.synth.geometry import crop_around_ink, distort
from crnn_cli.synth.layers import rasterize
from crnn_cli.synth.paint import compose
from crnn_cli.synth.sampling import _table
from crnn_cli.synth.text import TextSource
from crnn_cli.synth.words import common_words, read_texts

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


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
        layers, cap_top, base_y = rasterize(cfg, text, font, size, rng)
        layers = distort(cfg, layers, size, cap_top, base_y, rng)
        crop = crop_around_ink(cfg, layers, size, rng)
        img = compose(cfg, self._bg_kinds, self.backgrounds, crop, size, rng)
        return degrade(cfg, img, out_h, rng), text


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
