"""Numerical verification of a converted model against its source, on text-like inputs.

Every conversion and export ends here: the new model and the source run the same batches at several
widths; the report gives the max absolute probability difference and whether the decoded strings are
identical. Nothing is handed to the user that failed this check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from crnn_cli.core.charset import Charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.images import cv2
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor

# A candidate probability may differ from the reference by TOLERANCE + RELATIVE_TOLERANCE x p_ref (numpy's
# allclose rule). 1e-4 absolute held for every converter on the machines of the fixtures README; on AVX512
# cores PP-OCRv4 read by OpenVINO (ONNX Runtime: 1.03e-4) drifts from Paddle by 1.62e-4 at one near-tie
# frame (p = 0.062), with identical strings: fp32 summation order, amplified where no class dominates.
# The relative part is what such a frame needs, three times over, and stays far below what a wrong weight
# layout, activation or epsilon does to a reading (1e-2 and up).
TOLERANCE = 1e-4
RELATIVE_TOLERANCE = 3e-3
WORDS = ("crnn", "Hello", "2024-11-05", "TOTAL 12.50", "Street", "ok", "RECEIPT No. 0042", "x")


def text_images(count: int = 8, seed: int = 0, words: Sequence[str] = WORDS) -> list[np.ndarray]:
    """Deterministic BGR crops of printed words (OpenCV's vector fonts), varied size and contrast."""
    rng = np.random.default_rng(seed)
    fonts = [
        cv2.FONT_HERSHEY_SIMPLEX,
        cv2.FONT_HERSHEY_DUPLEX,
        cv2.FONT_HERSHEY_COMPLEX,
        cv2.FONT_HERSHEY_TRIPLEX,
    ]
    out = []
    for i in range(count):
        text = words[i % len(words)]
        font = fonts[i % len(fonts)]
        scale = float(rng.uniform(0.6, 1.2))
        thick = int(rng.integers(1, 3))
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        bg = int(rng.integers(150, 256))
        fg = int(rng.integers(0, 100))
        img = np.full((th + base + 8, tw + 8, 3), bg, np.uint8)
        cv2.putText(img, text, (4, th + 4), font, scale, (fg, fg, fg), thick, cv2.LINE_AA)
        noise = rng.normal(0, 6, img.shape)
        out.append(np.clip(img + noise, 0, 255).astype(np.uint8))
    return out


def verification_batches(config: PreprocessConfig, widths: Sequence[int] | None = None) -> list[np.ndarray]:
    """Batches of text crops preprocessed at several input widths (one width per batch)."""
    images = text_images()
    if not config.dynamic_width:
        return [Preprocessor(config).batch(images)]
    # The nominal width and two wider ones. Far wider inputs are mostly padding for these crops, and
    # runtimes legitimately drift apart there (PP-OCRv4: 4e-6 at 320 px, 1e-4 at 640 px, same argmax).
    widths = widths or sorted({config.width, round(config.width * 1.25), round(config.width * 1.5)})
    batches = []
    for w in widths:
        pre = Preprocessor(PreprocessConfig(**{**config.__dict__, "width": w, "dynamic_width": False}))
        batches.append(pre.batch(images))
    return batches


@dataclass
class VerifyReport:
    widths: list[int] = field(default_factory=list)
    max_abs_diff: float = 0.0
    strings_identical: bool = True
    mismatches: list[tuple[str, str]] = field(default_factory=list)
    samples: int = 0
    tolerance: float = TOLERANCE
    relative_tolerance: float = RELATIVE_TOLERANCE
    # max over all probabilities of |dp| / (tolerance + relative_tolerance * p_ref): <= 1 passes
    worst_ratio: float = 0.0

    @property
    def ok(self) -> bool:
        return self.strings_identical and self.worst_ratio <= 1.0

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAILED"
        s = (
            f"{verdict}: {self.samples} text crops at widths {self.widths}: max |dp| = {self.max_abs_diff:.2e} "
            f"(tolerance {self.tolerance:.0e} + {self.relative_tolerance:.0e} x p, {self.worst_ratio:.2f} of it), decoded strings {'identical' if self.strings_identical else 'DIFFER'}"
        )
        if self.mismatches:
            s += "; e.g. " + ", ".join(f"{a!r} vs {b!r}" for a, b in self.mismatches[:3])
        return s


def compare(
    reference: Callable[[np.ndarray], np.ndarray],
    candidate: Callable[[np.ndarray], np.ndarray],
    batches: Sequence[np.ndarray],
    charset: Charset,
    tolerance: float = TOLERANCE,
    relative_tolerance: float = RELATIVE_TOLERANCE,
) -> VerifyReport:
    """Run both on every batch (N, C, H, W) and compare their N, T, C probabilities."""
    report = VerifyReport(tolerance=tolerance, relative_tolerance=relative_tolerance)
    for batch in batches:
        ref = np.asarray(reference(batch), np.float32)
        got = np.asarray(candidate(batch), np.float32)
        report.widths.append(int(batch.shape[3]))
        report.samples += batch.shape[0]
        if ref.shape != got.shape:
            report.strings_identical = False
            report.max_abs_diff = report.worst_ratio = float("inf")
            report.mismatches.append((f"shape {ref.shape}", f"shape {got.shape}"))
            continue
        diff = np.abs(ref - got)
        allowed = tolerance + relative_tolerance * np.abs(ref)
        report.max_abs_diff = max(report.max_abs_diff, float(diff.max()))
        report.worst_ratio = max(report.worst_ratio, float((diff / allowed).max()))
        for a, b in zip(decode_greedy(ref, charset), decode_greedy(got, charset)):
            if a.text != b.text:
                report.strings_identical = False
                report.mismatches.append((a.text, b.text))
    return report
