"""Section 3: `crnn recognize one.png` against importing numpy, cv2 and onnxruntime alone."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import ROOT
from .models import Model
from .report import Report, Row
from .timing import at_most, interleave, med

TARGET_COLD = 1.6


def bench_cold_start(model: Model | None, image: str, args: argparse.Namespace, report: Report) -> None:
    crnn = Path(sys.executable).with_name("crnn")
    cmd = [str(crnn)] if crnn.exists() else [sys.executable, "-m", "crnn_cli"]
    cmd += ["recognize", image]
    what = "bundled model"
    try:
        from crnn_cli.core.recognizer import default_model_path

        default_model_path()
    except Exception:
        if model is None:
            report.note("3 cold start: skipped (no bundled model and no model to run)")
            return
        cmd[-1:-1] = ["--model", str(model.onnx)]
        what = f"--model {model.name} (no bundled model)"
    imports = [sys.executable, "-c", "import numpy, cv2, onnxruntime"]

    def timed(c: list[str]) -> Callable[[], float]:
        def run() -> float:
            t = time.perf_counter()
            p = subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
            s = time.perf_counter() - t
            if p.returncode != 0:
                raise RuntimeError(f"{' '.join(c)} exited {p.returncode}: {p.stderr.decode()[-300:]}")
            return s

        return run

    times = interleave({"crnn": timed(cmd), "imports": timed(imports)}, args.cold_repeats)
    a, b = med(times["crnn"]), med(times["imports"])
    met, verdict = at_most(a / b, TARGET_COLD)
    report.raw["cold_start"] = {"command": cmd, "seconds": times}
    report.add(Row("3 cold start", "crnn recognize one.png / imports (s)", what, f"median of {args.cold_repeats}",
                   f"{a:.2f} s", f"{b:.2f} s", a / b, verdict, met))  # fmt: skip
