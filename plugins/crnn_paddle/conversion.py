"""`crnn convert` of Paddle inference models (legacy inference.pdmodel or PIR inference.json).

To ONNX through paddle2onnx 2.0.1 (paddle_inference.py: a child process, whatever it writes checked);
a writer that reads a legacy .pdmodel itself (OpenVINO) gets the file as it is, and then no Paddle is
needed. The reference the output is verified against is Paddle Inference with oneDNN off, else OpenVINO
reading the .pdmodel (``reference_runner``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from crnn_cli.core.backend import SessionOptions
from crnn_cli.core.conversion import (
    ONNX,
    ConvertOptions,
    Reader,
    SourceModel,
    metadata_from_graph,
    onnx_shapes,
    output_widths,
)
from crnn_cli.core.errors import BackendError
from crnn_cli.core.metadata import ModelMetadata
from crnn_paddle import GRAPH_NAMES

PDMODEL = "pdmodel"  # graph format: a path to a legacy inference.pdmodel (with its .pdiparams)
ARCH = "paddle_inference"
REFERENCE_NAMES = {
    "paddle": "Paddle Inference (oneDNN off)",
    "openvino": "OpenVINO reading the .pdmodel directly",
}


def _legacy_shapes(model) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:  # type: ignore[no-untyped-def]
    """A legacy model's shapes: from its protobuf when Paddle is importable, else as OpenVINO reads it."""
    from crnn_paddle import paddle_inference as pi

    try:
        return pi.graph_shapes(model)
    except ImportError:
        from crnn_cli.core.registry import require_available

        with require_available("openvino").open(model.model_file, SessionOptions(threads=1)) as session:
            return tuple(session.info.input_shape), tuple(session.info.output_shape)


class PaddleReader(Reader):
    kinds: ClassVar[tuple[str, ...]] = ("paddle",)
    priority: ClassVar[int] = 20

    def probe(self, path: Path) -> str | None:
        name = path.name.lower()
        if path.is_dir():
            return "paddle" if any((path / g).is_file() for g in GRAPH_NAMES) else None
        if name.endswith((".pdmodel", ".pdiparams")) or (
            name.endswith(".json") and path.with_suffix(".pdiparams").exists()
        ):
            return "paddle"
        return None

    def formats(self, kind: str) -> tuple[str, ...]:
        return (PDMODEL, ONNX)

    def _metadata(
        self, ishape: tuple[int | None, ...], classes: int | None, opts: ConvertOptions, path: Path
    ) -> ModelMetadata:
        meta = metadata_from_graph({}, ishape, classes, opts, path, ARCH)
        return output_widths(meta, opts, path)

    def _reference(self, path: Path, opts: ConvertOptions, checks: list[str]):  # type: ignore[no-untyped-def]
        if not opts.verify:
            return None
        from crnn_paddle import paddle_inference as pi

        name, reference = pi.reference_runner(path)
        checks.append(f"reference: {REFERENCE_NAMES[name]}")
        return reference

    def read(
        self, path: Path, kind: str, opts: ConvertOptions, formats: Sequence[str], workdir: Path
    ) -> SourceModel:
        from crnn_paddle import paddle_inference as pi

        checks: list[str] = []
        if PDMODEL in formats:
            legacy = pi.find_inference_model(path, prefer=pi.LEGACY)
            if legacy.format == pi.LEGACY:
                ishape, oshape = _legacy_shapes(legacy)
                classes = oshape[2] if len(oshape) == 3 else None
                meta = self._metadata(ishape, classes, opts, path)
                reference = self._reference(path, opts, checks)
                return SourceModel(kind, legacy.model_file, PDMODEL, meta, reference, checks)
        fmt = pi.find_inference_model(path).format
        avail = pi.paddle2onnx_available()
        if not avail.ok:
            raise BackendError(
                f"converting a Paddle {fmt} inference model to {opts.target} needs paddle2onnx: "
                f"{avail.reason}; {avail.hint}"
            )
        onnx_path = pi.convert_with_paddle2onnx(path, workdir / "paddle.onnx", opset=opts.opset)
        checks.append("paddle2onnx 2.0.1: converted (its exit status is not trusted; checked below)")
        import onnx

        ishape, classes = onnx_shapes(onnx.load(str(onnx_path), load_external_data=False))
        meta = self._metadata(ishape, classes, opts, path)
        reference = self._reference(path, opts, checks)
        return SourceModel(kind, onnx_path, ONNX, meta, reference, checks)
