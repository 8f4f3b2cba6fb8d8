"""Conversion and export: any model we read -> ONNX, OpenVINO IR or a crnn torch checkpoint, verified.

Sources:
  pdparams   a PaddleOCR training checkpoint (.pdparams, its prefix or folder): loaded without Paddle by
             the safe unpickler, mapped onto our torch CRNN, then exported.
  paddle     a Paddle inference model folder (inference.pdmodel or inference.json + .pdiparams):
             paddle2onnx for ONNX; OpenVINO reads a legacy .pdmodel directly for IR.
  onnx       an ONNX file from anywhere (paddle2onnx, RapidOCR): our metadata added, optionally reshaped.
  checkpoint a crnn torch checkpoint (.pt): `crnn export`.

Every output is checked before it replaces OUT: onnx.checker for ONNX, then the new model against its
source on text crops at several widths (|dp| <= 1e-4 + 3e-3 x p everywhere, identical decoded strings;
core/verify.py). A failed check
raises ModelError and OUT is left as it was.

INT8 (``int8=True``): the source is first converted to a verified FP32 ONNX in a temporary folder, then
quantized with calibration crops (crnn_onnxruntime/quantize.py), which reports word accuracy before and
after on a held-out share of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from crnn_cli.core.errors import BackendError, CrnnError, ModelError, UsageError
from crnn_cli.core.fileio import atomic_path
from crnn_cli.core.metadata import ModelMetadata, set_onnx_metadata
from crnn_cli.core.recognizer import resolve_metadata
from crnn_cli.core.verify import VerifyReport, compare, verification_batches

TARGETS = ("onnx", "openvino", "torch")
Reference = Callable[[np.ndarray], np.ndarray]


@dataclass
class ConvertOptions:
    target: str
    out: Path
    dictionary: str | None = None
    use_space_char: bool | None = None
    image_shape: tuple[int, int, int | None] | None = None
    config: Path | None = None
    opset: int = 17
    static_width: int | None = None
    max_width: int | None = None  # dynamic width: widest crop (px) inference keeps unsquashed
    fp16: bool = False
    verify: bool = True
    int8: bool = False
    calibration: Path | None = None  # labelled dataset or folder of crops for INT8 calibration
    calibration_samples: int = 256  # crops used to calibrate (more: slower, rarely better ranges)
    holdout: float = 0.2  # share of labelled calibration crops kept out to measure accuracy
    int8_ops: str = "conv"  # ONNX Runtime: which ops to quantize (crnn_onnxruntime.quantize.OP_SETS)
    int8_lstm: bool = True  # ONNX Runtime: LSTM weights int8 too (DynamicQuantizeLSTM)


@dataclass
class ConvertSummary:
    source: str
    source_kind: str
    target: str
    out: Path
    metadata: ModelMetadata
    checks: list[str] = field(default_factory=list)
    verify: VerifyReport | None = None
    quantization: Any = None  # crnn_onnxruntime.quantize.QuantizationReport for --int8

    def lines(self) -> list[str]:
        m = self.metadata
        shape = f"{m.channels}x{m.height}x{'W' if m.dynamic_width else m.width}"
        if m.dynamic_width:
            shape += " (width dynamic" + (f", min {m.width})" if m.width else ")")
        return [
            f"source      {self.source} ({self.source_kind})",
            f"output      {self.out} ({self.target}{', INT8' if self.quantization else ''})",
            f"model       {m.architecture}, input N x {shape}, {len(m.characters or ())} symbols + blank"
            + (" (space included)" if m.use_space_char else ""),
            *[f"check       {c}" for c in self.checks],
            *(self.quantization.lines() if self.quantization else []),
        ]


def source_kind(path: Path) -> str:
    """What kind of model ``path`` is: pdparams, paddle, onnx, openvino or checkpoint."""
    name = path.name.lower()
    if path.is_dir():
        if any(path.glob("*.pdparams")):
            return "pdparams"
        if (path / "inference.pdmodel").is_file() or (path / "inference.json").is_file():
            return "paddle"
        raise UsageError(f"{path}: folder holds neither a .pdparams checkpoint nor a Paddle inference model")
    if name.endswith(".pdparams") or (not path.exists() and path.with_suffix(".pdparams").is_file()):
        return "pdparams"
    if name.endswith((".pdmodel", ".pdiparams")) or (
        name.endswith(".json") and path.with_suffix(".pdiparams").exists()
    ):
        return "paddle"
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(".xml"):
        return "openvino"
    if name.endswith((".pt", ".pth", ".ckpt")):
        return "checkpoint"
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    raise UsageError(
        f"{path}: unknown model type (expected .pdparams, a Paddle inference folder, .onnx or .pt)"
    )


# -- targets -------------------------------------------------------------------------------------------


def _require(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise BackendError(f"this conversion needs {module}: pip install 'crnn[{extra}]'")


def _ov_reference(xml_or_model: Any) -> Reference:
    import openvino as ov

    compiled = ov.Core().compile_model(xml_or_model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(compiled(batch)[0])

    return run


def _ort_reference(path: Path) -> Reference:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda batch: sess.run(None, {name: batch})[0]


def _verify(
    reference: Reference, candidate: Reference, meta: ModelMetadata, what: str, out: Path, tol: float
) -> VerifyReport:
    charset = meta.charset()
    assert charset is not None
    try:
        report = compare(
            reference, candidate, verification_batches(meta.preprocess()), charset, tolerance=tol
        )
    except CrnnError:
        raise
    except Exception as exc:  # a runtime refusing the batch (shape, op): the check could not run
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{what}: verification could not run: {first}; {out} was not written") from None
    if not report.ok:
        raise ModelError(f"{what}: {report.summary()}; {out} was not written")
    return report


def write_onnx(
    src_onnx: Path,
    meta: ModelMetadata,
    opts: ConvertOptions,
    reference: Reference | None,
    summary: ConvertSummary,
) -> None:
    """Copy an ONNX graph to opts.out with our metadata, checked and verified, atomically."""
    import onnx

    proto = onnx.load(str(src_onnx))
    if opts.static_width is not None:
        dims = proto.graph.input[0].type.tensor_type.shape.dim
        if len(dims) == 4:
            dims[3].Clear()
            dims[3].dim_value = opts.static_width
    set_onnx_metadata(proto, meta.to_props())
    with atomic_path(opts.out) as tmp:
        onnx.save(proto, str(tmp))
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:
            raise ModelError(
                f"converted graph fails onnx.checker: {exc}; {opts.out} was not written"
            ) from None
        summary.checks.append("onnx.checker (full check): passed")
        if opts.verify and reference is not None:
            report = _verify(reference, _ort_reference(tmp), meta, "ONNX Runtime vs source", opts.out, 1e-4)
            summary.checks.append(f"ONNX Runtime vs source: {report.summary()}")
            summary.verify = report


def write_openvino(
    model_src: Any,
    meta: ModelMetadata,
    opts: ConvertOptions,
    reference: Reference | None,
    summary: ConvertSummary,
) -> None:
    """Convert (an ov.Model, or a file OpenVINO reads) to IR at opts.out with metadata; verify first."""
    _require("openvino", "openvino")
    import openvino as ov
    from crnn_openvino import write_ir

    if opts.out.suffix.lower() != ".xml":
        raise UsageError(f"OpenVINO output must end in .xml (the .bin goes beside it), got {opts.out}")
    model = model_src if isinstance(model_src, ov.Model) else ov.convert_model(str(model_src))
    if opts.static_width is not None:
        model.reshape({model.inputs[0]: ov.PartialShape([-1, meta.channels, meta.height, opts.static_width])})
    parent = opts.out.parent if str(opts.out.parent) else Path(".")
    with tempfile.TemporaryDirectory(dir=parent, prefix=".crnn-ov-") as tmpdir:
        tmp_xml = Path(tmpdir) / "model.xml"
        write_ir(model, tmp_xml, meta.to_props(), compress_to_fp16=opts.fp16)
        summary.checks.append(f"OpenVINO IR written ({'FP16' if opts.fp16 else 'FP32'} weights)")
        if opts.verify and reference is not None:
            tol = 2e-2 if opts.fp16 else 1e-4
            report = _verify(
                reference, _ov_reference(str(tmp_xml)), meta, "OpenVINO vs source", opts.out, tol
            )
            summary.checks.append(f"OpenVINO vs source: {report.summary()}")
            summary.verify = report
        write_ir(str(tmp_xml), opts.out, meta.to_props(), compress_to_fp16=opts.fp16)


# -- sources -------------------------------------------------------------------------------------------


def convert_torch_model(
    model: Any,
    meta: ModelMetadata,
    opts: ConvertOptions,
    summary: ConvertSummary,
    checkpoint_extra: dict[str, Any] | None = None,
) -> None:
    """A torch CRNN (logits) -> the target format."""
    from crnn_torch.export import export_onnx, torch_reference

    if opts.target == "torch":
        from crnn_torch.loading import save_inference_checkpoint

        save_inference_checkpoint(model, meta, opts.out, extra=checkpoint_extra)
        summary.checks.append("checkpoint written (loads with torch.load(weights_only=True))")
        return
    if opts.target == "onnx":
        result = export_onnx(
            model, meta, opts.out, opset=opts.opset, static_width=opts.static_width, verify=opts.verify
        )
        summary.checks.extend(result.checks)
        summary.verify = result.verify
        return
    with tempfile.TemporaryDirectory(prefix="crnn-export-") as tmpdir:
        onnx_path = Path(tmpdir) / "model.onnx"
        export_onnx(model, meta, onnx_path, opset=opts.opset, verify=False)
        write_openvino(onnx_path, meta, opts, torch_reference(model) if opts.verify else None, summary)


def _check_options(opts: ConvertOptions) -> None:
    """Option combinations that cannot work, refused before any model is loaded."""
    if opts.target not in TARGETS:
        raise UsageError(f"--to must be one of {', '.join(TARGETS)}, got {opts.target!r}")
    if opts.fp16 and opts.target != "openvino":
        raise UsageError(f"--fp16 compresses OpenVINO IR weights; it does not apply to --to {opts.target}")
    if opts.static_width is not None and opts.target == "torch":
        raise UsageError("--static-width applies to ONNX and OpenVINO output, not to a torch checkpoint")
    if opts.int8:
        if opts.target == "torch":
            raise UsageError("--int8 applies to ONNX and OpenVINO output, not to a torch checkpoint")
        if opts.fp16:
            raise UsageError("--int8 and --fp16 exclude each other: choose one weight format")
        if opts.calibration is None:
            raise UsageError(
                "--int8 needs --calibration DIR: a labelled dataset (labels.tsv, LMDB) or a folder of "
                "crops like the ones the model will read"
            )
        if not 0.0 <= opts.holdout < 1.0:
            raise UsageError(f"--holdout must be a fraction in [0, 1), got {opts.holdout}")
        if opts.calibration_samples < 1:
            raise UsageError(f"--calibration-samples must be >= 1, got {opts.calibration_samples}")
    elif opts.calibration is not None:
        raise UsageError("--calibration is only used with --int8")
    parent = opts.out.parent if str(opts.out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {opts.out}: folder {parent} does not exist")


def _fix_width(meta: ModelMetadata, opts: ConvertOptions, src: Path) -> ModelMetadata:
    """The metadata of the output: with --static-width its input width is that one, and fixed; with
    --max-width a dynamic-width model keeps crops unsquashed up to that width."""
    if opts.max_width is not None:
        if opts.static_width is not None or not meta.dynamic_width:
            raise UsageError("--max-width applies to dynamic-width models (and not with --static-width)")
        if opts.max_width < (meta.width or 1):
            raise UsageError(f"--max-width {opts.max_width} is below the model's minimum width {meta.width}")
        meta = replace(meta, max_width=opts.max_width)
    if opts.static_width is None:
        return meta
    if not meta.dynamic_width and meta.width not in (None, opts.static_width):
        raise UsageError(
            f"{src} has a fixed input width of {meta.width}; --static-width {opts.static_width} cannot apply"
        )
    return replace(meta, width=opts.static_width, dynamic_width=False)


def convert(source: str | Path, opts: ConvertOptions) -> ConvertSummary:
    """Convert ``source`` (see module docstring) to ``opts.target`` at ``opts.out``."""
    _check_options(opts)
    src = Path(source)
    kind = source_kind(src)
    if opts.out.resolve() == src.resolve():
        raise UsageError(f"output {opts.out} would overwrite the source")
    if opts.int8:
        return _convert_int8(src, opts)
    return _convert(src, kind, opts)


def _convert_int8(src: Path, opts: ConvertOptions) -> ConvertSummary:
    """A verified FP32 ONNX in a temporary folder, then quantized to opts.out (see quantize.py)."""
    from crnn_onnxruntime.quantize import load_calibration, quantize_model, require_quantizer

    require_quantizer(opts.target)
    assert opts.calibration is not None  # _check_options
    data = load_calibration(opts.calibration, holdout=opts.holdout, max_samples=opts.calibration_samples)
    with tempfile.TemporaryDirectory(prefix="crnn-int8-") as tmpdir:
        fp32 = Path(tmpdir) / "fp32.onnx"
        summary = _convert(src, source_kind(src), replace(opts, target="onnx", out=fp32, int8=False))
        summary.target, summary.out = opts.target, opts.out
        summary.quantization = quantize_model(
            fp32, opts.target, opts.out, summary.metadata, data, opts.int8_ops, opts.int8_lstm
        )
    return summary


def _convert(src: Path, kind: str, opts: ConvertOptions) -> ConvertSummary:
    summary = ConvertSummary(str(src), kind, opts.target, opts.out, ModelMetadata())
    if kind in ("pdparams", "checkpoint"):
        _require("torch", "torch")
        if kind == "pdparams":
            from crnn_torch.loading import load_paddle_checkpoint

            model, meta, report = load_paddle_checkpoint(
                src,
                opts.config,
                dictionary=opts.dictionary,
                use_space_char=opts.use_space_char,
                image_shape=opts.image_shape,
            )
            summary.checks.append(f"PaddleOCR checkpoint: {report.summary()}")
        else:
            from crnn_torch.checkpoint import model_from_checkpoint

            model, meta = model_from_checkpoint(src)
        meta = summary.metadata = _fix_width(meta, opts, src)
        convert_torch_model(model, meta, opts, summary)
        return summary
    if opts.target == "torch":
        raise UsageError(
            f"--to torch needs a PaddleOCR .pdparams training checkpoint; {src} is a {kind} model"
        )
    if kind == "paddle":
        return _convert_paddle_inference(src, opts, summary)
    if kind == "onnx":
        return _convert_onnx(src, opts, summary)
    raise UsageError(f"{src}: converting from {kind} is not supported (export from the checkpoint instead)")


def _metadata_for(
    props: dict[str, str],
    input_shape: tuple[int | None, ...],
    num_classes: int | None,
    opts: ConvertOptions,
    src: Path,
    arch: str,
) -> ModelMetadata:
    meta = resolve_metadata(
        props,
        input_shape,
        num_classes,
        dictionary=opts.dictionary,
        use_space_char=opts.use_space_char,
        image_shape=opts.image_shape,
        source=str(src),
    )
    from crnn_cli import __version__

    if meta.architecture == "unknown":
        meta = replace(meta, architecture=arch)
    return replace(meta, producer=f"crnn {__version__} (converted from {src.name})")


def _ov_shapes(model: Any) -> tuple[tuple[int | None, ...], int | None]:
    pin = model.inputs[0].get_partial_shape()
    pout = model.outputs[0].get_partial_shape()
    ishape = tuple(d.get_length() if d.is_static else None for d in pin)
    classes = pout[2].get_length() if len(pout) == 3 and pout[2].is_static else None
    return ishape, classes


def _convert_paddle_inference(src: Path, opts: ConvertOptions, summary: ConvertSummary) -> ConvertSummary:
    from crnn_cli import paddle_inference as pi

    reference: Reference | None = None
    if opts.target == "openvino":
        legacy = pi.find_inference_model(src, prefer=pi.LEGACY)
        model_file, fmt = legacy.model_file, legacy.format
    else:
        model_file, _params, fmt = pi.find_inference_model(src)
    if opts.target == "openvino" and fmt == "legacy":
        # OpenVINO reads a legacy .pdmodel itself: no paddle2onnx step, and no Paddle needed (Paddle,
        # when installed, is still the reference the IR is verified against).
        _require("openvino", "openvino")
        import openvino as ov

        ov_model = ov.Core().read_model(str(model_file))
        ishape, classes = _ov_shapes(ov_model)
        meta = _metadata_for({}, ishape, classes, opts, src, "paddle_inference")
        meta = summary.metadata = _fix_width(meta, opts, src)
        if opts.verify:
            name, reference = pi.reference_runner(src)
            summary.checks.append(f"reference: {_REFERENCE_NAMES[name]}")
        write_openvino(ov_model, meta, opts, reference, summary)
        return summary
    avail = pi.paddle2onnx_available()
    if not avail.ok:
        raise BackendError(
            f"converting a Paddle {fmt} inference model to {opts.target} needs paddle2onnx: {avail.reason}; {avail.hint}"
        )
    with tempfile.TemporaryDirectory(prefix="crnn-p2o-") as tmpdir:
        onnx_path = pi.convert_with_paddle2onnx(src, Path(tmpdir) / "model.onnx", opset=opts.opset)
        summary.checks.append("paddle2onnx 2.0.1: converted (its exit status is not trusted; checked below)")
        import onnx

        proto = onnx.load(str(onnx_path), load_external_data=False)
        ishape, classes = _onnx_shapes(proto)
        meta = _metadata_for({}, ishape, classes, opts, src, "paddle_inference")
        meta = summary.metadata = _fix_width(meta, opts, src)
        if opts.verify:
            name, reference = pi.reference_runner(src)
            summary.checks.append(f"reference: {_REFERENCE_NAMES[name]}")
        if opts.target == "onnx":
            write_onnx(onnx_path, meta, opts, reference, summary)
        else:
            write_openvino(onnx_path, meta, opts, reference, summary)
    return summary


_REFERENCE_NAMES = {
    "paddle": "Paddle Inference (oneDNN off)",
    "openvino": "OpenVINO reading the .pdmodel directly",
}


def _onnx_shapes(proto: Any) -> tuple[tuple[int | None, ...], int | None]:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    ishape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)
    odims = proto.graph.output[0].type.tensor_type.shape.dim
    classes = odims[2].dim_value if len(odims) == 3 and odims[2].HasField("dim_value") else None
    return ishape, classes or None


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _convert_onnx(src: Path, opts: ConvertOptions, summary: ConvertSummary) -> ConvertSummary:
    import onnx

    try:
        proto = onnx.load(str(src), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{src}: not a readable ONNX file ({exc})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    ishape, classes = _onnx_shapes(proto)
    meta = _metadata_for(props, ishape, classes, opts, src, "unknown")
    meta = summary.metadata = _fix_width(meta, opts, src)
    reference = _ort_reference(src) if opts.verify else None
    if opts.target == "onnx":
        write_onnx(src, meta, opts, reference, summary)
    else:
        write_openvino(src, meta, opts, reference, summary)
    return summary
