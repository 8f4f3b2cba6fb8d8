"""scripts/bench_serve.py runs start to end on the bundled samples: a row per client count, no errors.

No timing is asserted (machines differ); what is checked is that the load generator ran every
request against a real `crnn serve`, that the answers matched offline `crnn recognize`, and that the
server drained and exited 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_serve_quick_on_samples(tmp_path: Path) -> None:
    out = tmp_path / "serve.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "scripts" / "bench_serve.py"), "--images", str(ROOT / "crnn_cli" / "samples"),
            "--crops", "12", "--concurrency", "2,5", "--backend", "onnxruntime", "--json", str(out),
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "vs offline" in proc.stdout and "p99 ms" in proc.stdout
    report = json.loads(out.read_text())
    assert [r["concurrency"] for r in report["rows"]] == [2, 5]
    for row in report["rows"]:
        assert row["requests"] == 12 and row["errors"] == 0 and row["mismatches"] == 0
        assert row["crops_per_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
        assert 1 <= row["crops_per_call"] <= 5  # from the server's /metrics: single-crop requests
    assert report["offline_crops_per_s"] > 0 and report["server_exit"] == 0
