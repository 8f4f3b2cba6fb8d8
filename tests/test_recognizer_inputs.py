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


# -- inputs that are not cropped text lines (issue 22) -----------------------------------------------


def test_crop_notice_flags_pages_and_photos_not_crops():
    from crnn_cli.core.recognizer import crop_notice

    assert crop_notice(3024, 4032) is not None  # a phone photo
    assert crop_notice(1754, 1240) is not None  # an A4 page at 150 dpi
    assert crop_notice(1080, 1920) is not None  # a screenshot
    assert crop_notice(772, 2576) is None  # the largest IIIT5K test word crop
    assert crop_notice(36, 84) is None and crop_notice(400, 40) is None  # a word, a vertical line
    assert "crop the text lines first" in crop_notice(3024, 4032)


def test_recognize_marks_a_page_and_the_cli_warns_on_stderr(rec, tmp_path):
    from click.testing import CliRunner

    from crnn_cli.cli import cli

    page = np.full((1754, 1240, 3), 255, np.uint8)
    for y in range(100, 1700, 40):
        cv2.putText(page, "Lorem ipsum dolor sit amet", (60, y), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    cv2.imwrite(str(tmp_path / "page.png"), page)
    crop = cv2.imread(str(SAMPLE))
    found = list(rec.recognize([page, crop]))
    assert found[0].notice is not None and found[1].notice is None
    args = ["recognize", "--backend", "onnxruntime", str(tmp_path / "page.png"), str(SAMPLE)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0
    assert "page.png: 1240 x 1754 px does not look like a cropped line of text" in r.stderr
    assert "shop_sign" not in r.stderr and len(r.stdout.splitlines()) == 2
    assert "does not look" not in CliRunner().invoke(cli, [*args, "-q"]).stderr
    many = [str(tmp_path / "page.png")] * 7
    r = CliRunner().invoke(cli, ["recognize", "--backend", "onnxruntime", *many])
    assert r.stderr.count("does not look like a cropped line") == 5
    assert "7 inputs in all do not look like cropped text lines" in r.stderr
