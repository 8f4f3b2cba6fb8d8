"""scripts/bench_ray.py runs start to end on a few crops and reports every variant; no timing is
asserted (this machine's cores are shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="needs Ray: pip install 'crnn[ray]'")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_bench_ray_smoke_run_reports_each_variant_and_the_fit(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_ray.py"), "--sizes", "6,12", "--repeats", "1",
         "--actors", "1", "--no-cli", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {(r["variant"], r["crops"]) for r in report["rows"]} == {
        (v, n) for v in ("plain", "ray 1") for n in (6, 12)
    }
    assert all(r["seconds"] > 0 for r in report["rows"])
    assert set(report["fits"]) == {"plain", "ray 1"} and report["fits"]["plain"]["overhead_ms_per_crop"] == 0
