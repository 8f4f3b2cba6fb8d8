"""``crnn recognize --ray ... --output DIR``: results as shard files written by the workers themselves.

For inputs too large to pass through one driver in order, each Ray batch's lines go to
DIR/part-FIRST-LAST.EXT (FIRST, LAST: the batch's input indexes, zero-padded, so the names sort in input
order; lines inside a shard are in input order). A shard is written atomically; a batch retried after a
worker died rewrites the same name with the same lines, so nothing appears twice. The driver gets one
small summary row per batch, reports failures, checks every input is covered once, and writes
DIR/manifest.json last: a folder without it holds an unfinished run.

DIR must be a folder every node sees (a shared filesystem): a marker the driver writes there is checked
by each worker before its first shard, so a node that sees another folder fails instead of scattering
results over local disks.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from crnn_cli.core.errors import CrnnError, UsageError
from crnn_cli.core.fileio import write_bytes_atomic

MARKER = ".crnn-output"
MANIFEST = "manifest.json"
SUFFIXES = {"text": ".txt", "tsv": ".tsv", "jsonl": ".jsonl"}


class ShardError(CrnnError):
    """A worker cannot write its shard where the driver expects it."""


def prepare_output(directory: Path) -> str:
    """Create DIR (or accept an empty one) and leave the marker; returns the run's token."""
    directory.mkdir(parents=True, exist_ok=True)
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith("part-") or p.name == MANIFEST]
    if leftovers:
        raise UsageError(
            f"--output {directory} already holds results ({leftovers[0]}, ...): give an empty or new folder"
        )
    token = secrets.token_hex(8)
    write_bytes_atomic(directory / MARKER, token.encode())
    return token


class ShardSink:
    """Runs inside each worker: writes a batch's lines and returns one summary row for the driver."""

    def __init__(self, directory: str, fmt: str, char_confidences: bool, token: str) -> None:
        self.directory = directory
        self.fmt = fmt
        self.char_confidences = char_confidences
        self.token = token
        self._checked = False

    def _check(self) -> None:
        marker = Path(self.directory) / MARKER
        try:
            seen = marker.read_text()
        except OSError:
            seen = ""
        if seen != self.token:
            import socket

            raise ShardError(
                f"--output {self.directory} is not the driver's folder on node {socket.gethostname()}: "
                "give a folder every node of the cluster sees (a shared filesystem)"
            )
        self._checked = True

    def write(self, batch: dict[str, np.ndarray], results: list[Any]) -> dict[str, np.ndarray]:
        from crnn_cli.commands.recognize import TSV_HEADER, format_result

        if not self._checked:
            self._check()
        index = [int(i) for i in batch["index"]]
        order = sorted(range(len(index)), key=index.__getitem__)
        lines = [format_result(results[k], self.fmt, self.char_confidences) for k in order]
        if self.fmt == "tsv":
            lines.insert(0, TSV_HEADER)
        first, last = index[order[0]], index[order[-1]]
        name = f"part-{first:012d}-{last:012d}{SUFFIXES[self.fmt]}"
        write_bytes_atomic(Path(self.directory) / name, "".join(lines).encode("utf-8", "surrogateescape"))
        errors = [results[k].error for k in order if results[k].error is not None]
        return {
            "first": np.array([first]),
            "last": np.array([last]),
            "count": np.array([len(index)]),
            "failed": np.array([len(errors)]),
            "errors": np.array([json.dumps(errors)], dtype=object),
            "shard": np.array([name], dtype=object),
        }


def check_coverage(ranges: list[tuple[int, int, int]], first: int, count: int) -> None:
    """Each input index from ``first`` on covered by exactly one batch, or ShardError."""
    seen = sorted(set(ranges))
    total = sum(n for _, _, n in seen)
    expected = first
    for lo, hi, n in seen:
        if lo != expected or hi - lo + 1 != n:
            break
        expected = hi + 1
    if total != count or expected != first + count:
        raise ShardError(
            f"the shards of inputs {first}..{first + count - 1} do not cover each input once "
            f"({total} results for {count} inputs)"
        )


def finish_output(directory: Path, summary: dict[str, Any]) -> None:
    """The manifest, written last: its presence says the folder holds a complete run."""
    write_bytes_atomic(directory / MANIFEST, (json.dumps(summary, indent=2) + "\n").encode())
    with contextlib.suppress(OSError):
        os.unlink(directory / MARKER)
