from __future__ import annotations

import json

import pytest

from crnn_cli.core.charset import load_charset
from crnn_cli.core.errors import MetadataError, UsageError
from crnn_cli.core.metadata import METADATA_KEY, RAPIDOCR_KEY, ModelMetadata
from crnn_cli.core.recognizer import parse_image_shape, resolve_metadata


def test_round_trip_through_props():
    cs = load_charset("en", use_space_char=True)
    meta = ModelMetadata(height=32, width=100, dynamic_width=True, architecture="crnn_default").with_charset(
        cs
    )
    props = meta.to_props()
    assert set(props) == {METADATA_KEY, RAPIDOCR_KEY}
    assert " " not in props[RAPIDOCR_KEY].split("\n")  # RapidOCR adds the space class itself
    back = ModelMetadata.from_props(props)
    assert back == meta
    assert back.charset().num_classes == cs.num_classes


def test_unknown_schema_version_is_refused():
    data = ModelMetadata(height=32).to_json()
    data["schema_version"] = 99
    with pytest.raises(MetadataError, match="schema_version 99"):
        ModelMetadata.from_props({METADATA_KEY: json.dumps(data)})


def test_malformed_metadata():
    with pytest.raises(MetadataError, match="not valid JSON"):
        ModelMetadata.from_props({METADATA_KEY: "{"})
    bad = ModelMetadata(height=32).to_json()
    bad["characters"] = "abc"
    with pytest.raises(MetadataError, match="list of strings"):
        ModelMetadata.from_props({METADATA_KEY: json.dumps(bad)})


def test_rapidocr_character_list_gets_its_space_class_from_the_class_count():
    props = {RAPIDOCR_KEY: "a\nb\nc"}
    meta = resolve_metadata(props, (None, 3, 48, None), 5)  # blank + a b c + space
    assert meta.characters == ("a", "b", "c", " ") and meta.height == 48 and meta.dynamic_width
    with pytest.raises(UsageError, match="predicts 9"):
        resolve_metadata(props, (None, 3, 48, None), 9)


def test_symbolic_height_needs_image_shape():
    with pytest.raises(UsageError, match="--image-shape"):
        resolve_metadata({}, (None, 3, None, None), 37)
    meta = resolve_metadata({}, (None, 3, None, None), 37, image_shape=(3, 32, 100))
    assert (meta.height, meta.width, meta.dynamic_width) == (32, 100, True)
    assert meta.charset().num_classes == 37


def test_static_width_model_is_fixed():
    meta = resolve_metadata({}, (1, 3, 32, 100), 37)
    assert meta.dynamic_width is False and meta.width == 100
    with pytest.raises(UsageError, match="fixed input width"):
        resolve_metadata({}, (1, 3, 32, 100), 37, dynamic_width=True)


def test_image_shape_conflicting_with_model():
    with pytest.raises(UsageError, match="height 48"):
        resolve_metadata({}, (None, 3, 32, None), 37, image_shape=(3, 48, 320))


@pytest.mark.parametrize("text", ["3,48", "a,b,c", "2,32,100", "3,0,100"])
def test_parse_image_shape_rejects(text):
    with pytest.raises(UsageError):
        parse_image_shape(text)


def test_parse_image_shape_dynamic():
    assert parse_image_shape("3,48,?") == (3, 48, None)
    assert parse_image_shape("1, 32, 100") == (1, 32, 100)


def test_min_width_and_step_travel_in_the_metadata_and_set_the_padding():
    meta = ModelMetadata(height=32, width=100, dynamic_width=True, min_width=32, width_step=8)
    back = ModelMetadata.from_props(meta.to_props())
    assert (back.min_width, back.width_step) == (32, 8)
    cfg = back.preprocess()
    assert (cfg.width, cfg.min_width, cfg.width_step) == (100, 32, 8)
    assert cfg.sizes(32, 50)[1] == 56


def test_without_min_width_and_step_a_model_keeps_paddleocrs_minimum():
    """PaddleOCR CRNNs, PP-OCRv4 and older crnn exports say neither key: their width stays the minimum."""
    props = ModelMetadata(height=32, width=100, dynamic_width=True).to_props()
    assert "min_width" not in props[METADATA_KEY]  # written only when set: older readers see no change
    cfg = resolve_metadata(props, (None, 3, 32, None), None).preprocess()
    assert (cfg.min_width, cfg.width_step) == (None, 32) and cfg.sizes(32, 50)[1] == 100
    ppocr = resolve_metadata({}, (None, 3, 48, None), 37).preprocess()  # PP-OCRv4 shape, no metadata
    assert ppocr.sizes(48, 60)[1] == 320


def test_image_shape_width_is_the_minimum_again():
    props = ModelMetadata(height=32, width=100, dynamic_width=True, min_width=32, width_step=8).to_props()
    meta = resolve_metadata(props, (None, 3, 32, None), None, image_shape=(3, 32, 128))
    assert meta.preprocess().sizes(32, 50)[1] == 128


def test_static_width_export_ignores_the_minimum():
    props = ModelMetadata(height=32, width=100, dynamic_width=True, min_width=32, width_step=8).to_props()
    cfg = resolve_metadata(props, (1, 3, 32, 100), None).preprocess()
    assert not cfg.dynamic_width and cfg.sizes(32, 50) == (50, 100)


def test_bundled_model_says_its_padding():
    from crnn_cli.core.recognizer import default_model_path

    onnx = pytest.importorskip("onnx")
    proto = onnx.load(str(default_model_path()), load_external_data=False)
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    # Measured on the dev sets (README, "Padding"): as accurate as min 100 / step 32, a third fewer columns.
    assert (meta.min_width, meta.width_step) == (32, 8)


def test_min_aspect_travels_in_the_metadata_and_is_checked_on_load():
    meta = ModelMetadata(height=32, width=100, dynamic_width=True, min_width=32, width_step=8, min_aspect=2.0)
    back = ModelMetadata.from_props(meta.to_props())
    assert back.min_aspect == 2.0 and back.preprocess().sizes(32, 20) == (64, 64)
    assert "min_aspect" not in ModelMetadata(height=32, width=100).to_props()[METADATA_KEY]
    bad = json.loads(meta.to_props()[METADATA_KEY])
    bad["input"]["min_aspect"] = -1
    with pytest.raises(MetadataError, match="min aspect"):
        ModelMetadata.from_props({METADATA_KEY: json.dumps(bad)})
