"""Turn a model file (crnn checkpoint or PaddleOCR .pdparams) into a torch network plus its metadata."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from torch import nn

from crnn_cli.core.charset import load_charset
from crnn_cli.core.errors import ConfigError, CrnnWarning, ModelError
from crnn_cli.core.metadata import ModelMetadata
from crnn_cli.core.pdparams import load_pdparams, resolve_pdparams_path

PADDLE_PRODUCER = "PaddleOCR training checkpoint"


def is_paddle_checkpoint(path: Path) -> bool:
    if path.suffix == ".pdparams" or path.is_dir():
        return True
    # A prefix (".../best_accuracy") names the .pdparams beside it; an existing file is what it says it is.
    return not path.exists() and path.with_name(path.name + ".pdparams").is_file()


def paddle_config_near(pdparams: Path, config: str | Path | None = None) -> dict[str, Any] | None:
    """The PaddleOCR config.yml given, or the one saved beside the checkpoint (None if absent)."""
    import yaml

    candidates = (
        [Path(config)] if config else [pdparams.parent / "config.yml", pdparams.parent / "config.yaml"]
    )
    for c in candidates:
        if c.is_file():
            try:
                data = yaml.safe_load(c.read_text("utf-8"))
            except yaml.YAMLError as exc:
                raise ConfigError(f"{c}: not valid YAML: {exc}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{c}: expected a mapping with Global/Architecture sections")
            return data
        if config:
            raise ConfigError(f"config file {c} does not exist")
    return None


def _image_shape_from_config(cfg: dict[str, Any]) -> list[int] | None:
    for section in ("Eval", "Train"):
        transforms = (((cfg.get(section) or {}).get("dataset") or {}).get("transforms")) or []
        for t in transforms:
            if isinstance(t, dict) and "RecResizeImg" in t:
                shape = (t["RecResizeImg"] or {}).get("image_shape")
                if isinstance(shape, list) and len(shape) == 3:
                    return [int(v) for v in shape]
    return None


def paddle_metadata(
    num_classes: int,
    arch: str,
    config: dict[str, Any] | None = None,
    dictionary: str | Path | None = None,
    use_space_char: bool | None = None,
    image_shape: tuple[int, int, int | None] | None = None,
    base_dir: Path | None = None,
) -> ModelMetadata:
    """Metadata for a PaddleOCR CRNN: options, then its config, then PaddleOCR's defaults (0-9a-z)."""
    glob = (config or {}).get("Global") or {}
    if dictionary is None and glob.get("character_dict_path"):
        dictionary = Path(glob["character_dict_path"])
        if not dictionary.is_absolute() and base_dir is not None and not dictionary.is_file():
            dictionary = base_dir / dictionary
    if use_space_char is None:
        use_space_char = bool(glob.get("use_space_char", False))
    charset = load_charset(dictionary, use_space_char=use_space_char)
    shape = list(image_shape) if image_shape else (_image_shape_from_config(config or {}) or [3, 32, 100])
    c, h, w = shape
    meta = ModelMetadata(
        channels=int(c),
        height=int(h),
        width=int(w) if w else None,
        dynamic_width=True,  # PaddleOCR's predict_rec widens the input for long crops
        architecture=arch,
        producer=PADDLE_PRODUCER,
    )
    charset.check_classes(num_classes, "the PaddleOCR checkpoint")
    return meta.with_charset(charset)


def load_paddle_checkpoint(
    path: Path, config: str | Path | None = None, **meta_options: Any
) -> tuple[nn.Module, ModelMetadata, Any]:
    """(torch CRNN with the Paddle weights, metadata, load report) for a .pdparams training checkpoint."""
    from crnn_torch.models import build_from_paddle

    pdparams = resolve_pdparams_path(path)
    state = load_pdparams(pdparams)
    model, report = build_from_paddle(state, strict=True)
    cfg = paddle_config_near(pdparams, config)
    meta = paddle_metadata(int(model.num_classes), model.arch, cfg, base_dir=pdparams.parent, **meta_options)
    assumed = []  # said once the defaults fit the model (a misfit is an error that says enough)
    if cfg is None and meta_options.get("dictionary") is None:
        assumed.append("dictionary ic15 (0-9a-z, no space)")
    if cfg is None and not meta_options.get("image_shape"):
        assumed.append("input 3x32x100")
    if assumed:
        warnings.warn(
            f"{pdparams}: no config.yml beside it, so crnn assumes PaddleOCR's defaults: "
            f"{' and '.join(assumed)}; put the training config.yml beside the checkpoint if the model "
            "was trained otherwise",
            CrnnWarning,
            stacklevel=2,
        )
    return model.eval(), meta, report


def load_for_inference(path: Path) -> tuple[nn.Module, ModelMetadata]:
    """Any model file the torch backend opens -> (network in eval mode, metadata)."""
    from crnn_torch.checkpoint import model_from_checkpoint

    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if is_paddle_checkpoint(path):
        model, meta, _ = load_paddle_checkpoint(path)
        return model, meta
    return model_from_checkpoint(path)


def save_inference_checkpoint(
    model: nn.Module, meta: ModelMetadata, out: Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write a crnn checkpoint holding only what inference and fine-tuning need (no optimizer state)."""
    import torch

    from crnn_cli import __version__
    from crnn_torch.checkpoint import FORMAT, FORMAT_VERSION, save_checkpoint

    config = dict(getattr(model, "config", {}))
    arch = config.pop("arch", meta.architecture)
    num_classes = int(config.pop("num_classes", getattr(model, "num_classes", 0)))
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "crnn_version": __version__,
        "torch_version": str(torch.__version__),
        "arch": arch,
        "arch_kwargs": config,
        "num_classes": num_classes,
        "characters": list(meta.characters or ()),
        "metadata": meta.to_json(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "step": 0,
        "epoch": 0,
        **(extra or {}),
    }
    return save_checkpoint(payload, out)
