"""Request bodies to crops: size limits while reading, content types, multipart, image decoding.

Everything a client sends is untrusted: the body is counted as it arrives and refused past the limit
(413) before it is held whole, an image's pixel count is checked from its header before decoding
(413, core/images.py), and what is not an image is named in a 415 or 422.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from crnn_cli.core.errors import ImageError, ImageTooLargeError
from crnn_cli.core.images import decode_image

SINGLE_TYPES = ("application/octet-stream",)  # besides image/*
FIELD = "image"  # multipart file field name; repeat it for several crops


class BadRequest(Exception):
    """A request the service refuses; ``status`` is the HTTP code (413, 415, 422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Part:
    name: str  # how errors name it: "body" or "image[2] (word.png)"
    data: bytes


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"body of {int(declared)} bytes is over the limit of {limit} (--max-body-mb)")
    chunks = bytearray()
    try:
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > limit:
                raise BadRequest(413, f"body is over the limit of {limit} bytes (--max-body-mb)")
    except ClientDisconnect:
        raise BadRequest(400, "the client closed the connection before the body was sent") from None
    return bytes(chunks)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read_images(request: Request, limit: int, max_images: int) -> list[Part]:
    """The request's images as undecoded parts, in the order given."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        body = await read_body(request, limit)
        parser = MultiPartParser(request.headers, _once(body), max_files=max_images, max_fields=max_images)
        try:
            form = await parser.parse()
        except MultiPartException as exc:
            if "Too many" in str(exc):  # more parts than the queue could ever admit
                raise BadRequest(413, f"too many parts: {exc} (--max-queue)") from None
            raise BadRequest(422, f"malformed multipart body: {exc}") from None
        parts: list[Part] = []
        try:
            for k, (key, value) in enumerate(form.multi_items()):
                if key != FIELD:
                    continue
                label = f"{FIELD}[{len(parts)}]"
                if not isinstance(value, UploadFile):
                    raise BadRequest(422, f"{label} (part {k}) is a text field; send the image as a file")
                if value.filename:
                    label += f" ({value.filename})"
                parts.append(Part(label, await value.read()))
        finally:
            await form.close()
        if not parts:
            raise BadRequest(
                422, f"multipart body has no '{FIELD}' file field; send each crop as {FIELD}=@file"
            )
        return parts
    if media.startswith("image/") or media in SINGLE_TYPES:
        body = await read_body(request, limit)
        return [Part("body", body)]
    shown = content_type or "(none)"
    raise BadRequest(
        415,
        f"Content-Type {shown} is not accepted: send one image as image/* or application/octet-stream, "
        f"or multipart/form-data with '{FIELD}' file fields",
    )


def decode_crops(parts: list[Part]) -> list[np.ndarray]:
    """BGR crops for ``parts`` (runs on a worker thread); the first bad part is named in the error."""
    crops = []
    for part in parts:
        try:
            crops.append(decode_image(part.data, part.name))
        except ImageTooLargeError as exc:
            raise BadRequest(413, str(exc)) from None
        except ImageError as exc:
            raise BadRequest(422, str(exc)) from None
    return crops
