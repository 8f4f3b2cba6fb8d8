"""scripts/default_model/dev_report.py's real_arc set: real crops bent along a circle, written once."""

from __future__ import annotations

from pathlib import Path

import cv2
from scripts_util import load_script

SAMPLES = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples"


def test_bent_set_is_written_once_and_follows_its_crops(tmp_path: Path) -> None:
    report = load_script("default_model/dev_report.py")
    items = [(str(p), p.stem) for p in sorted(SAMPLES.glob("*.png"))[:3]]
    rows = report.bent_set("real_arc", tmp_path, items)
    assert [label for _, label in rows] == [label for _, label in items]
    for (src, _), (out, _) in zip(items, rows):
        flat, bent = cv2.imread(src), cv2.imread(out)
        assert bent.shape[0] > max(flat.shape[0], report.BEND_HEIGHT)  # enlarged, then bent: taller
    first = [Path(p).stat().st_mtime_ns for p, _ in rows]
    again = report.bent_set("real_arc", tmp_path, items)
    assert again == rows and [Path(p).stat().st_mtime_ns for p, _ in again] == first  # not redrawn
    fewer = report.bent_set("real_arc", tmp_path, items[:2])
    assert [label for _, label in fewer] == [label for _, label in items[:2]]  # other crops: redrawn
