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


def test_teacher_cache_follows_the_crops_bytes_not_only_their_names(tmp_path: Path, monkeypatch) -> None:
    """A set redrawn under the same file names (a new split, a changed warp) is read by the teacher
    again; an unchanged set comes from the cache."""
    import shutil

    report = load_script("default_model/dev_report.py")
    reads: list[list[str]] = []

    def read_all(model: str, paths: list[str]) -> list[str]:  # stands in for the teacher's session
        reads.append(list(paths))
        return [str(len(Path(p).read_bytes())) for p in paths]  # a "reading" that differs by crop

    monkeypatch.setattr(report, "read_all", read_all)
    teacher = tmp_path / "teacher.xml"
    teacher.write_text("<net/>")
    crops = tmp_path / "set"
    crops.mkdir()
    samples = sorted(SAMPLES.glob("*.png"))
    for i, src in enumerate(samples[:2]):
        shutil.copy(src, crops / f"{i:05d}.png")
    paths = [str(crops / f"{i:05d}.png") for i in range(2)]
    cache = tmp_path / "cache"
    first = report.teacher_texts(str(teacher), paths, cache)
    assert report.teacher_texts(str(teacher), paths, cache) == first and len(reads) == 1  # cached
    shutil.copy(samples[2], crops / "00001.png")  # same name, other crop
    again = report.teacher_texts(str(teacher), paths, cache)
    assert len(reads) == 2 and again[0] == first[0] and again[1] != first[1]


def test_warped_set_is_redrawn_when_its_warp_changes(tmp_path: Path) -> None:
    report = load_script("default_model/dev_report.py")
    items = [(str(p), p.stem) for p in sorted(SAMPLES.glob("*.png"))[:2]]
    rows = report.warped_set("real_arc", tmp_path, items, report.BEND_SEED, report.bend, "bend up to 120")
    first = [Path(p).stat().st_mtime_ns for p, _ in rows]
    same = report.warped_set("real_arc", tmp_path, items, report.BEND_SEED, report.bend, "bend up to 120")
    assert [Path(p).stat().st_mtime_ns for p, _ in same] == first
    report.warped_set("real_arc", tmp_path, items, report.BEND_SEED, report.bend, "bend up to 90")
    assert [Path(p).stat().st_mtime_ns for p, _ in rows] != first  # the recipe is in the stamp


def test_ic15_unseen_keeps_the_dev_words_no_neighbouring_train_crop_holds() -> None:
    report = load_script("default_model/dev_report.py")
    train = [("ic15_train/images/word_100.png", "SALE"), ("ic15_train/images/word_500.png", "Open")]
    dev = [
        ("ic15_train/images/word_101.png", "sale"),  # the same word one crop away: seen
        ("ic15_train/images/word_160.png", "SALE"),  # 60 crops away: another photo, unseen
        ("ic15_train/images/word_460.png", "OPEN"),  # 40 away, case aside: seen
        ("ic15_train/images/word_102.png", "Exit"),  # beside a train crop of another word: unseen
        ("elsewhere/crop.png", "SALE"),  # no crop number: not known, left out
    ]
    kept = report.unseen_words(dev, train, neighbours=40)
    assert [p for p, _ in kept] == ["ic15_train/images/word_160.png", "ic15_train/images/word_102.png"]


def test_train_seen_samples_every_nth_scene_train_crop(tmp_path: Path) -> None:
    report = load_script("default_model/dev_report.py")
    for name, n in (("iiit5k", 30), ("ic15", 60), ("svt", 10)):
        lines = [f"{name}/w{i}.png\tword{i}" for i in range(n)]
        (tmp_path / f"train_{name}_train.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    (tmp_path / "train_sroie_lines_train.tsv").write_text("sroie/l.png\tTOTAL\n", "utf-8")  # not words
    rows = report.train_sample(tmp_path, Path("/data"), count=20)
    assert len(rows) == 20 and rows[0] == ("/data/iiit5k/w0.png", "word0")
    assert rows[1] == ("/data/iiit5k/w5.png", "word5")  # 100 rows, every 5th
    assert not [p for p, _ in rows if "sroie" in p]
