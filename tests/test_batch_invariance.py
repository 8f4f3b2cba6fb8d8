"""An image's text and confidence must not depend on which other images share its batch.

PaddleOCR pads every crop of a batch to the batch's widest ratio, so results change with neighbours.
We pad each crop to a width that depends only on itself and batch crops of equal width together.
"""

from __future__ import annotations

import random

import pytest

from crnn_cli.core.recognizer import Recognizer


def _image_paths(data_dir, n=64):
    lines = (data_dir / "iiit5k_train" / "labels.tsv").read_text("utf-8").splitlines()
    rng = random.Random(0)
    picked = rng.sample(lines, n)
    return [str(data_dir / "iiit5k_train" / line.split("\t")[0]) for line in picked]


@pytest.fixture(scope="module")
def mv3_onnx(mv3_dir, tmp_path_factory):
    pytest.importorskip("torch")
    from crnn_cli.convert import ConvertOptions, convert

    out = tmp_path_factory.mktemp("inv") / "mv3.onnx"
    convert(mv3_dir / "best_accuracy.pdparams", ConvertOptions("onnx", out))
    return out


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_alone_equals_in_shuffled_batch(mv3_onnx, data_dir, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    paths = _image_paths(data_dir)
    with Recognizer(mv3_onnx, backend, batch_size=64) as rec:
        alone = {p: rec.recognize_one(p) for p in paths}
        shuffled = paths[:]
        random.Random(1).shuffle(shuffled)
        together = list(rec.recognize(shuffled))
        widths = {rec.preprocessor.padded_width(__import__("cv2").imread(p)) for p in paths}
    assert len(widths) > 1, "the sample should span several padded widths"
    for r in together:
        a = alone[r.source]
        assert r.text == a.text, r.source
        assert abs(r.confidence - a.confidence) <= 1e-6, r.source
    assert [r.source for r in together] == shuffled  # input order kept


def test_bundled_model_with_its_narrow_padding_is_batch_invariant(data_dir):
    """The bundled model pads to multiples of 8 from 32 px (its metadata): many more distinct widths,
    still one padded width per crop, so still no dependence on neighbours."""
    paths = _image_paths(data_dir)
    with Recognizer(None, "onnxruntime", batch_size=64) as rec:
        assert rec.preprocess_config.width_step == 8
        alone = {p: rec.recognize_one(p) for p in paths}
        shuffled = paths[:]
        random.Random(2).shuffle(shuffled)
        together = list(rec.recognize(shuffled))
        widths = {rec.preprocessor.padded_width(__import__("cv2").imread(p)) for p in paths}
    assert len(widths) > 5 and min(widths) < 100
    for r in together:
        assert r.text == alone[r.source].text, r.source
        assert abs(r.confidence - alone[r.source].confidence) <= 1e-6, r.source
