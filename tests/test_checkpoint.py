"""Checkpoints: atomic writes, safe loading (hostile pickles refused), RNG round trips, pretrained loading."""

from __future__ import annotations

import os
import pickle
import random
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from crnn_torch import checkpoint as ck
from crnn_torch.models import MV3, build_model

from crnn_cli.core.errors import ModelError, UnsafeFileError

torch.set_num_threads(1)


def minimal_payload(model: torch.nn.Module, symbols: str = "0123456789") -> dict:
    from crnn_cli.core.charset import Charset
    from crnn_cli.core.metadata import ModelMetadata

    charset = Charset(tuple(symbols))
    meta = ModelMetadata(height=32, width=100, dynamic_width=False).with_charset(charset)
    config = dict(model.config)
    arch, num_classes = config.pop("arch"), config.pop("num_classes")
    return {
        "format": ck.FORMAT,
        "format_version": ck.FORMAT_VERSION,
        "arch": arch,
        "arch_kwargs": config,
        "num_classes": num_classes,
        "characters": list(symbols),
        "metadata": meta.to_json(),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "step": 3,
        "epoch": 0,
    }


@pytest.fixture(scope="module")
def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("crnn_default", 11, hidden_size=16).eval()


def test_round_trip_rebuilds_the_model(tmp_path: Path, small_model: torch.nn.Module) -> None:
    path = ck.save_checkpoint(minimal_payload(small_model), tmp_path / "a" / "m.pt")
    loaded = ck.load_checkpoint(path)
    assert loaded["step"] == 3 and loaded["characters"] == list("0123456789")
    model, meta = ck.model_from_checkpoint(path)
    x = torch.randn(2, 3, 32, 100)
    with torch.no_grad():
        assert torch.equal(model(x), small_model(x))
    assert meta.characters == tuple("0123456789") and meta.height == 32 and not meta.dynamic_width
    assert not [p for p in path.parent.iterdir() if p.name != "m.pt"]  # no temporary left behind
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_save_is_atomic(
    tmp_path: Path, small_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ck.save_checkpoint(minimal_payload(small_model), tmp_path / "m.pt")
    before = path.read_bytes()

    def crash(obj: object, f: object) -> None:
        f.write(b"half a checkpoint")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    payload = minimal_payload(small_model)
    payload["step"] = 4
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(payload, path)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # and the partial file is gone


def test_refuses_to_write_what_it_could_not_read_safely(tmp_path: Path, small_model: torch.nn.Module) -> None:
    payload = minimal_payload(small_model)
    payload["rng"] = np.zeros(3)  # a numpy array would need pickled numpy globals to load
    with pytest.raises(TypeError, match=r"checkpoint\.rng is a ndarray"):
        ck.save_checkpoint(payload, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


class _Payload:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.mark.parametrize("kind", ["torch", "pickle"])
def test_hostile_checkpoint_is_refused(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    data = {"format": ck.FORMAT, "format_version": ck.FORMAT_VERSION, "model": _Payload(marker)}
    if kind == "torch":
        torch.save(data, path)
        torch.load(path, weights_only=False)  # the payload is real: a plain load runs it
    else:
        path.write_bytes(pickle.dumps(data, protocol=2))  # a bare pickle, as torch's legacy format
        pickle.loads(path.read_bytes())
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafeFileError, match=r"refused to load: its pickle references '(posix|nt)\.system'"):
        ck.load_checkpoint(path)
    with pytest.raises(UnsafeFileError):
        ck.load_pretrained(build_model("crnn_default", 11, hidden_size=16), path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4")
def test_protocol_4_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": _Payload(marker)}, protocol=4))
    with pytest.raises(ModelError, match="not a checkpoint crnn can read safely"):
        ck.load_checkpoint(path)
    assert not marker.exists()


def test_not_a_crnn_checkpoint(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a crnn checkpoint"):
        ck.load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": ck.FORMAT, "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(ModelError, match="format_version 99"):
        ck.load_checkpoint(tmp_path / "future.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="not a checkpoint crnn can read safely"):
        ck.load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ModelError, match="no such checkpoint"):
        ck.load_checkpoint(tmp_path / "absent.pt")


def test_rng_state_round_trip(tmp_path: Path, small_model: torch.nn.Module) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.random(), np.random.normal(), torch.rand(1)  # move off the seeded start (numpy: cached gauss)
    payload = minimal_payload(small_model)
    payload["rng"] = [ck.capture_rng()]
    path = ck.save_checkpoint(payload, tmp_path / "r.pt")
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    ck.restore_rng(ck.load_checkpoint(path)["rng"][0])
    got = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    assert got[:3] == expected[:3]
    assert torch.equal(got[3], expected[3])


def test_pretrained_skips_head_of_another_dictionary(tmp_path: Path, small_model: torch.nn.Module) -> None:
    path = ck.save_checkpoint(minimal_payload(small_model), tmp_path / "m.pt")
    torch.manual_seed(1)
    target = build_model("crnn_default", 21, hidden_size=16)  # 20 symbols: another dictionary
    head_before = target.head.fc.weight.detach().clone()
    report = ck.load_pretrained(target, path)
    assert set(report.skipped) == {"head.fc.weight", "head.fc.bias"}
    assert "head.fc.weight" in report.summary()
    assert torch.equal(target.head.fc.weight, head_before)  # the new head keeps its initialisation
    src = small_model.state_dict()
    for name, value in target.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(value, src[name]), name
    assert report.loaded == len(src) - 2


@pytest.mark.shared
def test_pretrained_from_paddle_pdparams(mv3_dir: Path) -> None:
    from crnn_cli.core.pdparams import load_pdparams

    target = build_model(MV3, 11, hidden_size=96, scale=0.5)  # digits only: 11 classes, not 37
    report = ck.load_pretrained(target, mv3_dir / "best_accuracy.pdparams")
    assert set(report.skipped) == {"head.fc.weight", "head.fc.bias"}
    assert report.loaded > 200 and not report.missing
    paddle = load_pdparams(mv3_dir / "best_accuracy.pdparams")
    np.testing.assert_array_equal(
        target.backbone.conv1.conv.weight.detach().numpy(), paddle["backbone.conv1.conv.weight"]
    )
