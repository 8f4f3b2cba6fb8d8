#!/usr/bin/env python
"""Generate a corpus of bad input for crnn: broken, odd and hostile images, label files, LMDBs, models
and training configs, with a manifest of what crnn must do with each.

    python scripts/make_bad_corpus.py OUT_DIR [--parts images,datasets,models,configs,hostile]

Every file is generated here (nothing is hand-picked or downloaded), so the corpus can be rebuilt on any
machine. OUT_DIR/manifest.json lists each case: its path (relative to OUT_DIR), what it is, and the
expected behaviour: ``ok`` (with the decoded shape and mean colour) or ``error`` (with a substring of
the one-line message). tests/test_bad_input.py builds the corpus in a temporary folder and holds crnn to
the manifest.

Needs numpy and OpenCV (crnn's own dependencies), Pillow for the format zoo, lmdb for the LMDB cases,
onnx for the model cases and torch for the hostile .pt; parts whose package is missing are left out
and listed under "missing" in the manifest.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import pickle
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SEED = 20240611  # fixed: the corpus is the same on every run
MANIFEST_VERSION = 1
PARTS = ("images", "datasets", "models", "configs", "hostile")
TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"  # models_util.make_tiny_onnx lives there


@dataclass
class Case:
    """One bad (or odd) input and what crnn must do with it."""

    name: str  # unique id, used in test ids and the docs table
    path: str  # relative to the corpus root; may hold surrogate-escaped bytes (non-UTF-8 names)
    what: str  # one line for people
    expect: str  # "ok" or "error"
    error: str | None = None  # expect == "error": a substring of the message
    shape: list[int] | None = None  # expect == "ok": decoded H, W, 3
    mean_bgr: list[float] | None = None  # expect == "ok": mean of the decoded BGR pixels ...
    tolerance: float = 2.0  # ... within this many grey levels (lossy formats get more)
    exit_code: int | None = None  # command-line cases: the exit status
    details: dict[str, Any] = field(default_factory=dict)  # part-specific expectations


# -- small encoders ----------------------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, bit_depth: int = 8, color_type: int = 0) -> bytes:
    """PNG signature + IHDR; color_type 0 = grey, 2 = RGB."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)


def write_grey_png_streaming(path: Path, width: int, height: int, value: int = 255) -> None:
    """A valid 8-bit grey PNG of any size, written row by row: the writer never holds the pixels."""
    comp = zlib.compressobj(9)
    row = b"\x00" + bytes([value]) * width  # filter type 0, then the row
    with open(path, "wb") as f:
        f.write(png_header(width, height))
        pending = bytearray()
        for _ in range(height):
            pending += comp.compress(row)
            if len(pending) > 1 << 20:
                f.write(png_chunk(b"IDAT", bytes(pending)))
                pending.clear()
        pending += comp.flush()
        f.write(png_chunk(b"IDAT", bytes(pending)))
        f.write(png_chunk(b"IEND", b""))


def bomb_png(width: int, height: int) -> bytes:
    """A few hundred bytes whose IHDR announces width x height; the IDAT holds a single row."""
    idat = zlib.compress(b"\x00" * (min(width, 4096) + 1), 9)
    return png_header(width, height) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def bomb_gif(width: int, height: int) -> bytes:
    """GIF89a whose logical screen and only frame claim width x height (capped at 65535 by the format)."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    data = b"\x02\x02\x44\x01\x00"  # LZW min code size 2, one tiny sub-block, terminator
    return b"GIF89a" + screen + frame + data + b"\x3b"


def gif_frame_bomb(width: int, height: int) -> bytes:
    """A 10x10 GIF whose only frame claims width x height: a decoder sizing buffers by frame would blow up."""
    screen = struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return b"GIF89a" + screen + frame + b"\x02\x02\x44\x01\x00\x3b"


def apng_frame_bomb(width: int, height: int) -> bytes:
    """A valid 10x10 grey PNG that is also an APNG whose second frame claims width x height."""
    idat = zlib.compress(b"".join(b"\x00" + b"\x80" * 10 for _ in range(10)))

    def fctl(seq: int, w: int, h: int) -> bytes:
        return png_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, 1, 1, 0, 0))

    return (
        png_header(10, 10)
        + png_chunk(b"acTL", struct.pack(">II", 2, 0))
        + fctl(0, 10, 10)
        + png_chunk(b"IDAT", idat)
        + fctl(1, width, height)
        + png_chunk(b"fdAT", struct.pack(">I", 2) + idat)
        + png_chunk(b"IEND", b"")
    )


def bomb_tiff(width: int, height: int) -> bytes:
    """Little-endian TIFF: one uncompressed grey strip of width x height, but 16 bytes of data."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 0),  # StripOffsets: patched below
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, width * height & 0xFFFFFFFF),  # StripByteCounts (a lie)
    ]
    ifd_size = 2 + 12 * len(entries) + 4
    data_offset = 8 + ifd_size
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        packed = struct.pack("<H", value) + b"\x00\x00" if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + bytes(16)
    return bytes(out)


def bomb_webp(width: int, height: int) -> bytes:
    """A lossless WebP (VP8L) header announcing width x height (at most 16384 each), then no pixels."""
    bits = (width - 1) | ((height - 1) << 14)  # 14 + 14 bits, alpha hint 0, version 0
    body = b"\x2f" + struct.pack("<I", bits) + bytes(11)
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def patch_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """The JPEG with its frame header (SOF) claiming width x height."""
    i = 2
    while i + 9 < len(jpeg):
        marker = jpeg[i + 1]
        length = struct.unpack(">H", jpeg[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9 :]
        i += 2 + length
    raise ValueError("no SOF marker in the JPEG")


def _pil_bytes(img: Any, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def _cv2_png(bgr: np.ndarray) -> bytes:
    from crnn_cli.core.images import cv2

    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG")
    return buf.tobytes()


def _mean(bgr: np.ndarray) -> list[float]:
    return [round(float(v), 3) for v in bgr.reshape(-1, 3).mean(axis=0)]


def _two_tone(h: int, w: int, left: tuple[int, int, int], right: tuple[int, int, int]) -> np.ndarray:
    """An RGB image, left half one colour, right half another: a mean colour that is easy to predict."""
    img = np.empty((h, w, 3), np.uint8)
    img[:, : w // 2] = left
    img[:, w // 2 :] = right
    return img


# -- images ------------------------------------------------------------------------------------------


def make_image_corpus(root: Path, max_pixels: int | None = None) -> list[Case]:
    """Broken, odd and hostile image files under root/images; each case is named by its file."""
    from PIL import Image

    from crnn_cli.core import images
    from crnn_cli.core.images import cv2

    limit = max_pixels or images.MAX_PIXELS
    d = root / "images"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    cases: list[Case] = []

    def put(file: str, data: bytes | None) -> str:
        if data is not None:
            (d / file).write_bytes(data)
        return f"images/{file}"

    def ok(
        file: str, what: str, bgr: np.ndarray, data: bytes | None, tol: float = 2.0, **details: Any
    ) -> None:
        shape, mean = list(bgr.shape), _mean(bgr)
        cases.append(
            Case(
                file, put(file, data), what, "ok", shape=shape, mean_bgr=mean, tolerance=tol, details=details
            )
        )

    def bad(file: str, what: str, error: str, data: bytes | None, **details: Any) -> None:
        cases.append(Case(file, put(file, data), what, "error", error=error, details=details))

    undecodable, too_big = "not an image OpenCV can decode", "exceeds the limit"
    noise = rng.integers(0, 256, (32, 120, 3), dtype=np.uint8)  # BGR
    rgb = _two_tone(48, 160, (200, 40, 60), (20, 180, 240))
    bgr = rgb[:, :, ::-1]
    png = _pil_bytes(Image.fromarray(rgb), "PNG")
    jpg = _pil_bytes(Image.fromarray(rgb), "JPEG", quality=92)

    ok("good_first.png", "an ordinary 32x120 PNG (control)", noise, _cv2_png(noise), tol=0.01)
    bad("zero_bytes.png", "zero-byte file", "empty file (0 bytes)", b"")
    bad("truncated.png", "PNG cut in half", undecodable, png[: len(png) // 2])
    bad("truncated.jpg", "JPEG cut in half", undecodable, jpg[: len(jpg) // 2])
    corrupt = bytearray(png)
    corrupt[len(png) // 2] ^= 0xFF  # inside IDAT: the chunk's CRC no longer matches
    bad("bad_crc.png", "PNG with one flipped byte (CRC mismatch)", undecodable, bytes(corrupt))
    bad("text.png", "a text file named .png", undecodable, b"this is a text file with an image's name\n")
    ok("png_named.jpg", "a PNG named .jpg (content decides)", bgr, png)

    for h, w in ((1, 1), (2, 20000), (20000, 2)):
        img = np.full((h, w, 3), 128, np.uint8)
        img[..., 0] = 30
        ok(f"size_{h}x{w}.png", f"{h}x{w} pixels (height x width)", img, _cv2_png(img))

    bad(
        "bomb.png",
        "decompression bomb: 100000x100000 PNG header in 83 bytes",
        too_big,
        bomb_png(100_000, 100_000),
    )
    bad("bomb.gif", "GIF announcing 65535x65535", too_big, bomb_gif(65535, 65535))
    bad("bomb.jpg", "JPEG frame header claiming 65500x65500", too_big, patch_jpeg_size(jpg, 65500, 65500))
    bad("bomb.tiff", "TIFF announcing 100000x100000", too_big, bomb_tiff(100_000, 100_000))
    bad("bomb.webp", "WebP (VP8L) announcing 16384x16384", too_big, bomb_webp(16384, 16384))
    bad(
        "frame_bomb.gif",
        "10x10 GIF whose frame claims 65535x65535",
        undecodable,
        gif_frame_bomb(65535, 65535),
    )
    bad(
        "frame_bomb.png",
        "10x10 APNG whose second frame claims 60000x60000",
        undecodable,
        apng_frame_bomb(60000, 60000),
    )
    bad("zero_width.png", "PNG header saying 0x10 pixels", "0x10 pixels", bomb_png(0, 10))
    huge_w, huge_h = 10_000, limit // 10_000 + 16
    write_grey_png_streaming(d / "huge.png", huge_w, huge_h)
    size_kb = (d / "huge.png").stat().st_size >> 10
    bad(
        "huge.png",
        f"valid {huge_w}x{huge_h} PNG ({size_kb} KiB), above the {limit} pixel limit",
        too_big,
        None,
        pixels=huge_w * huge_h,
    )

    deep = (bgr.astype(np.uint16) * 257).astype(np.uint16)
    ok("deep16.png", "16-bit RGB PNG", bgr, cv2.imencode(".png", deep)[1].tobytes())
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    ok("palette.png", "palette (indexed) PNG", bgr, _pil_bytes(palette, "PNG"))
    ok(
        "cmyk.jpg",
        "CMYK JPEG",
        bgr,
        _pil_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95),
        tol=4,
    )
    rgba = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    rgba[: rgb.shape[0] // 2, :, 3] = 255  # top half opaque, bottom half transparent
    composited = bgr.copy()
    composited[rgb.shape[0] // 2 :] = 255  # transparent areas read as white paper
    ok(
        "rgba.png",
        "RGBA PNG, bottom half transparent (composited on white)",
        composited,
        _pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG"),
    )
    grey_alpha = np.dstack([np.full((40, 90), 60, np.uint8), np.full((40, 90), 255, np.uint8)])
    grey_alpha[:, 45:, 1] = 0
    seen = np.full((40, 90, 3), 60, np.uint8)
    seen[:, 45:] = 255
    ok(
        "grey_alpha.png",
        "grey + alpha PNG, right half transparent",
        seen,
        _pil_bytes(Image.fromarray(grey_alpha, "LA"), "PNG"),
    )

    frames = [_two_tone(30, 70, c, (255, 255, 255)) for c in ((0, 0, 0), (255, 0, 0), (0, 0, 255))]
    pil_frames = [Image.fromarray(f).convert("P") for f in frames]
    gif = io.BytesIO()
    pil_frames[0].save(gif, "GIF", save_all=True, append_images=pil_frames[1:], duration=80, loop=0)
    ok("animated.gif", "animated GIF, 3 frames (the first is read)", frames[0][:, :, ::-1], gif.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored pixels must be turned 90 degrees clockwise
    turned = np.ascontiguousarray(np.rot90(bgr, k=-1))
    ok(
        "exif_rotated.jpg",
        "JPEG with EXIF orientation 6 (shown turned)",
        turned,
        _pil_bytes(Image.fromarray(rgb), "JPEG", quality=95, exif=exif),
        tol=4,
    )
    ok("image.webp", "lossless WebP", bgr, _pil_bytes(Image.fromarray(rgb), "WEBP", lossless=True))
    ok("image.tiff", "uncompressed RGB TIFF", bgr, _pil_bytes(Image.fromarray(rgb), "TIFF"))
    floats = Image.fromarray(np.full((20, 50), 0.5, np.float32), "F")
    ok(
        "float32.tiff",
        "32-bit float TIFF (values 0..1)",
        np.full((20, 50, 3), 128, np.uint8),
        _pil_bytes(floats, "TIFF"),
    )

    (d / "unreadable.png").write_bytes(_cv2_png(noise))
    (d / "unreadable.png").chmod(0)
    if os.geteuid() == 0:  # root reads whatever the permission bits say
        ok("unreadable.png", "file without read permission (root reads it)", noise, None, tol=0.01, root=True)
    else:
        bad("unreadable.png", "file without read permission", "Permission denied", None)
    (d / "broken_link.png").symlink_to("no_such_target.png")
    bad("broken_link.png", "symlink to a file that does not exist", "no such file", None)
    (d / "self_loop.png").symlink_to("self_loop.png")
    bad("self_loop.png", "symlink pointing to itself", "Too many levels of symbolic links", None)
    ok(
        os.fsdecode(b"caf\xe9_latin1.png"),
        "file name that is not UTF-8 (latin-1 bytes)",
        noise,
        _cv2_png(noise),
        tol=0.01,
    )
    (d / "folder.png").mkdir()
    bad(
        "folder.png",
        "a directory named like an image",
        "is a directory",
        None,
        cli="walked as a folder: its images (none here) are read",
    )

    with open(d / "huge_random.png", "wb") as f:
        f.write(rng.integers(0, 256, 1 << 16, dtype=np.uint8).tobytes())
        # Sparse beyond the first 64 KiB: the size is what matters, the disk holds almost nothing.
        f.truncate(4 * limit + (64 << 20) + (1 << 20))
    size_mb = (d / "huge_random.png").stat().st_size >> 20
    bad("huge_random.png", f"{size_mb} MiB file of random bytes (sparse)", "too large for an image", None)
    bad(
        "random.jpg",
        "4 MiB of random bytes named .jpg",
        undecodable,
        rng.integers(0, 256, 4 << 20, dtype=np.uint8).tobytes(),
    )
    last = rng.integers(0, 256, (24, 64, 3), dtype=np.uint8)
    ok("good_last.png", "an ordinary 24x64 PNG (control)", last, _cv2_png(last), tol=0.01)

    # A folder whose symlinks point back at itself: walking it must end, listing each image once.
    loop = d / "loop_dir"
    (loop / "sub").mkdir(parents=True)
    (loop / "inside.png").write_bytes(_cv2_png(noise))
    (loop / "again").symlink_to(".", target_is_directory=True)
    (loop / "sub" / "up").symlink_to("..", target_is_directory=True)
    walk = {"walk": ["images/loop_dir/inside.png"]}
    cases.append(
        Case("loop_dir", "images/loop_dir", "folder with symlinks back to itself", "ok", details=walk)
    )
    return cases


# -- label files and LMDBs ---------------------------------------------------------------------------


def make_dataset_corpus(root: Path) -> list[Case]:
    """Label-file datasets and LMDBs with bad lines and records under root/datasets, one folder (and
    one case, named by the folder) each. details: kept, skipped {reason: count}, bad_samples (read but
    undecodable at evaluation); or error for a dataset that cannot be opened."""
    from crnn_cli.core import datasets as dsm

    d = root / "datasets"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED + 1)
    cases: list[Case] = []

    def image() -> bytes:
        return _cv2_png(rng.integers(0, 256, (32, 80, 3), dtype=np.uint8))

    def add(folder: str, what: str, **expect: Any) -> Path:
        error = expect.pop("error", None)
        cases.append(
            Case(folder, f"datasets/{folder}", what, "error" if error else "ok", error=error, details=expect)
        )
        return d / folder

    def labels(folder: str, what: str, lines: bytes, **expect: Any) -> Path:
        p = add(folder, what, **expect)
        p.mkdir()
        for name in ("a.png", "b.png"):
            (p / name).write_bytes(image())
        (p / "labels.txt").write_bytes(lines)
        return p

    (d / "outside.png").write_bytes(image())  # a real image just outside every data folder
    outside = (d / "outside.png").resolve()
    labels(
        "latin1",
        "label file in latin-1, one non-ASCII line",
        "a.png\tabc\nb.png\tcaf\u00e9\n".encode("latin-1"),
        kept=1,
        skipped={dsm.NOT_UTF8: 1},
    )
    labels(
        "crlf",
        "CRLF line ends (labels keep no \\r)",
        b"a.png\tabc\r\nb.png\tdef\r\n",
        kept=2,
        skipped={},
        labels=["abc", "def"],
    )
    labels(
        "missing_tab",
        "a line with a space, no tab",
        b"a.png\tabc\nb.png def\n",
        kept=1,
        skipped={dsm.MISSING_TAB: 1},
    )
    labels(
        "empty_label",
        "empty and blank labels",
        b"a.png\tabc\nb.png\t\nb.png\t   \n",
        kept=1,
        skipped={dsm.EMPTY_LABEL: 2},
    )
    labels(
        "missing_image",
        "a line naming no file",
        b"a.png\tabc\nnope.png\tdef\n",
        kept=1,
        skipped={dsm.MISSING_IMAGE: 1},
    )
    escape = f"a.png\tabc\n../outside.png\tdef\n{outside}\tghi\nlink.png\tjkl\n".encode()
    labels(
        "escape",
        "paths leaving the data folder: ../, absolute, a symlink out (refused only when confined)",
        escape,
        kept=4,
        skipped={},
        kept_if_confined=1,
    ).joinpath("link.png").symlink_to(outside)
    labels(
        "corrupt_image",
        "a listed image that cannot be decoded",
        b"a.png\tabc\nb.png\tdef\n",
        kept=2,
        skipped={},
        bad_samples=1,
    ).joinpath("b.png").write_bytes(b"not really a png")

    if importlib.util.find_spec("lmdb") is None:
        return cases
    import lmdb

    def lmdb_set(
        folder: str, what: str, count: bytes, records: int, edit: dict[bytes, bytes], **expect: Any
    ) -> None:
        data = {b"num-samples": count}
        for i in range(1, records + 1):
            data[b"image-%09d" % i] = image()
            data[b"label-%09d" % i] = b"word%d" % i
        data.update(edit)
        env = lmdb.open(str(add(folder, what, **expect)), map_size=16 << 20, subdir=True)
        with env.begin(write=True) as txn:
            for key, value in data.items():
                txn.put(key, value)
        env.close()
        (d / folder / "lock.mdb").unlink(missing_ok=True)

    lmdb_set(
        "lmdb_short",
        "LMDB whose num-samples (3) exceeds its records (2)",
        b"3",
        2,
        {},
        kept=2,
        skipped={dsm.MISSING_RECORD: 1},
    )
    lmdb_set(
        "lmdb_corrupt",
        "LMDB record 2 holds undecodable image bytes",
        b"3",
        3,
        {b"image-000000002": b"\x89PNG\r\n\x1a\ngarbage"},
        kept=3,
        skipped={},
        bad_samples=1,
    )
    lmdb_set(
        "lmdb_empty_record",
        "LMDB record with a zero-byte image",
        b"2",
        2,
        {b"image-000000002": b""},
        kept=1,
        skipped={dsm.UNDECODABLE: 1},
    )
    lmdb_set("lmdb_nonint", "LMDB whose num-samples is 'two'", b"two", 2, {}, error="not a count")
    return cases


# -- models ------------------------------------------------------------------------------------------


def _tiny_onnx_builder() -> tuple[Callable[..., Path], Callable[..., Any]]:
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    from models_util import make_tiny_onnx, tiny_metadata

    return make_tiny_onnx, tiny_metadata


def make_model_corpus(root: Path) -> list[Case]:
    """Broken or inconsistent recognizer files under root/models (cases named by file), plus a good one.

    ``crnn recognize --model FILE IMAGE`` must exit with exit_code and, when not 0, print the error
    naming FILE before reading any image.
    """
    import onnx
    from onnx import TensorProto, helper

    make_tiny_onnx, tiny_metadata = _tiny_onnx_builder()
    d = root / "models"
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def case(file: str, what: str, exit_code: int, error: str | None, **details: Any) -> None:
        expect = "ok" if exit_code == 0 else "error"
        cases.append(
            Case(file, f"models/{file}", what, expect, error=error, exit_code=exit_code, details=details)
        )

    def edited(src: Path, out: str, edit: Callable[[Any], None]) -> None:
        model = onnx.load(str(src))
        edit(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(d / out))

    def with_meta(file: str, **changes: Any) -> None:
        meta = json.loads(tiny_metadata().to_props()["crnn.metadata"])
        for key, value in changes.items():
            section, _, sub = key.partition("__")
            if sub:
                meta[section][sub] = value
            else:
                meta[section] = value
        make_tiny_onnx(d / file, props={"crnn.metadata": json.dumps(meta)})

    good = make_tiny_onnx(d / "good.onnx")
    case("good.onnx", "a tiny valid recognizer with metadata (control)", 0, None)
    data = good.read_bytes()
    cannot_load = "ONNX Runtime cannot load"
    (d / "truncated.onnx").write_bytes(data[: len(data) // 2])
    case("truncated.onnx", "ONNX file cut in half", 1, cannot_load)
    (d / "text.onnx").write_text("not a model\n")
    case("text.onnx", "a text file named .onnx", 1, cannot_load)
    (d / "empty.onnx").write_bytes(b"")
    case("empty.onnx", "zero-byte .onnx", 1, cannot_load)
    case("missing.onnx", "a model path that does not exist", 1, "no such model file")
    (d / "model.bin").write_bytes(data)
    case("model.bin", "a model with a suffix no backend opens", 1, "no installed backend opens")

    def to_2d(model: Any) -> None:
        g = model.graph
        g.node.append(helper.make_node("ReduceMean", ["probs"], ["per_image"], axes=[1], keepdims=0))
        g.output.pop()
        g.output.append(helper.make_tensor_value_info("per_image", TensorProto.FLOAT, ["batch", 37]))

    def to_4d(model: Any) -> None:
        g = model.graph
        g.initializer.append(helper.make_tensor("axis1", TensorProto.INT64, [1], [1]))
        g.node.append(helper.make_node("Unsqueeze", ["probs", "axis1"], ["probs4"]))
        g.output.pop()
        g.output.append(helper.make_tensor_value_info("probs4", TensorProto.FLOAT, ["batch", 1, "time", 37]))

    edited(good, "output_2d.onnx", to_2d)
    case("output_2d.onnx", "output N x C (a classifier, not CTC)", 1, "must be N x T x C")
    edited(good, "output_4d.onnx", to_4d)
    case("output_4d.onnx", "output N x 1 x T x C", 1, "must be N x T x C")

    with_meta("schema99.onnx", schema_version=99)
    case("schema99.onnx", "crnn metadata with schema_version 99", 1, "schema_version 99 is not supported")
    with_meta("channels7.onnx", input__channels=7)
    case("channels7.onnx", "crnn metadata saying 7 input channels", 1, "channels must be 1 or 3")
    make_tiny_onnx(d / "bad_json.onnx", props={"crnn.metadata": "{not json"})
    case("bad_json.onnx", "crnn metadata that is not JSON", 1, "not valid JSON")
    make_tiny_onnx(d / "dict_mismatch.onnx", num_classes=37, props=tiny_metadata(50).to_props())
    case("dict_mismatch.onnx", "37-class model whose metadata holds a 49-symbol dictionary", 2, "predicts 37")

    def symbolic_height(model: Any) -> None:
        dim = model.graph.input[0].type.tensor_type.shape.dim[2]
        dim.ClearField("dim_value")
        dim.dim_param = "height"

    edited(make_tiny_onnx(d / "_plain.onnx", props={}), "symbolic_height.onnx", symbolic_height)
    (d / "_plain.onnx").unlink()
    case(
        "symbolic_height.onnx",
        "valid model, symbolic input height, no metadata",
        2,
        "--image-shape",
        works_with=["--image-shape", "3,32,100"],
    )
    return cases


# -- hostile files -----------------------------------------------------------------------------------


class _Payload:
    """Pickles as a call to exec(code): loading the pickle would run ``code``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (self.code,))


def hostile_code(marker: Path) -> str:
    """Python that leaves ``marker`` behind if it ever runs."""
    return f"open({str(marker)!r}, 'w').write('code ran')"


def make_hostile_corpus(root: Path) -> list[Case]:
    """Pickles that run code when loaded carelessly: .pdparams and (with torch) a torch .pt checkpoint.

    Each would write root/hostile/MARKER-<file> if it ever ran; the case's details name the marker.
    The .pt sits in a folder of its own: a .pdparams of the same stem beside it changes how it is opened.
    """
    d = root / "hostile"
    cases: list[Case] = []

    def case(rel: str, what: str, make: Callable[[Any], bytes | None]) -> None:
        name = Path(rel).name
        marker = f"hostile/MARKER-{name}"
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        data = make(_Payload(hostile_code(root / marker)))
        if data is not None:
            (d / rel).write_bytes(data)
        details = {"marker": marker}
        cases.append(
            Case(name, f"hostile/{rel}", what, "error", error="refused to load", exit_code=1, details=details)
        )

    weights = {"conv1.weight": np.zeros((2, 2), np.float32)}
    case(
        "pdparams/evil.pdparams",
        ".pdparams: a dict of arrays with one entry that calls exec()",
        lambda payload: pickle.dumps({**weights, "trojan": payload}, protocol=4),
    )
    case(
        "pdparams/bare.pdparams",
        ".pdparams that is nothing but an exec() call (pickle protocol 2)",
        lambda payload: pickle.dumps(payload, protocol=2),
    )
    if importlib.util.find_spec("torch") is not None:
        import torch

        def checkpoint(payload: Any) -> None:
            torch.save(
                {"format": "crnn.checkpoint", "format_version": 1, "model": payload}, d / "pt" / "evil.pt"
            )

        case("pt/evil.pt", "torch checkpoint (.pt) whose pickle calls exec()", checkpoint)
    return cases


# -- training configs --------------------------------------------------------------------------------


def make_config_corpus(root: Path) -> list[Case]:
    """Training configs with one mistake each (cases named by file), from the shipped crnn_default.yml."""
    from importlib import resources

    d = root / "configs"
    d.mkdir(parents=True, exist_ok=True)
    base = resources.files("crnn_cli").joinpath("configs", "crnn_default.yml").read_text("utf-8")
    if "  epoch_num: 60" not in base:
        raise RuntimeError("crnn_default.yml changed: update make_config_corpus")
    cases: list[Case] = []

    def variant(file: str, text: str | None, what: str, error: str) -> None:
        if text is not None:
            (d / file).write_text(text, encoding="utf-8")
        cases.append(Case(file, f"configs/{file}", what, "error", error=error))

    variant(
        "unknown_key.yml",
        base.replace("  epoch_num: 60", "  epoch_num: 60\n  epoch_numb: 3"),
        "unknown key Global.epoch_numb",
        "Global.epoch_numb: unknown key",
    )
    variant(
        "wrong_type.yml",
        base.replace("  epoch_num: 60", "  epoch_num: sixty"),
        "Global.epoch_num: 'sixty'",
        "Global.epoch_num: expected an integer",
    )
    variant("not_yaml.yml", "Global: [unclosed\n", "not valid YAML", "not valid YAML")
    variant("not_mapping.yml", "- just\n- a list\n", "a list instead of sections", "must be a mapping")
    variant("missing.yml", None, "config file that does not exist", "neither a file nor a shipped config")
    return cases


# -- driver ------------------------------------------------------------------------------------------

BUILDERS: dict[str, tuple[Callable[[Path], list[Case]], tuple[str, ...]]] = {
    "images": (make_image_corpus, ("PIL",)),
    "datasets": (make_dataset_corpus, ()),
    "models": (make_model_corpus, ("onnx",)),
    "configs": (make_config_corpus, ()),
    "hostile": (make_hostile_corpus, ()),
}


def build_corpus(root: str | os.PathLike[str], parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """Generate the chosen parts under ``root`` and write root/manifest.json; returns the manifest."""
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "seed": SEED,
        "euid": os.geteuid(),
        "missing": {},
    }
    for part in parts:
        if part not in BUILDERS:
            raise ValueError(f"unknown part {part!r}; parts are {', '.join(PARTS)}")
        builder, needs = BUILDERS[part]
        absent = [m for m in needs if importlib.util.find_spec(m) is None]
        if absent:
            manifest["missing"][part] = f"needs {', '.join(absent)}"
            continue
        manifest[part] = [asdict(c) for c in builder(out)]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def load_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads((Path(root) / "manifest.json").read_text("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to create the corpus in (should be empty)")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"make_bad_corpus: {args.out} is not empty; choose a new folder", file=sys.stderr)
        return 2
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    manifest = build_corpus(args.out, parts)
    counts = {p: len(manifest[p]) for p in parts if p in manifest}
    print(f"wrote {sum(counts.values())} cases to {args.out}: {counts}")
    for part, why in manifest["missing"].items():
        print(f"left out {part}: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
