"""scripts/default_model/onnx_to_checkpoint.py: a crnn_default ONNX export back into trainable weights.

The exporter folds each BatchNorm into its conv; the script must rebuild a network whose eval mode
gives the ONNX model's probabilities and whose train mode (batch statistics) stays close to them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from crnn_torch.checkpoint import model_from_checkpoint
from crnn_torch.export import export_onnx
from crnn_torch.models import build_model
from scripts_util import load_script

from crnn_cli.core.charset import load_charset
from crnn_cli.core.metadata import ModelMetadata
from crnn_cli.core.preprocess import Preprocessor


@pytest.fixture(scope="module")
def script():
    return load_script("default_model/onnx_to_checkpoint.py")


def _exported(tmp_path: Path, arch: str = "crnn_default") -> tuple[torch.nn.Module, ModelMetadata, Path]:
    charset = load_charset("en", use_space_char=True)
    torch.manual_seed(3)
    model = build_model(arch, charset.num_classes, hidden_size=16)
    with torch.no_grad():  # BatchNorms far from identity, so folding them is not a no-op
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    meta = ModelMetadata(height=32, width=100, architecture=arch).with_charset(charset)
    out = tmp_path / "model.onnx"
    export_onnx(model, meta, out, verify=False)
    return model, meta, out


def _crops(tmp_path: Path, n: int = 12) -> Path:
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        img = np.full((32, 120), 230, np.uint8)
        cv2.putText(img, f"w{i}x", (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 20, 2)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        lines.append(f"{i}.png\tw{i}x")
    (tmp_path / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "labels.tsv"


def test_recovered_network_reproduces_the_onnx_model(script, tmp_path: Path) -> None:
    original, meta, onnx_path = _exported(tmp_path)
    labels = _crops(tmp_path)
    out = tmp_path / "recovered.pt"
    assert (
        script.main([str(onnx_path), "--calibrate", str(labels), "--data-dir", str(tmp_path), "-o", str(out)])
        == 0
    )

    model, got_meta = model_from_checkpoint(out)
    assert got_meta.characters == meta.characters
    x = torch.from_numpy(
        Preprocessor(meta.preprocess()).batch(
            [cv2.imread(str(tmp_path / f"{i}.png")) for i in range(12)], width=128
        )
    )
    with torch.no_grad():
        want = torch.softmax(original(x), -1)
        torch.testing.assert_close(torch.softmax(model(x), -1), want, atol=1e-4, rtol=0)
        # Train mode normalises with the batch's own statistics: calibrated, they nearly cancel.
        train_out = torch.softmax(model.train()(x), -1)
    assert float((train_out - want).abs().max()) < 0.1


def test_other_architectures_are_refused(script, tmp_path: Path) -> None:
    _, _, onnx_path = _exported(tmp_path, arch="mv3")
    labels = _crops(tmp_path, n=2)
    with pytest.raises(SystemExit, match="crnn_default only"):
        script.main([str(onnx_path), "--calibrate", str(labels), "--data-dir", str(tmp_path), "-o", "x.pt"])
