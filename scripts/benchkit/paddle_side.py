"""PaddleOCR's side as seen from here: the bench_paddle.py worker process, the Paddle twins of our
networks that it builds, and PaddleOCR's batching rule (for the padding comparison)."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import SCRIPTS

PADDLE_BATCH = 6  # PaddleOCR's rec_batch_num default


def paddle_weights(model: Any) -> dict[str, np.ndarray]:
    """A torch CRNN's state dict under Paddle's names and layouts (for the twin in bench_paddle.py)."""
    import torch

    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    out = {}
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        value = tensor.detach().cpu().numpy()
        module, _, leaf = name.rpartition(".")
        if leaf == "running_mean":
            name = f"{module}._mean"
        elif leaf == "running_var":
            name = f"{module}._variance"
        elif module in linear and leaf == "weight":
            value = value.T  # Paddle's Linear stores in x out
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


class PaddleWorker:
    """bench_paddle.py in a child process: JSON commands in, JSON replies out."""

    def __init__(self, log: Path) -> None:
        self._log = open(log, "ab")  # noqa: SIM115  (closed in close(), after the child)
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "bench_paddle.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def call(self, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Paddle worker exited (status {self.proc.wait()}); see {self._log.name}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "unknown error"))
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, OSError, ValueError):
                self.call(cmd="quit")
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def build_twin(
    worker: PaddleWorker, torch_model: Any | None, spec: dict[str, Any], height: int, out_dir: Path
) -> tuple[Path, Path]:
    """Save the Paddle twin of a crnn torch network (its weights, or seeded random ones) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if torch_model is None:
        import torch
        from crnn_torch.models import build_model

        torch.manual_seed(0)
        torch_model = build_model(
            spec["arch"], spec["num_classes"], spec["in_channels"], hidden_size=spec["hidden_size"]
        )
    weights = out_dir / "weights.npz"
    np.savez(weights, **paddle_weights(torch_model.eval()))
    prefix = out_dir / "inference"
    worker.call(cmd="build", weights=str(weights), out=str(prefix), height=height, **spec)
    weights.unlink()
    return prefix.with_suffix(".json"), prefix.with_suffix(".pdiparams")


def paddle_padding(sizes: list[tuple[int, int]], height: int, min_width: int, batch: int) -> tuple[int, int]:
    """(padded, total) columns of PaddleOCR's batching for crops of (h, w): sort by ratio, widest pads."""
    ratios = sorted(w / h for h, w in sizes)
    padded = total = 0
    for first in range(0, len(ratios), batch):
        chunk = ratios[first : first + batch]
        width = int(height * max(min_width / height, max(chunk)))
        for r in chunk:
            used = min(math.ceil(height * r), width)
            padded += width - used
            total += width
    return padded, total
