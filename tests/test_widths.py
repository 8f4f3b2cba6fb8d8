"""The widths input: crops of different widths in one model call read exactly as each alone."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest
from cli_util import run_crnn

from crnn_cli.core import recognizer as recognizer_module
from crnn_cli.core import registry
from crnn_cli.core.backend import SessionOptions
from crnn_cli.core.errors import ModelError
from crnn_cli.core.recognizer import Recognizer, default_model_path, mixed_cuts


@pytest.fixture(scope="module")
def widths_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model, converted with --widths-input (checked by the converter itself)."""
    out = tmp_path_factory.mktemp("widths") / "default_widths.onnx"
    code, stdout, stderr = run_crnn(
        "convert", default_model_path(), "--to", "onnx", "--widths-input", "-o", out
    )
    assert code == 0, stderr
    assert "widths input: 5 convolution inputs masked, 2 LSTM layers given lengths" in stdout
    assert "read together as alone: max |dp| = 0.0e+00" in stdout
    return out


def _crops(data_dir: Path, n: int = 96) -> list[str]:
    """Real crops of many widths: IIIT5K words and IC15 scene text."""
    paths = []
    for name in ("iiit5k_train", "ic15_train"):
        lines = (data_dir / name / "labels.tsv").read_text("utf-8").splitlines()
        paths += [
            str(data_dir / name / line.split("\t")[0]) for line in random.Random(1).sample(lines, n // 2)
        ]
    return paths


def test_mixed_calls_read_as_the_model_without_widths(
    widths_model: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _crops(data_dir)
    with Recognizer(default_model_path(), "onnxruntime") as plain:
        want = list(plain.recognize(paths))
        want_probs = plain.probabilities(paths[:20])
    # A dear call makes every batch mix widths: the strongest test of keeping crops apart.
    monkeypatch.setattr(recognizer_module, "CALL_COLUMNS", 10_000)
    with Recognizer(widths_model, "onnxruntime") as rec:
        assert rec.session.info.widths_input == "widths"
        calls: list[np.ndarray | None] = []
        run = rec.session.run
        rec.session.run = lambda batch, widths=None: calls.append(widths) or run(batch, widths)  # type: ignore[method-assign]
        got = list(rec.recognize(paths))
        got_probs = rec.probabilities(paths[:20])
        batch_of_16 = rec.predict_batch(paths[:16])
    mixed = [w for w in calls if w is not None]
    assert mixed and max(len(set(w.tolist())) for w in mixed) >= 5  # calls really mixed widths
    assert [(r.text, r.confidence, r.char_confidences) for r in got] == [
        (r.text, r.confidence, r.char_confidences) for r in want
    ]
    assert [d.text for d in batch_of_16] == [r.text for r in want[:16]]
    for a, b in zip(got_probs, want_probs):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_session_checks_widths(widths_model: Path) -> None:
    ort = registry.require_available("onnxruntime")
    batch = np.zeros((2, 3, 32, 64), np.float32)
    with ort.open(widths_model, SessionOptions()) as session:
        assert session.run(batch).shape == (2, 16, 96)
        assert session.run(batch, np.array([32, 64])).shape == (2, 16, 96)
        for bad in ([32], [0, 64], [32, 72]):
            with pytest.raises(ModelError, match="widths must be 2 numbers from 1 to the batch width 64"):
                session.run(batch, np.array(bad))
        assert [o.shape for o in session.run_many([batch, (batch, np.array([64, 40]))])] == [(2, 16, 96)] * 2
    with ort.open(default_model_path(), SessionOptions()) as plain:
        assert plain.info.widths_input is None
        with pytest.raises(ModelError, match="no widths input"):
            plain.run(batch, np.array([32, 64]))


def test_openvino_feeds_whole_widths_only(widths_model: Path) -> None:
    """OpenVINO's LSTM with shorter sequence lengths gives other frames than the crop alone, so it
    takes the file but never mixes widths; with whole widths it agrees with ONNX Runtime."""
    pytest.importorskip("openvino")
    batch = np.random.default_rng(0).uniform(-1, 1, (3, 3, 32, 96)).astype(np.float32)
    with registry.require_available("openvino").open(widths_model, SessionOptions()) as ov:
        assert ov.info.widths_input is None
        with registry.require_available("onnxruntime").open(widths_model, SessionOptions()) as ort:
            assert np.abs(ov.run(batch) - ort.run(batch)).max() < 1e-4
        with pytest.raises(ModelError, match="no widths input"):
            list(ov.run_many([(batch, np.array([32, 96, 64]))]))


def test_graphs_that_look_across_columns_are_refused(mv3_dir: Path, tmp_path: Path) -> None:
    # PaddleOCR's CRNN-MobileNetV3: strided convolutions and squeeze-excitation (global pooling).
    code, _, err = run_crnn("convert", mv3_dir, "--to", "onnx", "--widths-input", "-o", tmp_path / "mv3.onnx")
    assert code != 0 and "--widths-input: this graph cannot keep crops of different widths apart" in err
    assert not (tmp_path / "mv3.onnx").exists()
    code, _, err = run_crnn(
        "convert", default_model_path(), "--to", "openvino", "--widths-input", "-o", tmp_path / "m.xml"
    )
    assert code == 2 and "--widths-input applies to float ONNX output" in err


def test_cuts_minimise_the_cost_of_calls_and_padding() -> None:
    rng = random.Random(5)
    for _ in range(60):
        widths = sorted(rng.choice([32, 40, 48, 96, 200]) for _ in range(rng.randint(1, 9)))
        size = rng.randint(1, 4)
        cuts = mixed_cuts(widths, size)
        assert (
            cuts[0] == 0
            and cuts[-1] == len(widths)
            and all(0 < b - a <= size for a, b in zip(cuts, cuts[1:]))
        )

        def cost(cs: list[int], widths: list[int] = widths) -> float:
            return sum(recognizer_module.CALL_COLUMNS + (b - a) * widths[b - 1] for a, b in zip(cs, cs[1:]))

        inner = range(1, len(widths))
        options = [
            [0, *c, len(widths)]
            for k in range(len(widths))
            for c in itertools.combinations(inner, k)
            if all(0 < b - a <= size for a, b in zip([0, *c], [*c, len(widths)]))
        ]
        assert cost(cuts) == pytest.approx(min(cost(o) for o in options))
    # Crops of one width fill whole batches; a lone wide crop is not read with narrow ones.
    cuts = mixed_cuts([32] * 40 + [40] * 3 + [48] * 2 + [400], 32)
    assert len(cuts) - 1 <= 5 and cuts[-2:] == [
        45,
        46,
    ]  # the narrow 45 in 4 calls at most; the wide one alone
