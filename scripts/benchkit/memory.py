"""Section 5: peak RSS of `crnn recognize -q -` reading few and many paths on stdin."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import ROOT
from .models import Model
from .report import Report, Row

MEMORY_LIMIT_MB = 400.0


# Runs a command and prints its peak RSS (kB) and wall seconds. ru_maxrss counts a forked child's pages
# from before its exec, so the measuring parent must be small: this, or /usr/bin/time, never the bench.
_RSS_WRAPPER = """
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(p.pid, 0)
print(usage.ru_maxrss, time.perf_counter() - t, os.waitstatus_to_exitcode(status), file=sys.stderr)
"""


def peak_rss(cmd: list[str], stdin_path: Path, timeout: float) -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit status) of ``cmd`` reading ``stdin_path``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rss"
        if Path("/usr/bin/time").exists():
            wrapped = ["/usr/bin/time", "-o", str(out), "-f", "%M %e %x", *cmd]
        else:
            wrapped = [sys.executable, "-c", _RSS_WRAPPER, *cmd]
        with open(stdin_path, "rb") as stdin, open(out.with_suffix(".err"), "wb") as err:
            proc = subprocess.Popen(
                wrapped, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, start_new_session=True
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and the crnn it started
                proc.wait()
                return float("nan"), timeout, -1
        text = (out.read_text() if out.exists() else out.with_suffix(".err").read_text()).split()
    kb, seconds, status = float(text[-3]), float(text[-2]), int(text[-1])
    return kb / 1024, seconds, status


def bench_memory(model: Model | None, pool: list[str], args: argparse.Namespace, report: Report) -> None:
    if model is None:
        report.note("5 memory: skipped (no model)")
        return
    crnn = Path(sys.executable).with_name("crnn")
    cmd = [str(crnn)] if crnn.exists() else [sys.executable, "-m", "crnn_cli"]
    cmd += ["recognize", "-q", "--model", str(model.onnx), "-"]
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.mem_sizes:
            stdin = Path(tmp) / f"paths{n}.txt"
            stdin.write_text("".join(pool[i % len(pool)] + "\n" for i in range(n)))
            rss, seconds, status = peak_rss(cmd, stdin, args.mem_timeout)
            report.log(f"memory: {n} paths: {rss:.0f} MB peak, {seconds:.1f} s, exit {status}")
            found[n] = {"rss_mb": rss, "seconds": seconds, "status": status}
    report.raw["memory"] = {"command": cmd, "runs": found}
    small, large = min(found), max(found)
    a, b = found[large]["rss_mb"], found[small]["rss_mb"]
    done = all(v["status"] == 0 for v in found.values())
    growth = a / b
    met = a < MEMORY_LIMIT_MB and growth <= 1.10 and done
    verdict = (
        "met (< 400 MB, within 10 %)" if met else
        "MISSED: " + "; ".join(x for x in (
            f"{a:.0f} MB >= 400 MB" if a >= MEMORY_LIMIT_MB else "",
            f"grew {100 * (growth - 1):.0f} %" if growth > 1.10 else "",
            "a run failed or timed out" if not done else "") if x)
    )  # fmt: skip
    report.add(Row("5 memory", f"peak RSS {large} paths / {small} paths", model.name, "paths on stdin",
                   f"{a:.0f} MB", f"{b:.0f} MB", growth, verdict, met,
                   f"{large / found[large]['seconds']:.0f} img/s over stdin"))  # fmt: skip
