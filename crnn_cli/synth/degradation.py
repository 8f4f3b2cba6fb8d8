"""What a camera or a scanner does to a crop: the resize to the output height (with a squash or
stretch), low resolution, blur, motion blur, contrast and gamma, noise, grayscale and JPEG artefacts.
"""

from __future__ import annotations

import numpy as np

from crnn_cli.core.images import cv2
from crnn_cli.synth.config import SynthConfig
from crnn_cli.synth.sampling import _gaussian


def degrade(cfg: SynthConfig, img: np.ndarray, out_h: int, rng: np.random.Generator) -> np.ndarray:
    """The composed crop (H x W x 3 float32) resized to ``out_h`` rows and degraded: uint8 BGR."""
    h, w = img.shape[:2]
    stretch = 1.0 + rng.uniform(-cfg.max_stretch, cfg.max_stretch) if rng.random() < cfg.p_stretch else 1.0
    out_w = max(1, int(round(w * out_h / h * stretch)))
    interp = cv2.INTER_AREA if out_h < h else cv2.INTER_LINEAR
    img = cv2.resize(img, (out_w, out_h), interpolation=interp)
    if rng.random() < cfg.p_lowres:
        f = rng.uniform(1.3, max(cfg.max_lowres, 1.3))
        small = cv2.resize(
            img, (max(1, int(out_w / f)), max(1, int(out_h / f))), interpolation=cv2.INTER_AREA
        )
        up = cv2.INTER_NEAREST if rng.random() < 0.15 else cv2.INTER_LINEAR
        img = cv2.resize(small, (out_w, out_h), interpolation=up)
    if rng.random() < cfg.p_blur:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, max(cfg.max_blur, 0.3)))
    if rng.random() < cfg.p_motion_blur:
        k = int(rng.integers(3, 8))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(-30, 30), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (k, k))
        img = cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1e-6))
    if rng.random() < cfg.p_contrast:
        img = img * rng.uniform(0.6, 1.25) + rng.uniform(-35, 35)
        if rng.random() < 0.3:
            img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.6, 1.6)
    if rng.random() < cfg.p_noise:
        sigma = rng.uniform(1.0, max(cfg.max_noise, 1.0))
        img = img + _gaussian(rng, img.shape) * sigma
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_gray:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < cfg.p_jpeg:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(out)
