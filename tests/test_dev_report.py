"""scripts/default_model/dev_report.py's warped sets: real crops bent or seen from one end, written once."""

from __future__ import annotations

from pathlib import Path

import cv2
from scripts_util import load_script

SAMPLES = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples"


def test_warped_set_is_written_once_and_follows_its_crops(tmp_path: Path) -> None:
    report = load_script("default_model/dev_report.py")
    items = [(str(p), p.stem) for p in sorted(SAMPLES.glob("*.png"))[:3]]

    def draw(crops: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return report.warped_set("real_arc", tmp_path, crops, report.BEND_SEED, report.bend)

    rows = draw(items)
    assert [label for _, label in rows] == [label for _, label in items]
    for (src, _), (out, _) in zip(items, rows):
        flat, bent = cv2.imread(src), cv2.imread(out)
        assert bent.shape[0] > max(flat.shape[0], report.BEND_HEIGHT)  # enlarged, then bent: taller
    first = [Path(p).stat().st_mtime_ns for p, _ in rows]
    again = draw(items)
    assert again == rows and [Path(p).stat().st_mtime_ns for p, _ in again] == first  # not redrawn
    fewer = draw(items[:2])
    assert [label for _, label in fewer] == [label for _, label in items[:2]]  # other crops: redrawn


def test_far_end_shrinks_one_end_of_the_crop() -> None:
    import numpy as np

    report = load_script("default_model/dev_report.py")
    img = np.full((64, 256, 3), 230, np.uint8)
    img[16:48, 8:248] = 20  # a dark bar as tall at both ends
    out = report.far_end(img, np.random.default_rng(0))
    dark = out[:, :, 0] < 128
    left, right = dark[:, 12:20].sum(0).mean(), dark[:, -20:-12].sum(0).mean()
    assert min(left, right) < 0.85 * max(left, right)  # one end seen from farther away
    assert out[[0, 0, -1, -1], [0, -1, 0, -1]].min() > 200  # the crop's own edge fills the corners
