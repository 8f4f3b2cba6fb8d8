"""What the benchmark ran on: CPU, Python, package versions and the commit, for the table's caption."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import ROOT


def installed_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "versions": {
            n: installed_version(n)
            for n in (
                "crnn",
                "numpy",
                "opencv-python-headless",
                "opencv-python",
                "onnxruntime",
                "openvino",
                "paddlepaddle",
                "paddle2onnx",
                "torch",
            )
        },  # fmt: skip
        "commit": commit,
    }
