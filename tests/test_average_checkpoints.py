"""scripts/default_model/average_checkpoints.py: the weights between a checkpoint and its fine-tune."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts_util import load_script

torch = pytest.importorskip("torch")


def _checkpoint(path: Path, scale: float, arch: str = "crnn_default") -> Path:
    from crnn_torch.checkpoint import FORMAT, FORMAT_VERSION, save_checkpoint

    model = {"w": torch.full((2, 3), scale), "bn.num_batches_tracked": torch.tensor(int(scale * 10))}
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "arch": arch, "arch_kwargs": {"hidden_size": 8},
        "num_classes": 5, "characters": list("abcd"), "model": model, "raw_model": model, "step": int(scale),
    }  # fmt: skip
    return save_checkpoint(payload, path)


def test_halfway_between_a_checkpoint_and_its_fine_tune(tmp_path: Path) -> None:
    avg = load_script("default_model/average_checkpoints.py")
    from crnn_torch.checkpoint import load_checkpoint

    first, second = _checkpoint(tmp_path / "a.pt", 1.0), _checkpoint(tmp_path / "b.pt", 3.0)
    out = tmp_path / "out" / "latest.pt"
    assert avg.main([str(first), str(second), "--weight", "0.25", "-o", str(out)]) == 0
    got = load_checkpoint(out)  # written as a checkpoint crnn reads without running code
    assert torch.equal(got["model"]["w"], torch.full((2, 3), 1.5))  # 0.75 x 1 + 0.25 x 3
    assert int(got["model"]["bn.num_batches_tracked"]) == 30  # counters: the second's
    assert (got["arch"], got["characters"], got["arch_kwargs"]) == (
        "crnn_default",
        list("abcd"),
        {"hidden_size": 8},
    )
    assert "step" not in got and "raw_model" not in got  # the second run's state would undo the average


def test_resume_refuses_a_weights_only_checkpoint(tmp_path: Path) -> None:
    """An average (or a network recovered from ONNX) has no run to continue: --resume says to start
    from it with Global.pretrained_model rather than failing on a missing key."""
    from crnn_torch import run_state

    from crnn_cli.core.errors import ModelError

    avg = load_script("default_model/average_checkpoints.py")
    first, second = _checkpoint(tmp_path / "a.pt", 1.0), _checkpoint(tmp_path / "b.pt", 3.0)
    out = tmp_path / "avg.pt"
    avg.main([str(first), str(second), "-o", str(out)])
    with pytest.raises(ModelError, match="pretrained_model"):
        run_state.restore(None, out)  # refused before anything of the trainer is touched


def test_refuses_two_different_networks(tmp_path: Path) -> None:
    avg = load_script("default_model/average_checkpoints.py")
    first = _checkpoint(tmp_path / "a.pt", 1.0)
    other = _checkpoint(tmp_path / "b.pt", 3.0, arch="rec_mv3_none_bilstm_ctc")
    with pytest.raises(SystemExit, match="differ in arch"):
        avg.main([str(first), str(other), "-o", str(tmp_path / "out.pt")])
    assert not (tmp_path / "out.pt").exists()
    with pytest.raises(SystemExit):
        avg.main([str(first), str(first), "--weight", "1.5", "-o", str(tmp_path / "out.pt")])


def test_a_network_recovered_from_onnx_averages_with_its_fine_tune(tmp_path: Path) -> None:
    """onnx_to_checkpoint.py's files (before it wrote "characters") carry the dictionary in their
    metadata only: that is what is compared."""
    from crnn_torch.checkpoint import load_checkpoint, save_checkpoint

    avg = load_script("default_model/average_checkpoints.py")
    recovered = load_checkpoint(_checkpoint(tmp_path / "a.pt", 1.0))
    del recovered["characters"]
    recovered["metadata"] = {"characters": list("abcd")}
    save_checkpoint(recovered, tmp_path / "a.pt")
    tuned = load_checkpoint(_checkpoint(tmp_path / "b.pt", 3.0))
    tuned["arch_kwargs"] = {"in_channels": 3, "hidden_size": 8}  # training names an argument more
    save_checkpoint(tuned, tmp_path / "b.pt")
    out = tmp_path / "avg.pt"
    assert avg.main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "-o", str(out)]) == 0
    assert torch.equal(load_checkpoint(out)["model"]["w"], torch.full((2, 3), 2.0))
    recovered["metadata"] = {"characters": list("abce")}  # another dictionary: refused
    save_checkpoint(recovered, tmp_path / "a.pt")
    with pytest.raises(SystemExit, match="characters"):
        avg.main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "-o", str(tmp_path / "no.pt")])
    recovered["metadata"] = {"characters": list("abcd")}
    recovered["arch_kwargs"] = {"hidden_size": 16}  # an argument both name, and they differ: refused
    save_checkpoint(recovered, tmp_path / "a.pt")
    with pytest.raises(SystemExit, match="arch_kwargs"):
        avg.main([str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "-o", str(tmp_path / "no.pt")])
