"""Image decoding: any OpenCV-readable file, bytes or array to an 8-bit BGR array, as PaddleOCR sees it.

PaddleOCR decodes with OpenCV and never swaps to RGB, so neither do we. Beyond what ``cv2.imread`` does,
we composite transparency over white (instead of exposing whatever colour hides under alpha 0), scale
16-bit images to 8 bits, keep EXIF orientation for JPEGs, and refuse images whose header announces more
pixels than ``MAX_PIXELS`` before decoding them (a decompression bomb must not exhaust memory). PNG, GIF,
BMP, JPEG, TIFF, WebP and PNM headers are read here; other formats rely on OpenCV's own limit, which
agrees with ours when this module is imported before OpenCV first loads.

A caller that will shrink the image anyway (a recognizer resizing to 32 px high) may pass ``min_side``:
a JPEG whose shorter side is at least twice that is then decoded at 1/2, 1/4 or 1/8 scale by libjpeg
itself (``IMREAD_REDUCED_COLOR_*``), which skips most of the decoding work of a photo-sized crop.
"""

from __future__ import annotations

import os
import stat
import struct
from typing import Union

import numpy as np

from crnn_cli.core.errors import ImageError, ImageTooLargeError

# Refuse images above this many pixels (width * height). A text-line crop is rarely above a few
# megapixels; 64 MP leaves room for whole scanned pages while capping decode memory near 200 MB.
MAX_PIXELS = int(os.environ.get("CRNN_MAX_IMAGE_PIXELS", 64_000_000))
# OpenCV reads its own limit once at import: make it agree with ours for formats we do not parse.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
# OpenCV logs WARN and ERROR lines to stderr for every truncated or odd file it meets; our ImageError
# already names the file and the problem, once. (Read lazily: works even when cv2 is already imported.
# OPENCV_LOG_LEVEL=INFO brings them back for debugging.)
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")

import cv2  # noqa: E402  (after the environment variable above)

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray]


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, BMP, JPEG, TIFF, WebP or PNM header; None when unknown. No decode."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return w, h
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return w, h
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    if data[:2] == b"\xff\xd8":
        i = 2
        n = len(data)
        while i + 9 < n:
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + seg_len
        return None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if len(data) > 2 and data[0] == 0x50 and 0x31 <= data[1] <= 0x36:  # b"P1" .. b"P6"
        return _pnm_size(data)
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth / ImageLength of a classic TIFF's first directory (BigTIFF: None, OpenCV checks)."""
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return None
    offset = struct.unpack(order + "I", data[4:8])[0]
    if offset + 2 > len(data):
        return None
    count = struct.unpack(order + "H", data[offset : offset + 2])[0]
    found: dict[int, int] = {}
    for k in range(count):
        at = offset + 2 + 12 * k
        if at + 12 > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257) and kind in (3, 4):  # SHORT or LONG
            fmt = order + ("H" if kind == 3 else "I")
            found[tag] = struct.unpack(fmt, data[at + 8 : at + 8 + struct.calcsize(fmt)])[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """Canvas size from a WebP's first chunk: VP8X (extended), VP8L (lossless) or VP8 (lossy)."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PBM/PGM/PPM header (ASCII numbers, '#' comments allowed)."""
    numbers: list[int] = []
    for line in data[2:512].split(b"\n"):
        for token in line.split(b"#", 1)[0].split():
            if not token.isdigit():
                return None
            numbers.append(int(token))
            if len(numbers) == 2:
                return numbers[0], numbers[1]
    return None


def _to_bgr8(img: np.ndarray) -> np.ndarray:
    """Any decoded array (gray, gray+alpha, BGR, BGRA; 8/16-bit or float) to contiguous uint8 BGR."""
    if img.dtype == np.uint16:
        img = (img.astype(np.uint32) * 255 + 32767) // 65535
        img = img.astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        scale = 255.0 if float(np.nanmax(img)) <= 1.0 else 1.0
        img = np.clip(np.nan_to_num(img) * scale, 0, 255).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageError(f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"unsupported image shape {img.shape}")
    channels = img.shape[2]
    if channels == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 3:
        return np.ascontiguousarray(img)
    # 2 (gray + alpha) or 4 (BGRA): composite over white so transparent areas read as paper.
    color = img[:, :, :1].repeat(3, axis=2) if channels == 2 else img[:, :, :3]
    alpha = img[:, :, -1:].astype(np.float32) / 255.0
    out = color.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _without_iccp(data: bytes) -> bytes:
    """A PNG's bytes without its iCCP (colour profile) chunk; other data as it is.

    libpng checks an embedded profile and prints "libpng warning: iCCP: ..." straight to the process's
    stderr for the many files whose profile is slightly off (SVT has dozens), which breaks progress
    bars and cannot be silenced per call. OpenCV never applies the profile, so dropping the chunk
    changes no pixel; damaged image data still fails as before.
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return data
    at, n, cut = 8, len(data), []
    while at + 8 <= n:  # the profile comes before the image data: only the first chunks are read
        length = struct.unpack(">I", data[at : at + 4])[0]
        kind = data[at + 4 : at + 8]
        end = at + 12 + length  # length, type, data, CRC
        if kind in (b"IDAT", b"IEND") or end > n:
            break
        if kind == b"iCCP":
            cut.append((at, end))
        at = end
    if not cut:
        return data
    parts, prev = [], 0
    for start, end in cut:
        parts.append(data[prev:start])
        prev = end
    parts.append(data[prev:])
    return b"".join(parts)


# libjpeg's scaled decodes, by factor; each keeps EXIF orientation as IMREAD_COLOR does.
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def jpeg_flags(size: tuple[int, int] | None, min_side: int | None) -> int:
    """cv2.imdecode flags for a JPEG of ``size`` (w, h): the largest reduction that keeps both sides
    >= ``min_side`` (libjpeg rounds the scaled size up), else the full-size IMREAD_COLOR."""
    if size is not None and min_side:
        shorter = min(size)
        for factor, flags in _REDUCED:
            if shorter // factor >= min_side:
                return flags
    return cv2.IMREAD_COLOR


def decode_image(
    data: bytes | bytearray | memoryview, name: str = "<bytes>", min_side: int | None = None
) -> np.ndarray:
    """Decode encoded image bytes to H x W x 3 uint8 BGR. Raises ImageError naming ``name``.

    min_side: the caller only needs both sides at least this long; a large JPEG may then come back
    reduced by 2, 4 or 8 (see the module docstring). None: always full size.
    """
    return _decode(data, name, min_side)[0]


def _decode(
    data: bytes | bytearray | memoryview, name: str, min_side: int | None
) -> tuple[np.ndarray, tuple[int, int]]:
    """decode_image, and the image's stored (height, width), which a reduced decode does not show."""
    data = bytes(data)
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    size = _header_size(data)
    if size is not None:
        w, h = size
        if w * h > MAX_PIXELS:
            raise ImageTooLargeError(
                f"{name}: {w}x{h} pixels exceeds the limit of {MAX_PIXELS} "
                "(set CRNN_MAX_IMAGE_PIXELS to raise it)"
            )
        if w == 0 or h == 0:
            raise ImageError(f"{name}: image header says {w}x{h} pixels")
    buf = np.frombuffer(_without_iccp(data), dtype=np.uint8)
    is_jpeg = data[:2] == b"\xff\xd8"
    try:
        # JPEGs: IMREAD_COLOR applies EXIF orientation and converts CMYK; they carry no alpha anyway.
        flags = jpeg_flags(size, min_side) if is_jpeg else cv2.IMREAD_UNCHANGED
        img = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        text = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.error"
        if "validateInputImageSize" in text:  # OpenCV's own pixel limit (formats we do not parse)
            raise ImageTooLargeError(
                f"{name}: image size exceeds the limit of {MAX_PIXELS} pixels per OpenCV "
                "(set CRNN_MAX_IMAGE_PIXELS before starting to raise it)"
            ) from None
        raise ImageError(f"{name}: cannot decode image ({text})") from None
    if img is None:
        raise ImageError(f"{name}: not an image OpenCV can decode (unknown format or truncated file)")
    if img.size == 0:
        raise ImageError(f"{name}: image has no pixels")
    img = _to_bgr8(img)
    if flags == cv2.IMREAD_COLOR or flags == cv2.IMREAD_UNCHANGED or size is None:
        return img, (img.shape[0], img.shape[1])
    w, h = size  # as stored; EXIF orientation may have turned the decoded image
    return img, ((h, w) if (img.shape[0] > img.shape[1]) == (h > w) else (w, h))


def load_image(source: ImageSource, name: str | None = None, min_side: int | None = None) -> np.ndarray:
    """Load a path, encoded bytes or an array (BGR / gray / BGRA) as H x W x 3 uint8 BGR.

    min_side: see decode_image (arrays are returned at their own size)."""
    return load_image_sized(source, name, min_side)[0]


def load_image_sized(
    source: ImageSource, name: str | None = None, min_side: int | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """load_image, and the image's own (height, width) even when it came back reduced."""
    if isinstance(source, np.ndarray):
        if source.size == 0:
            raise ImageError(f"{name or '<array>'}: empty array")
        try:
            return _to_bgr8(source), (source.shape[0], source.shape[1])
        except ImageError as exc:
            raise ImageError(f"{name or '<array>'}: {exc}") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(source, name or "<bytes>", min_side)
    # os.stat and open on the plain path: one system call for size and type, and about 10 us less
    # per file than pathlib, which a word crop's 0.1 ms decode notices (the loaders share the GIL).
    path = os.fspath(source)
    label = name or os.fsdecode(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{label}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{label}: is a directory")
    size = info.st_size
    if size > 4 * MAX_PIXELS + (64 << 20):
        raise ImageError(f"{label}: file of {size} bytes is too large for an image")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImageError(f"{label}: cannot read ({exc.strerror or exc})") from None
    return _decode(data, label, min_side)
