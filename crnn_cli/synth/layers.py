"""Text to layers: the text drawn with Pillow (letter spacing, fake bold, outline, underline) into an
H x W x 3 uint8 array: channel 0 the fill, 1 the outline, 2 a guide over the cap-height band, the line
a detector's box spans. geometry.py bends the three alike; paint.py colours them.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from crnn_cli.synth.config import SynthConfig


def rasterize(
    cfg: SynthConfig, text: str, font: ImageFont.FreeTypeFont, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, int, int]:
    """H x W x 3 uint8 layers (fill, outline, cap-height guide), the guide's top row and the baseline."""
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
            draw.text((x, base_y), ch, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255)
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
