"""Distillation: the teacher's frames mapped onto the student's, the KL term, and a real teacher
(PP-OCRv4, 6624 symbols, 8 px a frame at 48 px high) teaching a CRNN student on real crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from crnn_torch.config import config_from_dict
from crnn_torch.distill import class_map, greedy_text, kl_loss, map_classes, nearest
from crnn_torch.train import TorchTrainer
from train_util import iiit5k_config

from crnn_cli.core.charset import charset_from_symbols, load_charset
from crnn_cli.core.errors import ConfigError


def test_nearest_upsampling_keeps_the_greedy_reading() -> None:
    """Every teacher frame lands on at least one student frame at 1.33 student frames a teacher frame,
    so repeated letters keep the blank between them and the reading does not change."""
    charset = charset_from_symbols(list("abl"))
    rng = np.random.default_rng(0)
    for _ in range(200):
        frames = int(rng.integers(1, 40))
        best = rng.integers(0, 4, frames)
        probs = np.full((frames, 4), 0.02)
        probs[np.arange(frames), best] = 0.94
        student = int(np.ceil(frames * 4 / 3))
        assert greedy_text(probs[nearest(frames, student)], charset) == greedy_text(probs, charset)
    assert list(nearest(3, 4)) == [0, 1, 1, 2] and list(nearest(2, 2)) == [0, 1]


def test_classes_map_by_symbol_and_the_rest_is_renormalised() -> None:
    teacher = charset_from_symbols(["中", "a", "B", " "])
    student = charset_from_symbols(["a", "b", " "])
    classes = class_map(teacher, student)
    assert list(classes) == [0, 2, -1, 4]  # blank, a, b (absent: case matters), space
    probs = np.array([[0.1, 0.5, 0.2, 0.1, 0.1]])  # 中 takes 0.5: dropped
    mapped = map_classes(probs, classes)
    assert mapped is not None
    np.testing.assert_allclose(mapped, [[0.1 / 0.4, 0.2 / 0.4, 0.0, 0.1 / 0.4]], rtol=1e-6)
    assert map_classes(np.array([[0.0, 1.0, 0.0, 0.0, 0.0]]), classes) is None  # all on 中
    assert map_classes(np.zeros((0, 5)), classes) is None


def test_kl_is_zero_on_agreement_and_ignores_uncovered_frames() -> None:
    soft = torch.softmax(torch.randn(2, 6, 5), 2)
    frames = torch.tensor([4, 6])
    logits = soft.log().clone()
    logits[0, 4:] = torch.randn(2, 5) * 5  # past the first crop's covered frames: must not count
    assert float(kl_loss(logits, soft, frames, 1.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(kl_loss(logits, soft, frames, 2.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(kl_loss(torch.zeros(2, 6, 5), soft, frames, 1.0)) > 0.01
    assert float(kl_loss(logits, soft, torch.tensor([0, 0]), 1.0)) == 0.0
    with pytest.raises(ConfigError, match="frames"):
        kl_loss(torch.zeros(2, 5, 5), soft, frames, 1.0)


def test_kl_on_agreeing_frames_compares_symbols_only() -> None:
    """frames="agree": only the frames where both emit the same symbol count, and there the blank's
    share does not: a student that puts more on the blank but has the teacher's doubts between
    symbols adds nothing, one with other doubts does, and a frame where they emit different symbols
    (or the blank) adds nothing whatever the student puts there."""
    soft = torch.tensor([[[0.10, 0.80, 0.08, 0.02], [0.90, 0.05, 0.03, 0.02], [0.20, 0.10, 0.10, 0.60]]])
    frames = torch.tensor([3])
    # Frame 0: both emit class 1, the student with a larger blank share but the same 0.8:0.08:0.02.
    # Frame 1: both emit the blank. Frame 2: the teacher emits 3, the student 2.
    same_doubts = torch.tensor([[[0.4, 0.8 * 0.6 / 0.9, 0.08 * 0.6 / 0.9, 0.02 * 0.6 / 0.9],
                                 [0.1, 0.8, 0.05, 0.05], [0.1, 0.1, 0.7, 0.1]]]).log()  # fmt: skip
    assert float(kl_loss(same_doubts, soft, frames, 1.0, "agree")) == pytest.approx(0.0, abs=1e-6)
    assert float(kl_loss(same_doubts, soft, frames, 1.0, "all")) > 0.1
    other_doubts = same_doubts.clone()
    other_doubts[0, 0] = torch.tensor([0.4, 0.5, 0.02, 0.08]).log()
    loss = kl_loss(other_doubts, soft, frames, 2.0, "agree")
    p = torch.tensor([0.8, 0.08, 0.02]) / 0.9
    q = torch.tensor([0.5, 0.02, 0.08]) / 0.6
    pt, qt = (p.log() / 2).softmax(0), (q.log() / 2).softmax(0)
    assert float(loss) == pytest.approx(float((pt * (pt.log() - qt.log())).sum() * 4), rel=1e-4)
    assert float(kl_loss(other_doubts, soft, torch.tensor([0]), 1.0, "agree")) == 0.0


def _config(root: Path, data_dir: Path, teacher: Path, n: int = 48) -> dict:
    """40-odd real IIIT5K crops at 32 px high, dynamic width, taught by PP-OCRv4."""
    raw = iiit5k_config(root, data_dir, n=n, hidden=32, batch=16, seed=3)
    raw["Distillation"] = {
        "teacher": str(teacher), "label_files": [str(root / "iiit5k.tsv")], "backend": "openvino",
        "dictionary": str(teacher / "ppocr_keys_v1.txt"), "use_space_char": True,
    }  # fmt: skip
    return raw


def test_real_teacher_targets_train_and_are_cached(tmp_path: Path, data_dir: Path, ppocrv4_dir: Path) -> None:
    raw = _config(tmp_path, data_dir, ppocrv4_dir)
    trainer = TorchTrainer(config_from_dict(raw), quiet=True)
    try:
        caches = list((tmp_path / "out" / "distill").glob("teacher-*.npz"))
        assert len(caches) == 1
        table = trainer.train_loader.loader.dataset.targets
        # PP-OCRv4 reads nearly every IIIT5K training word as labelled; the others get no target.
        assert 0.8 * 48 <= len(table) < 48
        student = load_charset("en", use_space_char=True)
        batches = list(trainer.train_loader)
        assert batches and all("soft" in b for b in batches)
        taught = warped = 0
        for b in batches:
            frames = b["soft_frames"].tolist()
            assert b["soft"].shape[:2] == (len(frames), b["images"].shape[3] // 4)
            for i, n in enumerate(frames):
                if n == 0:
                    warped += 1
                    continue
                taught += 1
                soft = b["soft"][i].numpy()
                # The soft target covers the crop's own width, reads as its label, is a distribution.
                assert 1 <= n <= int(b["widths"][i]) // 4
                assert greedy_text(soft[:n], student) == b["texts"][i]
                np.testing.assert_allclose(soft[:n].sum(1), 1.0, atol=2e-3)
                assert not soft[n:].any()
        assert taught >= 10 and warped >= 5  # TIA at 0.5 (and misread crops) leave some untaught
        out = trainer.train_step(batches[0])
        assert out["skipped"] is None and np.isfinite(out["loss"]) and out["distill"] > 0
    finally:
        trainer.close()
    # A second run of the same teacher, crops and dictionary reads the cache (same table, no teacher).
    stamp = caches[0].stat().st_mtime_ns
    again = TorchTrainer(config_from_dict(raw), quiet=True)
    try:
        assert again.train_loader.loader.dataset.targets.index == table.index
        assert caches[0].stat().st_mtime_ns == stamp
    finally:
        again.close()


def test_a_label_file_not_trained_on_is_named(tmp_path: Path, data_dir: Path, ppocrv4_dir: Path) -> None:
    raw = _config(tmp_path, data_dir, ppocrv4_dir, n=8)
    raw["Distillation"]["label_files"] = [str(tmp_path / "other.tsv")]
    with pytest.raises(ConfigError, match="other.tsv is not a label file of Train.dataset"):
        TorchTrainer(config_from_dict(raw), quiet=True)
    raw["Distillation"]["teacher"] = str(tmp_path / "missing")
    raw["Distillation"]["label_files"] = [str(tmp_path / "iiit5k.tsv")]
    with pytest.raises(ConfigError, match="missing: no such model"):
        TorchTrainer(config_from_dict(raw), quiet=True)
    raw["Distillation"]["frames"] = "spikes"
    with pytest.raises(ConfigError, match="frames.*must be one of all, agree, got 'spikes'"):
        config_from_dict(raw)
