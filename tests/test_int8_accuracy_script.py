"""scripts/int8_accuracy.py: calibration folders drawn from a split's train side, readable by crnn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scripts_util import load_script

from crnn_cli.core.datasets import open_dataset
from crnn_cli.core.images import cv2


@pytest.fixture(scope="module")
def script():
    return load_script("int8_accuracy.py")


def _split(tmp_path: Path) -> tuple[Path, Path]:
    data, split = tmp_path / "real", tmp_path / "split"
    (data / "a").mkdir(parents=True)
    split.mkdir()
    rows = []
    for i in range(12):
        img = np.full((32, 40 + i, 3), 255 - 10 * i, np.uint8)
        cv2.imwrite(str(data / "a" / f"{i}.png"), img)
        rows.append(f"a/{i}.png\tw{i}")
    (split / "train_a_train.tsv").write_text("\n".join(rows[:10]) + "\n")
    (split / "train_a_train.cased.tsv").write_text("\n".join(rows[:10]) + "\n")  # same crops: not twice
    (split / "dev_a_train.tsv").write_text("\n".join(rows[10:]) + "\n")  # never calibrated on
    return split, data


def test_calibration_folder_draws_train_crops_only_with_relative_labels(script, tmp_path: Path) -> None:
    split, data = _split(tmp_path)
    out = tmp_path / "calib"
    n = script.calibration_folder(split, data, out, crops=50, seed=1)
    assert n == 10  # all ten train crops, no dev crop, no crop twice from the .cased copy
    lines = (out / "labels.tsv").read_text().splitlines()
    labels = sorted(line.split("\t")[1] for line in lines)
    assert labels == sorted(f"w{i}" for i in range(10))
    assert all(not Path(line.split("\t")[0]).is_absolute() for line in lines)
    ds = open_dataset(out / "labels.tsv")
    assert len(ds) == 10 and ds.get(0, decode=True).image.shape[0] == 32  # crnn reads the folder


def test_calibration_draws_differ_by_seed_and_repeat_by_seed(script, tmp_path: Path) -> None:
    split, data = _split(tmp_path)
    draws = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        script.calibration_folder(split, data, tmp_path / name, crops=4, seed=seed)
        draws[name] = [
            line.split("\t")[1] for line in (tmp_path / name / "labels.tsv").read_text().splitlines()
        ]
    assert len(draws["a"]) == 4
    assert draws["a"] == draws["b"]
    assert draws["a"] != draws["c"]
