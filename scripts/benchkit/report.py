"""The benchmark's results: rows and notes as they come, then the rich table and the JSON file."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .paddle_side import PADDLE_BATCH

if TYPE_CHECKING:
    from .models import Model


@dataclass
class Row:
    section: str
    measure: str
    model: str = ""
    data: str = ""
    ours: str = ""
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None  # None: no target
    note: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # raw numbers for the JSON


class Report:
    def __init__(self, quiet: bool) -> None:
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.raw: dict[str, Any] = {}
        self.quiet = quiet
        self.t0 = time.monotonic()
        self.stages: dict[str, float] = {}  # seconds per part of the run, for keeping it under 10 minutes

    @contextlib.contextmanager
    def stage(self, name: str) -> Any:
        t = time.monotonic()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + time.monotonic() - t

    def log(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        self.log(f"note: {msg}")


def render(report: Report, info: dict[str, Any], args: argparse.Namespace, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    v = info["versions"]
    title = (
        f"crnn benchmark{' (--quick)' if args.quick else ''}: {info['cpu']}, {info['cpu_count']} CPUs, "
        f"{args.threads} threads, batch {args.batch}, median of {args.repeats}"
    )
    caption_lines = [
        f"python {info['python']}, numpy {v['numpy']}, opencv {v['opencv-python-headless'] if v['opencv-python-headless'] != '-' else v['opencv-python']}, "
        f"onnxruntime {v['onnxruntime']}, openvino {v['openvino']}, paddlepaddle {v['paddlepaddle']}, torch {v['torch']}, "
        f"crnn {v['crnn']} ({info['commit'] or 'no git'}); {elapsed:.0f} s: "
        + ", ".join(f"{k} {t:.0f} s" for k, t in report.stages.items()),
        *report.notes,
    ]
    table = Table(title=title, caption="\n".join(caption_lines), caption_justify="left", show_lines=False)
    for col, kw in (("section", {}), ("measure", {}), ("model", {}), ("data", {}), ("ours", {"justify": "right"}),
                    ("reference", {"justify": "right"}), ("ratio", {"justify": "right"}), ("target", {}),
                    ("note", {"overflow": "fold"})):  # fmt: skip
        table.add_column(col, **kw)
    last = None
    for r in report.rows:
        style = "red" if r.met is False else ("green" if r.met else None)
        table.add_row(
            r.section if r.section != last else "",
            r.measure, r.model, r.data, r.ours, r.reference,
            "" if r.ratio is None else f"{r.ratio:.2f}",
            r.target, r.note, style=style,
        )  # fmt: skip
        if r.section != last:
            last = r.section
    Console(width=args.width, soft_wrap=False).print(table)


def write_json(
    path: Path,
    report: Report,
    info: dict[str, Any],
    args: argparse.Namespace,
    models: list[Model],
    elapsed: float,
) -> None:
    """Every number of the run at ``path``: settings, rows, notes and the raw timings."""
    payload = {
        "machine": info,
        "settings": {
            "quick": args.quick, "threads": args.threads, "batch": args.batch, "repeats": args.repeats,
            "paddle_batch": PADDLE_BATCH, "sizes": {f"{k[0]}/{k[1]}": v for k, v in args.sizes.items()},
            "memory_sizes": args.mem_sizes, "models": [asdict(m) | {"onnx": str(m.onnx), "xml": str(m.xml)} for m in models],
        },
        "rows": [asdict(r) for r in report.rows],
        "notes": report.notes,
        "raw": report.raw,
        "seconds": elapsed,
        "stage_seconds": report.stages,
    }  # fmt: skip
    path.write_text(json.dumps(payload, indent=1, default=str))
