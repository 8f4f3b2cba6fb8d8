"""The backend protocol: what a plugin implements so crnn can run (train, export, convert) on its runtime.

A backend only maps an N x C x H x W float32 batch to N x T x C probabilities; everything that decides
the answer (decode, preprocess, dictionary, CTC, metrics) lives in the shared core. ``Session.run``
validates shapes once on the way in and out; a backend implements ``_run``.

Register a backend through the ``crnn.backends`` entry-point group; the object it names is called with
no arguments and must return a ``Backend``. See registry.py for discovery.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crnn_cli.core.errors import ModelError

if TYPE_CHECKING:
    from crnn_cli.core.conversion import Quantizer, Reader, Writer

# Capabilities a backend may declare.
INFER = "infer"
TRAIN = "train"
EXPORT = "export"
CONVERT = "convert"


@dataclass(frozen=True)
class Availability:
    """Whether a backend's runtime can be used here, and if not why and how to fix it."""

    ok: bool
    version: str = ""
    reason: str = ""  # e.g. "onnxruntime is not installed"
    hint: str = ""  # e.g. "pip install 'crnn[onnxruntime]'"

    def message(self, name: str) -> str:
        parts = [f"backend '{name}' is not available: {self.reason}"]
        if self.hint:
            parts.append(f"; install it with: {self.hint}")
        return "".join(parts)


@dataclass(frozen=True)
class SessionOptions:
    """Runtime knobs a session may honour. A backend declares which it takes (Backend.session_options);
    the Recognizer refuses a backend that would ignore one the user set (see options_given)."""

    threads: int | None = None  # intra-op threads; None = the runtime's default (all cores)
    device: str = "CPU"  # OpenVINO device name, or torch device ("cpu", "cuda:0")
    providers: tuple[str, ...] | None = None  # ONNX Runtime execution providers, by ORT's names
    # OpenVINO: LATENCY or THROUGHPUT; None = the backend's default (LATENCY), and under --backend auto
    # whichever of a backend's ``hints`` ran the model fastest
    performance_hint: str | None = None
    num_requests: int | None = None  # OpenVINO async infer requests (THROUGHPUT); None = runtime's choice
    extra: Mapping[str, Any] = field(default_factory=dict)  # backend-specific options


# SessionOptions a user sets on purpose (beyond threads, which every runtime takes), with the option
# that sets each on the command line: a backend that cannot honour one must not be chosen silently.
OPTION_FLAGS = {
    "providers": "--providers",
    "device": "--device",
    "performance_hint": "--hint",
    "num_requests": "num_requests",
    "extra": "extra session options",
}


def options_given(options: SessionOptions) -> list[str]:
    """Which of OPTION_FLAGS' fields ``options`` sets (a device of "CPU" is the default, not a choice)."""
    given = []
    if options.providers:
        given.append("providers")
    if options.device and options.device.upper() != "CPU":
        given.append("device")
    if options.performance_hint:
        given.append("performance_hint")
    if options.num_requests is not None:
        given.append("num_requests")
    if options.extra:
        given.append("extra")
    return given


@dataclass(frozen=True)
class ModelInfo:
    """What an opened model says about itself. Dynamic dimensions are None."""

    input_name: str
    input_shape: tuple[int | None, ...]  # N, C, H, W
    output_shape: tuple[int | None, ...]  # N, T, C
    props: Mapping[str, str] = field(default_factory=dict)  # metadata key/values (ONNX / rt_info)
    symbolic_dims: tuple[str, ...] = ()  # names of non-numeric dims, e.g. 'p2o.DynamicDimension.0'
    # The name of the model's per-crop widths input (int64 N: each crop's padded width; widths.py),
    # when it has one and the backend feeds it: crops of different widths may then share a call.
    widths_input: str | None = None


def check_widths(widths: np.ndarray | None, batch: np.ndarray) -> np.ndarray:
    """A batch's per-crop widths as int64, each from 1 to the batch width (None: all of it)."""
    n, width = batch.shape[0], batch.shape[3]
    if widths is None:
        return np.full(n, width, np.int64)
    out = np.asarray(widths, dtype=np.int64)
    if out.shape != (n,) or (n and (out.min() < 1 or out.max() > width)):
        raise ModelError(f"widths must be {n} numbers from 1 to the batch width {width}, got {widths}")
    return out


NO_WIDTHS = "this model has no widths input: crops of different widths cannot share a call"


class Session(ABC):
    """An opened model. Use as a context manager; ``run`` is not thread-safe unless a backend says so."""

    info: ModelInfo

    def run(self, batch: np.ndarray, widths: np.ndarray | None = None) -> np.ndarray:
        """batch: N, C, H, W float32 -> probabilities (or logits, per metadata): N, T, classes.

        widths: each crop's padded width in pixels, for a model with a widths input
        (``info.widths_input``); None means every crop fills the batch's width. Crop i's output is
        then its first T * widths[i] / W frames; the frames after them are not its own.
        """
        if batch.ndim != 4 or batch.dtype != np.float32:
            raise ModelError(f"input batch must be float32 N x C x H x W, got {batch.dtype} {batch.shape}")
        for axis, (want, have) in enumerate(zip(self.info.input_shape[1:], batch.shape[1:]), start=1):
            if want is not None and want != have:
                name = "CHW"[axis - 1]
                raise ModelError(f"model input {name} must be {want}, batch has {have} (shape {batch.shape})")
        batch = np.ascontiguousarray(batch)
        if self.info.widths_input is None:
            if widths is not None:
                raise ModelError(NO_WIDTHS)
            return self._check_output(self._run(batch), batch.shape[0])
        widths = check_widths(widths, batch)
        return self._check_output(self._run_widths(batch, widths), batch.shape[0])

    def run_many(
        self, batches: Iterable[np.ndarray | tuple[np.ndarray, np.ndarray | None]]
    ) -> Iterator[np.ndarray]:
        """Run several batches (arrays, or (array, widths) pairs as run() takes them), yielding
        outputs in order. Backends with async queues override this."""
        for item in batches:
            yield self.run(*item) if isinstance(item, tuple) else self.run(item)

    def _run_widths(self, batch: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """Run a batch with its widths; backends that report ``info.widths_input`` implement it."""
        raise ModelError(f"{type(self).__name__} reports a widths input but cannot feed it")

    @staticmethod
    def _check_output(out: np.ndarray, n: int) -> np.ndarray:
        out = np.asarray(out)
        if out.ndim != 3 or out.shape[0] != n:
            raise ModelError(
                f"model output must be N x T x C with N={n} (a CTC recognizer), got shape {out.shape}"
            )
        return out if out.dtype == np.float32 else out.astype(np.float32)

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray: ...

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release the runtime's resources."""

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Backend(ABC):
    """A runtime plugin. Subclasses set the class attributes and implement availability/open."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset({INFER})
    suffixes: ClassVar[tuple[str, ...]] = ()  # model file types it opens, e.g. (".onnx",)
    priority: ClassVar[int] = 50  # lower wins when several available backends open a file type
    hints: ClassVar[tuple[str, ...]] = ()  # performance hints it takes; --backend auto tries each
    # --backend auto considers it only for models no other backend opens (a runtime that is slow to
    # start and there to compare against, not to be timed on every first run)
    auto_fallback: ClassVar[bool] = False
    # pip distributions of the runtime: --backend auto reads their version from package metadata
    # instead of importing the runtime (OpenVINO takes 0.2 s to import) when the choice is remembered
    distributions: ClassVar[tuple[str, ...]] = ()
    # SessionOptions fields of OPTION_FLAGS it honours; None: not declared (taken as all, so a
    # third-party backend written before this existed is never refused)
    session_options: ClassVar[frozenset[str] | None] = None

    def unsupported(self, options: SessionOptions) -> list[str]:
        """The options ``options`` sets that this backend would ignore (see options_given)."""
        return self.unsupported_names(options_given(options))

    def unsupported_names(self, names: list[str]) -> list[str]:
        if self.session_options is None:
            return []
        return [o for o in names if o not in self.session_options]

    @abstractmethod
    def availability(self) -> Availability:
        """Check (cheaply, importing the runtime at most) whether this backend can run here."""

    @abstractmethod
    def open(self, model: Path, options: SessionOptions) -> Session:
        """Open a model file for inference."""

    def accepts(self, model: Path) -> bool:
        name = model.name.lower()
        return any(name.endswith(s) for s in self.suffixes) or (model.is_dir() and self._accepts_dir(model))

    def _accepts_dir(self, model: Path) -> bool:
        return False

    # Conversion (core/conversion.py): what this plugin reads, writes and quantizes. Called only by
    # `crnn convert`, `crnn export` and `crnn backends`; keep them cheap (no runtime imports).
    def readers(self) -> tuple[Reader, ...]:
        return ()

    def writers(self) -> tuple[Writer, ...]:
        return ()

    def quantizers(self) -> tuple[Quantizer, ...]:
        return ()
