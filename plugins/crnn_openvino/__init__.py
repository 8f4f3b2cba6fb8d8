"""OpenVINO backend for crnn: runs OpenVINO IR (.xml + .bin), ONNX and legacy Paddle inference models.

A legacy Paddle model (``inference.pdmodel`` + ``inference.pdiparams``, or the folder holding them) is
read by OpenVINO's own Paddle frontend, so no Paddle install is needed. Paddle 3's PIR format
(``inference.json``) is not readable by OpenVINO; convert it to ONNX first. How crnn metadata is stored
in IR rt_info: see ir.py; ``write_ir`` saves an IR with it.

Session options: ``device`` (CPU default), ``threads`` (INFERENCE_NUM_THREADS), ``performance_hint``
(LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT), ``num_requests`` (the async queue's size and
PERFORMANCE_HINT_NUM_REQUESTS); ``extra`` holds raw OpenVINO properties passed to compile_model,
e.g. ``{"INFERENCE_PRECISION_HINT": "bf16", "CACHE_DIR": "/tmp/ov"}``. Inference runs in f32 unless
``extra`` says otherwise (this matters: see ``_config``).
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crnn_cli.core.backend import (
    INFER,
    NO_WIDTHS,
    Availability,
    Backend,
    ModelInfo,
    Session,
    SessionOptions,
    check_widths,
)
from crnn_cli.core.errors import BackendError, ModelError, UsageError
from crnn_cli.core.registry import distribution_version
from crnn_cli.core.widths import WIDTHS_INPUT
from crnn_openvino.ir import core, model_props, read_model, read_props, reason, resolve_model_path, write_ir

if TYPE_CHECKING:
    import openvino as ov

    from crnn_cli.core.conversion import Quantizer, Writer

__all__ = ["OpenVinoBackend", "OpenVinoSession", "read_props", "resolve_model_path", "write_ir"]

INSTALL_HINT = "pip install 'crnn[openvino]'"
HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
_VIRTUAL_DEVICES = {"AUTO", "HETERO", "MULTI", "BATCH"}
# Narrower dynamic-width batches are refused: for a width whose CRNN time axis would be empty, the CPU
# plugin returns [0, 0, C] on a fresh model, the previous batch's shape afterwards, and has crashed.
MIN_WIDTH = 16


# Sessions still open at interpreter exit: OpenVINO objects destroyed during Python's own teardown
# aborted the process ("terminate called without an active exception", exit 134) in about half the
# runs of a script that left five sessions open; closing them first, from atexit, avoids it.
_open_sessions: weakref.WeakSet[OpenVinoSession] = weakref.WeakSet()


@atexit.register
def _close_open_sessions() -> None:
    for session in list(_open_sessions):
        session.close()


def _dim(d: Any) -> int | None:
    """A static dimension's length; None for dynamic ones (including intervals such as 1..)."""
    return d.get_length() if d.is_static else None


class OpenVinoSession(Session):
    """A compiled model. ``run`` uses one infer request (not thread-safe); ``run_many`` an async queue."""

    _compiled: ov.CompiledModel | None
    _request: ov.InferRequest | None

    def __init__(self, model: Path, options: SessionOptions) -> None:
        # Options first: a typo in them should not wait for a large model to load.
        self._device = self._check_device(core(), options.device)
        self._settings = self._config(options)
        self._path = path = resolve_model_path(model)
        ov_model = read_model(path)
        # One image input, and optionally the per-crop widths input (crnn_cli/core/widths.py).
        widths = [i for i, p in enumerate(ov_model.inputs) if WIDTHS_INPUT in p.get_names()]
        self._widths_index = widths[0] if widths and len(ov_model.inputs) == 2 else None
        if len(ov_model.inputs) != 1 + (self._widths_index is not None):
            raise ModelError(f"{path}: expected one image input, the model has {len(ov_model.inputs)}")
        self._image_index = 1 if self._widths_index == 0 else 0
        port = ov_model.input(self._image_index)
        pshape = port.get_partial_shape()
        if pshape.rank.is_dynamic or pshape.rank.get_length() != 4:
            raise ModelError(f"{path}: input must be N x C x H x W, is {pshape}")
        out_shape = ov_model.output(0).get_partial_shape()
        if out_shape.rank.is_static and out_shape.rank.get_length() != 3:
            raise ModelError(f"{path}: output must be N x T x C (a CTC recognizer), is {out_shape}")
        props = model_props(ov_model, path)
        self._fixed_batch = self._free_batch(ov_model, pshape) if self._widths_index is None else None
        pshape = ov_model.input(self._image_index).get_partial_shape()
        out_shape = ov_model.output(0).get_partial_shape()

        self._model: ov.Model | None = ov_model  # kept to recompile after a failed inference
        self._compile()
        _open_sessions.add(self)
        optimal = int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        # At least two even under LATENCY (whose optimum is 1), so the next batch is already queued when
        # one finishes; on 2 cores that measured the same speed as run(), never slower beyond noise.
        self._jobs = options.num_requests or max(2, optimal)
        names = port.get_names()
        self.info = ModelInfo(
            input_name=sorted(names)[0] if names else port.get_node().get_friendly_name(),
            input_shape=tuple(_dim(d) for d in pshape),
            output_shape=tuple(_dim(d) for d in out_shape) if out_shape.rank.is_static else (None,) * 3,
            props=props,
            # A widths input is fed (each crop the batch's full width) but not offered for mixing
            # widths: OpenVINO's LSTM with sequence lengths shorter than the batch gives other frames
            # than the same crop alone (ONNX Runtime gives identical ones), so crops share a call
            # only with crops of their own width here, as with any other model.
        )

    def _compile(self) -> None:
        """(Re)compile the model. Also the recovery after a failed inference: OpenVINO's CPU plugin can
        leave a compiled model failing every later request once one fails inside the graph."""
        if self._model is None:
            raise ModelError(f"{self._path}: the session is closed; open the model again")
        try:
            self._compiled = core().compile_model(self._model, self._device, self._settings)
        except Exception as exc:
            raise ModelError(
                f"{self._path}: OpenVINO cannot compile this model for {self._device}: {reason(exc)}"
            ) from None
        self._request = self._compiled.create_infer_request()

    @staticmethod
    def _free_batch(ov_model: ov.Model, pshape: Any) -> int | None:
        """Make a static batch dimension dynamic (IRs exported at batch 1); the fixed size if it can't be."""
        if pshape[0].is_dynamic:
            return None
        import openvino as ov

        try:
            ov_model.reshape({0: ov.PartialShape([-1, *list(pshape)[1:]])})
        except Exception:  # a graph with the batch baked into a Reshape: keep it and split batches
            return pshape[0].get_length()
        return None

    @staticmethod
    def _check_device(core: ov.Core, device: str) -> str:
        device = device.upper()  # torch spells it "cpu"
        base = device.split(":")[0].split(".")[0]
        present = {d.split(".")[0] for d in core.available_devices}
        if base not in _VIRTUAL_DEVICES and base not in present:
            raise BackendError(
                f"OpenVINO device '{device}' is not available here (available: {', '.join(sorted(present))})"
            )
        return device

    @staticmethod
    def _config(options: SessionOptions) -> dict[str, Any]:
        hint = (options.performance_hint or "LATENCY").upper()
        if hint not in HINTS:
            raise UsageError(
                f"performance_hint must be one of {', '.join(HINTS)}, got {options.performance_hint!r}"
            )
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": hint,
            # CPUs with AVX512-BF16/AMX default to bf16 inference, which moves probabilities by ~1e-2;
            # f32 keeps parity with the other backends. extra may ask for bf16/f16 on purpose.
            "INFERENCE_PRECISION_HINT": "f32",
        }
        if options.threads:
            config["INFERENCE_NUM_THREADS"] = int(options.threads)
        if options.num_requests:
            config["PERFORMANCE_HINT_NUM_REQUESTS"] = int(options.num_requests)
        config.update(options.extra)
        return config

    def _check_width(self, batch: np.ndarray) -> None:
        if self.info.input_shape[3] is None and batch.shape[3] < MIN_WIDTH:
            raise ModelError(
                f"batch width {batch.shape[3]} is below {MIN_WIDTH} px: OpenVINO's CPU plugin returns stale or "
                f"empty outputs when a CRNN's time axis would be empty; pad the batch to at least {MIN_WIDTH} px"
            )

    def _validate(self, batch: np.ndarray) -> np.ndarray:
        """The checks Session.run makes (plus the width floor), for run_many which bypasses run."""
        if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.dtype != np.float32:
            desc = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
            raise ModelError(f"input batch must be float32 N x C x H x W, got {desc}")
        for axis, (want, have) in enumerate(zip(self.info.input_shape[1:], batch.shape[1:]), start=1):
            if want is not None and want != have:
                name = "CHW"[axis - 1]
                raise ModelError(f"model input {name} must be {want}, batch has {have} (shape {batch.shape})")
        self._check_width(batch)
        return np.ascontiguousarray(batch)

    def _inputs(self, batch: np.ndarray) -> dict[int, np.ndarray]:
        if self._widths_index is None:
            return {0: batch}
        return {self._image_index: batch, self._widths_index: check_widths(None, batch)}

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self._request is None:
            raise ModelError(f"{self._path}: the session is closed; open the model again")
        try:
            # share_inputs: the batch is contiguous float32 already, no need for OpenVINO to copy it.
            return self._request.infer(self._inputs(batch), share_inputs=True)[0]
        except Exception as exc:
            self._compile()  # so the next batch runs on a healthy compiled model
            raise ModelError(
                f"{self._path}: OpenVINO failed on a batch of shape {batch.shape}: {reason(exc)}"
            ) from None

    def _empty(self) -> np.ndarray:
        """The output for N = 0, which OpenVINO's pooling rejects: 0 x 0 x classes."""
        return np.zeros((0, 0, self.info.output_shape[2] or 0), np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """batch: N, C, H, W float32 -> N, T, classes."""
        self._check_width(batch)
        if batch.shape[0] == 0:
            return self._empty()
        fixed = self._fixed_batch
        if fixed is None or batch.shape[0] == fixed:
            return self._infer(batch)
        if fixed == 1:
            return np.concatenate([self._infer(batch[i : i + 1]) for i in range(batch.shape[0])])
        raise ModelError(
            f"{self._path}: the model's batch is fixed at {fixed}, got a batch of {batch.shape[0]}"
        )

    def run_many(
        self, batches: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray | None]]
    ) -> Iterator[np.ndarray]:
        """Run batches through an async infer queue, yielding N, T, classes outputs in input order.

        Up to ``num_requests`` batches are in flight at once (THROUGHPUT runs them on parallel streams).
        Outputs that finish early wait until every earlier one has been yielded.
        """
        if self._compiled is None:
            raise ModelError(f"{self._path}: the session is closed; open the model again")
        if self._fixed_batch is not None:
            yield from super().run_many(batches)  # batches may need splitting: keep it simple
            return
        import openvino as ov

        queue = ov.AsyncInferQueue(self._compiled, self._jobs)
        done: dict[int, np.ndarray] = {}
        sizes: list[int] = []  # batch sizes, to check each output against its input

        def on_done(request: ov.InferRequest, index: int) -> None:
            # Runs on an OpenVINO thread and only for requests that succeeded (a failure surfaces in
            # start_async or wait_all); the request is reused afterwards, so copy its output out.
            done[index] = request.get_output_tensor(0).data.copy()

        def failure(exc: BaseException) -> ModelError:
            return ModelError(
                f"{self._path}: OpenVINO failed on one of batches {emitted}..{len(sizes) - 1}: {reason(exc)}"
            )

        queue.set_callback(on_done)
        emitted = 0
        failed = False
        try:
            for index, item in enumerate(batches):
                batch, widths = item if isinstance(item, tuple) else (item, None)
                batch = self._validate(batch)
                if widths is not None:
                    raise ModelError(NO_WIDTHS)
                sizes.append(batch.shape[0])
                if batch.shape[0] == 0:
                    done[index] = self._empty()  # nothing to run; keeps its place in the order
                    continue
                try:
                    # Blocks while every request is busy; copies the batch, so callers may reuse it.
                    queue.start_async(self._inputs(batch), index)
                except Exception as exc:
                    failed = True
                    raise failure(exc) from None
                while emitted in done:
                    yield self._check_output(done.pop(emitted), sizes[emitted])
                    emitted += 1
            try:
                queue.wait_all()
            except Exception as exc:
                failed = True
                raise failure(exc) from None
            while emitted < len(sizes):
                yield self._check_output(done.pop(emitted), sizes[emitted])
                emitted += 1
        finally:
            try:
                queue.wait_all()  # a consumer that stops early must not leave requests writing into `done`
            except Exception:
                failed = True
            if failed:
                self._compile()

    def close(self) -> None:
        """Release the compiled model and its requests (idempotent)."""
        self._request = None
        self._compiled = None
        self._model = None
        _open_sessions.discard(self)


class OpenVinoBackend(Backend):
    name: ClassVar[str] = "openvino"
    capabilities: ClassVar[frozenset[str]] = frozenset({INFER})
    suffixes: ClassVar[tuple[str, ...]] = (".xml", ".onnx", ".pdmodel")
    priority: ClassVar[int] = 30  # ONNX Runtime (10) stays the default for .onnx
    distributions: ClassVar[tuple[str, ...]] = ("openvino",)
    session_options: ClassVar[frozenset[str] | None] = frozenset(
        {"device", "performance_hint", "num_requests", "extra"}
    )
    hints: ClassVar[tuple[str, ...]] = ("LATENCY", "THROUGHPUT")  # what --backend auto tries

    def availability(self) -> Availability:
        try:
            import openvino
        except ImportError as exc:
            return Availability(False, reason=f"openvino is not installed ({exc})", hint=INSTALL_HINT)
        v = distribution_version("openvino") or getattr(openvino, "__version__", "")
        return Availability(True, version=v)

    def open(self, model: Path, options: SessionOptions) -> Session:
        return OpenVinoSession(Path(model), options)

    def _accepts_dir(self, model: Path) -> bool:
        return (model / "inference.pdmodel").is_file() or len(list(model.glob("*.xml"))) == 1

    def writers(self) -> tuple[Writer, ...]:
        from crnn_openvino.conversion import OpenVinoWriter

        return (OpenVinoWriter(),)

    def quantizers(self) -> tuple[Quantizer, ...]:
        from crnn_openvino.conversion import OpenVinoQuantizer

        return (OpenVinoQuantizer(),)
