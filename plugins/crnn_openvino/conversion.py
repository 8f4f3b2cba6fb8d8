"""`crnn convert --to openvino`: the IR writer, and INT8 IR through NNCF (``--int8``).

The writer takes an ONNX graph, or a legacy Paddle ``.pdmodel`` that OpenVINO's Paddle frontend reads
itself (no paddle2onnx step). The IR is written in a private folder, verified there by the core on this
plugin's own session, then saved beside OUT and renamed into place (``write_ir``).

Nothing here imports openvino or nncf at module level.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import ClassVar

import numpy as np

from crnn_cli.core.backend import Availability
from crnn_cli.core.conversion import ONNX, ConvertOptions, Quantizer, SourceModel, Writer
from crnn_cli.core.errors import ModelError, UsageError
from crnn_cli.core.metadata import ModelMetadata

PDMODEL = "pdmodel"  # graph format: a path to a legacy Paddle inference model (inference.pdmodel)
NNCF_HINT = "pip install nncf"


class OpenVinoWriter(Writer):
    target: ClassVar[str] = "openvino"
    label: ClassVar[str] = "OpenVINO"
    suffix: ClassVar[str] = ".xml"
    formats: ClassVar[tuple[str, ...]] = (PDMODEL, ONNX)
    runner: ClassVar[str | None] = "openvino"
    fp16: ClassVar[bool] = True

    def availability(self) -> Availability:
        from crnn_openvino import INSTALL_HINT

        if find_spec("openvino") is None:
            return Availability(False, reason="openvino is not installed", hint=INSTALL_HINT)
        return Availability(True)

    def check(self, opts: ConvertOptions) -> None:
        if opts.out.suffix.lower() != ".xml":
            raise UsageError(f"OpenVINO output must end in .xml (the .bin goes beside it), got {opts.out}")

    def write(self, source: SourceModel, opts: ConvertOptions, workdir: Path) -> tuple[Path, list[str]]:
        import openvino as ov

        from crnn_openvino.ir import read_model, write_ir

        meta = source.metadata
        path = Path(source.graph)
        model = read_model(path) if source.graph_format == PDMODEL else ov.convert_model(str(path))
        if opts.static_width is not None:
            model.reshape(
                {model.inputs[0]: ov.PartialShape([-1, meta.channels, meta.height, opts.static_width])}
            )
        candidate = write_ir(model, workdir / "model.xml", meta.to_props(), compress_to_fp16=opts.fp16)
        return candidate, [f"OpenVINO IR written ({'FP16' if opts.fp16 else 'FP32'} weights)"]

    def install(self, candidate: Path, opts: ConvertOptions, meta: ModelMetadata) -> None:
        from crnn_openvino.ir import write_ir

        write_ir(str(candidate), opts.out, meta.to_props(), compress_to_fp16=opts.fp16)


class OpenVinoQuantizer(Quantizer):
    """`--to openvino --int8`: NNCF post-training quantization of the FP32 model read by OpenVINO."""

    target: ClassVar[str] = "openvino"

    def availability(self) -> Availability:
        if find_spec("nncf") is None:
            return Availability(
                False,
                reason="INT8 OpenVINO IR is quantized with NNCF, which is not installed",
                hint=f"{NNCF_HINT} (or use --to onnx --int8: ONNX Runtime's quantizer needs nothing more)",
            )
        return Availability(True)

    def quantize(
        self,
        fp32_onnx: Path,
        meta: ModelMetadata,
        batches: list[np.ndarray],
        opts: ConvertOptions,
        workdir: Path,
    ) -> tuple[Path, str, list[str]]:
        import nncf

        from crnn_openvino.ir import core, write_ir

        model = core().read_model(str(fp32_onnx))
        items = [b[i : i + 1] for b in batches for i in range(len(b))]  # NNCF counts samples, one per item
        try:
            quantized = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items))
        except Exception as exc:
            raise ModelError(
                f"NNCF could not quantize {fp32_onnx.name}: {type(exc).__name__}: {exc}"
            ) from None
        candidate = write_ir(quantized, workdir / "int8.xml", meta.to_props())
        method = f"NNCF post-training quantization (OpenVINO), {len(items)} calibration crops"
        return candidate, method, ["OpenVINO IR written (INT8)"]
