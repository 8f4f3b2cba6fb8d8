"""A third-party crnn plugin, as an outside author would write one: a new target format, `--to toy`.

The tests install it as its own distribution (crnn-toy, a dist-info with a ``crnn.backends`` entry
point, in a temporary folder on sys.path); crnn itself knows nothing of it.

The toy format: one file, ``TOY1\\n`` + the crnn metadata properties as one JSON line + the ONNX graph.
Its runtime reads the header, hands the graph to ONNX Runtime, and (for the tests) can be told to
misbehave: ``CRNN_TOY_SKEW=0.01`` adds that much to every probability it returns, which crnn's
verification must catch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from crnn_cli.core.backend import INFER, Availability, Backend, ModelInfo, Session
from crnn_cli.core.conversion import ONNX, Writer
from crnn_cli.core.errors import ModelError, UsageError
from crnn_cli.core.fileio import atomic_path

MAGIC = b"TOY1\n"


def read_toy(path: Path) -> tuple[dict[str, str], bytes]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read this toy model ({exc.strerror})") from None
    if not data.startswith(MAGIC) or b"\n" not in data[len(MAGIC) :]:
        raise ModelError(f"{path}: not a toy model (no TOY1 header)")
    header, graph = data[len(MAGIC) :].split(b"\n", 1)
    try:
        props = json.loads(header)
    except ValueError:
        raise ModelError(f"{path}: the toy header is not JSON") from None
    return props, graph


class ToySession(Session):
    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        props, graph = read_toy(path)
        try:
            self._sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        except Exception:
            raise ModelError(f"{path}: the toy model's graph does not load") from None
        inp, out = self._sess.get_inputs()[0], self._sess.get_outputs()[0]
        dim = lambda d: d if isinstance(d, int) and d > 0 else None  # noqa: E731
        self._name = inp.name
        self._skew = float(os.environ.get("CRNN_TOY_SKEW", "0"))
        self.info = ModelInfo(
            inp.name, tuple(dim(d) for d in inp.shape), tuple(dim(d) for d in out.shape), props
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] == 0:
            return np.zeros((0, 0, self.info.output_shape[2] or 0), np.float32)
        return self._sess.run(None, {self._name: batch})[0] + self._skew


class ToyWriter(Writer):
    target = "toy"
    label = "toy"
    suffix = ".toy"
    formats = (ONNX,)
    runner = "toy"

    def check(self, opts):  # type: ignore[no-untyped-def]
        if opts.out.suffix != ".toy":
            raise UsageError(f"toy output must end in .toy, got {opts.out}")

    def write(self, source, opts, workdir):  # type: ignore[no-untyped-def]
        import onnx

        proto = onnx.load(str(source.graph))
        if opts.static_width is not None:
            dim = proto.graph.input[0].type.tensor_type.shape.dim[3]
            dim.Clear()
            dim.dim_value = opts.static_width
        candidate = workdir / "model.toy"
        header = json.dumps(source.metadata.to_props()).encode()
        candidate.write_bytes(MAGIC + header + b"\n" + proto.SerializeToString())
        return candidate, ["toy file written"]

    def install(self, candidate, opts, meta):  # type: ignore[no-untyped-def]
        with atomic_path(opts.out) as tmp:
            tmp.write_bytes(Path(candidate).read_bytes())


class ToyBackend(Backend):
    name = "toy"
    capabilities = frozenset({INFER})
    suffixes = (".toy",)
    priority = 60

    def availability(self) -> Availability:
        return Availability(True, version="1.0")

    def open(self, model, options):  # type: ignore[no-untyped-def]
        return ToySession(Path(model))

    def writers(self):  # type: ignore[no-untyped-def]
        return (ToyWriter(),)
