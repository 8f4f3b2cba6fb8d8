"""Export torch CRNNs to ONNX (and from ONNX to OpenVINO IR), with metadata, checks and verification.

ONNX: the TorchScript-based exporter (``dynamo=False``), which keeps the bidirectional LSTM's time axis
dynamic; batch and width are dynamic unless a static width is asked for. The graph must pass
``onnx.checker`` (full check) and match the torch model numerically before it replaces ``out``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn_cli.core.errors import ModelError
from crnn_cli.core.fileio import atomic_path
from crnn_cli.core.metadata import ModelMetadata, set_onnx_metadata
from crnn_cli.core.verify import VerifyReport, compare, verification_batches
from crnn_torch.models import WithSoftmax

DEFAULT_OPSET = 17  # widely supported (ORT >= 1.11, OpenVINO >= 2022.1); LSTM and all our ops exist


@dataclass
class ExportResult:
    path: Path
    checks: list[str]
    verify: VerifyReport | None


def torch_reference(model: nn.Module) -> Any:
    """A numpy batch -> probabilities function running the torch model (eval mode, no grad)."""
    wrapped = WithSoftmax(model).eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return wrapped(torch.from_numpy(batch)).numpy()

    return run


def export_onnx(
    model: nn.Module,
    metadata: ModelMetadata,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    static_width: int | None = None,
    verify: bool = True,
) -> ExportResult:
    """Write ``model`` (logits N, T, C) as an ONNX file of probabilities with ``metadata`` embedded.

    Verification runs ONNX Runtime against torch on text crops at several widths; a failure raises
    ModelError and leaves ``out`` as it was.
    """
    import onnx

    model = model.eval()
    if metadata.height is None:
        raise ModelError("metadata has no input height; cannot export")
    meta = metadata
    if static_width is not None:
        meta = ModelMetadata(**{**metadata.__dict__, "width": static_width, "dynamic_width": False})
    width = static_width or metadata.width or metadata.height * 4
    example = torch.zeros(1, metadata.channels, metadata.height, width)
    dynamic_axes = {"x": {0: "batch"}, "probs": {0: "batch", 1: "time"}}
    if static_width is None:
        dynamic_axes["x"][3] = "width"
    checks: list[str] = []
    out = Path(out)
    with atomic_path(out) as tmp:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                WithSoftmax(model).eval(),
                (example,),
                str(tmp),
                input_names=["x"],
                output_names=["probs"],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=False,
                do_constant_folding=True,
            )
        proto = onnx.load(str(tmp))
        set_onnx_metadata(proto, meta.to_props())
        onnx.save(proto, str(tmp))
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:  # onnx raises ValidationError / InferenceError
            raise ModelError(f"exported graph fails onnx.checker: {exc}") from None
        checks.append(f"onnx.checker (full check, opset {opset}): passed")
        report = None
        if verify:
            report = verify_onnx(tmp, torch_reference(model), meta)
            checks.append(f"ONNX Runtime vs torch: {report.summary()}")
            if not report.ok:
                raise ModelError(
                    f"exported model does not match torch: {report.summary()}; {out} not written"
                )
    return ExportResult(out, checks, report)


def verify_onnx(path: Path, reference: Any, metadata: ModelMetadata) -> VerifyReport:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    charset = metadata.charset()
    if charset is None:
        raise ModelError("metadata has no dictionary; cannot verify decoded strings")
    return compare(
        reference,
        lambda b: sess.run(None, {name: b})[0],
        verification_batches(metadata.preprocess()),
        charset,
    )
