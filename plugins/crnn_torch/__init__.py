"""PyTorch backend for crnn: runs, trains and exports CRNN checkpoints, and reads PaddleOCR .pdparams.

Importing this package is cheap: torch is imported only when the backend is used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crnn_cli.core.backend import (
    CONVERT,
    EXPORT,
    INFER,
    TRAIN,
    Availability,
    Backend,
    ModelInfo,
    Session,
    SessionOptions,
)
from crnn_cli.core.registry import distribution_version

if TYPE_CHECKING:
    from crnn_cli.core.conversion import Reader, Writer

INSTALL_HINT = "pip install 'crnn[torch]'  (CPU-only machines: add -c constraints.txt for the CPU wheel)"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".pdparams")


class TorchSession(Session):
    """A crnn checkpoint (or a PaddleOCR .pdparams) run in eval mode; outputs probabilities."""

    def __init__(self, model_path: Path, options: SessionOptions) -> None:
        import torch

        from crnn_torch.loading import load_for_inference

        if options.threads:
            torch.set_num_threads(options.threads)
        device = options.device.lower() if options.device and options.device != "CPU" else "cpu"
        self._device = torch.device(device)
        model, metadata = load_for_inference(model_path)
        self._model = model.to(self._device).eval()
        self._torch = torch
        c = metadata.channels
        h = metadata.height
        w = None if metadata.dynamic_width else metadata.width
        self.info = ModelInfo(
            input_name="x",
            input_shape=(None, c, h, w),
            output_shape=(None, None, int(model.num_classes)),
            props=metadata.to_props(),
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self._device)
            return torch.softmax(self._model(x), dim=-1).float().cpu().numpy()


class TorchBackend(Backend):
    name: ClassVar[str] = "torch"
    capabilities: ClassVar[frozenset[str]] = frozenset({INFER, TRAIN, EXPORT, CONVERT})
    suffixes: ClassVar[tuple[str, ...]] = CHECKPOINT_SUFFIXES
    priority: ClassVar[int] = 30
    distributions: ClassVar[tuple[str, ...]] = ("torch",)
    session_options: ClassVar[frozenset[str] | None] = frozenset({"device"})

    def availability(self) -> Availability:
        if importlib.util.find_spec("torch") is None:
            return Availability(False, reason="PyTorch is not installed", hint=INSTALL_HINT)
        return Availability(True, version=distribution_version("torch") or "")

    def open(self, model: Path, options: SessionOptions) -> Session:
        return TorchSession(Path(model), options)

    def _accepts_dir(self, model: Path) -> bool:
        return any(model.glob("*.pdparams"))

    # Training / export entry points, called by the CLI commands.
    def train(self, *args: Any, **kwargs: Any) -> Any:
        from crnn_torch.openmp import limit_spinning

        limit_spinning()  # before torch is imported: the OpenMP runtime reads it once
        from crnn_torch.train import train

        return train(*args, **kwargs)

    def readers(self) -> tuple[Reader, ...]:
        from crnn_torch.conversion import TorchReader

        return (TorchReader(),)

    def writers(self) -> tuple[Writer, ...]:
        from crnn_torch.conversion import TorchWriter

        return (TorchWriter(),)
