"""What a training run says while it runs: log lines and a progress bar on stderr, via rich.

Only rank 0 of a torchrun job speaks; ``--quiet`` silences it, and the bar shows only on a terminal.
The run's lasting record is its metrics.jsonl, not these lines.
"""

from __future__ import annotations

from typing import Any


class Reporter:
    """Log lines and a progress bar on stderr (rank 0 only; the bar only on a terminal)."""

    def __init__(self, quiet: bool, active: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, quiet=quiet or not active, highlight=False)
        self.progress: Any = None
        self._task: Any = None
        self.bar = active and not quiet and self.console.is_terminal

    def info(self, message: str) -> None:
        (self.progress.console if self.progress is not None else self.console).print(
            message, markup=False, soft_wrap=True
        )

    def start(self, total: int, done: int) -> None:
        if not self.bar:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self._task = self.progress.add_task("train", total=total, completed=done, status="")

    def advance(self, step: int, status: str) -> None:
        if self.progress is not None:
            self.progress.update(self._task, completed=step, status=status)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
