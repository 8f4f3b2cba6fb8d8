"""The conversion check's pass rule: |dp| <= TOLERANCE + RELATIVE_TOLERANCE x p_ref, strings identical."""

from __future__ import annotations

import numpy as np

from crnn_cli.core.charset import Charset
from crnn_cli.core.verify import RELATIVE_TOLERANCE, TOLERANCE, compare

CHARSET = Charset(("a", "b"))


def _probs() -> np.ndarray:
    """One crop reading "aab", four frames over blank/a/b: three confident, one near-tie (blank by a hair)."""
    p = np.array([[0.01, 0.98, 0.01], [0.36, 0.34, 0.30], [0.02, 0.97, 0.01], [0.01, 0.01, 0.98]], np.float32)
    return p[None]


def _check(candidate: np.ndarray):  # type: ignore[no-untyped-def]
    ref = _probs()
    batch = np.zeros((1, 3, 32, 100), np.float32)
    return compare(lambda _: ref, lambda _: candidate, [batch], CHARSET)


def test_identical_outputs_pass_with_zero_drift() -> None:
    report = _check(_probs())
    assert report.ok and report.max_abs_diff == 0 and report.worst_ratio == 0


def test_fp32_drift_on_a_near_tie_frame_passes() -> None:
    # What AVX512 cores do to PP-OCRv4 (1.6e-4 at p = 0.06): beyond the absolute 1e-4, within the relative part.
    got = _probs()
    got[0, 1, 1] += 1.6e-4
    got[0, 1, 2] -= 1.6e-4
    report = _check(got)
    assert report.max_abs_diff > TOLERANCE
    assert report.ok, report.summary()
    assert 0 < report.worst_ratio < 1


def test_a_systematic_shift_on_confident_frames_fails() -> None:
    # A wrong epsilon or activation moves every frame a little: 5e-3 on p = 0.98 is past 1e-4 + 3e-3 x 0.98.
    got = _probs()
    got[0, [0, 3], [1, 2]] -= 5e-3
    got[0, [0, 3], [0, 0]] += 5e-3
    report = _check(got)
    assert not report.ok and report.worst_ratio > 1
    assert "FAILED" in report.summary() and "decoded strings identical" in report.summary()
    assert TOLERANCE + RELATIVE_TOLERANCE * 0.98 < 5e-3


def test_small_absolute_drift_on_a_rare_class_fails_past_the_absolute_tolerance() -> None:
    got = _probs()
    got[0, 0, 0] += 3e-4  # p_ref = 0.01: allowed 1e-4 + 3e-5
    got[0, 0, 1] -= 3e-4
    assert not _check(got).ok


def test_a_changed_reading_fails_whatever_the_drift() -> None:
    got = _probs()
    got[0, 1] = [0.30, 0.36, 0.34]  # the near-tie frame reads a instead of blank: "ab", not "aab"
    report = _check(got)
    assert not report.strings_identical and not report.ok
