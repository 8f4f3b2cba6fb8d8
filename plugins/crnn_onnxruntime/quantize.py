"""Post-training INT8 quantization of a converted crnn model, with accuracy measured on held-out crops.

Input: a verified FP32 ONNX recognizer (what `crnn convert/export` produce) and calibration crops.

* ONNX target: ONNX Runtime static quantization. The graph is first pre-processed (shape inference and
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
      default   dev split, mean of three draws (scripts/int8_accuracy.py): -0.66 -> +0.14 points;
                800 IIIT5K crops through bench.py section 6: 1.98x -> 2.28x
  Softmax always stays in float: quantized probabilities would move in steps of 1/255 and make
  confidences coarse. ORT has no static int8 LSTM: LSTM nodes are quantized dynamically (int8 weights,
  DynamicQuantizeLSTM) unless ``--float-lstm`` is given.
* OpenVINO target: NNCF (``pip install nncf``) quantizes the FP32 model read by OpenVINO.

Calibration data (``load_calibration``): a labelled dataset (labels.tsv and friends, or an LMDB: see
crnn_cli/core/datasets.py) or a folder of crops. A seeded share of it (20 % by default) is held out and
never used for calibration: the FP32 and the INT8 model both read it through the Recognizer (the same
preprocessing and decoding as `crnn recognize`), and the report gives word accuracy before and after
(labelled data), how often the INT8 text equals the FP32 text, and the largest probability change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from crnn_cli.core.charset import Charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.errors import BackendError, DatasetError, ImageError, ModelError, UsageError
from crnn_cli.core.fileio import atomic_path
from crnn_cli.core.images import load_image
from crnn_cli.core.metadata import ModelMetadata, set_onnx_metadata
from crnn_cli.core.metrics import Accumulator
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CALIBRATION_BATCH = 16  # crops per calibration run; ranges are min/max, so batching only sets speed
NNCF_HINT = "pip install nncf"
# --int8-ops NAME -> op types for ONNX Runtime (None: every type it can quantize), MatMul only with weights
# Relu and MaxPool ride along with Conv (see the module docstring): a quantized Relu becomes the lower end
# of its Conv's output range and a MaxPool picks among uint8 values, so neither loses anything.
OP_SETS: dict[str, tuple[list[str] | None, bool]] = {
    "conv": (["Conv", "Relu", "MaxPool"], True),
    "weighted": (["Conv", "Relu", "MaxPool", "MatMul", "Gemm"], True),
    "all": (None, False),
}


def require_quantizer(target: str) -> None:
    """Raise BackendError (with the install command) when INT8 output for ``target`` cannot be made here."""
    if find_spec("onnxruntime") is None or find_spec("onnxruntime.quantization") is None:
        raise BackendError(
            "INT8 quantization needs ONNX Runtime's quantization tools: pip install onnxruntime"
        )
    if target == "openvino" and find_spec("nncf") is None:
        raise BackendError(
            f"INT8 OpenVINO IR is quantized with NNCF, which is not installed: {NNCF_HINT} "
            "(or use --to onnx --int8: ONNX Runtime's quantizer needs nothing more)"
        )


# -- calibration data ----------------------------------------------------------------------------------


@dataclass
class CalibrationData:
    """Crops for calibration and a disjoint held-out share (BGR uint8 arrays)."""

    source: str
    calibration: list[np.ndarray]
    holdout: list[np.ndarray]
    holdout_labels: list[str] | None  # None: the folder had no labels
    unreadable: int = 0


def _split(n: int, holdout: float, max_samples: int, seed: int) -> tuple[list[int], list[int]]:
    """(calibration indices, held-out indices): disjoint, seeded, each at most ``max_samples``."""
    order = np.random.default_rng(seed).permutation(n)
    n_hold = min(int(round(n * holdout)), max_samples)
    return sorted(order[n_hold:][:max_samples].tolist()), sorted(order[:n_hold].tolist())


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and p.name[0] != "."
    )


def load_calibration(
    path: str | os.PathLike[str], holdout: float = 0.2, max_samples: int = 256, seed: int = 0
) -> CalibrationData:
    """Read calibration crops from ``path``: a labelled dataset, else every image below the folder.

    A labelled dataset is whatever crnn_cli.core.datasets finds at ``path`` (a label file, an LMDB, or
    folders of them); its problems are errors, not a reason to fall back to reading bare images.
    """
    from crnn_cli.core.datasets import discover_datasets, open_dataset

    path = Path(path)
    if not path.exists():
        raise UsageError(f"calibration data {path} does not exist")
    dataset = None
    if not (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
        try:
            discover_datasets(path)
        except DatasetError:
            pass  # no labels anywhere: a folder of crops
        else:
            dataset = open_dataset(path, decode=False)
    data = CalibrationData(str(path), [], [], None)
    if dataset is not None:
        data.holdout_labels = []
        calib, held = _split(len(dataset), holdout, max_samples, seed)
        for indices, out, labels in (
            (calib, data.calibration, None),
            (held, data.holdout, data.holdout_labels),
        ):
            for i in indices:
                try:
                    sample = dataset.get(i, decode=True)
                except ImageError:
                    data.unreadable += 1
                    continue
                out.append(sample.image)
                if labels is not None:
                    labels.append(sample.label)
    else:
        files = _image_files(path) if path.is_dir() else [path]
        calib, held = _split(len(files), holdout, max_samples, seed)
        for indices, out in ((calib, data.calibration), (held, data.holdout)):
            for i in indices:
                try:
                    out.append(load_image(str(files[i])))
                except ImageError:
                    data.unreadable += 1
    if not data.calibration:
        raise UsageError(
            f"calibration data {path} gave no readable crops (expected a labelled dataset or image files"
            + (f"; {data.unreadable} could not be read)" if data.unreadable else ")")
        )
    return data


def calibration_batches(images: list[np.ndarray], config: PreprocessConfig) -> list[np.ndarray]:
    """Crops preprocessed exactly as the Recognizer does, grouped by padded width: N x C x H x W each."""
    pre = Preprocessor(config)
    by_width: dict[int, list[np.ndarray]] = {}
    for img in images:
        x = pre(img)
        by_width.setdefault(x.shape[2], []).append(x)
    batches = []
    for width in sorted(by_width):
        group = by_width[width]
        for start in range(0, len(group), CALIBRATION_BATCH):
            batches.append(np.stack(group[start : start + CALIBRATION_BATCH]))
    return batches


# -- quantizers ----------------------------------------------------------------------------------------


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
    fp32: Path, out: Path, batches: list[np.ndarray], ops: str = "conv", lstm: bool = True
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
                lstm_note = "LSTM weights int8 (DynamicQuantizeLSTM)"
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
    """Replace ``model``'s LSTM nodes by DynamicQuantizeLSTM (int8 weights) in place.

    The LSTM is a third of a CRNN's time in ONNX Runtime and has no static int8 form; measured on the
    default model (2 cores, batch 32, 32 x 100): Conv QDQ alone 1.7x the FP32 speed, with the LSTM too
    2.2x, with the LSTM's probabilities within 0.04 of float and the same argmax on every frame.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(model), str(scratch), op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8)
    os.replace(scratch, model)


def quantize_openvino(fp32: Path, batches: list[np.ndarray]) -> tuple[Any, str]:
    """(INT8 ov.Model, description) from ``fp32`` with NNCF's post-training quantization."""
    require_quantizer("openvino")
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    items = [b[i : i + 1] for b in batches for i in range(len(b))]  # NNCF counts samples, one per item
    try:
        quantized = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items))
    except Exception as exc:
        raise ModelError(f"NNCF could not quantize {fp32.name}: {type(exc).__name__}: {exc}") from None
    return quantized, f"NNCF post-training quantization (OpenVINO), {len(items)} calibration crops"


# -- the held-out comparison ---------------------------------------------------------------------------


@dataclass
class QuantizationReport:
    method: str
    calibration_source: str
    calibration_crops: int
    holdout_crops: int
    protocol: str | None  # metric protocol for the accuracies; None when the crops had no labels
    accuracy_fp32: float | None
    accuracy_int8: float | None
    agreement: float | None  # share of held-out crops whose INT8 text equals the FP32 text
    max_abs_diff: float | None  # largest probability change on the held-out crops
    bytes_fp32: int
    bytes_int8: int
    checks: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"int8        {self.method}",
            f"calibration {self.calibration_crops} crops from {self.calibration_source}",
            *[f"check       {c}" for c in self.checks],
        ]
        if not self.holdout_crops:
            out.append(
                "holdout     none (--holdout 0 or too few crops): accuracy after quantization not measured"
            )
        else:
            if self.accuracy_fp32 is not None and self.accuracy_int8 is not None:
                delta = 100 * (self.accuracy_int8 - self.accuracy_fp32)
                out.append(
                    f"holdout     {self.holdout_crops} labelled crops ({self.protocol} protocol): word accuracy "
                    f"FP32 {100 * self.accuracy_fp32:.2f} % -> INT8 {100 * self.accuracy_int8:.2f} % "
                    f"({delta:+.2f} points)"
                )
            else:
                out.append(f"holdout     {self.holdout_crops} unlabelled crops: accuracy not measured")
            out.append(
                f"holdout     INT8 text equals FP32 text on {100 * (self.agreement or 0):.1f} % of crops; "
                f"max |dp| = {self.max_abs_diff:.2e}"
            )
        out.append(f"size        {self.bytes_fp32 / 1e6:.2f} MB FP32 -> {self.bytes_int8 / 1e6:.2f} MB INT8")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "calibration_source": self.calibration_source,
            "calibration_crops": self.calibration_crops,
            "holdout_crops": self.holdout_crops,
            "protocol": self.protocol,
            "accuracy_fp32": self.accuracy_fp32,
            "accuracy_int8": self.accuracy_int8,
            "agreement": self.agreement,
            "max_abs_diff": self.max_abs_diff,
            "bytes_fp32": self.bytes_fp32,
            "bytes_int8": self.bytes_int8,
            "checks": list(self.checks),
        }


def _protocol(charset: Charset) -> str:
    # A case-less model (0-9a-z) is scored case-insensitively on alphanumerics, as `crnn eval` does by
    # default; any other dictionary by PaddleOCR's RecMetric (exact but for spaces).
    return "benchmark" if charset.lowercase else "paddle"


def _read(model: Path, images: list[np.ndarray]) -> list[np.ndarray]:
    """Per-crop probabilities T x C from ``model`` through the Recognizer (crnn recognize's pipeline)."""
    from crnn_cli.core.recognizer import Recognizer
    from crnn_cli.core.registry import backend_for_model

    # The runtime the file is made for (ONNX Runtime for .onnx), not a timed choice among several.
    with Recognizer(model, backend_for_model(model).name) as rec:
        return rec.probabilities(images)


def compare_holdout(
    fp32_model: Path, int8_model: Path, data: CalibrationData, charset: Charset, report: QuantizationReport
) -> None:
    """Fill the report's held-out fields: accuracies, text agreement and max probability change."""
    if not data.holdout:
        return
    before, after = _read(fp32_model, data.holdout), _read(int8_model, data.holdout)
    texts_before = [decode_greedy(p[None], charset)[0] for p in before]
    texts_after = [decode_greedy(p[None], charset)[0] for p in after]
    report.max_abs_diff = max(float(np.abs(a - b).max()) for a, b in zip(before, after))
    report.agreement = float(np.mean([a.text == b.text for a, b in zip(texts_before, texts_after)]))
    if data.holdout_labels is not None:
        report.protocol = _protocol(charset)
        accs = []
        for decoded in (texts_before, texts_after):
            acc = Accumulator(report.protocol)
            for d, label in zip(decoded, data.holdout_labels):
                acc.add(d.text, label, d.confidence)
            accs.append(acc)
        if accs[0].count:
            report.accuracy_fp32, report.accuracy_int8 = accs[0].accuracy, accs[1].accuracy
        else:
            report.protocol = None  # every label filtered out by the protocol: nothing to score


def _size(path: Path) -> int:
    return path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)


def quantize_model(
    fp32_onnx: Path,
    target: str,
    out: Path,
    meta: ModelMetadata,
    data: CalibrationData,
    ops: str = "conv",
    lstm: bool = True,
) -> QuantizationReport:
    """Quantize the verified ``fp32_onnx`` for ``target`` ("onnx" or "openvino") and write it to ``out``.

    Nothing reaches ``out`` unless the INT8 model passes onnx.checker (ONNX) and runs through the
    Recognizer on the held-out crops (and on a calibration batch when nothing is held out).
    """
    import onnx

    charset = meta.charset()
    if charset is None:
        raise ModelError("the model's metadata has no dictionary; cannot score the quantized model")
    batches = calibration_batches(data.calibration, meta.preprocess())
    with tempfile.TemporaryDirectory(prefix="crnn-int8-") as tmpdir:
        tmp = Path(tmpdir)
        if target == "onnx":
            candidate = tmp / "int8.onnx"
            method = quantize_onnx(fp32_onnx, candidate, batches, ops, lstm)
            proto = onnx.load(str(candidate))
            set_onnx_metadata(proto, meta.to_props())  # the quantizer does not promise to keep them
            onnx.save(proto, str(candidate))
            try:
                onnx.checker.check_model(str(candidate), full_check=True)
            except Exception as exc:
                raise ModelError(
                    f"quantized graph fails onnx.checker: {exc}; {out} was not written"
                ) from None
            checks = ["onnx.checker (full check) on the INT8 graph: passed"]
        elif target == "openvino":
            from crnn_openvino import write_ir

            model, method = quantize_openvino(fp32_onnx, batches)
            candidate = write_ir(model, tmp / "int8.xml", meta.to_props())
            checks = ["OpenVINO IR written (INT8)"]
        else:
            raise UsageError(f"INT8 output is made for onnx or openvino, not {target!r}")
        report = QuantizationReport(
            method=method,
            calibration_source=data.source,
            calibration_crops=len(data.calibration),
            holdout_crops=len(data.holdout),
            protocol=None,
            accuracy_fp32=None,
            accuracy_int8=None,
            agreement=None,
            max_abs_diff=None,
            bytes_fp32=_size(fp32_onnx),
            bytes_int8=_size(candidate),
            checks=checks,
        )
        if data.unreadable:
            report.checks.append(f"{data.unreadable} calibration images could not be read and were skipped")
        try:
            if data.holdout:
                compare_holdout(fp32_onnx, candidate, data, charset, report)
            else:
                _read(candidate, data.calibration[:CALIBRATION_BATCH])  # it must at least run
        except ModelError as exc:
            raise ModelError(f"the INT8 model does not run: {exc}; {out} was not written") from None
        report.checks.append("INT8 model runs through the Recognizer (crnn recognize's pipeline)")
        if target == "onnx":
            with atomic_path(out) as final:
                final.write_bytes(candidate.read_bytes())
        else:
            from crnn_openvino import write_ir

            write_ir(candidate, out, meta.to_props())
    return report
