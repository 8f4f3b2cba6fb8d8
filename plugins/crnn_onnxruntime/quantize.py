"""INT8 ONNX through ONNX Runtime's post-training quantization: the quantizer of `--to onnx --int8`.

Input: a verified FP32 ONNX recognizer (what `crnn convert/export` produce) and calibration crops.

* ONNX Runtime static quantization. The graph is first pre-processed (shape inference and
  ORT's graph optimisations, as ORT recommends), then quantized in QDQ form: weights int8 per output
  channel, activations uint8 with MinMax ranges from the calibration crops. ORT's CPU provider fuses the
  QDQ pairs into QLinearConv / QLinearMatMul; QDQ is plain ONNX, so OpenVINO can read the file as well.
  Which ops are quantized (``OP_SETS``), measured on this project's models (2-core AVX512-VNNI CPU,
  ONNX Runtime), first on PP-OCRv4 rec with 200 held-out IIIT5K crops, before ``conv`` and ``weighted``
  took Relu and MaxPool along with Conv:
      conv      Conv                      acc 80.5 -> 79.5 %   r34 2.1x faster   mv3 0.8x (slower)
      weighted  + MatMul/Gemm with weights acc 80.5 -> 78.0 %   r34 2.3x          mv3 0.85x
      all       every op ORT quantizes     acc 80.5 -> 71.0 %   r34 2.7x          mv3 1.0x
  Quantized element-wise Mul/Add (hard-swish, residuals, attention) cost most of the accuracy, hence the
  default ``conv``. Relu and MaxPool are exact on uint8 and spare ORT a dequantize-requantize pair per
  conv block. Conv alone -> with Relu and MaxPool, `crnn convert --int8 --calibration
  ../shared/data/real/iiit5k_train` (256 held-out crops), ORT at batch 16 x 320 px:
      PP-OCRv4  73.1 -> 73.8 % (FP32 80.9 %; the 80.5 -> 79.5 above no longer reproduces)   1.14x -> 1.23x
      r34       (random weights)                                                            2.70x -> 2.87x
      default   dev split, mean of three draws (scripts/int8_accuracy.py, stage 6, LSTM int8 then): -0.66 -> +0.14 points;
                800 IIIT5K crops through bench.py section 6: 1.98x -> 2.28x
  Softmax always stays in float: quantized probabilities would move in steps of 1/255 and make
  confidences coarse. ORT has no static int8 LSTM: the LSTM stays in float unless ``--int8-lstm`` asks
  for DynamicQuantizeLSTM (``_quantize_lstm`` says what it costs).

OpenVINO INT8 (NNCF) is the openvino plugin's (crnn_openvino/quantize.py). Calibration data and the
held-out comparison are the core's (crnn_cli/core/calibration.py, crnn_cli/quantization.py); the names
re-exported below keep this module's old API.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import ClassVar

import numpy as np

from crnn_cli.core.backend import Availability
from crnn_cli.core.calibration import (  # noqa: F401  (re-exported: this module's API before the split)
    CALIBRATION_BATCH,
    IMAGE_SUFFIXES,
    CalibrationData,
    calibration_batches,
    load_calibration,
)
from crnn_cli.core.conversion import ConvertOptions, Quantizer
from crnn_cli.core.errors import BackendError, ModelError, UsageError
from crnn_cli.core.metadata import ModelMetadata

ORT_HINT = "pip install onnxruntime"
# --int8-ops NAME -> op types for ONNX Runtime (None: every type it can quantize), MatMul only with weights
# Relu and MaxPool ride along with Conv (see the module docstring): a quantized Relu becomes the lower end
# of its Conv's output range and a MaxPool picks among uint8 values, so neither loses anything.
OP_SETS: dict[str, tuple[list[str] | None, bool]] = {
    "conv": (["Conv", "Relu", "MaxPool"], True),
    "weighted": (["Conv", "Relu", "MaxPool", "MatMul", "Gemm"], True),
    "all": (None, False),
}


def availability() -> Availability:
    """Whether ONNX Runtime's quantization tools are installed (checked without importing them)."""
    if find_spec("onnxruntime") is None or find_spec("onnxruntime.quantization") is None:
        return Availability(False, reason="ONNX Runtime's quantization tools are missing", hint=ORT_HINT)
    return Availability(True)


def require_quantizer(target: str = "onnx") -> None:
    """Raise BackendError (with the install command) when INT8 ONNX cannot be made here."""
    if not availability().ok:
        raise BackendError(f"INT8 quantization needs ONNX Runtime's quantization tools: {ORT_HINT}")


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """ORT's quantizer logs advice through the root logger; it is not for our users."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _preprocess(src: Path, dst: Path) -> tuple[Path, str]:
    """ORT's recommended pre-processing; the plain graph (and why) when it cannot run on this one."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
        return dst, "pre-processed (shape inference, ORT graph optimisation)"
    except Exception as exc:  # symbolic shape inference gives up on some foreign graphs
        return src, f"not pre-processed ({type(exc).__name__})"


def quantize_onnx(
    fp32: Path, out: Path, batches: list[np.ndarray], ops: str = "conv", lstm: bool = False
) -> str:
    """Write an INT8 QDQ version of ``fp32`` at ``out``; returns a one-line description of what was done.

    ops: a key of OP_SETS, which ops to quantize statically. lstm: also quantize LSTM nodes dynamically
    (ONNX Runtime's DynamicQuantizeLSTM: int8 weights, activations quantized per call).
    """
    if ops not in OP_SETS:
        raise UsageError(f"INT8 op set must be one of {', '.join(OP_SETS)}, got {ops!r}")
    op_types, const_weights_only = OP_SETS[ops]
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            self._items = iter(batches)
            self._name = name

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._items, None)
            return None if batch is None else {self._name: batch}

    with tempfile.TemporaryDirectory(prefix="crnn-quant-") as tmp, _quiet_logging():
        graph, how = _preprocess(fp32, Path(tmp) / "pre.onnx")
        proto = onnx.load(str(graph))
        for i, node in enumerate(proto.graph.node):  # exclusion works by node name
            if not node.name:
                node.name = f"crnn_node_{i}"
        keep_float = [n.name for n in proto.graph.node if n.op_type == "Softmax"]
        named = Path(tmp) / "named.onnx"
        onnx.save(proto, str(named))
        try:
            quantize_static(
                str(named),
                str(out),
                Reader(proto.graph.input[0].name),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                # 7-bit weights: x86 CPUs without VNNI (AVX2, plain AVX512) multiply u8 x s8 in
                # saturating int16 pairs. Full-range weights cost the default model 11.7 points of
                # word accuracy on an AVX2 machine (FP32 73.3 %, INT8 61.7 % on 120 crops), 7-bit 2.5.
                reduce_range=True,
                op_types_to_quantize=op_types,
                nodes_to_exclude=keep_float,
                extra_options={"MatMulConstBOnly": const_weights_only},
            )
            lstm_note = "LSTM kept in float"
            if lstm and any(n.op_type == "LSTM" for n in proto.graph.node):
                _quantize_lstm(out, Path(tmp) / "lstm.onnx")
                lstm_note = "LSTM weights int8 per channel (DynamicQuantizeLSTM; inputs quantized per call)"
        except Exception as exc:
            raise ModelError(
                f"ONNX Runtime could not quantize {fp32.name}: {type(exc).__name__}: {exc}"
            ) from None
    crops = sum(len(b) for b in batches)
    which = "every op it can" if op_types is None else "/".join(op_types)
    return (
        f"ONNX Runtime static QDQ of {which} (--int8-ops {ops}), 7-bit int8 weights per channel, uint8 "
        f"activations (MinMax over {crops} crops), graph {how}; {lstm_note}; Softmax kept in float"
    )


def _quantize_lstm(model: Path, scratch: Path) -> None:
    """Replace ``model``'s LSTM nodes by DynamicQuantizeLSTM (int8 weights, one scale per gate unit) in
    place. Opt-in (``--int8-lstm``); what it gives and costs, measured on the bundled model (AVX2-only
    EPYC, 2 threads, batch 32 of 32 x 100; dev split through scripts/default_model/dev_report.py):

    - Speed: FP32 488 img/s, Conv QDQ with the LSTM in float 712, with this LSTM too 817.
    - One scale per direction (quantize_dynamic's default) on top of the Conv QDQ read the dev IC15
      words at 59.1 % against FP32's 69.9 % (pooled real words 69.8 against 77.4 %); one per channel
      reads them like the float LSTM (69.7 %, pooled 77.0 %).
    - DynamicQuantizeLSTM quantizes its input per call, over every crop in the call: a crop's
      confidence moved by up to 0.07 between a call of its own and a call of 200 IC15 crops (the Conv
      QDQ alone, with static ranges, gave the very same numbers), so batch invariance is lost.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(model), str(scratch), op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8, per_channel=True
    )
    os.replace(scratch, model)


class OnnxQuantizer(Quantizer):
    """`--to onnx --int8`: ONNX Runtime static QDQ (``quantize_onnx``), metadata kept, onnx.checker."""

    target: ClassVar[str] = "onnx"

    def availability(self) -> Availability:
        return availability()

    def quantize(
        self,
        fp32_onnx: Path,
        meta: ModelMetadata,
        batches: list[np.ndarray],
        opts: ConvertOptions,
        workdir: Path,
    ) -> tuple[Path, str, list[str]]:
        import onnx

        from crnn_onnxruntime.conversion import save_checked

        candidate = workdir / "int8.onnx"
        method = quantize_onnx(fp32_onnx, candidate, batches, opts.int8_ops, opts.int8_lstm)
        # metadata again: the quantizer does not promise to keep it
        save_checked(onnx.load(str(candidate)), candidate, meta.to_props(), "quantized graph", opts.out)
        return candidate, method, ["onnx.checker (full check) on the INT8 graph: passed"]
