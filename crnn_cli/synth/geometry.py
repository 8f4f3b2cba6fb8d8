"""The shape of the text: a curved baseline, an arc, a vanishing end, perspective, shear and rotation
applied to the layers (layers.py), then the crop box around the ink with loose, tight or cutting margins.
"""

from __future__ import annotations

import math

import numpy as np

from crnn_cli.core.images import cv2
from crnn_cli.core.warp import bend_along_arc as _arc
from crnn_cli.core.warp import vanish_matrix, warp_whole
from crnn_cli.synth.config import SynthConfig


def _window(arr: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """arr[y0:y1, x0:x1] with zeros where the window leaves the array."""
    h, w = arr.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + arr.shape[2:], dtype=arr.dtype)
    sy0, sy1, sx0, sx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = arr[sy0:sy1, sx0:sx1]
    return out


def distort(
    cfg: SynthConfig, layers: np.ndarray, size: int, cap_top: int, base_y: int, rng: np.random.Generator
) -> np.ndarray:
    """Curved baseline, then one perspective warp for rotation, shear and corner jitter."""
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
        m = vanish_matrix(w, h, cy, k, lift, far_right=rng.random() < 0.5) @ m
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
    return warp_whole(layers, m)  # a degenerate jitter keeps the text flat


def crop_around_ink(cfg: SynthConfig, layers: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Cut the crop around the ink (and usually the cap-height band) with random margins."""
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
