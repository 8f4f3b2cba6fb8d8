"""The variants that get timed: each a callable returning the seconds of one run (our pipeline, a
bare runtime on the pipeline's own batches, PaddleOCR in its worker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def open_recognizer(model: Path, backend: str, threads: int, hint: str = "LATENCY", batch: int = 32) -> Any:
    from crnn_cli.core.backend import SessionOptions
    from crnn_cli.core.recognizer import Recognizer

    return Recognizer(
        model, backend, batch_size=batch, threads=threads,
        session_options=SessionOptions(threads=threads, performance_hint=hint if backend == "openvino" else None),
    )  # fmt: skip


def pipeline_run(rec: Any, paths: list[str]) -> Callable[[], float]:
    def run() -> float:
        t = time.perf_counter()
        failed = sum(1 for r in rec.recognize(paths) if r.error is not None)
        seconds = time.perf_counter() - t
        if failed:
            raise RuntimeError(f"{failed} of {len(paths)} images failed in the pipeline")
        return seconds

    return run


def record_batches(rec: Any, paths: list[str]) -> tuple[list[np.ndarray], list[Any]]:
    """The exact batches the pipeline hands its session for ``paths`` (copies), and its results.
    A session with its own run_many (ONNX Runtime's calls side by side) gets them there; the others
    one by one through run."""
    from crnn_cli.core.backend import Session

    session = rec.session
    seen: list[np.ndarray] = []
    if type(session).run_many is not Session.run_many:
        original_many = session.run_many

        def tap(batches: Any) -> Any:
            for item in batches:
                seen.append((item[0] if isinstance(item, tuple) else item).copy())
                yield item

        session.run_many = lambda batches: original_many(tap(batches))
        name = "run_many"
    else:
        original = session._run

        def spy(batch: np.ndarray) -> np.ndarray:
            seen.append(batch.copy())
            return original(batch)

        session._run = spy
        name = "_run"
    try:
        results = list(rec.recognize(paths))
    finally:
        delattr(session, name)
    return seen, results


def ort_bare(model: Path, threads: int, batches: list[np.ndarray]) -> Callable[[], float]:
    """ONNX Runtime alone, session options as crnn_onnxruntime sets them, on pre-made batches."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model), sess_options=so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    # A model with a widths input (crnn_cli/core/widths.py) gets every crop's width as the batch's:
    # the same work as without the input (the masks are there either way).
    feeds = [
        {n: b if n != "widths" else np.full(b.shape[0], b.shape[3], np.int64) for n in names} for b in batches
    ]

    def run() -> float:
        t = time.perf_counter()
        for feed in feeds:
            sess.run(None, feed)
        return time.perf_counter() - t

    return run


def ov_bare(session: Any, batches: list[np.ndarray], many: bool) -> Callable[[], float]:
    def run() -> float:
        t = time.perf_counter()
        if many:
            for _ in session.run_many(iter(batches)):
                pass
        else:
            for b in batches:
                session.run(b)
        return time.perf_counter() - t

    return run


def paddle_run(
    worker: Any, key: str, paths: list[str], batch: int, keep: tuple[list, list] | None
) -> Callable[[], float]:
    """PaddleOCR's pipeline in the worker; its own clock (read to decoded text). ``keep``: texts, shapes."""

    def run() -> float:
        reply = worker.call(cmd="run", key=key, paths=paths, batch=batch)
        if keep is not None:
            keep[0][:] = reply["texts"]
            keep[1][:] = reply["shapes"]
        return float(reply["seconds"])

    return run
