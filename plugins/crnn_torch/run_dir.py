"""A training run's folder (Global.save_model_dir), apart from its checkpoints: claiming it for a
fresh run, config.yml, the metrics.jsonl log and the curves.png drawn from it.

Only the main process of a torchrun job writes here. metrics.jsonl takes one JSON object a line
(events start, train, eval, skip); on resume the lines after the checkpoint's step are dropped, so
the log and the curves tell the story of the run that goes on. Checkpoint files are checkpoint.py's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crnn_cli.core.errors import UsageError
from crnn_torch.config import to_plain
from crnn_torch.config_schema import TrainConfig

# What a run leaves in its save_model_dir (config.yml alone is not a run: people keep configs there).
RUN_FILES = ("latest.pt", "best_accuracy.pt", "metrics.jsonl", "curves.png", "config.yml")
RUN_GLOBS = ("iter_epoch_*.pt",)


def claim_save_dir(save_dir: Path, overwrite: bool, main: bool) -> None:
    """Refuse a fresh run in a folder that holds another run (its files would mix with this one's);
    with ``overwrite`` delete that run's files instead (on the main process only)."""
    found = [save_dir / n for n in RUN_FILES if (save_dir / n).is_file()]
    found += [p for g in RUN_GLOBS for p in sorted(save_dir.glob(g))]
    if not any(p.name != "config.yml" for p in found):
        return
    if not overwrite:
        names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise UsageError(
            f"{save_dir} already holds a training run ({names}); continue it with --resume "
            f"{save_dir / 'latest.pt'}, start over there with --overwrite (its run files are deleted), "
            "or choose another Global.save_model_dir"
        )
    if main:
        for p in found:
            p.unlink(missing_ok=True)


class RunDir:
    """config.yml, metrics.jsonl and curves.png of one run; every write is a no-op off the main rank."""

    def __init__(self, save_dir: Path, main: bool) -> None:
        self.save_dir = save_dir
        self.main = main
        self.metrics_path = save_dir / "metrics.jsonl"
        self.curves_path = save_dir / "curves.png"
        self.records: list[dict[str, Any]] = []
        self.plotted = -1  # how many records curves.png shows

    def write_config(self, config: TrainConfig) -> None:
        if not self.main:
            return
        import yaml

        self.save_dir.mkdir(parents=True, exist_ok=True)
        from crnn_cli.core.fileio import write_bytes_atomic

        text = yaml.safe_dump(to_plain(config), sort_keys=False, allow_unicode=True)
        write_bytes_atomic(self.save_dir / "config.yml", text.encode("utf-8"))

    def load_records(self, step: int) -> None:
        """On resume: the metrics logged up to the checkpoint (for the curves); later ones are dropped."""
        if not self.main or not self.metrics_path.is_file():
            return
        from crnn_torch.curves import read_metrics

        self.records = [r for r in read_metrics(self.metrics_path) if int(r.get("step", 0)) <= step]
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)
        self.metrics_path.write_text(lines, encoding="utf-8")

    def drop_stale_metrics(self) -> None:
        if self.main and not self.records and self.metrics_path.exists():
            self.metrics_path.unlink()  # a fresh run in a used folder: its old log would mix in

    def log(self, record: dict[str, Any]) -> None:
        if not self.main:
            return
        self.records.append(record)
        self.save_dir.mkdir(parents=True, exist_ok=True)
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def plot(self) -> None:
        if self.main:
            from crnn_torch.curves import plot_curves

            plot_curves(self.records, self.curves_path, title=str(self.save_dir))
            self.plotted = len(self.records)
