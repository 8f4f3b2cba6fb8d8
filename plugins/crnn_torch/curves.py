"""Training curves: loss, learning rate and evaluation accuracy against steps, as one PNG.

Drawn with matplotlib's Agg backend (no display needed) from the records run_dir.py appends to
``metrics.jsonl``, so the picture can also be redrawn from that file alone: ``plot_metrics_file``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file; a torn last line (a crash mid-write) is skipped."""
    records = []
    for line in Path(path).read_text("utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def draw_curves(records: Iterable[Mapping[str, Any]], title: str = "") -> Any:
    """A matplotlib Figure: training loss + learning rate (top), eval accuracy / edit distance (bottom).

    Legends sit above their axes, outside the plotted area, so they never hide the newest points.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)  # never needs a display; a no-op if Agg is already chosen
    from matplotlib.figure import Figure

    train = [r for r in records if r.get("event") == "train"]
    evals = [r for r in records if r.get("event") == "eval"]
    fig = Figure(figsize=(8, 6.4), dpi=100)
    ax_loss, ax_acc = fig.subplots(2, 1, sharex=True)
    above = {"loc": "lower left", "bbox_to_anchor": (0.0, 1.0), "ncol": 2, "fontsize": 8, "frameon": False}
    if train:
        steps = [r["step"] for r in train]
        values = [r["loss"] for r in train]
        lines = ax_loss.plot(steps, values, color="tab:blue", lw=1.2, label="loss (smoothed)")
        if min(values) > 0 and max(values) / min(values) > 20:  # log only when the loss spans decades
            ax_loss.set_yscale("log")
        ax_lr = ax_loss.twinx()
        lines += ax_lr.plot(steps, [r["lr"] for r in train], color="tab:gray", lw=0.8, ls="--", label="lr")
        ax_lr.set_ylabel("learning rate", color="tab:gray")
        ax_loss.legend(lines, [str(line.get_label()) for line in lines], **above)
    ax_loss.set_ylabel("CTC loss")
    ax_loss.grid(alpha=0.3)
    if evals:
        steps = [r["step"] for r in evals]
        ax_acc.plot(steps, [r["acc"] for r in evals], "o-", color="tab:green", label="word accuracy")
        ax_acc.plot(
            steps,
            [r["norm_edit_dis"] for r in evals],
            "s--",
            color="tab:orange",
            label="1 - norm. edit distance",
        )
        ax_acc.legend(**above)
    else:
        ax_acc.text(0.5, 0.5, "no evaluation yet", ha="center", va="center", color="gray",
                    transform=ax_acc.transAxes)  # fmt: skip
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("eval")
    ax_acc.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_curves(records: Iterable[Mapping[str, Any]], out: str | Path, title: str = "") -> Path:
    """Write ``draw_curves`` as a PNG, atomically (a viewer never reads a half-written file)."""
    fig = draw_curves(records, title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".png", dir=out.parent)
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)  # mkstemp makes 0600; the picture gets the usual permissions
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def plot_metrics_file(metrics: str | Path, out: str | Path | None = None) -> Path:
    """Redraw the curves of a finished or running training from its metrics.jsonl."""
    metrics = Path(metrics)
    return plot_curves(
        read_metrics(metrics), out or metrics.with_name("curves.png"), title=str(metrics.parent)
    )
