"""`crnn eval` counts every labelled sample: missing, unreadable and unparseable ones are wrong, shown,
named on stderr and fail the run (unless --allow-unreadable), for label files and LMDBs alike.

Built on the bundled samples, which the bundled model reads right (README, Bundled model), so the
expected accuracies are exact fractions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from crnn_cli.cli import cli

SAMPLES = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples"
TEXTS = {
    "code.png": "KPL-4172",
    "receipt.png": "TOTAL 12.50",
    "scan.png": "Invoice 2024",
    "screenshot.png": "Settings",
    "shop_sign.png": "OPEN",
    "street_sign.png": "Welcome",
}
MODEL = ["--backend", "onnxruntime"]


def _eval(*args: str) -> object:
    return CliRunner().invoke(cli, ["eval", *MODEL, *map(str, args)], catch_exceptions=False)


@pytest.fixture()
def broken(tmp_path: Path) -> Path:
    """10 labelled lines: 8 readable crops (all read right), one missing image, one undecodable."""
    ds = tmp_path / "ten"
    (ds / "img").mkdir(parents=True)
    lines = []
    for name, text in TEXTS.items():
        shutil.copy(SAMPLES / name, ds / "img" / name)
        lines.append(f"img/{name}\t{text}")
    lines += ["img/shop_sign.png\tOPEN", "img/street_sign.png\tWelcome"]
    (ds / "img" / "junk.png").write_bytes(b"not an image at all")
    lines += ["img/gone.png\tGONE", "img/junk.png\tJUNK"]
    (ds / "labels.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return ds


def test_missing_and_unreadable_count_as_wrong_and_fail(broken):
    r = _eval(broken, "--protocol", "exact", "--format", "json", "--fail-under", "80")
    d = json.loads(r.stdout)["datasets"][0]
    assert (d["count"], d["scored"], d["missing"], d["unreadable"]) == (10, 8, 1, 1)
    assert d["correct"] == 8 and d["accuracy"] == pytest.approx(0.8)
    assert d["norm_edit_distance"] <= 0.8  # the two lost samples are at distance 1
    # The gate itself passes (80 % >= 80 %), but two samples could not be read: exit 1, named.
    assert r.exit_code == 1
    assert "img/gone.png" in r.stderr and "junk.png" in r.stderr
    assert "--data-dir" in r.stderr and "--allow-unreadable" in r.stderr


def test_allow_unreadable_keeps_them_wrong_but_exits_0(broken):
    ok = _eval(broken, "--protocol", "exact", "--format", "json", "--allow-unreadable", "--fail-under", "80")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["datasets"][0]["accuracy"] == pytest.approx(0.8)
    gate = _eval(broken, "--protocol", "exact", "--allow-unreadable", "--fail-under", "85", "-q")
    assert gate.exit_code == 1  # 80 % < 85 %: before, 8 of 8 read gave 100 %


def test_unparseable_line_counts_as_unreadable(broken):
    with open(broken / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("img/code.png KPL-4172 without a tab\n\n")  # the blank line is not a sample
    r = _eval(broken, "--protocol", "exact", "--format", "json")
    d = json.loads(r.stdout)["datasets"][0]
    assert (d["count"], d["missing"], d["unreadable"]) == (11, 1, 2)
    assert d["problem_reasons"]["no tab between path and label"] == 1
    assert "labels.tsv:11" in r.stderr


def test_the_protocol_filter_applies_before_the_image_is_needed(broken):
    # Under the benchmark protocol (DTRB drop) "KPL-4172", "TOTAL 12.50" and "Invoice 2024" are
    # filtered; a missing image whose label would be filtered too is filtered, not missing.
    with open(broken / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("img/also_gone.png\tnot-alphanumeric\n")
    r = _eval(broken, "--format", "json")
    d = json.loads(r.stdout)["datasets"][0]
    assert d["filtered"] == 4 and d["filtered_reasons"] == {"non-alphanumeric symbols": 4}
    assert (d["count"], d["missing"], d["unreadable"]) == (7, 1, 1)
    assert d["accuracy"] == pytest.approx(5 / 7)


def test_table_shows_the_counts_and_the_reasons(broken):
    r = _eval(broken, "--allow-unreadable")
    assert r.exit_code == 0
    header = next(line for line in r.stdout.splitlines() if "dataset" in line)
    for col in ("count", "filtered", "missing", "unreadable", "accuracy"):
        assert col in header
    row = next(line for line in r.stdout.splitlines() if line.strip("│ ").startswith("ten"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[1:5] == ["7", "3", "1", "1"]
    assert "ten: filtered: 3 non-alphanumeric symbols" in r.stdout
    assert "ten: not read: 1 missing image, 1 undecodable image" in r.stdout


def test_csv_has_missing_and_unreadable_columns(broken):
    r = _eval(broken, "--protocol", "exact", "--format", "csv", "--allow-unreadable")
    rows = [line.split(",") for line in r.stdout.strip().splitlines()]
    assert rows[0][:6] == ["dataset", "count", "filtered", "missing", "unreadable", "accuracy"]
    assert rows[1][:6] == ["ten", "10", "0", "1", "1", "0.800000"]


def _lmdb(path: Path, records: dict[bytes, bytes]) -> None:
    lmdb = pytest.importorskip("lmdb")
    env = lmdb.open(str(path), map_size=16 << 20, subdir=True)
    with env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key, value)
    env.close()
    (path / "lock.mdb").unlink(missing_ok=True)


def test_lmdb_missing_and_undecodable_records_count(tmp_path):
    records = {b"num-samples": b"6"}
    names = ["shop_sign.png", "street_sign.png", "screenshot.png"]
    for i, name in enumerate(names, 1):
        records[b"image-%09d" % i] = (SAMPLES / name).read_bytes()
        records[b"label-%09d" % i] = TEXTS[name].encode()
    records[b"label-000000004"] = b"lost"  # image record absent
    records[b"image-000000005"] = b""  # zero bytes
    records[b"label-000000005"] = b"empty"
    records[b"image-000000006"] = b"\x89PNG\r\n\x1a\ngarbage"  # undecodable
    records[b"label-000000006"] = b"broken"
    _lmdb(tmp_path / "db", records)
    r = _eval(tmp_path / "db", "--format", "json")
    d = json.loads(r.stdout)["datasets"][0]
    assert (d["count"], d["scored"], d["missing"], d["unreadable"]) == (6, 3, 1, 2)
    assert d["accuracy"] == pytest.approx(0.5)
    assert r.exit_code == 1 and "db:4" in r.stderr and "--data-dir" not in r.stderr
    assert _eval(tmp_path / "db", "--allow-unreadable", "-q").exit_code == 0


def test_every_image_missing_is_zero_not_skipped(tmp_path):
    ds = tmp_path / "elsewhere"
    ds.mkdir()
    (ds / "labels.tsv").write_text("a.png\tOPEN\nb.png\tWelcome\n", "utf-8")
    r = _eval(ds, "--format", "json", "--allow-unreadable")
    d = json.loads(r.stdout)["datasets"][0]
    assert (d["count"], d["missing"], d["accuracy"]) == (2, 2, 0.0)
    assert "a.png" in r.stderr and "--data-dir" in r.stderr


def test_fail_under_is_a_percentage_always(broken):
    args = (broken, "--protocol", "exact", "--allow-unreadable", "-q", "--fail-under")
    assert _eval(*args, "1").exit_code == 0  # 1 %: was read as the fraction 1 = 100 %
    assert _eval(*args, "0.9").exit_code == 0
    assert _eval(*args, "80.5").exit_code == 1
    r = _eval(broken, "--protocol", "exact", "--allow-unreadable", "--format", "json", "--fail-under", "1")
    assert json.loads(r.stdout)["fail_under"] == pytest.approx(0.01)


def test_report_without_errors_has_no_worst_errors_heading(broken, tmp_path):
    report = tmp_path / "report"
    r = _eval(broken, "--protocol", "exact", "--allow-unreadable", "--report", report, "-q")
    assert r.exit_code == 0
    page = (report / "index.html").read_text("utf-8")
    assert "worst errors" not in page and "No misread sample among the 8 read" in page
    assert "<table><tr><th>image</th>" not in page and not list(report.glob("*_errors.png"))
    assert "Not read: 1 missing image, 1 undecodable image" in page and "img/gone.png" in page
    filtered = _eval(broken, "--allow-unreadable", "--report", report, "-q")
    assert "Filtered by the protocol: 3 non-alphanumeric symbols" in (report / "index.html").read_text()
    assert filtered.exit_code == 0
