"""Image decoding: formats, channel layouts, bit depths, and clear errors naming the input."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from crnn_cli.core import images
from crnn_cli.core.errors import ImageError
from crnn_cli.core.images import load_image


def _png(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def test_bgr_png_round_trip(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (20, 40, 3), dtype=np.uint8)
    p = tmp_path / "a.png"
    p.write_bytes(_png(arr))
    assert np.array_equal(load_image(p), arr)
    assert np.array_equal(load_image(p.read_bytes()), arr)
    assert np.array_equal(load_image(arr), arr)


def test_gray_and_16_bit():
    gray = np.full((10, 10), 200, np.uint8)
    out = load_image(_png(gray))
    assert out.shape == (10, 10, 3) and np.all(out == 200)
    deep = np.full((10, 10), 65535, np.uint16)
    assert np.all(load_image(_png(deep)) == 255)
    deep[:] = 257 * 100
    assert np.all(load_image(_png(deep)) == 100)


def test_rgba_is_composited_over_white():
    rgba = np.zeros((8, 8, 4), np.uint8)  # black, fully transparent
    rgba[:4, :, 3] = 255  # top half opaque black
    out = load_image(_png(rgba))
    assert np.all(out[:4] == 0) and np.all(out[4:] == 255)


def test_exif_orientation_is_applied():
    # A 10x30 JPEG with EXIF orientation 6 (rotate 90 CW) must come out 30 tall, 10 wide.
    arr = np.zeros((10, 30, 3), np.uint8)
    ok, buf = cv2.imencode(".jpg", arr)
    jpg = buf.tobytes()
    exif = (
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"
        b"\x00\x00\x00\x00"
    )
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    rotated = load_image(jpg[:2] + app1 + jpg[2:])
    assert rotated.shape[:2] == (30, 10)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty file"),
        (b"hello, I am text", "not an image"),
        (_png(np.zeros((50, 50, 3), np.uint8))[:60], "truncated|cannot decode|not an image"),
    ],
)
def test_bad_bytes_are_image_errors(data, match):
    with pytest.raises(ImageError, match=match):
        load_image(data, name="bad.png")


def test_decompression_bomb_refused_from_header(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match="exceeds the limit"):
        load_image(_png(np.zeros((40, 40, 3), np.uint8)), name="bomb.png")


def test_missing_file_and_directory_named(tmp_path):
    with pytest.raises(ImageError, match="nope.png: no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    p = tmp_path / "locked.png"
    p.write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
    p.chmod(0)
    with pytest.raises(ImageError, match="locked.png"):
        load_image(p)


def _with_bad_iccp(png: bytes) -> bytes:
    """``png`` with an iCCP chunk whose profile has an invalid rendering intent (as SVT's files do)."""
    import struct
    import zlib

    profile = bytearray(132)
    profile[0:4] = struct.pack(">I", 132)
    profile[36:40] = b"acsp"
    profile[64:68] = struct.pack(">I", 0x1000000)  # rendering intent: libpng warns "invalid"
    body = b"ICC Profile\x00\x00" + zlib.compress(bytes(profile))
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body
    chunk += struct.pack(">I", zlib.crc32(b"iCCP" + body) & 0xFFFFFFFF)
    ihdr_end = 8 + 12 + 13
    return png[:ihdr_end] + chunk + png[ihdr_end:]


DECODE_SCRIPT = """
import sys
from crnn_cli.core.images import load_image
for path in sys.argv[1:]:
    try:
        print(path, load_image(path).sum())
    except Exception as exc:
        print(path, "error", exc)
"""


def test_png_colour_profile_warnings_stay_off_stderr(tmp_path):
    """libpng's iCCP warnings (printed by C code on fd 2) never reach the user; damaged files still fail."""
    import subprocess
    import sys

    arr = np.random.default_rng(1).integers(0, 256, (12, 30, 3), dtype=np.uint8)
    good = _with_bad_iccp(_png(arr))
    assert b"iCCP" in good
    (tmp_path / "good.png").write_bytes(good)
    (tmp_path / "cut.png").write_bytes(good[: len(good) - 40])  # image data torn off
    assert np.array_equal(load_image(good), arr)  # the profile changes no pixel
    run = subprocess.run(
        [sys.executable, "-c", DECODE_SCRIPT, str(tmp_path / "good.png"), str(tmp_path / "cut.png")],
        capture_output=True,
        text=True,
        env=dict(os.environ, OPENCV_LOG_LEVEL="OFF"),
    )
    assert "iCCP" not in run.stderr and "libpng warning" not in run.stderr, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].endswith(str(int(arr.sum()))) and "cut.png error" in lines[1], run.stdout


def _jpeg(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", arr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def test_large_jpeg_is_decoded_reduced_only_as_far_as_min_side_allows():
    arr = np.random.default_rng(0).integers(0, 256, (600, 2000, 3), dtype=np.uint8)
    jpg = _jpeg(arr)
    assert load_image(jpg).shape == (600, 2000, 3)  # no min_side: full size
    assert load_image(jpg, min_side=64).shape == (75, 250, 3)  # 600 / 8 = 75 >= 64
    assert load_image(jpg, min_side=100).shape == (150, 500, 3)  # / 8 would give 75 < 100: / 4
    assert load_image(jpg, min_side=300).shape == (300, 1000, 3)
    assert load_image(jpg, min_side=301).shape == (600, 2000, 3)
    assert load_image(_png(arr), min_side=64).shape == (600, 2000, 3)  # PNG: nothing to gain, full


def test_reduced_decode_is_the_image_scaled_down():
    """libjpeg's 1/4 decode against a full decode shrunk by area averaging: the same picture."""
    y, x = np.mgrid[0:400, 0:1200]
    arr = np.stack([(x // 3) % 256, (y // 2) % 256, ((x + y) // 5) % 256], axis=2).astype(np.uint8)
    jpg = _jpeg(arr)
    small = load_image(jpg, min_side=100)
    assert small.shape == (100, 300, 3)
    area = cv2.resize(load_image(jpg), (300, 100), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - area.astype(int)).mean() < 3


def test_reduced_decode_keeps_exif_orientation():
    jpg = _jpeg(np.zeros((300, 900, 3), np.uint8))
    exif = (
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"
        b"\x00\x00\x00\x00"
    )
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    assert load_image(jpg[:2] + app1 + jpg[2:], min_side=64).shape[:2] == (225, 75)  # turned, / 4
