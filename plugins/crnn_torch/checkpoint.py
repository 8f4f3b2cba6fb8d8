"""Self-describing, resumable training checkpoints, written atomically and read without running code.

A checkpoint is a ``torch.save`` of a plain dict (schema below). It holds only tensors, numbers,
strings, None and lists/dicts of them, so ``torch.load(weights_only=True)`` reads it: a file that
would import or call anything while loading (a hostile pickle) is refused with UnsafeFileError.
A training run's checkpoint is filled from its trainer, and read back on resume, in run_state.py.

Keys (format_version 1):
  format, format_version      "crnn.checkpoint", 1
  crnn_version, torch_version producer versions (informational)
  arch, arch_kwargs           ``models.build_model(arch, num_classes, **arch_kwargs)`` rebuilds the network
  num_classes                 blank + symbols
  characters                  the class list without the blank (class i+1 = characters[i])
  metadata                    ``ModelMetadata.to_json()``: dictionary, input shape, normalisation
  model                       state dict to run: the EMA weights when EMA is on, else the trained ones
  raw_model                   the trained (non-EMA) weights when EMA is on, else absent
  config                      the resolved training config as plain data
  optimizer, scheduler, scaler, ema   their state dicts (None when unused)
  step, epoch                 training steps done (skipped ones included); current epoch (0-based)
  data                        the sampler's position (see data.EpochBatchSampler.state_dict)
  rng                         per DDP rank: python / numpy / torch (/ cuda) generator states
  metrics, best, best_step    last evaluation's numbers; best main-indicator value so far and its step
  skipped_steps               steps skipped for a non-finite loss or gradients
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn_cli.core.errors import ModelError, UnsafeFileError

FORMAT = "crnn.checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".pt"

# -- writing -----------------------------------------------------------------------------------------


def check_loadable(obj: Any, where: str = "checkpoint") -> None:
    """Raise TypeError if ``obj`` holds anything ``torch.load(weights_only=True)`` would refuse.

    Checked before writing, so that a checkpoint we write is always one we can read back safely.
    """
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor, torch.Size, torch.dtype)):
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_loadable(v, f"{where}[{i}]")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is a {type(k).__name__}; use str or int keys")
            check_loadable(v, f"{where}.{k}")
        return
    raise TypeError(f"{where} is a {type(obj).__name__}, which a weights-only checkpoint cannot hold")


def save_checkpoint(payload: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, fsync, os.replace.

    A reader (or a crash) never sees a half-written checkpoint: ``path`` is either the old file or the
    complete new one.
    """
    path = Path(path)
    check_loadable(dict(payload))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            torch.save(dict(payload), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)  # make the rename itself durable
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading -----------------------------------------------------------------------------------------


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a crnn checkpoint safely (weights only). UnsafeFileError for a pickle that would run code,
    ModelError for anything that is not a crnn checkpoint of a version this crnn reads."""
    path = Path(path)
    if not path.exists() and path.with_name(path.name + SUFFIX).is_file():
        path = path.with_name(path.name + SUFFIX)  # PaddleOCR style: the checkpoint named without suffix
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... depending on the damage
        text = str(exc)
        if "GLOBAL" in text or "Unsupported global" in text:
            raise UnsafeFileError(
                f"{path}: refused to load: its pickle references {_global_named(text)}, which a weights "
                "checkpoint never does and which could run code when loaded. Only load checkpoints you "
                "trust, and never with torch.load(weights_only=False)."
            ) from None
        if "Weights only load failed" in text:
            raise ModelError(
                f"{path}: not a checkpoint crnn can read safely (the pickle uses features a plain weights "
                f"file does not: {_weights_only_detail(text)})"
            ) from None
        raise ModelError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {text[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(
            f"{path}: not a crnn checkpoint (no format '{FORMAT}'); for a PaddleOCR .pdparams use "
            "Global.pretrained_model, which reads both"
        )
    version = ckpt.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{path}: crnn checkpoint format_version {version!r}; this crnn reads {FORMAT_VERSION}. "
            "Upgrade crnn to read it."
        )
    return ckpt


def _weights_only_detail(text: str) -> str:
    for line in text.splitlines():
        if line.startswith("Unsupported"):
            return line.strip()
    return "unknown pickle content"


def _global_named(text: str) -> str:
    """The offending global from torch's weights-only error text, for the message."""
    for marker in ("Unsupported global: GLOBAL ", "GLOBAL "):
        if marker in text:
            return "'" + text.split(marker, 1)[1].split()[0].rstrip(".,") + "'"
    return "a Python object"


# -- RNG state ---------------------------------------------------------------------------------------


def capture_rng() -> dict[str, Any]:
    """Python, numpy (legacy global), torch and CUDA generator states as loadable data."""
    version, py_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Inverse of ``capture_rng``."""
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(v) for v in py["state"]), py["gauss"]))
    npst = state["numpy"]
    keys = np.asarray(npst["keys"].numpy() if isinstance(npst["keys"], torch.Tensor) else npst["keys"])
    np.random.set_state(
        (npst["name"], keys.astype(np.uint32), int(npst["pos"]), int(npst["has_gauss"]), float(npst["gauss"]))
    )
    torch.set_rng_state(state["torch"].to(torch.uint8).cpu())
    if "cuda" in state and torch.cuda.is_available():
        states = list(state["cuda"])
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.to(torch.uint8).cpu() for s in states])


# -- rebuilding models -------------------------------------------------------------------------------


def model_from_checkpoint(ckpt: Mapping[str, Any] | str | Path) -> tuple[nn.Module, Any]:
    """(network in eval mode with the checkpoint's inference weights, its ModelMetadata).

    For the torch backend and the exporter: everything needed comes from the checkpoint itself.
    """
    from crnn_cli.core.metadata import ModelMetadata
    from crnn_torch.models import build_model

    if not isinstance(ckpt, Mapping):
        ckpt = load_checkpoint(ckpt)
    model = build_model(ckpt["arch"], int(ckpt["num_classes"]), **dict(ckpt.get("arch_kwargs") or {}))
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        raise ModelError(
            f"checkpoint weights do not fit its own architecture {ckpt['arch']}: {exc}"
        ) from None
    return model.eval(), ModelMetadata.from_json(ckpt["metadata"])


@dataclass(frozen=True)
class PretrainedReport:
    """What loading pretrained weights did. Names are the model's state-dict entries."""

    source: str
    loaded: int
    skipped: tuple[str, ...]  # in both, but of another shape (e.g. a head for another dictionary)
    missing: tuple[str, ...]  # in the model, not in the file: keep their fresh initialisation
    unexpected: tuple[str, ...]  # in the file, not in the model

    def summary(self) -> str:
        parts = [f"{self.loaded} tensors loaded from {self.source}"]
        if self.skipped:
            parts.append(f"skipped (other shape): {', '.join(self.skipped[:6])}")
        if self.missing:
            parts.append(f"{len(self.missing)} left at their initial values: {', '.join(self.missing[:6])}")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unused: {', '.join(self.unexpected[:6])}")
        return "; ".join(parts)


def load_pretrained(model: nn.Module, path: str | Path) -> PretrainedReport:
    """Load whatever matches (name and shape) from a crnn .pt or a PaddleOCR .pdparams into ``model``.

    Used for ``Global.pretrained_model``: a head trained for another dictionary is skipped and
    reported, the rest of the network starts from the file's weights.
    """
    p = Path(path)
    if not p.exists() and p.with_name(p.name + SUFFIX).is_file():
        p = p.with_name(p.name + SUFFIX)  # PaddleOCR configs name checkpoints without their suffix
    is_paddle = (
        p.suffix == ".pdparams"
        or p.with_name(p.name + ".pdparams").is_file()
        or (p.is_dir() and any(p.glob("*.pdparams")))
    )
    if is_paddle:
        from crnn_cli.core.pdparams import load_pdparams
        from crnn_torch.models import load_paddle_into

        report = load_paddle_into(model, load_pdparams(p), strict=False)
        return PretrainedReport(
            source=str(p),
            loaded=len(report.loaded),
            skipped=tuple(name for name, _, _ in report.mismatched),
            missing=tuple(report.missing),
            unexpected=tuple(report.unexpected),
        )
    ckpt = load_checkpoint(p)
    return load_matching(model, ckpt["model"], str(p))


def load_matching(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> PretrainedReport:
    """Copy the entries of ``state`` that exist in ``model`` with the same shape; report the rest."""
    target = model.state_dict()
    take: dict[str, torch.Tensor] = {}
    skipped = []
    for name, value in state.items():
        if name in target:
            if tuple(value.shape) == tuple(target[name].shape):
                take[name] = value
            else:
                skipped.append(name)
    model.load_state_dict(take, strict=False)
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    return PretrainedReport(source, len(take), tuple(skipped), tuple(missing), tuple(unexpected))


def latest_path(save_dir: str | Path) -> Path:
    return Path(save_dir) / f"latest{SUFFIX}"


def best_path(save_dir: str | Path) -> Path:
    return Path(save_dir) / f"best_accuracy{SUFFIX}"


def describe(ckpt: Mapping[str, Any]) -> str:
    """One line about a checkpoint, for logs: arch, step, epoch, best metric."""
    best = ckpt.get("best")
    best_text = "n/a" if best is None else f"{best:.4f}"
    return f"{ckpt.get('arch')} step {ckpt.get('step')} epoch {ckpt.get('epoch')} best {best_text}"
