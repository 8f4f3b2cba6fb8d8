"""scripts/bench.py --quick runs start to end on a tiny model and writes a table and a JSON report.

No timing is asserted (machines differ); what is checked is that every section produces its rows with
numbers, and that the JSON holds the batch shapes the pipeline ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from models_util import make_tiny_onnx

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("onnxruntime")


def _quick_bench(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, dict]:
    """bench.py --quick on a tiny model and the sample crops; the process and its JSON report."""
    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--quiet", *options,
            "--onnx", str(model), "--images", str(ROOT / "crnn_cli" / "samples"),
            "--work", str(tmp_path / "work"), "--json", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, json.loads(out.read_text())


def test_quick_bench_on_a_tiny_model_reports_every_section(tmp_path: Path) -> None:
    proc, report = _quick_bench(tmp_path, "--no-paddle", "--mem-sizes", "50,200")
    assert "crnn benchmark (--quick)" in proc.stdout
    sections = {row["section"].split()[0] for row in report["rows"]}
    expected = {"1", "3", "5", "6", "7"} | ({"4"} if _has("openvino") else set())
    assert expected <= sections, (sections, report["notes"])
    overhead = [r for r in report["rows"] if r["section"].startswith("1")]
    assert overhead and all(r["ratio"] > 0 for r in overhead)
    raw = report["raw"]["tiny/samples"]
    assert raw["batch_shapes"] and all(s[1:3] == [3, 32] for s in raw["batch_shapes"])
    memory = report["raw"]["memory"]["runs"]
    assert set(memory) == {"50", "200"} and all(v["status"] == 0 for v in memory.values())
    # where the run's time went, part by part (the full bench must stay under 10 minutes)
    stages = report["stage_seconds"]
    assert {"prepare", "tiny", "cold start", "memory", "int8"} <= set(stages), stages
    assert sum(stages.values()) <= report["seconds"] and all(t > 0 for t in stages.values())


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_real_crops_section_compares_with_bare_runtime_at_own_width(tmp_path: Path) -> None:
    """Section 9: the crops as they are and photo-sized JPEGs made from them, each a row with a ratio."""
    _, report = _quick_bench(tmp_path, "--sections", "9", "--real-size", "12")
    rows = [r for r in report["rows"] if r["section"] == "9 real"]
    assert [r["data"] for r in rows] == ["samples 12", "samples photo 12"], report["notes"]
    assert all(r["ratio"] > 0 for r in rows)
    photo = report["raw"]["real/tiny/samples photo"]
    assert photo["decoded_reduced"] > 0  # photo-sized JPEGs exercise the reduced decode
    assert report["raw"]["real/tiny/samples"]["decoded_reduced"] == 0
    assert 0 <= photo["padded_share_ours"] < 1 and len(photo["paired"]) == 1


def test_bench_versions_runs_two_installs_side_by_side(tmp_path: Path) -> None:
    """scripts/bench_versions.py on one install given twice: a row per measure, the JSON holds every run."""
    crnn = str(Path(sys.executable).with_name("crnn"))
    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "versions.json"
    proc = subprocess.run(
        [
            sys.executable, str(ROOT / "scripts" / "bench_versions.py"), "--before", crnn, "--after", crnn,
            "--model", str(model), "--crops", "8", "--repeats", "2", "--skip", "ov,convert", "--json", str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("  ")[0] for line in proc.stdout.splitlines()}
    assert {"crnn --help", "cold start: recognize one.png", "ORT: 8 crops"} <= rows, proc.stdout
    times = json.loads(out.read_text())["times"]
    assert set(times) == {"help", "cold", "ort"}
    assert all(
        len(times[m][side]) == 2 and min(times[m][side]) > 0 for m in times for side in ("before", "after")
    )
