"""Optimiser, learning-rate schedule and weight EMA for training, each with a resumable state.

The schedule is a pure function of the step (``LrSchedule(step)``), so resuming needs only the step
count; epochs in the config convert to steps with the number of steps per epoch.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from crnn_torch.config_schema import LrConfig, OptimizerConfig


def build_optimizer(model: nn.Module, cfg: OptimizerConfig, head_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam with PaddleOCR's L2 regulariser as coupled weight decay, or AdamW with decoupled decay.

    As in PaddleOCR, the CTC head carries its own L2 (``Architecture.Head.fc_decay``, ``head_decay``
    here), which replaces the global regulariser for the head's parameters. AdamW leaves out of the
    decay the parameters named in ``no_weight_decay_name`` and, with
    ``one_dim_param_no_weight_decay``, every 1-dimensional one (biases, normalisation weights).
    """
    lr = cfg.lr.learning_rate if cfg.lr.name != "Piecewise" else cfg.lr.values[0]
    betas = (cfg.beta1, cfg.beta2)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    factor = cfg.regularizer.factor if cfg.regularizer is not None else 0.0
    if cfg.name == "Adam":
        groups = [
            {"params": [p for n, p in named if not n.startswith("head.")], "weight_decay": factor},
            {"params": [p for n, p in named if n.startswith("head.")], "weight_decay": head_decay},
        ]
        groups = [g for g in groups if g["params"]]
        return torch.optim.Adam(groups, lr=lr, betas=betas, eps=cfg.epsilon)
    decay = cfg.weight_decay or factor
    skip_names = (cfg.no_weight_decay_name or "").split()

    def decayed(name: str, p: torch.Tensor) -> bool:
        if any(token in name for token in skip_names):
            return False
        return not (cfg.one_dim_param_no_weight_decay and p.ndim <= 1)

    groups = [
        {"params": [p for n, p in named if decayed(n, p)], "weight_decay": decay},
        {"params": [p for n, p in named if not decayed(n, p)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=cfg.epsilon)


class LrSchedule:
    """Learning rate per optimizer step: linear warmup from 0, then Const, Cosine or Piecewise.

    Cosine decays from ``learning_rate`` to ``min_lr`` over the steps after warmup; Piecewise switches
    between ``values`` at ``decay_epochs`` (converted to steps).
    """

    def __init__(self, cfg: LrConfig, steps_per_epoch: int, total_steps: int) -> None:
        self.cfg = cfg
        self.total = max(int(total_steps), 1)
        self.warmup = cfg.warmup_steps or int(round(cfg.warmup_epoch * steps_per_epoch))
        self.boundaries = [int(e * steps_per_epoch) for e in cfg.decay_epochs]

    def peak(self, step: int) -> float:
        cfg = self.cfg
        if cfg.name == "Piecewise":
            return float(cfg.values[bisect.bisect_right(self.boundaries, step)])
        if cfg.name == "Cosine":
            progress = min(max(step - self.warmup, 0) / max(self.total - self.warmup, 1), 1.0)
            return cfg.min_lr + (cfg.learning_rate - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return float(cfg.learning_rate)

    def __call__(self, step: int) -> float:
        """The rate for the update that follows ``step`` completed steps."""
        lr = self.peak(step)
        if step < self.warmup:
            lr *= (step + 1) / self.warmup
        return lr

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self, step: int) -> dict[str, Any]:
        return {"name": self.cfg.name, "step": int(step), "warmup": self.warmup, "total": self.total}


class Ema:
    """Exponential moving average of a model's weights (float entries; integer buffers are copied).

    The effective decay ramps up as min(decay, (1 + n) / (10 + n)) so early averages are not stuck
    near the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            avg = self.shadow[name]
            if avg.is_floating_point():
                avg.mul_(d).add_(value.detach(), alpha=1 - d)
            else:
                avg.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            if name in self.shadow:
                self.shadow[name].copy_(value)


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every floating-point tensor holds only finite values (never save NaN weights)."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())
