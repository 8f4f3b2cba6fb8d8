"""A real `crnn serve` in a subprocess on a free loopback port, for the serve tests.

The server binds port 0 (the kernel picks a free one) and the port is read from its own log line, so
two test runs never race for a port. Every wait is bounded; the process is killed if it outlives one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

SAMPLES = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples"
PORT_LINE = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class Server:
    """`crnn serve ARGS` on 127.0.0.1; ``url`` once started. Use as a context manager."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, ready: bool = True) -> None:
        self.args = ["--host", "127.0.0.1", "--port", "0", *args]
        if "--backend" not in args:
            self.args += ["--backend", "onnxruntime"]
        self.env = {**os.environ, **(env or {})}
        self.wait_ready = ready
        self.lines: list[str] = []
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120.0) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crnn_cli", "serve", *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.url:
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader collect the last lines
                raise RuntimeError(f"crnn serve exited {self.proc.returncode}:\n" + "\n".join(self.lines))
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("crnn serve did not start in time:\n" + "\n".join(self.lines))
            for line in list(self.lines):
                m = PORT_LINE.search(line)
                if m:
                    self.url = f"http://127.0.0.1:{m.group(1)}"
            time.sleep(0.05)
        while self.wait_ready and time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines so far (every line must be one)."""
        return [json.loads(line) for line in self.lines if line.strip()]

    def terminate(self, timeout: float = 600.0) -> int:
        """SIGTERM, then the exit code (bounded wait)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def sample_paths() -> list[Path]:
    return sorted(SAMPLES.glob("*.png"))


def real_crops(data_dir: Path, n: int) -> list[Path]:
    """The first n IIIT5K crops and the first n IC15 crops under ../shared/data/real."""
    found: list[Path] = []
    for folder in ("iiit5k_train", "ic15_train"):
        root = data_dir / folder
        if root.is_dir():
            found += sorted(p for p in root.rglob("*") if p.suffix.lower() in (".png", ".jpg"))[:n]
    return found
