"""`crnn eval` on real labeled crops with the real PP-OCRv4 recognizer, checked against hand-computed
expectations from PaddleOCR's own outputs (the fixture texts)."""

from __future__ import annotations

import json
import shutil
from importlib import resources

import numpy as np
import pytest
from click.testing import CliRunner

from crnn_cli.cli import cli


@pytest.fixture(scope="module")
def v4_case(ppocrv4_dir, data_dir, tmp_path_factory):
    """A labels.tsv dataset of the 12 fixture crops, and PaddleOCR's texts for them."""
    pytest.importorskip("openvino")
    ref = np.load(ppocrv4_dir / "reference_w320.npz")
    root = tmp_path_factory.mktemp("v4eval")
    ds = root / "slice"
    (ds / "img").mkdir(parents=True)
    lines = []
    for path, label in zip(ref["paths"], ref["labels"]):
        name = str(path).replace("/", "_")
        shutil.copy(data_dir / "iiit5k_train" / str(path), ds / "img" / name)
        lines.append(f"img/{name}\t{label}")
    (ds / "labels.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return ds, [str(t) for t in ref["texts"]], [str(lab) for lab in ref["labels"]]


def _eval(model_args, *args):
    return CliRunner().invoke(cli, ["eval", *model_args, *args], catch_exceptions=False)


def _v4_args(ppocrv4_dir):
    return [
        "--model", str(ppocrv4_dir), "--backend", "openvino",
        "--dict", str(ppocrv4_dir / "ppocr_keys_v1.txt"), "--use-space-char",
    ]  # fmt: skip


def test_accuracy_equals_hand_computed_expectation(v4_case, ppocrv4_dir):
    ds, texts, labels = v4_case
    r = _eval(_v4_args(ppocrv4_dir), str(ds), "--format", "json", "--protocol", "benchmark")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    # By hand: the benchmark protocol compares lowercase alphanumerics; IIIT5K labels are alphanumeric.
    norm = ["".join(c for c in t.lower() if c.isascii() and c.isalnum()) for t in texts]
    expected = sum(p == lab.lower() for p, lab in zip(norm, labels)) / len(labels)
    d = result["datasets"][0]
    assert d["count"] == 12 and d["filtered"] == 0 and d["bad_samples"] == 0
    assert d["accuracy"] == pytest.approx(expected)
    assert result["summary"]["mean"]["accuracy"] == pytest.approx(expected)
    exact = _eval(_v4_args(ppocrv4_dir), str(ds), "--format", "json", "--protocol", "exact")
    exp_exact = sum(t == lab for t, lab in zip(texts, labels)) / len(labels)
    assert json.loads(exact.stdout)["datasets"][0]["accuracy"] == pytest.approx(exp_exact)
    assert exp_exact < expected  # 'MORE!' vs 'MORE', case: the protocols must differ on this slice


def test_json_validates_against_schema(v4_case, ppocrv4_dir, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    ds, _, _ = v4_case
    out = tmp_path / "eval.json"
    r = _eval(_v4_args(ppocrv4_dir), f"iiit={ds}", "--format", "json", "--output", str(out))
    schema = json.loads(resources.files("crnn_cli").joinpath("schemas", "eval.schema.json").read_text())
    result = json.loads(out.read_text())
    jsonschema.validate(result, schema)
    assert result == json.loads(r.stdout)
    assert result["datasets"][0]["name"] == "iiit"
    bad = dict(result, schema_version=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_fail_under_gates(v4_case, ppocrv4_dir, monkeypatch):
    ds, _, _ = v4_case
    monkeypatch.setenv("COLUMNS", "80")  # the table fits an 80-column terminal
    low = _eval(_v4_args(ppocrv4_dir), str(ds), "--fail-under", "50", "-q")
    assert "slice" in low.stdout and max(len(line) for line in low.stdout.splitlines()) <= 80
    # Exact (case-sensitive) accuracy on this slice is below 100 %: a 99.9 % gate must fail.
    high = _eval(_v4_args(ppocrv4_dir), str(ds), "--protocol", "exact", "--fail-under", "99.9", "-q")
    assert low.exit_code == 0
    # -q keeps the progress quiet, not the reason a gate failed: one line says why.
    assert high.exit_code == 1 and "below --fail-under" in high.stderr and high.stderr.count("\n") == 1


def test_csv_report_and_bad_samples(v4_case, ppocrv4_dir, tmp_path):
    ds, _, _ = v4_case
    broken = tmp_path / "broken"
    shutil.copytree(ds, broken)
    (broken / "img" / "junk.png").write_bytes(b"not an image")
    with open(broken / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("img/junk.png\tJUNK\nimg/missing.png\tGONE\nno tab here\n")
    report = tmp_path / "report"
    r = _eval(_v4_args(ppocrv4_dir), str(broken), "--format", "csv", "--report", str(report))
    assert r.exit_code == 1  # three samples could not be read
    rows = r.stdout.strip().splitlines()
    assert rows[0].startswith("dataset,count,filtered,missing,unreadable,accuracy")
    first = rows[1].split(",")
    # 12 read; the missing, the undecodable and the unparseable one count too, as wrong
    assert first[1:5] == ["15", "0", "1", "2"]
    assert (report / "index.html").is_file()
    html = (report / "index.html").read_text()
    # PP-OCRv4 reads all 12 crops right under this protocol: no gallery heading over an empty table
    assert "worst errors" not in html and "No misread sample among the 12 read" in html
    exact = _eval(_v4_args(ppocrv4_dir), str(broken), "--protocol", "exact", "--report", str(report), "-q")
    assert exact.exit_code == 1 and "worst errors" in (report / "index.html").read_text()


def test_same_accuracy_on_every_backend(mv3_dir, data_dir, tmp_path):
    """One converted model through torch, ONNX Runtime and OpenVINO: the same accuracy and texts."""
    pytest.importorskip("torch")
    pytest.importorskip("openvino")
    from crnn_cli.convert import ConvertOptions, convert

    src = mv3_dir / "best_accuracy.pdparams"
    convert(src, ConvertOptions("onnx", tmp_path / "m.onnx"))
    convert(src, ConvertOptions("openvino", tmp_path / "m.xml"))
    ds = tmp_path / "ds"
    ds.mkdir()
    lines = (data_dir / "iiit5k_train" / "labels.tsv").read_text("utf-8").splitlines()[:40]
    for line in lines:
        rel = line.split("\t")[0]
        shutil.copy(data_dir / "iiit5k_train" / rel, ds / rel.split("/")[-1])
    (ds / "labels.tsv").write_text(
        "\n".join(f"{ln.split(chr(9))[0].split('/')[-1]}\t{ln.split(chr(9))[1]}" for ln in lines)
    )
    results = {}
    for model, backend in (
        (src, "torch"),
        (tmp_path / "m.onnx", "onnxruntime"),
        (tmp_path / "m.xml", "openvino"),
    ):
        r = _eval(
            ["--model", str(model), "--backend", backend], str(ds), "--format", "json", "--protocol", "paddle"
        )
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout)["datasets"][0]
        results[backend] = (d["accuracy"], d["norm_edit_distance"], d["mean_confidence"])
    acc = {k: v[0] for k, v in results.items()}
    ned = {k: round(v[1], 6) for k, v in results.items()}
    assert len(set(acc.values())) == 1 and len(set(ned.values())) == 1, results
    confs = [v[2] for v in results.values()]
    assert max(confs) - min(confs) < 1e-4
