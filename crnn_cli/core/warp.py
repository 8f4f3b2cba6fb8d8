"""Bending text along a circle: the renderer's arcs (crnn_cli.synth) and the same bend applied to real
crops in training (RecAug ``arc_prob``) and in the dev report's real_arc set. numpy + OpenCV only."""

from __future__ import annotations

import math

import numpy as np

from crnn_cli.core.images import cv2


def bend_along_arc(
    layers: np.ndarray,
    mid_y: float,
    max_arc: float,
    rng: np.random.Generator,
    border: int = cv2.BORDER_CONSTANT,
    min_arc: float = 25.0,
) -> np.ndarray:
    """The flat layers bent along a circle: column x goes to the angle (x - w/2) / R around the centre,
    row mid_y lies on radius R, and every glyph turns with the circle (a remap, not a column shift).

    The text's middle row keeps its length; the circle's centre lies below the text (an arch) or above
    it (a bowl) with equal odds; the angle the text spans is drawn between ``min_arc`` and ``max_arc``
    degrees (both must be positive; the smaller of the two is the lower end). The result's canvas
    holds the whole bent layer; ``border`` fills what lies outside it (zeros for the renderer's layers,
    the crop's own edge pixels, cv2.BORDER_REPLICATE, for a photo).
    """
    h, w = layers.shape[:2]
    if min(min_arc, max_arc) <= 0:
        raise ValueError(f"arc angles must be positive, got {min_arc} and {max_arc} degrees")
    theta = math.radians(rng.uniform(min(min_arc, max_arc), max(max_arc, min_arc)))
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
    return cv2.remap(layers, map_x, map_y, cv2.INTER_LINEAR, borderMode=border, borderValue=0)


def vanish_matrix(w: int, h: int, mid_y: float, shrink: float, lift: float, far_right: bool) -> np.ndarray:
    """The homography that moves one end of a w x h crop farther away: that edge (the right one, or
    the left) shrinks to ``shrink`` of its height about row ``mid_y`` and moves down by ``lift``
    pixels; the glyphs between crowd towards it as a sign seen from its near end does."""
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src.copy()
    for i in (1, 2) if far_right else (0, 3):
        dst[i, 1] = mid_y + (src[i, 1] - mid_y) * shrink + lift
    return cv2.getPerspectiveTransform(src, dst)


def warp_whole(img: np.ndarray, m: np.ndarray, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """``img`` through the homography ``m`` onto a canvas that holds all of it; ``img`` unchanged when
    the canvas would grow past 8 times a side (a degenerate warp)."""
    h, w = img.shape[:2]
    corners = cv2.perspectiveTransform(np.float32([[[0, 0], [w, 0], [w, h], [0, h]]]), m)[0]
    (mx, my), (nx, ny) = corners.min(0), corners.max(0)
    m = np.array([[1, 0, -mx], [0, 1, -my], [0, 0, 1]]) @ m
    out_w, out_h = int(math.ceil(nx - mx)), int(math.ceil(ny - my))
    if out_w > 8 * w or out_h > 8 * h:
        return img
    return cv2.warpPerspective(
        img, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0
    )
