"""Mixed precision for training (Global.amp): which autocast dtype a device gets, and the context.

CTC loss stays in float32 whatever is chosen here (TorchTrainer.loss); this module only decides
where the forward pass may run in bf16 or fp16, and whether fp16 needs a GradScaler.
"""

from __future__ import annotations

import contextlib

import torch

from crnn_cli.core.errors import ConfigError


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), as oneDNN reports it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# Measured on a 2-core AVX2 machine: one step of crnn_default at batch 64 took 4 s in float32 and
# 24-49 s under bf16 autocast, which such a CPU can only emulate.
SLOW_BF16 = (
    "Global.amp: bf16 on a CPU without native bf16 (no AVX512-BF16 or AMX here) is emulated and "
    "trains several times slower than float32; use amp: auto, which takes bf16 only where the CPU has it"
)


def autocast_dtype(mode: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for Global.amp on ``device``.

    On the CPU, "auto" means bf16 where the CPU computes it natively and float32 elsewhere.
    """
    if mode == "off":
        return None, False
    if device.type == "cuda":
        if mode == "fp16" or (mode == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16, True
        return torch.bfloat16, False
    if mode == "fp16":
        raise ConfigError("Global.amp: fp16 needs CUDA; on CPU use bf16 or false")
    if mode == "auto":
        return (torch.bfloat16 if cpu_has_native_bf16() else None), False
    return torch.bfloat16, False


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """The autocast context for ``dtype`` on ``device``; a no-op when ``dtype`` is None (float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
