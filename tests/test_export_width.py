"""Issue 24 point 4: a CRNN trained at a fixed width (PaddleOCR's stock ``RecResizeImg: [3, 32, 100]``)
exports with a dynamic width, the trained width its minimum, or at the width asked for.

The checkpoint is what `crnn train` writes for such a config (metadata: width 100, not dynamic) around a
small randomly initialised network; the conversions are verified against torch as usual."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")


from cli_util import run_crnn  # noqa: E402

from crnn_cli.core.metadata import ModelMetadata  # noqa: E402

CHARS = tuple("0123456789abcdefghijklmnopqrstuvwxyz")


crnn = run_crnn


@pytest.fixture(scope="module")
def fixed_width_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crnn_torch.loading import save_inference_checkpoint
    from crnn_torch.models import build_model

    torch.manual_seed(0)
    model = build_model("crnn_default", len(CHARS) + 1, hidden_size=16).eval()
    meta = ModelMetadata(
        characters=CHARS,
        lowercase=True,
        height=32,
        width=100,
        dynamic_width=False,  # RecResizeImg image_shape [3, 32, 100], as PaddleOCR's stock configs
        architecture="crnn_default",
        producer="crnn train",
    )
    return save_inference_checkpoint(model, meta, tmp_path_factory.mktemp("fixed") / "latest.pt")


def _input_dims(path: Path) -> list[object]:
    return [
        d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    ]


def test_export_is_dynamic_with_the_trained_width_as_minimum(
    fixed_width_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, err = crnn("export", fixed_width_checkpoint, "--to", "onnx", "-o", out, "--format", "json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["metadata"]["input"]["width"] == 100 and summary["metadata"]["input"]["dynamic_width"]
    assert summary["verify"]["ok"] and summary["verify"]["widths"] == [100, 125, 150]
    assert _input_dims(out)[3] == "width"


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_static_width_320_is_accepted(fixed_width_checkpoint: Path, tmp_path: Path, target: str) -> None:
    if target == "openvino":
        pytest.importorskip("openvino")
    out = tmp_path / ("m.xml" if target == "openvino" else "m.onnx")
    code, stdout, err = crnn(
        "export",
        fixed_width_checkpoint,
        "--to",
        target,
        "-o",
        out,
        "--static-width",
        "320",
        "--format",
        "json",
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert (summary["metadata"]["input"]["width"], summary["metadata"]["input"]["dynamic_width"]) == (
        320,
        False,
    )
    assert summary["verify"]["ok"] and summary["verify"]["widths"] == [320]
    if target == "onnx":
        assert _input_dims(out)[3] == 320


def test_max_width_320_is_accepted(fixed_width_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, err = crnn(
        "export", fixed_width_checkpoint, "--to", "onnx", "-o", out, "--max-width", "320", "--format", "json"
    )
    assert code == 0, err
    meta = json.loads(stdout)["metadata"]["input"]
    assert (meta["width"], meta["dynamic_width"], meta["max_width"]) == (100, True, 320)


def test_a_fixed_width_onnx_graph_keeps_its_width(fixed_width_checkpoint: Path, tmp_path: Path) -> None:
    """Only the torch network is width-agnostic: an ONNX file with a fixed input width stays fixed."""
    static = tmp_path / "static.onnx"
    assert (
        crnn("export", fixed_width_checkpoint, "--to", "onnx", "-o", static, "--static-width", "100")[0] == 0
    )
    code, _, err = crnn("convert", static, "--to", "onnx", "-o", tmp_path / "x.onnx", "--static-width", "320")
    assert code == 2 and "fixed input width of 100" in err
