"""Label layouts users bring (issue 22, issue 24.7): PaddleOCR tsv, MMOCR `path label` and jsonl, ICDAR
gt.txt, EasyOCR labels.csv, a .txt per image; detected or named; absolute and symlinked paths accepted
unless --confine-paths; a file none of whose lines parses is an error naming the file and a line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from crnn_cli.cli import cli
from crnn_cli.core import datasets as D
from crnn_cli.core.errors import DatasetError
from crnn_cli.core.labelfiles import detect_format

SAMPLES = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples"
WORDS = {"shop_sign.png": "OPEN", "street_sign.png": "Welcome", "screenshot.png": "Settings"}


def _folder(tmp_path: Path, name: str, label_file: str, text: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    for img in WORDS:
        shutil.copy(SAMPLES / img, root / img)
    (root / label_file).write_text(text, "utf-8")
    return root


LAYOUTS = {
    "mmocr_txt": ("labels.txt", "".join(f"{k} {v}\n" for k, v in WORDS.items()), "space"),
    "mmocr_jsonl": (
        "labels.jsonl",
        "".join(json.dumps({"filename": k, "text": v}) + "\n" for k, v in WORDS.items()),
        "jsonl",
    ),
    "icdar": ("gt.txt", "".join(f'{k}, "{v}"\r\n' for k, v in WORDS.items()), "icdar"),
    "easyocr": ("labels.csv", "filename,words\n" + "".join(f"{k},{v}\n" for k, v in WORDS.items()), "csv"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_is_detected_and_read(tmp_path, layout):
    file, text, fmt = LAYOUTS[layout]
    root = _folder(tmp_path, layout, file, text)
    ds = D.open_dataset(root)
    assert [(Path(ds.read(i).key.split(":", 1)[1]).name, ds.read(i).label) for i in range(len(ds))] == list(
        WORDS.items()
    )
    lines = [ln for ln in text.splitlines() if ln][1 if fmt == "csv" else 0 :]
    assert detect_format(file, lines) == fmt


def test_icdar_quotes_commas_and_escapes(tmp_path):
    root = _folder(
        tmp_path,
        "ic15",
        "gt.txt",
        'shop_sign.png, "Genaxis Theatre"\nstreet_sign.png, "\\"Kills"\nscreenshot.png, "a, b"\n',
    )
    assert D.LabelFileDataset(root / "gt.txt").labels == ["Genaxis Theatre", '"Kills', "a, b"]


def test_easyocr_csv_quoting(tmp_path):
    root = _folder(
        tmp_path, "easy", "labels.csv", 'filename,words\nshop_sign.png,"OPEN, now"\nstreet_sign.png,Welcome\n'
    )
    assert D.LabelFileDataset(root / "labels.csv").labels == ["OPEN, now", "Welcome"]


def test_one_txt_per_image(tmp_path):
    root = tmp_path / "per_image"
    root.mkdir()
    for img, word in WORDS.items():
        shutil.copy(SAMPLES / img, root / img)
        (root / img).with_suffix(".txt").write_text(word + "\n", "utf-8")
    shutil.copy(SAMPLES / "code.png", root / "code.png")  # no .txt beside it: not a sample
    ((name, spec),) = D.discover_datasets(root)
    assert name == "per_image"
    ds = D.open_spec(name, spec)
    assert sorted(ds.labels) == sorted(WORDS.values())
    r = CliRunner().invoke(
        cli, ["eval", "--backend", "onnxruntime", str(root), "--format", "json", "--protocol", "exact"]
    )
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)["datasets"][0]
    assert (d["count"], d["accuracy"]) == (3, 1.0)


def test_named_format_overrides_detection(tmp_path):
    # A tab-free file of paths with spaces in the label: auto reads it as `path label`; tsv refuses it.
    root = _folder(tmp_path, "named", "labels.txt", "shop_sign.png OPEN NOW\n")
    assert D.LabelFileDataset(root / "labels.txt").labels == ["OPEN NOW"]
    with pytest.raises(DatasetError) as err:
        D.LabelFileDataset(root / "labels.txt", label_format="tsv")
    msg = str(err.value)
    assert "labels.txt" in msg and "line 1" in msg and "shop_sign.png OPEN NOW" in msg
    assert "--label-format" in msg


def test_bad_line_names_file_and_line(tmp_path):
    text = "".join(json.dumps({"filename": k, "text": v}) + "\n" for k, v in WORDS.items())
    root = _folder(tmp_path, "jl", "labels.jsonl", text + '{"file": "x.png"}\n')
    ds = D.LabelFileDataset(root / "labels.jsonl")
    assert len(ds) == 3 and ds.stats.skipped == {"not a JSON object with filename and text": 1}
    assert ds.stats.examples["not a JSON object with filename and text"][0].startswith("jl/labels.jsonl:4")


def test_icdar_gt_that_is_not_icdar_is_refused_with_the_formats(tmp_path):
    root = _folder(tmp_path, "gt", "gt.txt", "%%%\n###\n")
    with pytest.raises(DatasetError, match=r"gt\.txt: none of its 2 lines.*--label-format"):
        D.open_dataset(root)


def test_absolute_and_symlinked_paths_are_read(tmp_path):
    images = tmp_path / "other_disk"
    images.mkdir()
    for img in WORDS:
        shutil.copy(SAMPLES / img, images / img)
    root = tmp_path / "set"
    root.mkdir()
    os.symlink(images, root / "imgs", target_is_directory=True)
    (root / "labels.tsv").write_text(
        f"{images / 'shop_sign.png'}\tOPEN\nimgs/street_sign.png\tWelcome\n../other_disk/screenshot.png\tSettings\n",
        "utf-8",
    )
    runner = CliRunner()
    base = ["eval", "--backend", "onnxruntime", str(root), "--format", "json", "--protocol", "exact"]
    r = runner.invoke(cli, base)
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)["datasets"][0]
    assert (d["count"], d["scored"], d["accuracy"]) == (3, 3, 1.0)
    confined = runner.invoke(cli, [*base, "--confine-paths"])
    d = json.loads(confined.stdout)["datasets"][0]
    assert (d["count"], d["missing"]) == (3, 3) and confined.exit_code == 1
    assert "path outside the data folder" in confined.stderr


def test_eval_help_explains_model_options():
    r = CliRunner().invoke(cli, ["eval", "--help"], terminal_width=200)
    text = " ".join(r.output.split())
    assert "--dict NAME|PATH Dictionary of a model that carries none" in text
    assert "--use-space-char With --dict" in text
    assert "--image-shape C,H,W Input shape" in text
    assert "--label-format" in text and "--confine-paths" in text


def test_training_reads_the_delimiter_key(tmp_path):
    pytest.importorskip("torch")
    from crnn_torch.config_schema import DatasetConfig
    from crnn_torch.data import build_leaves

    from crnn_cli.core.charset import load_charset

    root = _folder(tmp_path, "train", "train.txt", "".join(f"{k} {v}\n" for k, v in WORDS.items()))

    def leaves(delimiter: str) -> list:
        cfg = DatasetConfig(
            name="SimpleDataSet",
            data_dir=str(root),
            label_file_list=(str(root / "train.txt"),),
            delimiter=delimiter,
        )
        return build_leaves(cfg, load_charset("en"), 25, 0, "Train.dataset")

    (leaf,) = leaves(" ")
    assert sorted(leaf.source.labels) == sorted(WORDS.values())
    with pytest.raises(DatasetError, match="Train.dataset.delimiter"):
        leaves(";")
