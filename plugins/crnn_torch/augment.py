"""Augmentation of real text crops (PaddleOCR ``RecAug`` style), numpy + OpenCV, driven by a given RNG.

TIA-style warps move control points along the top and bottom edges of the crop and resample the image
through the displaced grid: ``distort`` jitters every point, ``stretch`` slides segment boundaries
sideways (local squash/stretch), ``perspective`` tilts the whole crop. ``arc`` (crnn's own) bends the
crop along a circle, as text on a round sign, a logo or a bottle is (crnn_cli.core.warp, the renderer's
bend, the crop's edge pixels filling the corners): the curved text of the benchmarks with real faces
and textures, where the renderer gives curves only to its own fonts; ``vanish`` (crnn's too) moves one
end of the crop farther away, as on a sign seen from one side. Photometric operations: colour
(HSV) shift, brightness/contrast jitter, Gaussian blur, Gaussian noise, inversion, and a small crop of
rows. Each operation fires with its own probability (RecAugOp); all randomness comes from the ``rng``
argument, so a sample's augmentation is a function of its seed, whatever worker draws it.

Images: H x W x 3 uint8 BGR in, same layout out (crop takes a few rows off; arc enlarges small crops
to 48 px high and returns the bent crop's whole, taller canvas).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from crnn_cli.core.images import cv2
from crnn_cli.core.warp import bend_along_arc, vanish_matrix, warp_whole

ARC_MAX_DEGREES = 120.0  # the widest bend of a real crop: the angle its text spans on the circle
# A long crop is bent less: the bend's sag (how far the middle rises above the ends, about w * angle / 8)
# stays within this many crop heights. Bent 120 degrees, a 35-symbol receipt line (15 times as wide as
# high) shrank to 24 CTC frames at height 32, too few for its label (CTC then drops the sample) and its
# glyphs to 7 px; with the cap it bends at most 30 degrees and keeps about 59 frames. Words (3-5 times
# as wide as high) keep bends of 90-120 degrees.
ARC_MAX_SAG = 1.0
ARC_MIN_HEIGHT = 48  # smaller crops are enlarged (bicubic) first, so the bend resamples smoothly


def _grid_warp(img: np.ndarray, top: np.ndarray, bottom: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Resample ``img`` so that output column xs[i] at the top (bottom) edge reads from ``top[i]``
    (``bottom[i]``), each an (x, y) source point; in between, sources are linearly interpolated."""
    h, w = img.shape[:2]
    cols = np.arange(w, dtype=np.float32)
    top_x, top_y = np.interp(cols, xs, top[:, 0]), np.interp(cols, xs, top[:, 1])
    bot_x, bot_y = np.interp(cols, xs, bottom[:, 0]), np.interp(cols, xs, bottom[:, 1])
    t = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None]  # 0 at the top row, 1 at the bottom
    map_x = ((1 - t) * top_x[None, :] + t * bot_x[None, :]).astype(np.float32)
    map_y = ((1 - t) * top_y[None, :] + t * bot_y[None, :]).astype(np.float32)
    return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _control_points(w: int, h: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    # Roughly one segment per character-sized chunk (a crop h high holds about w/h characters).
    segments = int(np.clip(round(w / max(h, 1)), 1, 8)) + int(rng.integers(0, 2))
    return np.linspace(0, w - 1, segments + 1).astype(np.float32), segments


def tia_distort(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Jitter every control point by up to a quarter of the crop height (or of a segment's width)."""
    h, w = img.shape[:2]
    xs, segments = _control_points(w, h, rng)
    amount = 0.25 * min(h, w / segments)
    top = np.stack([xs, np.zeros_like(xs)], 1) + rng.uniform(-amount, amount, (len(xs), 2))
    bottom = np.stack([xs, np.full_like(xs, h - 1)], 1) + rng.uniform(-amount, amount, (len(xs), 2))
    return _grid_warp(img, top.astype(np.float32), bottom.astype(np.float32), xs)


def tia_stretch(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slide inner segment boundaries sideways (same on top and bottom): characters widen or narrow."""
    h, w = img.shape[:2]
    xs, segments = _control_points(w, h, rng)
    src = xs.copy()
    if segments > 1:
        step = (w - 1) / segments
        src[1:-1] += rng.uniform(-0.4 * step, 0.4 * step, segments - 1)
    top = np.stack([src, np.zeros_like(src)], 1)
    bottom = np.stack([src, np.full_like(src, h - 1)], 1)
    return _grid_warp(img, top.astype(np.float32), bottom.astype(np.float32), xs)


def tia_perspective(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tilt the crop: each corner moves vertically by up to a third of the height."""
    h, w = img.shape[:2]
    d = h / 3.0
    src = np.float32([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    dst = src + np.float32(
        [[0, rng.uniform(0, d)], [0, rng.uniform(0, d)], [0, -rng.uniform(0, d)], [0, -rng.uniform(0, d)]]
    )
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_rows(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut up to 10 % of the rows from the top or the bottom (detector boxes are rarely exact)."""
    h = img.shape[0]
    cut = int(rng.integers(1, max(2, h // 10 + 1)))
    if h - cut < 8:
        return img
    return img[cut:] if rng.random() < 0.5 else img[: h - cut]


def hsv_shift(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift hue, scale saturation and value: a different ink / paper colour."""
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18)) % 180
    hsv[..., 1] *= rng.uniform(0.6, 1.4)
    hsv[..., 2] *= rng.uniform(0.7, 1.3)
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness and contrast change around the crop's mean."""
    f = img.astype(np.float32)
    mean = f.mean()
    out = (f - mean) * rng.uniform(0.6, 1.4) + mean + rng.uniform(-30, 30)
    return np.clip(out, 0, 255).astype(np.uint8)


def blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur; the kernel stays small for small crops so strokes survive."""
    h = img.shape[0]
    sigma = rng.uniform(0.4, 1.2 if h < 40 else 1.8)
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma)


def noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise, sigma up to 12 grey levels."""
    sigma = rng.uniform(2, 12)
    return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def reverse(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Invert: light text on a dark background."""
    return 255 - img


def arc(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop bent along a circle spanning 25-120 degrees (less for long crops, ARC_MAX_SAG), an arch
    or a bowl (see bend_along_arc)."""
    h, w = img.shape[:2]
    widest = min(ARC_MAX_DEGREES, math.degrees(8.0 * ARC_MAX_SAG * h / w))
    if h < ARC_MIN_HEIGHT:
        s = ARC_MIN_HEIGHT / h
        img = cv2.resize(img, (max(1, round(w * s)), ARC_MIN_HEIGHT), interpolation=cv2.INTER_CUBIC)
    return bend_along_arc(
        img, img.shape[0] / 2.0, widest, rng, border=cv2.BORDER_REPLICATE, min_arc=min(25.0, widest)
    )


def vanish(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One end (right or left) 50-90 % of its height and up to 0.3 of it higher or lower, the crop's
    edge pixels filling what the warp uncovers."""
    h, w = img.shape[:2]
    m = vanish_matrix(w, h, h / 2.0, rng.uniform(0.5, 0.9), rng.uniform(-0.3, 0.3) * h, rng.random() < 0.5)
    return warp_whole(img, m, border=cv2.BORDER_REPLICATE)


_TIA = (tia_distort, tia_stretch, tia_perspective)
_PHOTOMETRIC = (
    ("crop", crop_rows),
    ("hsv_aug", hsv_shift),
    ("jitter", jitter),
    ("blur", blur),
    ("noise", noise),
    ("reverse", reverse),
)


def augment(img: np.ndarray, probabilities: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Apply each operation with its probability (keys: tia, arc, vanish, crop, hsv_aug, jitter, blur,
    noise, reverse).

    Crops smaller than 10 x 10 pixels are left alone: warping them destroys the text.
    """
    return augment_warped(img, probabilities, rng)[0]


def augment_warped(
    img: np.ndarray, probabilities: Mapping[str, float], rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """augment(), and whether a TIA warp, an arc or a far end moved the glyphs along the line (the
    other operations keep every glyph where it was, relative to the crop's width)."""
    h, w = img.shape[:2]
    if h < 10 or w < 10:
        return img, False
    warped = rng.random() < probabilities.get("tia", 0.0)
    if warped:
        img = _TIA[int(rng.integers(len(_TIA)))](img, rng)
    # Drawn only when asked for, so configs without them keep their random stream (and their samples).
    for name, op in (("arc", arc), ("vanish", vanish)):
        if probabilities.get(name, 0.0) > 0 and rng.random() < probabilities[name]:
            img = op(img, rng)
            warped = True
    for name, op in _PHOTOMETRIC:
        if rng.random() < probabilities.get(name, 0.0):
            img = op(img, rng)
    return np.ascontiguousarray(img), warped
