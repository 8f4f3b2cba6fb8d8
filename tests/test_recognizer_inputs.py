"""Recognizer.predict_batch takes what recognize() takes (issue 24.5): gray, BGRA and float arrays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from crnn_cli.core.errors import ImageError
from crnn_cli.core.recognizer import Recognizer

SAMPLE = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples" / "shop_sign.png"


@pytest.fixture(scope="module")
def rec():
    with Recognizer(backend="onnxruntime") as r:
        yield r


def test_predict_batch_takes_gray_bgra_and_float_arrays_like_recognize(rec):
    bgr = cv2.imread(str(SAMPLE), cv2.IMREAD_COLOR)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    as_float = gray.astype(np.float32) / 255.0
    decoded = rec.predict_batch([gray, bgr, bgra, as_float, gray[:, :, None]])
    via_recognize = [r.text for r in rec.recognize([gray, bgr])]
    assert [d.text for d in decoded] == ["OPEN"] * 5
    assert via_recognize == ["OPEN", "OPEN"]
    assert decoded[0].confidence == pytest.approx(next(iter(rec.recognize([gray]))).confidence)
    assert len(rec.probabilities([gray])) == 1


def test_predict_batch_names_the_bad_array(rec):
    good = cv2.imread(str(SAMPLE))
    with pytest.raises(ImageError, match=r"images\[1\]: unsupported image shape"):
        rec.predict_batch([good, np.zeros((4, 4, 5), np.uint8)])
