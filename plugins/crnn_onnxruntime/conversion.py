"""`crnn convert` of ONNX files: the reader of foreign ONNX recognizers and the ONNX writer.

The reader takes an ONNX file from anywhere (paddle2onnx, RapidOCR): its metadata_props, else its input
shape and class count with the user's options, become crnn metadata; ONNX Runtime runs it as the
reference. The writer copies a graph with that metadata (and a static width when asked for), and the
copy must pass ``onnx.checker`` (full check) before the core verifies it on ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

from crnn_cli.core.backend import Availability, SessionOptions
from crnn_cli.core.conversion import (
    ONNX,
    ConvertOptions,
    Reader,
    SourceModel,
    Writer,
    metadata_from_graph,
    onnx_shapes,
    output_widths,
)
from crnn_cli.core.errors import ModelError
from crnn_cli.core.fileio import atomic_path
from crnn_cli.core.metadata import ModelMetadata, set_onnx_metadata

ONNX_HINT = "pip install 'crnn[onnxruntime]'"


def save_checked(proto: Any, path: Path, props: dict[str, str], what: str, out: Path) -> None:
    """Save ``proto`` at ``path`` carrying crnn metadata ``props``; ModelError (naming ``what`` and that
    ``out`` was not written) unless onnx.checker's full check passes."""
    import onnx

    set_onnx_metadata(proto, props)
    onnx.save(proto, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ModelError(f"{what} fails onnx.checker: {exc}; {out} was not written") from None


def _onnx_availability() -> Availability:
    if find_spec("onnx") is None:
        return Availability(False, reason="the onnx package is not installed", hint=ONNX_HINT)
    return Availability(True)


class OnnxReader(Reader):
    kinds: ClassVar[tuple[str, ...]] = ("onnx",)

    def probe(self, path: Path) -> str | None:
        return "onnx" if path.name.lower().endswith(".onnx") else None

    def availability(self, kind: str) -> Availability:
        return _onnx_availability()

    def read(
        self, path: Path, kind: str, opts: ConvertOptions, formats: Sequence[str], workdir: Path
    ) -> SourceModel:
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:
            raise ModelError(f"{path}: not a readable ONNX file ({exc})") from None
        props = {p.key: p.value for p in proto.metadata_props}
        ishape, classes = onnx_shapes(proto)
        meta = metadata_from_graph(props, ishape, classes, opts, path, "unknown")
        meta = output_widths(meta, opts, path)
        reference = None
        if opts.verify:
            from crnn_onnxruntime import OnnxRuntimeSession

            reference = OnnxRuntimeSession(path, SessionOptions()).run
        return SourceModel(kind, path, ONNX, meta, reference)


class OnnxWriter(Writer):
    target: ClassVar[str] = "onnx"
    label: ClassVar[str] = "ONNX"
    suffix: ClassVar[str] = ".onnx"
    runner: ClassVar[str | None] = "onnxruntime"

    def availability(self) -> Availability:
        return _onnx_availability()

    def write(self, source: SourceModel, opts: ConvertOptions, workdir: Path) -> tuple[Path, list[str]]:
        import onnx

        proto = onnx.load(str(source.graph))
        if opts.static_width is not None:
            dims = proto.graph.input[0].type.tensor_type.shape.dim
            if len(dims) == 4:
                dims[3].Clear()
                dims[3].dim_value = opts.static_width
        set_onnx_metadata(proto, source.metadata.to_props())
        candidate = workdir / "model.onnx"
        onnx.save(proto, str(candidate))
        try:
            onnx.checker.check_model(str(candidate), full_check=True)
        except Exception as exc:
            raise ModelError(
                f"converted graph fails onnx.checker: {exc}; {opts.out} was not written"
            ) from None
        opsets = sorted({o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")})
        return candidate, [f"onnx.checker (full check, opset {'/'.join(map(str, opsets))}): passed"]

    def install(self, candidate: Path, opts: ConvertOptions, meta: ModelMetadata) -> None:
        with atomic_path(opts.out) as tmp:
            tmp.write_bytes(candidate.read_bytes())
