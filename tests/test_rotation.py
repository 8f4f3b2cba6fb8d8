"""Tall crops (h/w >= 1.5) on the bundled model: "auto" reads both a lone digit and a vertical word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from crnn_cli.core.errors import UsageError
from crnn_cli.core.images import cv2
from crnn_cli.core.recognizer import Recognizer

matplotlib = pytest.importorskip("matplotlib")
FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def crop(text: str, pad_x: int, pad_y: int = 4) -> np.ndarray:
    font = ImageFont.truetype(str(FONT), 40)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right - left + 2 * pad_x, bottom - top + 2 * pad_y), 255)
    ImageDraw.Draw(img).text((pad_x - left, pad_y - top), text, font=font, fill=0)
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_GRAY2BGR)


def test_auto_rotation_reads_lone_characters_and_vertical_lines() -> None:
    one = crop("1", 2, 10)  # one digit, as a detector crops it: taller than 1.5 x its width
    word = crop("OPEN", 8)
    turned = [np.ascontiguousarray(np.rot90(word, k)) for k in (1, -1)]  # written bottom-up, top-down
    assert one.shape[0] >= 1.5 * one.shape[1] and all(t.shape[0] >= 1.5 * t.shape[1] for t in turned)
    texts = {}
    for mode in ("auto", "always", "never"):
        with Recognizer(rotate_vertical=mode) as rec:
            texts[mode] = [d.text for d in rec.predict_batch([one, *turned, word])]
    assert texts["auto"] == ["1", "OPEN", "OPEN", "OPEN"]
    # PaddleOCR's rule turns every tall crop one way: the digit and the top-down word are lost.
    assert texts["always"][0] != "1" and texts["always"][1:] != ["OPEN", "OPEN", "OPEN"]
    assert texts["never"][1:3] != ["OPEN", "OPEN"]
    with Recognizer() as rec:  # the streaming path chooses the same way
        assert [r.text for r in rec.recognize([one, *turned, word])] == texts["auto"]
    with pytest.raises(UsageError, match="rotate"):
        Recognizer(rotate_vertical="sideways")
