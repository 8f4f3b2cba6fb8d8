"""SynthConfig: every knob of the synthetic renderer, with its range checks, and the names of the text
and background kinds it weights."""

from __future__ import annotations

from dataclasses import dataclass, fields

from crnn_cli.core.errors import UsageError

TEXT_KINDS = ("word", "line", "random", "number", "date", "price", "code", "email", "label", "receipt")
BACKGROUND_KINDS = ("solid", "gradient", "noise", "image")


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
