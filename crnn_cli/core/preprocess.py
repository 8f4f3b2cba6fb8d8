"""PaddleOCR-compatible resize and normalisation of text crops, fixed or dynamic width.

Fixed width (PaddleOCR ``resize_norm_img``): keep the aspect ratio at height H, squash to W when the
crop is wider, normalise ``(x / 255 - mean) / std`` and zero-pad on the right up to W.

Dynamic width (models with a dynamic width axis): a crop keeps its own width ``ceil(H * w / h)``,
at least ``min_width`` (default: the model's nominal ``width``, padded like PaddleOCR) and at most
``max_width`` (squashed beyond). Wider crops are padded up to a multiple of ``width_step``. The padded
width is a function of the crop alone, which is what makes results independent of batch neighbours.
Both come from the model's metadata (metadata.py): a model that reads as well with less padding says
so there, and every other model keeps PaddleOCR's minimum.

``min_aspect`` (either mode; from the metadata too): a crop narrower than ``min_aspect`` times the
height once resized is stretched to that width instead of being padded. A near-square crop of a long
word (curved text, a word seen at an angle) otherwise gets too few CTC frames (one per 4 px) to hold
its letters: the bundled model reads such crops better stretched to twice the height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crnn_cli.core.errors import UsageError
from crnn_cli.core.images import cv2


@dataclass(frozen=True)
class PreprocessConfig:
    """How a crop becomes a model input of shape channels x height x width."""

    channels: int = 3  # 3 = BGR as decoded (PaddleOCR never swaps to RGB); 1 = grayscale
    height: int = 32  # model input height in pixels
    width: int = 100  # fixed input width; in dynamic mode the minimum (padded) width
    dynamic_width: bool = False  # model accepts any width: crops keep their aspect ratio
    max_width: int = 2048  # dynamic mode: crops wider than this (after resizing) are squashed to it
    width_step: int = 32  # dynamic mode: widths above the minimum are padded up to a multiple of this
    # dynamic mode: the narrowest padded input in pixels; None = `width`. Padding a model does not need
    # costs time in proportion: a 60 px word padded to 100 px costs 100 px of convolution and LSTM steps.
    min_width: int | None = None
    # crops narrower than this times the height (once resized) are stretched to it; None = never
    min_aspect: float | None = None
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # in units of x/255, per channel
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rotate_vertical: bool = True  # crops with h/w >= 1.5 are turned 90 degrees, as PaddleOCR does

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise UsageError(f"image channels must be 1 or 3, got {self.channels}")
        if not 1 <= self.height <= 1024:
            raise UsageError(f"image height must be in 1..1024, got {self.height}")
        if not 1 <= self.width <= 16384:
            raise UsageError(f"image width must be in 1..16384, got {self.width}")
        if self.dynamic_width and self.max_width < self.width:
            raise UsageError(f"max width {self.max_width} is below the minimum width {self.width}")
        if self.dynamic_width and self.min_width is not None and not 1 <= self.min_width <= self.width:
            raise UsageError(f"min width must be in 1..{self.width} (the width), got {self.min_width}")
        if self.width_step < 1:
            raise UsageError(f"width step must be >= 1, got {self.width_step}")
        if self.min_aspect is not None and not (
            math.isfinite(self.min_aspect)
            and self.min_aspect > 0
            and math.ceil(self.min_aspect * self.height) <= self.max_width
        ):
            raise UsageError(
                f"min aspect must be > 0 and keep the stretched width within {self.max_width} px "
                f"at height {self.height}, got {self.min_aspect}"
            )
        for label, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, self.channels):
                raise UsageError(f"{label} needs 1 or {self.channels} values, got {len(values)}")
        if any(s == 0 for s in self.std):
            raise UsageError("std values must be non-zero")

    @property
    def shape(self) -> tuple[int, int, int | None]:
        return (self.channels, self.height, None if self.dynamic_width else self.width)

    def sizes(self, h: int, w: int) -> tuple[int, int]:
        """(resized width, padded width) for a crop of h x w pixels (after any rotation)."""
        want = math.ceil(self.height * w / h)
        if self.min_aspect is not None:
            want = max(want, math.ceil(self.min_aspect * self.height))
        if not self.dynamic_width:
            return (self.width if want > self.width else max(want, 1)), self.width
        least = self.width if self.min_width is None else self.min_width
        resized = min(max(want, 1), self.max_width)
        if resized <= least:
            return resized, least
        padded = min(-(-resized // self.width_step) * self.width_step, max(self.max_width, least))
        return resized, max(padded, resized)


def maybe_rotate(img: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Turn tall crops (h / w >= 1.5) by 90 degrees counter-clockwise, as PaddleOCR's crop code does."""
    h, w = img.shape[:2]
    if config.rotate_vertical and h >= 1.5 * w:
        return np.ascontiguousarray(np.rot90(img))
    return img


class Preprocessor:
    """Turns BGR uint8 crops into normalised C x H x W float32 arrays (see module docstring)."""

    def __init__(self, config: PreprocessConfig) -> None:
        self.config = config
        c = config.channels
        # float32 throughout, in PaddleOCR's order ((x / 255) - mean) / std
        self._mean = np.resize(np.asarray(config.mean, dtype=np.float32), c)
        self._std = np.resize(np.asarray(config.std, dtype=np.float32), c)
        # The same arithmetic done once per byte value and channel (C x 256): a crop is normalised by
        # table lookup, bit for bit the numbers of the formula at less than half its cost.
        values = np.arange(256, dtype=np.float32)[None, :] / np.float32(255.0)
        self._table = np.ascontiguousarray((values - self._mean[:, None]) / self._std[:, None])

    def padded_width(self, img: np.ndarray) -> int:
        h, w = maybe_rotate(img, self.config).shape[:2]
        return self.config.sizes(h, w)[1]

    def resize(self, img: np.ndarray) -> np.ndarray:
        """BGR uint8 H x W x 3 -> resized uint8 (height x resized width x channels), unpadded."""
        return self.fit(img)[0]

    def fit(self, img: np.ndarray) -> tuple[np.ndarray, int]:
        """(resize(img), padded_width(img)) with one rotation check and one sizes(): the second of each
        was about 5 % of a word crop's loading time (cProfile of the loaders)."""
        cfg = self.config
        img = maybe_rotate(img, cfg)
        h, w = img.shape[:2]
        resized_w, padded = cfg.sizes(h, w)
        out = cv2.resize(img, (resized_w, cfg.height), interpolation=cv2.INTER_LINEAR)
        if cfg.channels == 1:
            out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[:, :, None]
        return out, padded

    def normalize_into(self, resized: np.ndarray, out: np.ndarray) -> None:
        """Write the normalised crop into ``out`` (C x H x Wpad, pre-zeroed); the rest stays padding."""
        if resized.dtype == np.uint8:
            target = out[:, :, : resized.shape[1]]
            for c in range(target.shape[0]):
                np.take(self._table[c], resized[:, :, c], out=target[c])
            return
        x = resized.astype(np.float32)
        x /= np.float32(255.0)
        x -= self._mean
        x /= self._std
        out[:, :, : resized.shape[1]] = x.transpose(2, 0, 1)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """One crop -> C x H x padded-width float32."""
        resized = self.resize(img)
        h, w = maybe_rotate(img, self.config).shape[:2]
        out = np.zeros((self.config.channels, self.config.height, self.config.sizes(h, w)[1]), np.float32)
        self.normalize_into(resized, out)
        return out

    def batch(self, images: list[np.ndarray], width: int | None = None) -> np.ndarray:
        """Several crops -> N x C x H x W float32, W = the widest padded width (or ``width``)."""
        resized = [self.resize(img) for img in images]
        pad_w = max(self.padded_width(img) for img in images) if width is None else width
        out = np.zeros((len(images), self.config.channels, self.config.height, pad_w), np.float32)
        for i, r in enumerate(resized):
            self.normalize_into(r[:, :pad_w], out[i])
        return out
