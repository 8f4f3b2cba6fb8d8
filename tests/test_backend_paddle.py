"""The paddle backend: PaddleOCR inference models on Paddle Inference, through crnn's Session contract,
`crnn recognize/eval --backend paddle`, and a PaddleOCR 3.x folder (inference.json) given to recognize."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from backend_contract import BackendContract
from cli_util import run_crnn
from models_util import FEATURES, tiny_weights

from crnn_cli.core.backend import Availability, Session
from crnn_cli.core.registry import load_backend

PADDLE = load_backend("paddle").availability()
needs_paddle = pytest.mark.skipif(not PADDLE.ok, reason=PADDLE.message("paddle"))


def make_tiny_paddle(folder: Path, num_classes: int = 37, height: int = 32, channels: int = 3) -> Path:
    """The tiny model of models_util.py (same weights) saved by Paddle as an inference model (PIR .json
    with Paddle 3): x N, C, H, W (N and W dynamic) -> probabilities N, W // 4, classes."""
    from crnn_paddle.paddle_inference import quiet_import

    paddle = quiet_import("paddle")  # without its ccache warning
    nn = paddle.nn

    w = tiny_weights(channels, num_classes)

    class Tiny(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2D(channels, FEATURES, 3, padding=1)
            self.conv.weight.set_value(w["conv_w"])
            self.conv.bias.set_value(w["conv_b"])
            self.head_w = paddle.create_parameter([FEATURES, num_classes], "float32")
            self.head_w.set_value(w["head_w"])
            self.head_b = paddle.create_parameter([num_classes], "float32")
            self.head_b.set_value(w["head_b"])

        def forward(self, x):  # type: ignore[no-untyped-def]
            y = nn.functional.relu(self.conv(x))
            y = nn.functional.avg_pool2d(y, kernel_size=[1, 4], stride=[1, 4])
            y = y.mean(axis=2).transpose([0, 2, 1])
            return nn.functional.softmax(paddle.matmul(y, self.head_w) + self.head_b, axis=-1)

    model = Tiny()
    model.eval()
    spec = [paddle.static.InputSpec([None, channels, height, None], "float32", "x")]
    prefix = folder / "inference"
    paddle.jit.save(model, str(prefix), input_spec=spec)
    graph = next(p for p in (prefix.with_suffix(".json"), prefix.with_suffix(".pdmodel")) if p.is_file())
    return graph


@needs_paddle
class TestPaddleBackend(BackendContract):
    backend_name = "paddle"

    @pytest.fixture(scope="class")
    @classmethod
    def model_path(
        cls, backend, tmp_path_factory: pytest.TempPathFactory, expected_props: dict[str, str]
    ) -> Path:  # type: ignore[no-untyped-def]
        return make_tiny_paddle(tmp_path_factory.mktemp("paddle_tiny"), cls.num_classes, cls.height)

    def test_metadata_round_trips(self, session: Session, expected_props: dict[str, str]) -> None:
        # A Paddle inference model carries no crnn metadata: nothing is made up (--dict says it).
        assert dict(session.info.props) == {}


crnn = run_crnn


@pytest.mark.shared
@needs_paddle
@pytest.mark.parametrize("folder", ["inference_pir", "inference_legacy"])
def test_recognize_backend_paddle_reproduces_paddleocr(mv3_dir: Path, data_dir: Path, folder: str) -> None:
    ref = np.load(mv3_dir / "reference_w320.npz")
    images = [data_dir / "iiit5k_train" / p for p in ref["paths"]]
    code, out, err = crnn(
        "recognize", "--backend", "paddle", "--model", mv3_dir / folder, "--image-shape", "3,32,320",
        "--fixed-width", "--format", "jsonl", *images,
    )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in rows] == [str(t) for t in ref["texts"]]
    np.testing.assert_allclose([r["confidence"] for r in rows], ref["confs"], atol=1e-5, rtol=0)


@pytest.mark.shared
@needs_paddle
def test_eval_backend_paddle_gives_the_numbers_openvino_gives(mv3_dir: Path, data_dir: Path) -> None:
    """The same weights (PIR on Paddle, legacy .pdmodel on OpenVINO) score the same on 24 real crops."""
    scores = {}
    for backend, model in (("paddle", "inference_pir"), ("openvino", "inference_legacy")):
        code, out, err = crnn(
            "eval", "--backend", backend, "--model", mv3_dir / model, data_dir / "iiit5k_train",
            "--limit", "24", "--format", "json",
        )  # fmt: skip
        assert code == 0, err
        report = json.loads(out)
        assert report["backend"] == backend
        scores[backend] = report["datasets"][0]
    paddle, openvino = scores["paddle"], scores["openvino"]
    assert paddle["count"] == openvino["count"] == 24
    assert paddle["top_confusions"] == openvino["top_confusions"]  # the same texts, error for error
    for key in ("accuracy", "norm_edit_distance"):
        assert paddle[key] == openvino[key]
    assert abs(paddle["mean_confidence"] - openvino["mean_confidence"]) < 1e-5
    assert 0.1 < paddle["mean_confidence"] < 1.0  # the confidences are real numbers, not a constant


# -- issue 24 point 8: a PaddleOCR 3.x folder given to `crnn recognize` ---------------------------------------


@pytest.mark.shared
@needs_paddle
def test_a_pir_folder_runs_on_paddle_without_flags(mv3_dir: Path, data_dir: Path) -> None:
    ref = np.load(mv3_dir / "reference_w100.npz")
    images = [data_dir / "iiit5k_train" / p for p in ref["paths"][:4]]
    code, out, err = crnn("recognize", "--model", mv3_dir / "inference_pir", "--format", "jsonl", *images)
    assert code == 0, err
    assert len(out.splitlines()) == 4


@pytest.mark.shared
def test_a_pir_folder_without_paddle_names_the_backend_and_the_conversion(
    monkeypatch: pytest.MonkeyPatch, mv3_dir: Path, data_dir: Path
) -> None:
    import crnn_paddle

    gone = Availability(False, reason="paddlepaddle is not installed (hidden by the test)", hint="pip x")
    monkeypatch.setattr(crnn_paddle.PaddleBackend, "availability", lambda self: gone)
    monkeypatch.setattr(crnn_paddle.PaddleBackend, "distributions", ("paddlepaddle-hidden-by-the-test",))
    image = next((data_dir / "iiit5k_train").rglob("*.png"))
    model = mv3_dir / "inference_pir"
    code, out, err = crnn("recognize", "--model", model, image)
    assert code == 1 and out == ""
    assert "backend 'paddle' is not available: paddlepaddle is not installed" in err
    assert f"crnn convert {model} --to onnx -o inference_pir.onnx" in err


@pytest.mark.shared
@needs_paddle
def test_auto_keeps_openvino_for_a_legacy_pdmodel_and_takes_paddle_for_pir(mv3_dir: Path) -> None:
    from crnn_cli.core.autoselect import candidates

    assert [b.name for b in candidates(mv3_dir / "inference_legacy")] == ["openvino"]
    assert [b.name for b in candidates(mv3_dir / "inference_pir")] == ["paddle"]
    assert load_backend("paddle").accepts(mv3_dir / "inference_legacy")  # --backend paddle runs it
