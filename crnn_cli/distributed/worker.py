"""The Ray Data callable class: one core Recognizer per actor, a batch of rows in, text out.

A batch (Ray Data's numpy format) holds the crops in one column: paths (``str``) read where they lie,
encoded image bytes, or decoded arrays (H x W x 3 RGB or x 4 RGBA as ray.data.read_images gives them,
or H x W gray).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import numpy as np

from crnn_cli.core.backend import SessionOptions

# Output columns; ``error`` is None for a crop that was read, else the reason with the crop's path.
TEXT, CONFIDENCE, ERROR, CHAR_CONFIDENCES = "text", "confidence", "error", "char_confidences"


def as_text(value: Any) -> str:
    """A path or name column's value: str, or bytes (os.fsencode'd on the driver, so any file name
    survives Arrow's UTF-8 strings)."""
    return os.fsdecode(value) if isinstance(value, bytes) else str(value)


def _sources(column: np.ndarray, kind: str) -> list[Any]:
    """A batch column as core image sources: paths, encoded bytes, or BGR arrays."""
    if kind == "path":
        return [as_text(p) for p in column.tolist()]
    if column.dtype != object and column.ndim >= 3:  # a stack of same-sized arrays
        items: list[Any] = list(column)
    else:
        items = column.tolist() if column.ndim == 1 else list(column)
    out: list[Any] = []
    for item in items:
        if isinstance(item, np.ndarray) and item.ndim == 3 and item.shape[2] in (3, 4):
            # RGB(A), as Ray's reader gives, to the core's BGR(A)
            out.append(np.ascontiguousarray(item[:, :, [2, 1, 0, 3][: item.shape[2]]]))
        elif isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim == 1:
            out.append(item.tobytes())  # bytes that came back as a uint8 vector
        else:
            out.append(item)
    return out


class RecognizeWorker:
    """Ray Data runs one per actor: ``__init__`` opens the model once, ``__call__`` reads a batch.

    bundle: a ModelBundle or an ObjectRef to one (the model files shipped once). options: Recognizer
    keyword arguments. column: the column with the crops, of ``kind`` "path" (files) or "image" (bytes
    or arrays); names: the column that names them in errors.
    sink: an optional ShardSink that writes the batch's lines and returns one summary row instead.
    """

    def __init__(
        self,
        bundle: Any,
        backend: str,
        options: dict[str, Any],
        column: str,
        kind: str,
        names: str | None,
        char_confidences: bool = False,
        sink: Any = None,
    ) -> None:
        import ray

        from crnn_cli.core.recognizer import Recognizer
        from crnn_cli.distributed.bundle import unpack

        if isinstance(bundle, ray.ObjectRef):
            bundle = ray.get(bundle)
        model, dictionary = unpack(bundle)
        options = dict(options)
        if dictionary is not None:
            options["dictionary"] = dictionary
        so = options.get("session_options")
        if isinstance(so, SessionOptions) and options.get("threads") is not None:
            options["session_options"] = replace(so, threads=options["threads"])
        self.rec = Recognizer(model, backend, **options)
        self.column = column
        self.kind = kind
        self.names = names
        self.char_confidences = char_confidences
        self.sink = sink

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        sources = _sources(batch[self.column], self.kind)
        if self.names is not None:
            names = [as_text(n) for n in batch[self.names].tolist()]
        else:
            names = [s if isinstance(s, str) else f"<row {i}>" for i, s in enumerate(sources)]
        results = list(self.rec.recognize(sources, names=names))
        if self.sink is not None:
            return self.sink.write(batch, results)
        out = {k: v for k, v in batch.items() if k != self.column or self.column == self.names}
        out[TEXT] = np.array([r.text for r in results], dtype=object)
        out[CONFIDENCE] = np.array([r.confidence for r in results], dtype=np.float64)
        out[ERROR] = np.array([r.error for r in results], dtype=object)
        if self.char_confidences:
            cc = np.empty(len(results), dtype=object)
            cc[:] = [list(r.char_confidences) for r in results]
            out[CHAR_CONFIDENCES] = cc
        return out
