"""Preprocessing: golden parity with PaddleOCR's resize_norm_img, and the dynamic-width rules."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from crnn_cli.core.errors import UsageError
from crnn_cli.core.images import load_image
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor, maybe_rotate


@pytest.mark.parametrize("ref", ["reference_w100.npz", "reference_w320.npz"])
def test_fixed_width_matches_paddleocr(mv3_dir, data_dir, ref):
    d = np.load(mv3_dir / ref)
    c, h, w = (int(v) for v in d["image_shape"])
    pre = Preprocessor(PreprocessConfig(channels=c, height=h, width=w))
    for path, expected in zip(d["paths"], d["inputs"]):
        got = pre(load_image(data_dir / "iiit5k_train" / str(path)))
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-6, path


def test_ppocrv4_inputs_match(ppocrv4_dir, data_dir):
    d = np.load(ppocrv4_dir / "reference_w320.npz")
    pre = Preprocessor(PreprocessConfig(channels=3, height=48, width=320))
    batch = pre.batch([load_image(data_dir / "iiit5k_train" / str(p)) for p in d["paths"]])
    assert np.abs(batch - d["inputs"]).max() <= 1e-6


def test_fixed_width_squashes_wide_crops_and_pads_narrow_ones():
    cfg = PreprocessConfig(height=32, width=100)
    assert cfg.sizes(32, 400) == (100, 100)  # squashed
    assert cfg.sizes(32, 50) == (50, 100)  # padded
    assert cfg.sizes(10, 31) == (100, 100)  # ceil(32 * 3.1) = 100 exactly fits
    out = Preprocessor(cfg)(np.full((32, 50, 3), 255, np.uint8))
    assert out.shape == (3, 32, 100)
    assert np.all(out[:, :, :50] == 1.0) and np.all(out[:, :, 50:] == 0.0)


def test_dynamic_width_keeps_aspect_and_buckets():
    cfg = PreprocessConfig(height=32, width=100, dynamic_width=True, width_step=32, max_width=800)
    assert cfg.sizes(32, 50) == (50, 100)  # narrow: padded to the minimum width
    assert cfg.sizes(32, 130) == (130, 160)  # wide: own width, padded to a multiple of 32
    assert cfg.sizes(32, 5000) == (800, 800)  # very wide: squashed to max_width
    out = Preprocessor(cfg)(np.zeros((16, 65, 3), np.uint8))
    assert out.shape == (3, 32, 160)


def test_grayscale_model_input():
    cfg = PreprocessConfig(channels=1, height=32, width=64, mean=(0.5,), std=(0.5,))
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :, 2] = 255  # pure red: gray value 76 under OpenCV's BT.601 weights
    out = Preprocessor(cfg)(img)
    assert out.shape == (1, 32, 64)
    assert out[0, 0, 0] == pytest.approx((76 / 255 - 0.5) / 0.5, abs=1e-6)


def test_tall_crops_rotate_and_option_disables():
    tall = np.zeros((90, 30, 3), np.uint8)
    assert maybe_rotate(tall, PreprocessConfig()).shape[:2] == (30, 90)
    assert maybe_rotate(tall, PreprocessConfig(rotate_vertical=False)).shape[:2] == (90, 30)
    square = np.zeros((40, 30, 3), np.uint8)  # h/w = 1.33 < 1.5
    assert maybe_rotate(square, PreprocessConfig()).shape[:2] == (40, 30)


@pytest.mark.parametrize(
    "kwargs",
    [dict(channels=2), dict(height=0), dict(width=0), dict(std=(0.0, 1, 1)), dict(mean=(0.5, 0.5))],
)
def test_invalid_config_names_the_field(kwargs):
    with pytest.raises(UsageError):
        PreprocessConfig(**kwargs)


def test_normalisation_is_paddleocrs_float32_arithmetic_exactly():
    """Every byte value, every channel: ((x / 255) - mean) / std in float32, bit for bit, then zero padding."""
    cfg = PreprocessConfig(height=1, width=256, mean=(0.5, 0.4, 0.3), std=(0.5, 0.25, 0.2))
    crop = np.stack([np.arange(256, dtype=np.uint8)] * 3, axis=1)[None]  # 1 x 256 x 3, each value once
    out = np.zeros((3, 1, 300), np.float32)
    Preprocessor(cfg).normalize_into(crop, out)
    for c, (m, s) in enumerate(zip(cfg.mean, cfg.std)):
        expected = (np.arange(256, dtype=np.float32) / np.float32(255.0) - np.float32(m)) / np.float32(s)
        assert np.array_equal(out[c, 0, :256], expected), c
    assert not out[:, :, 256:].any()


def test_min_width_and_step_replace_the_nominal_width_as_the_padding_rule():
    cfg = PreprocessConfig(
        height=32, width=100, dynamic_width=True, min_width=32, width_step=8, max_width=800
    )
    assert cfg.sizes(32, 20) == (20, 32)  # narrower than the minimum: padded to it
    assert cfg.sizes(32, 50) == (50, 56)  # not to 100: the next multiple of 8
    assert cfg.sizes(32, 64) == (64, 64)
    assert cfg.sizes(32, 5000) == (800, 800)
    assert Preprocessor(cfg)(np.zeros((16, 25, 3), np.uint8)).shape == (3, 32, 56)
    fixed = PreprocessConfig(height=32, width=100, min_width=32)  # fixed width: the minimum plays no part
    assert fixed.sizes(32, 50) == (50, 100)


@pytest.mark.parametrize("min_width", [0, 101])
def test_min_width_outside_one_to_width_is_refused(min_width):
    with pytest.raises(UsageError, match="min width"):
        PreprocessConfig(height=32, width=100, dynamic_width=True, min_width=min_width)


@pytest.mark.parametrize("dynamic", [False, True])
def test_fit_is_resize_and_padded_width_in_one(dynamic):
    pre = Preprocessor(
        PreprocessConfig(height=32, width=100, dynamic_width=dynamic, min_width=32, width_step=8)
    )
    for shape in [(20, 50, 3), (30, 400, 3), (90, 30, 3), (7, 7, 3)]:
        img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        resized, width = pre.fit(img)
        assert np.array_equal(resized, pre.resize(img)) and width == pre.padded_width(img)


def test_min_aspect_stretches_narrow_crops_instead_of_padding_them():
    cfg = PreprocessConfig(
        height=32, width=100, dynamic_width=True, min_width=32, width_step=8, max_width=800, min_aspect=2
    )
    assert cfg.sizes(32, 20) == (64, 64)  # 20 px would be padded to 32; stretched to 2 x 32 instead
    assert cfg.sizes(40, 40) == (64, 64)  # a square crop of any size: 64 px, 16 CTC frames
    assert cfg.sizes(32, 66) == (66, 72)  # wide enough already: kept, padded as before
    crop = np.full((30, 30, 3), 200, np.uint8)
    x = Preprocessor(cfg)(crop)
    assert x.shape == (3, 32, 64) and np.allclose(x, x[:, :, :1])  # stretched over the whole width
    fixed = PreprocessConfig(height=32, width=100, min_aspect=2)  # fixed width: stretched, then padded
    assert fixed.sizes(32, 20) == (64, 100)
    assert fixed.sizes(32, 500) == (100, 100)
    no_stretch = replace(cfg, min_aspect=None)
    assert no_stretch.sizes(32, 20) == (20, 32)


@pytest.mark.parametrize("aspect", [0, -1, float("nan"), float("inf"), 30])
def test_min_aspect_that_cannot_be_built_is_refused(aspect):
    with pytest.raises(UsageError, match="min aspect"):
        PreprocessConfig(height=32, width=100, dynamic_width=True, max_width=800, min_aspect=aspect)
