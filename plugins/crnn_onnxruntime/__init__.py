"""ONNX Runtime backend for crnn: runs .onnx recognizers on any ONNX Runtime execution provider.

Session options: ``threads`` (intra-op threads, one inter-op thread), ``providers`` (by ORT's names);
``extra`` holds ORT session config entries by ORT's own keys, e.g.
``{"session.intra_op.allow_spinning": "0"}``.

``run`` uses the session's threads on each call. ``run_many`` (the Recognizer's stream of batches) runs
as many calls side by side instead, each on one thread of a second, one-thread session opened on first
use: a CRNN call on a few crops splits poorly over threads (every layer waits for the slowest), while
whole calls side by side keep each core busy. On the CPU the outputs are bit for bit those of ``run``.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from crnn_cli.core.backend import INFER, Availability, Backend, ModelInfo, Session, SessionOptions
from crnn_cli.core.errors import BackendError, ModelError, UsageError
from crnn_cli.core.registry import distribution_version
from crnn_cli.core.widths import WIDTHS_INPUT

if TYPE_CHECKING:
    from crnn_cli.core.conversion import Quantizer, Reader, Writer

INSTALL_HINT = "pip install onnxruntime  (or onnxruntime-gpu / onnxruntime-openvino for other providers)"


def _dim(d: object) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


class OnnxRuntimeSession(Session):
    def __init__(self, model: Path, options: SessionOptions) -> None:
        import onnxruntime as ort

        self._model, self._options = model, options
        self._lane: OnnxRuntimeSession | None = None  # the one-thread session of run_many
        self._lanes: ThreadPoolExecutor | None = None
        self._opening = threading.Lock()

        so = ort.SessionOptions()
        if options.threads:
            so.intra_op_num_threads = options.threads
            so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3  # warnings about unused initializers etc. are noise for users
        for key, value in options.extra.items():  # ORT session config entries, by ORT's own keys
            try:
                so.add_session_config_entry(str(key), str(value))
            except Exception as exc:
                raise UsageError(f"ONNX Runtime rejects session option {key}={value!r}: {exc}") from None
        providers = list(options.providers) if options.providers else ["CPUExecutionProvider"]
        known = set(ort.get_available_providers())
        missing = [p for p in providers if p not in known]
        if missing:
            raise BackendError(
                f"ONNX Runtime provider(s) {', '.join(missing)} not available here "
                f"(available: {', '.join(sorted(known))})"
            )
        try:
            self._sess = ort.InferenceSession(str(model), sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{model}: ONNX Runtime cannot load this model: {first}") from None
        inputs = self._sess.get_inputs()
        outputs = self._sess.get_outputs()
        # One image input, and optionally the per-crop widths input (crnn_cli/core/widths.py).
        widths = [i for i in inputs if i.name == WIDTHS_INPUT and len(i.shape) == 1]
        inputs = [i for i in inputs if i not in widths]
        if len(inputs) != 1 or len(widths) > 1:
            raise ModelError(f"{model}: expected one image input, the model has {len(inputs) + len(widths)}")
        shape_in = tuple(inputs[0].shape)
        shape_out = tuple(outputs[0].shape)
        if len(shape_in) != 4:
            raise ModelError(f"{model}: input '{inputs[0].name}' must be N x C x H x W, is {shape_in}")
        if len(shape_out) not in (0, 3):  # symbolic dims still give the rank
            raise ModelError(f"{model}: output must be N x T x C (a CTC recognizer), is {shape_out}")
        meta = self._sess.get_modelmeta()
        self._input = inputs[0].name
        self._output = outputs[0].name
        self.info = ModelInfo(
            input_name=inputs[0].name,
            input_shape=tuple(_dim(d) for d in shape_in),
            output_shape=tuple(_dim(d) for d in shape_out),
            props=dict(meta.custom_metadata_map),
            symbolic_dims=tuple(str(d) for d in shape_in + shape_out if isinstance(d, str)),
            widths_input=WIDTHS_INPUT if widths else None,
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._sess is None:
            raise ModelError("this ONNX Runtime session is closed; open the model again")
        return self._sess.run([self._output], {self._input: batch})[0]

    def _run_widths(self, batch: np.ndarray, widths: np.ndarray) -> np.ndarray:
        if self._sess is None:
            raise ModelError("this ONNX Runtime session is closed; open the model again")
        return self._sess.run([self._output], {self._input: batch, WIDTHS_INPUT: widths})[0]

    def parallel_calls(self) -> int:
        """How many calls run_many runs side by side: the session's threads, on the CPU only."""
        providers = self._options.providers or ("CPUExecutionProvider",)
        if tuple(providers) != ("CPUExecutionProvider",):
            return 1  # a GPU provider: one call at a time, as the device likes it
        return max(1, self._options.threads or os.cpu_count() or 1)

    def run_many(
        self, batches: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray | None]]
    ) -> Iterator[np.ndarray]:
        """Outputs of ``batches`` in order, up to parallel_calls() of them running at once (see the
        module docstring); a batch fetched here waits in line while the others run. With one call at a
        time, it runs on a thread of its own while the caller prepares the next batch."""
        if self._sess is None:
            raise ModelError("this ONNX Runtime session is closed; open the model again")
        calls = self.parallel_calls()
        with self._opening:  # two streams starting at once open one twin between them
            if self._lanes is None:  # one call at a time still runs beside the caller, who builds the next
                self._lanes = ThreadPoolExecutor(max_workers=calls, thread_name_prefix="crnn-ort")
            if calls > 1 and self._lane is None:
                self._lane = OnnxRuntimeSession(self._model, replace(self._options, threads=1))
            lane, lanes = self._lane or self, self._lanes
        pending: deque[Future] = deque()
        try:
            for item in batches:
                batch, widths = item if isinstance(item, tuple) else (item, None)
                pending.append(lanes.submit(lane.run, batch, widths))
                if len(pending) > calls:  # every lane busy and one more in line: take the oldest
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # Stopped early or a batch failed: nothing of this stream may still run on return.
            for future in pending:
                if not future.cancel():
                    future.exception()

    def close(self) -> None:
        self._sess = None  # type: ignore[assignment]
        if self._lanes is not None:
            self._lanes.shutdown(wait=True)
            self._lanes = None
        if self._lane is not None:
            self._lane.close()
            self._lane = None


class OnnxRuntimeBackend(Backend):
    name: ClassVar[str] = "onnxruntime"
    capabilities: ClassVar[frozenset[str]] = frozenset({INFER})
    suffixes: ClassVar[tuple[str, ...]] = (".onnx",)
    priority: ClassVar[int] = 10
    distributions: ClassVar[tuple[str, ...]] = (
        "onnxruntime",
        "onnxruntime-gpu",
        "onnxruntime-openvino",
        "onnxruntime-directml",
    )
    session_options: ClassVar[frozenset[str] | None] = frozenset({"providers", "extra"})

    def availability(self) -> Availability:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            return Availability(False, reason=f"onnxruntime is not installed ({exc})", hint=INSTALL_HINT)
        v = distribution_version("onnxruntime") or getattr(onnxruntime, "__version__", "")
        return Availability(True, version=v)

    def open(self, model: Path, options: SessionOptions) -> Session:
        return OnnxRuntimeSession(Path(model), options)

    def readers(self) -> tuple[Reader, ...]:
        from crnn_onnxruntime.conversion import OnnxReader

        return (OnnxReader(),)

    def writers(self) -> tuple[Writer, ...]:
        from crnn_onnxruntime.conversion import OnnxWriter

        return (OnnxWriter(),)

    def quantizers(self) -> tuple[Quantizer, ...]:
        from crnn_onnxruntime.quantize import OnnxQuantizer

        return (OnnxQuantizer(),)
