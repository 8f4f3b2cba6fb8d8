#!/usr/bin/env python3
"""Render the bundled sample crops (crnn_cli/samples/*.png): a street sign, a shop sign, a screenshot
label, a receipt line, a scanned line and a number plate-like code, each with known text.

They are made by this script (fonts shipped with matplotlib, drawn with Pillow, degraded with OpenCV),
so no dataset image is redistributed. Deterministic: the same files come out on every run.

    python scripts/make_samples.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"

# name, text, font file, size, ink (RGB), paper (RGB), rotation (deg), blur sigma, noise sigma, jpeg q
SAMPLES = [
    ("street_sign", "Welcome", "DejaVuSans-Bold.ttf", 44, (250, 250, 250), (24, 110, 60), -2.0, 0.8, 6, 70),
    ("shop_sign", "OPEN", "DejaVuSans-Bold.ttf", 48, (200, 20, 30), (245, 240, 225), 1.5, 0.6, 5, 60),
    ("screenshot", "Settings", "DejaVuSans.ttf", 30, (40, 40, 40), (255, 255, 255), 0.0, 0.0, 0, 0),
    ("receipt", "TOTAL 12.50", "DejaVuSansMono.ttf", 30, (50, 50, 55), (232, 230, 222), 0.5, 0.7, 8, 0),
    ("scan", "Invoice 2024", "DejaVuSerif.ttf", 32, (20, 20, 30), (238, 238, 235), -0.7, 0.5, 7, 0),
    ("code", "KPL-4172", "DejaVuSans-Bold.ttf", 40, (15, 15, 15), (230, 200, 40), 0.0, 0.9, 5, 75),
]


def render(
    text: str, font: str, size: int, ink, paper, angle: float, blur: float, noise: float, q: int, seed: int
):
    f = ImageFont.truetype(str(FONTS / font), size)
    left, top, right, bottom = f.getbbox(text)
    pad = size // 3
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), paper)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=f, fill=ink)
    if angle:
        img = img.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=paper)
    arr = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(seed)
    if blur:
        arr = cv2.GaussianBlur(arr, (0, 0), blur)
    if noise:
        arr = np.clip(arr + rng.normal(0, noise, arr.shape), 0, 255).astype(np.uint8)
    if q:
        arr = cv2.imdecode(cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)
    return arr


def main() -> None:
    out = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[1] / "crnn_cli" / "samples"
    )
    out.mkdir(parents=True, exist_ok=True)
    for i, (name, text, *style) in enumerate(SAMPLES):
        cv2.imwrite(str(out / f"{name}.png"), render(text, *style, seed=i))
        print(f"{name}.png\t{text}")


if __name__ == "__main__":
    main()
