"""Run a command with one of its output streams on a real pseudo-terminal (what a person at a shell sees)."""

from __future__ import annotations

import os
import pty
import subprocess
from typing import Any


def run_on_terminal(command: list[str], stream: str, **popen: Any) -> tuple[int, str, bytes]:
    """(exit status, what the terminal got, the other stream's bytes); ``stream`` is stdout or stderr."""
    leader, follower = pty.openpty()
    other = "stderr" if stream == "stdout" else "stdout"
    proc = subprocess.Popen(command, **{stream: follower, other: subprocess.PIPE}, **popen)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    rest, _ = proc.communicate(timeout=120)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n"), rest
