"""Synthetic text crops for training: random text, rendered with random fonts, colours and distortions.

``SynthRenderer(config, charset, seed).sample(index)`` returns ``(bgr uint8 image, text)``, a pure
function of (seed, index, the font set, the config): any number of DataLoader workers can draw from the
same renderer, as an endless stream or as a fixed-size dataset, and get the same images every epoch.
Images are 32-64 px high by default and as wide as the text; the model's preprocessing resizes.

One module per concern, in the order a sample goes through them: config.py (SynthConfig, every knob
and its range), fonts.py (finding fonts, what each draws), words.py and text.py (where words come from,
the label texts), layers.py (text to fill, outline and guide layers), geometry.py (bends, warps, the
crop box), paint.py (background and ink), degradation.py (resize, blur, noise, JPEG) and render.py
(SynthRenderer, which runs them in a fixed order from one generator); sampling.py holds the seeded
draws they share.

This package is training tooling, not part of the numpy-only core: it imports Pillow (and fontTools,
which ships with matplotlib). ``python -m crnn_cli.synth OUT.png [COUNT]`` draws a sheet of samples.
"""

from crnn_cli.synth.config import BACKGROUND_KINDS, TEXT_KINDS, SynthConfig
from crnn_cli.synth.fonts import (
    FONT_SUFFIXES,
    SYSTEM_FONT_DIRS,
    discover_fonts,
    draws_small_caps,
    font_coverage,
    font_family,
    package_font_dirs,
)
from crnn_cli.synth.render import SynthRenderer, render_grid
from crnn_cli.synth.text import TextSource
from crnn_cli.synth.words import CharNgram, common_words, read_texts

__all__ = [
    "BACKGROUND_KINDS",
    "FONT_SUFFIXES",
    "SYSTEM_FONT_DIRS",
    "TEXT_KINDS",
    "CharNgram",
    "SynthConfig",
    "SynthRenderer",
    "TextSource",
    "common_words",
    "discover_fonts",
    "draws_small_caps",
    "font_coverage",
    "font_family",
    "package_font_dirs",
    "read_texts",
    "render_grid",
]
