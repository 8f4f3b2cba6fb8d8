"""Evaluation during training: word accuracy and normalised edit distance on the Eval set.

Scored as PaddleOCR's RecMetric scores them (crnn_cli.core.metrics), on the EMA weights when EMA is
on, each crop at its own padded width as at inference, and summed over the ranks of a torchrun job so
every rank gets the same numbers. When to evaluate and what to save after it is the trainer's call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from crnn_cli.core.charset import Charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.metrics import Accumulator
from crnn_torch import amp
from crnn_torch.config_schema import MetricConfig
from crnn_torch.data import BatchStream, EpochBatchSampler, Leaf
from crnn_torch.distributed import DistInfo, average_buffers
from crnn_torch.optim import Ema


@contextlib.contextmanager
def ema_weights(model: nn.Module, ema: Ema | None) -> Iterator[None]:
    """Evaluate the EMA weights when EMA is on; the trained weights come back afterwards."""
    if ema is None:
        yield
        return
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(ema.shadow)
    try:
        yield
    finally:
        model.load_state_dict(saved)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: BatchStream,
    sampler: EpochBatchSampler,
    leaves: Sequence[Leaf],
    charset: Charset,
    metric: MetricConfig,
    *,
    ema: Ema | None,
    dist: DistInfo,
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> dict[str, Any]:
    """{"acc", "norm_edit_dis", "count"} over ``loader``, and "per_dataset" accuracy by leaf when there
    are several. Collective under DDP (BatchNorm statistics averaged, sums all-reduced)."""
    protocol, mode = ("benchmark", "strip") if metric.is_filter else ("paddle", "drop")
    total = Accumulator(protocol, mode)
    parts = [Accumulator(protocol, mode) for _ in leaves]
    sampler.set_epoch(0)
    average_buffers(model, dist)
    with ema_weights(model, ema):
        model.eval()
        for batch in loader:
            images, widths = batch["images"], batch["widths"]
            # Each crop runs at its own padded width, as at inference: a result never depends on the
            # batch's widest neighbour (the BiLSTM would see the extra padding).
            for width in torch.unique(widths).tolist():
                rows = torch.nonzero(widths == width).flatten().tolist()
                with amp.autocast(device, amp_dtype):
                    logits = model(images[rows, :, :, :width].to(device))
                probs = logits.float().softmax(-1).cpu().numpy()
                for d, i in zip(decode_greedy(probs, charset), rows):
                    total.add(d.text, batch["texts"][i], d.confidence)
                    parts[batch["sources"][i]].add(d.text, batch["texts"][i], d.confidence)
        model.train()
    sums = [total.count, total.correct, total.ned_sum] + [v for a in parts for v in (a.count, a.correct)]
    if dist.enabled:
        t = torch.tensor(sums, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        sums = t.tolist()
    count, correct, ned = sums[:3]
    result: dict[str, Any] = {
        "acc": correct / count if count else 0.0,
        "norm_edit_dis": 1.0 - ned / count if count else 0.0,
        "count": int(count),
    }
    if len(parts) > 1:
        result["per_dataset"] = {
            leaf.name: (sums[3 + 2 * i + 1] / sums[3 + 2 * i] if sums[3 + 2 * i] else 0.0)
            for i, leaf in enumerate(leaves)
        }
    return result
