"""A training run's resumable state as a checkpoint: what a TorchTrainer saves, and how it resumes.

checkpoint.py owns the file: its schema, safe loading and atomic writing. This module fills that
dict from a trainer (weights, optimiser, schedule, EMA, RNG, data position, best so far) and puts a
saved one back, so that a resumed run goes on as if it had not stopped. Both are functions of the
whole trainer because a checkpoint is a snapshot of all of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from crnn_cli.core.errors import ModelError
from crnn_cli.core.metadata import ModelMetadata
from crnn_torch import checkpoint as ckpt_io
from crnn_torch.config import to_plain
from crnn_torch.distributed import average_buffers, gather_objects
from crnn_torch.optim import Ema

if TYPE_CHECKING:
    from crnn_torch.train import TorchTrainer


def model_metadata(trainer: TorchTrainer) -> ModelMetadata:
    """The self-description a checkpoint carries: input shape, normalisation, dictionary."""
    from crnn_cli import __version__

    p = trainer.preprocess
    meta = ModelMetadata(
        channels=p.channels,
        height=p.height,
        width=p.width,
        dynamic_width=p.dynamic_width,
        # Inference reads crops as evaluation did: training may squash long lines harder to bound
        # its cost per batch, but the model was scored, and is run, up to the Eval width.
        max_width=max(p.max_width, trainer.eval_preprocess.max_width),
        min_aspect=trainer.eval_preprocess.min_aspect,  # as the model was scored
        mean=tuple(p.mean),
        std=tuple(p.std),
        architecture=trainer.arch,
        producer=f"crnn {__version__}",
    )
    return meta.with_charset(trainer.charset)


def payload(trainer: TorchTrainer) -> dict[str, Any]:
    """The checkpoint dict (see checkpoint.py); collective under DDP (gathers every rank's RNG)."""
    from crnn_cli import __version__

    average_buffers(trainer.model, trainer.dist)

    def cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    raw = cpu(trainer.model.state_dict())
    out: dict[str, Any] = {
        "format": ckpt_io.FORMAT,
        "format_version": ckpt_io.FORMAT_VERSION,
        "crnn_version": __version__,
        "torch_version": str(torch.__version__),
        "arch": trainer.arch,
        "arch_kwargs": dict(trainer.arch_kwargs),
        "num_classes": trainer.charset.num_classes,
        "characters": list(trainer.charset.symbols),
        "metadata": model_metadata(trainer).to_json(),
        "model": cpu(trainer.ema.shadow) if trainer.ema is not None else raw,
        "config": to_plain(trainer.config),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.schedule.state_dict(trainer.step),
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "step": trainer.step,
        "epoch": trainer.epoch,
        "data": trainer.train_sampler.state_dict(trainer.batch_in_epoch),
        "rng": gather_objects(ckpt_io.capture_rng(), trainer.dist),
        "metrics": trainer.last_eval,
        "best": trainer.best,
        "best_step": trainer.best_step,
        "skipped_steps": trainer.skipped_steps,
        "loss_window": list(trainer.losses),
    }
    if trainer.ema is not None:
        out["raw_model"] = raw
    return out


def restore(trainer: TorchTrainer, path: str | Path) -> None:
    """Continue a run from its checkpoint: weights, optimiser, schedule, EMA, RNG, data position."""
    ck = ckpt_io.load_checkpoint(path)
    if "step" not in ck:
        raise ModelError(
            f"{path}: holds weights only, no training state to continue (an averaged or recovered "
            "network); start a run from it with Global.pretrained_model instead of --resume"
        )
    if ck["arch"] != trainer.arch or int(ck["num_classes"]) != trainer.charset.num_classes:
        raise ModelError(
            f"{path}: checkpoint is a {ck['arch']} with {ck['num_classes']} classes, the config builds a "
            f"{trainer.arch} with {trainer.charset.num_classes}; resume with the config it was trained with"
        )
    if list(ck.get("characters") or []) != list(trainer.charset.symbols):
        raise ModelError(f"{path}: checkpoint was trained with another dictionary than this config's")
    trainer.model.load_state_dict(ck.get("raw_model") or ck["model"])
    if ck.get("optimizer"):
        trainer.optimizer.load_state_dict(ck["optimizer"])
    if trainer.scaler is not None and ck.get("scaler"):
        trainer.scaler.load_state_dict(ck["scaler"])
    if trainer.ema is not None:
        if ck.get("ema"):
            trainer.ema.load_state_dict(ck["ema"])
        else:
            trainer.ema = Ema(trainer.model, trainer.config.Global.ema_decay)
    trainer.step, trainer.epoch = int(ck["step"]), int(ck["epoch"])
    data = ck.get("data") or {}
    trainer.batch_in_epoch = int(data.get("batch", 0))
    old_world = int(data.get("world_size", 1))
    if old_world != trainer.dist.world:  # same samples seen, in other batches: position in samples
        trainer.batch_in_epoch = trainer.batch_in_epoch * old_world // trainer.dist.world
        trainer.report.info(f"resume: world size {old_world} -> {trainer.dist.world}; data position rescaled")
    trainer.best, trainer.best_step = ck.get("best"), ck.get("best_step")
    trainer.last_eval = ck.get("metrics")
    trainer.skipped_steps = int(ck.get("skipped_steps", 0))
    trainer.losses.extend(float(v) for v in ck.get("loss_window") or ())
    states = ck.get("rng") or []
    if states:
        ckpt_io.restore_rng(states[trainer.dist.rank % len(states)])
    trainer.report.info(f"resumed from {path}: {ckpt_io.describe(ck)}")
