"""Online distillation (a crnn checkpoint reads every training batch beside the student) and
shrink_lstm.py (a narrower BiLSTM cut from a wider one, the start of such a student)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from crnn_torch.checkpoint import load_checkpoint, model_from_checkpoint
from crnn_torch.config import config_from_dict
from crnn_torch.train import TorchTrainer
from scripts_util import load_script
from train_util import iiit5k_config

from crnn_cli.core.errors import ConfigError


def _config(root: Path, data_dir: Path, hidden: int, out: str, n: int = 32) -> dict:
    raw = iiit5k_config(root, data_dir, n=n, hidden=hidden, batch=8, seed=5, out=out)
    raw["Global"]["max_steps"] = 2
    return raw


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A crnn training checkpoint (CompactCNN, BiLSTM 24) written by a real two-step run."""
    root = tmp_path_factory.mktemp("teacher")
    trainer = TorchTrainer(config_from_dict(_config(root, data_dir, 24, "teacher")), quiet=True)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return root / "teacher" / "latest.pt"


def test_online_teacher_reads_the_batch_the_student_sees(
    tmp_path: Path, data_dir: Path, teacher_ckpt: Path
) -> None:
    raw = _config(tmp_path, data_dir, 16, "student")
    raw["Distillation"] = {"teacher": str(teacher_ckpt), "online": True, "weight": 0.5}  # no label_files
    trainer = TorchTrainer(config_from_dict(raw), quiet=True)
    try:
        assert trainer.teacher is not None
        batch = next(iter(trainer.train_loader))
        soft, frames = trainer.teacher.targets(batch["images"], batch["widths"])
        # The targets are the teacher's own probabilities on these very images (augmented as trained).
        model, _ = model_from_checkpoint(teacher_ckpt)
        with torch.no_grad():
            expected = model(batch["images"]).softmax(2)
        torch.testing.assert_close(soft, expected)
        assert soft.shape[1] == batch["images"].shape[3] // 4
        assert frames.tolist() == (batch["widths"] // 4).tolist()
        out = trainer.train_step(batch)
        assert out["skipped"] is None and np.isfinite(out["loss"]) and out["distill"] > 0
        # The step's loss is its CTC loss plus the KL term at the configured weight.
        ctc = float(trainer.loss(out["logits"], batch["targets"], batch["target_lengths"]))
        assert out["loss"] == pytest.approx(ctc + 0.5 * out["distill"], rel=1e-5)
    finally:
        trainer.close()


def test_online_teacher_must_share_dictionary_and_input(
    tmp_path: Path, data_dir: Path, teacher_ckpt: Path
) -> None:
    raw = _config(tmp_path, data_dir, 16, "student", n=8)
    raw["Distillation"] = {"teacher": str(tmp_path / "none.pt"), "online": True}
    with pytest.raises(
        ConfigError, match="none.pt: no such file; online distillation takes a crnn checkpoint"
    ):
        TorchTrainer(config_from_dict(raw), quiet=True)
    raw["Distillation"]["teacher"] = str(teacher_ckpt)
    raw["Global"]["character_dict_path"] = "ic15"
    raw["Global"]["use_space_char"] = False
    with pytest.raises(ConfigError, match="another dictionary than the student"):
        TorchTrainer(config_from_dict(raw), quiet=True)
    raw = _config(tmp_path, data_dir, 16, "student", n=8)
    raw["Distillation"] = {"teacher": str(teacher_ckpt)}  # offline distillation still names its crops
    with pytest.raises(ConfigError, match="label_files.*or set online: true"):
        config_from_dict(raw)


def test_shrink_keeps_the_function_when_the_dropped_units_are_silent(
    tmp_path: Path, teacher_ckpt: Path
) -> None:
    """Units whose outputs nothing reads can go: the cut model gives the wide one's outputs. Units that
    are read make a difference, and the cut keeps the ones read most."""
    shrink = load_script("default_model/shrink_lstm.py")
    ckpt = load_checkpoint(teacher_ckpt)
    state = copy.deepcopy(ckpt["model"])
    hidden, keep = 24, 16
    prefix = shrink.PREFIX
    rng = np.random.default_rng(1)
    silent = {}
    for layer in (0, 1):
        for d, suffix in enumerate(("", "_reverse")):
            drop = torch.as_tensor(np.sort(rng.choice(hidden, hidden - keep, replace=False)))
            silent[(layer, suffix)] = drop
            state[f"{prefix}weight_hh_l{layer}{suffix}"][:, drop] = 0.0  # its own layer reads it
            cols = drop + d * hidden
            if layer == 0:
                for s in ("", "_reverse"):
                    state[f"{prefix}weight_ih_l1{s}"][:, cols] = 0.0
            else:
                state["head.fc.weight"][:, cols] = 0.0
    chosen = shrink.keep_units(state, hidden, keep)
    for key, drop in silent.items():
        assert not set(drop.tolist()) & set(chosen[key].tolist())
    wide = {**ckpt, "model": state}
    narrow = {**ckpt, "model": shrink.shrink(state, hidden, keep), "arch_kwargs": {"hidden_size": keep}}
    x = torch.randn(3, 3, 32, 96)
    with torch.no_grad():
        a = model_from_checkpoint(wide)[0](x)
        b = model_from_checkpoint(narrow)[0](x)
        assert b.shape == a.shape
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        # Cutting units that are read changes the outputs: the test above can tell.
        loud = {
            **ckpt,
            "model": shrink.shrink(ckpt["model"], hidden, keep),
            "arch_kwargs": {"hidden_size": keep},
        }
        assert (model_from_checkpoint(loud)[0](x) - model_from_checkpoint(ckpt)[0](x)).abs().max() > 1e-3


def test_shrink_script_writes_a_loadable_checkpoint(tmp_path: Path, teacher_ckpt: Path) -> None:
    out = tmp_path / "cut.pt"
    assert (
        load_script("default_model/shrink_lstm.py").main(
            [str(teacher_ckpt), "--hidden", "12", "-o", str(out)]
        )
        == 0
    )
    model, meta = model_from_checkpoint(out)
    assert model.neck.encoder.lstm.hidden_size == 12 and meta.charset() is not None
    with pytest.raises(SystemExit):
        load_script("default_model/shrink_lstm.py").main(
            [str(teacher_ckpt), "--hidden", "24", "-o", str(tmp_path / "x.pt")]
        )
