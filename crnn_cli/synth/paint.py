"""Colour: backgrounds (solid, gradient, blotches, a photo crop, clutter), the ink's colour and contrast
against them, dot-matrix print, halftone and stipple screens, shadows, outlines and colour gradients.
Layers in, a float32 BGR image out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from crnn_cli.core.images import cv2
from crnn_cli.synth.config import SynthConfig
from crnn_cli.synth.sampling import _gaussian, _pick

_LUMA = np.asarray([0.114, 0.587, 0.299], dtype=np.float32)  # BGR weights of perceived brightness


def _color(rng: np.random.Generator, luma: float, saturation: float) -> np.ndarray:
    """A BGR colour (float32, 3) near brightness ``luma`` with a random hue of strength ``saturation``."""
    d = rng.standard_normal(3).astype(np.float32)
    d -= (d @ _LUMA) / (_LUMA @ _LUMA) * _LUMA  # a hue direction that leaves brightness unchanged
    d /= float(np.abs(d).max()) + 1e-6
    return np.clip(luma + saturation * 160.0 * d, 0, 255).astype(np.float32)


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


def background(
    cfg: SynthConfig,
    kinds: tuple[tuple[str, ...], np.ndarray],
    images: Sequence[str],
    h: int,
    w: int,
    dark: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """H x W x 3 float32 BGR: dark or light paper of a kind drawn from ``kinds`` (the weights table of
    BACKGROUND_KINDS), or a crop of one of ``images``."""
    kind = _pick(kinds, rng)
    luma = rng.uniform(0, 110) if dark else rng.uniform(135, 255)
    base = _color(rng, luma, rng.random() ** 4 * 0.7)  # mostly paper, wall and sign greys
    if kind == "image":
        img = _background_image(images[int(rng.integers(len(images)))])
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
        blobs = rng.standard_normal((gh, gw, 1)).astype(np.float32) + 0.25 * rng.standard_normal((gh, gw, 3))
        blobs = (blobs * rng.uniform(4, 30)).astype(np.float32)
        bg += cv2.resize(blobs, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, 3)
        grain = rng.uniform(0, 8)
        if grain > 1:
            bg += _gaussian(rng, (h, w, 1)) * grain
    if rng.random() < cfg.p_clutter:
        clutter(bg, luma, rng)
    return bg


def clutter(bg: np.ndarray, luma: float, rng: np.random.Generator) -> None:
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


def compose(
    cfg: SynthConfig,
    kinds: tuple[tuple[str, ...], np.ndarray],
    images: Sequence[str],
    crop: np.ndarray,
    size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """The layers (crop: H x W x 3 uint8) as ink on a background: H x W x 3 float32 BGR in 0..255."""
    h, w = crop.shape[:2]
    bg = background(cfg, kinds, images, h, w, rng.random() < cfg.p_invert, rng)
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
        shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(0.5, 2.5))[:, :, None] * rng.uniform(0.4, 0.9)
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
