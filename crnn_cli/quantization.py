"""INT8 output of `crnn convert/export --int8`: a target's quantizer, then the held-out comparison.

The verified FP32 ONNX (crnn_cli/convert.py) goes to the Quantizer the target's plugin declares
(core/conversion.py). Whatever it writes reaches OUT only after it ran through the Recognizer (the same
preprocessing and decoding as `crnn recognize`) on the held-out crops of the calibration data: the
report gives word accuracy before and after (labelled data), how often the INT8 text equals the FP32
text, and the largest probability change.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crnn_cli.core.calibration import CALIBRATION_BATCH, CalibrationData, calibration_batches
from crnn_cli.core.charset import Charset
from crnn_cli.core.conversion import ConvertOptions, Quantizer, Writer
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.errors import ModelError
from crnn_cli.core.metadata import ModelMetadata
from crnn_cli.core.metrics import Accumulator


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
    quantizer: Quantizer,
    writer: Writer,
    meta: ModelMetadata,
    data: CalibrationData,
    opts: ConvertOptions,
) -> QuantizationReport:
    """Quantize the verified ``fp32_onnx`` with ``quantizer`` and install it at ``opts.out``.

    Nothing reaches ``opts.out`` unless the INT8 model runs through the Recognizer on the held-out crops
    (and on a calibration batch when nothing is held out).
    """
    charset = meta.charset()
    if charset is None:
        raise ModelError("the model's metadata has no dictionary; cannot score the quantized model")
    batches = calibration_batches(data.calibration, meta.preprocess())
    with tempfile.TemporaryDirectory(prefix="crnn-int8-") as tmpdir:
        candidate, method, checks = quantizer.quantize(fp32_onnx, meta, batches, opts, Path(tmpdir))
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
            raise ModelError(f"the INT8 model does not run: {exc}; {opts.out} was not written") from None
        report.checks.append("INT8 model runs through the Recognizer (crnn recognize's pipeline)")
        writer.install(candidate, opts, meta)
    return report
