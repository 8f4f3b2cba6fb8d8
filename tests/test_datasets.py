"""Dataset readers: label files, LMDBs, discovery, filtering, the LMDB writer. Real files in tmp_path."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
from pathlib import Path

import lmdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crnn_cli.core import datasets as D
from crnn_cli.core.charset import load_charset
from crnn_cli.core.errors import DatasetError, ImageError, UsageError
from crnn_cli.core.images import cv2


def png(seed: int, h: int = 8, w: int = 20) -> bytes:
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def raw_lmdb(path: Path, records: dict[bytes, bytes]) -> Path:
    """An LMDB with exactly these keys, to build broken datasets the writer would never make."""
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for k, v in records.items():
            txn.put(k, v)
    env.close()
    return path


def label_dir(tmp_path: Path, names: list[str], content: bytes) -> Path:
    """A folder with one PNG per name and labels.tsv holding ``content``."""
    root = tmp_path / "set"
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(png(i))
    (root / "labels.tsv").write_bytes(content)
    return root


# -- label files -------------------------------------------------------------------------------------


def test_label_file_bom_crlf_and_every_skip_reason(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(png(9))
    content = (
        b"\xef\xbb\xbfimg/a.png\thello\r\n"  # BOM + CRLF: must read as "img/a.png" / "hello"
        b"img/b.png\t  two words \r\n"
        b"img/c.png hello\n"  # space instead of a tab
        b"img/a.png\t\n"  # empty label
        b"\n   \n"  # blank lines: ignored, not counted
        b"img/missing.png\tgone\n"
        b"../outside.png\tescape\n"
        + f"{outside}\tabsolute\n".encode()
        + b"img/\xff\xfe.png\tlatin1\n"  # not UTF-8
        + b"\timage path missing\n"
        + b"img/c.png\tlast line without newline"
    )
    root = label_dir(tmp_path, ["img/a.png", "img/b.png", "img/c.png"], content)
    ds = D.LabelFileDataset(root / "labels.tsv", confine_paths=True)
    assert [s.label for s in ds] == ["hello", "two words", "last line without newline"]
    assert ds.name == "set"
    s = ds.stats
    assert (s.seen, s.kept) == (10, 3)
    assert s.skipped == {
        D.MISSING_TAB: 1,
        D.EMPTY_LABEL: 1,
        D.MISSING_IMAGE: 1,
        D.OUTSIDE: 2,
        D.NOT_UTF8: 1,
        D.EMPTY_PATH: 1,
    }
    assert "missing.png" in s.examples[D.MISSING_IMAGE][0]
    summary = s.summary()
    assert "kept 3 of 10" in summary and "2 path outside the data folder" in summary
    first = ds[0]
    assert first.key == "set:img/a.png" and first.image.shape == (8, 20, 3) and first.image.dtype == np.uint8
    # Paths that leave the folder are refused only when asked for (PaddleOCR joins them to data_dir).
    loose = D.LabelFileDataset(root / "labels.tsv")
    assert {"escape", "absolute"} <= set(loose.labels) and loose.stats.skipped[D.OUTSIDE] == 0


def test_symlinks_out_of_the_data_dir_are_followed_unless_confined(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.png").write_bytes(png(1))
    root = label_dir(
        tmp_path,
        ["in.png"],
        b"in.png\tok\nlink.png\tfile link\nlinkdir/x.png\tdir link\ninlink.png\tinside link\n",
    )
    os.symlink(elsewhere / "x.png", root / "link.png")
    os.symlink(elsewhere, root / "linkdir")
    os.symlink(root / "in.png", root / "inlink.png")  # a link that stays inside is fine
    ds = D.LabelFileDataset(root / "labels.tsv", confine_paths=True)
    assert ds.labels == ["ok", "inside link"]
    assert ds.stats.skipped[D.OUTSIDE] == 2
    assert D.LabelFileDataset(root / "labels.tsv").labels == [
        "ok",
        "file link",
        "dir link",
        "inside link",
    ]


def test_data_dir_option_and_ratios(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(10):
        (images / f"{i}.png").write_bytes(png(i))
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "a.txt").write_text("".join(f"{i}.png\ta{i}\n" for i in range(10)))
    (lists / "b.txt").write_text("".join(f"{i}.png\tb{i}\n" for i in range(4)))
    files = [lists / "a.txt", lists / "b.txt"]
    ds = D.LabelFileDataset(files, images, ratios=[0.5, 2.0], seed=3)
    labels = ds.labels
    a = [x for x in labels if x.startswith("a")]
    assert len(a) == 5 and len(set(a)) == 5
    assert sorted(x for x in labels if x.startswith("b")) == sorted([f"b{i}" for i in range(4)] * 2)
    assert D.LabelFileDataset(files, images, ratios=[0.5, 2.0], seed=3).labels == labels  # drawn once, seeded
    assert D.LabelFileDataset(files, images, ratios=[0.5, 2.0], seed=4).labels != labels
    with pytest.raises(DatasetError, match="images_nope"):
        D.LabelFileDataset(files, tmp_path / "images_nope")
    with pytest.raises(UsageError, match="ratios"):
        D.LabelFileDataset(files, images, ratios=[1.0])


def test_label_filter_counts_unknown_symbols_and_length(tmp_path: Path) -> None:
    names = [f"{i}.png" for i in range(4)]
    content = "0.png\tHello\n1.png\thé!\n2.png\tabcdefghijk\n3.png\tOK42\n".encode()
    root = label_dir(tmp_path, names, content)
    flt = D.LabelFilter(load_charset(None), max_text_length=10)  # ic15: lowercased, 0-9a-z
    ds = D.LabelFileDataset(root / "labels.tsv", label_filter=flt)
    assert ds.labels == ["Hello", "OK42"]
    assert ds.stats.skipped == {D.UNKNOWN_SYMBOL: 1, D.TOO_LONG: 1}
    assert ds.stats.unknown_symbols == {"é": 1, "!": 1}
    with pytest.raises(UsageError):
        D.LabelFilter(max_text_length=0)


def test_undecodable_image_skipped_or_substituted(tmp_path: Path) -> None:
    root = label_dir(tmp_path, ["a.png", "c.png"], b"a.png\tA\nb.png\tB\nc.png\tC\n")
    (root / "b.png").write_bytes(b"this is not an image")
    ds = D.LabelFileDataset(root / "labels.tsv")
    assert len(ds) == 3
    assert [s.label for s in D.iter_samples(ds)] == ["A", "C"]  # evaluation: skipped, counted
    assert ds.stats.skipped[D.UNDECODABLE] == 1
    assert ds[1].label == "C"  # training: the next readable sample stands in
    assert ds.get(1, decode=False).image == b"this is not an image"
    strict = D.LabelFileDataset(root / "labels.tsv", on_error="raise")
    with pytest.raises(ImageError, match="b.png"):
        strict[1]
    with pytest.raises(IndexError):
        strict[3]
    assert strict[-1].label == "C"


@st.composite
def _line_parts(draw: st.DrawFn) -> tuple[str, str]:
    no_newline = st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",))
    path = draw(st.text(no_newline, min_size=1, max_size=20))
    label = draw(
        st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=30)
    )
    return path, label


@given(_line_parts(), st.sampled_from(["", "\n", "\r\n"]))
def test_parse_label_line_property(parts: tuple[str, str], ending: str) -> None:
    path, label = parts
    line = f"{path}\t{label}{ending}"
    if not path.strip():
        with pytest.raises(D.LabelLineError) as err:
            D.parse_label_line(line)
        assert err.value.reason == D.EMPTY_PATH
    elif not label.strip():
        with pytest.raises(D.LabelLineError) as err:
            D.parse_label_line(line)
        assert err.value.reason == D.EMPTY_LABEL
    else:
        assert D.parse_label_line(line) == (path.strip(), label.strip())
    with pytest.raises(D.LabelLineError) as err:
        D.parse_label_line(path.replace("\t", "") + " " + label.replace("\t", "") + ending)
    assert err.value.reason == D.MISSING_TAB


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.text(st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=12),
        max_size=8,
    ),
    st.booleans(),
)
def test_label_file_round_trip_property(tmp_path: Path, labels: list[str], crlf: bool) -> None:
    # Whatever the labels hold (U+2028, form feeds, tabs...), the file reader gives back what a line holds.
    root = tmp_path / "prop"
    root.mkdir(exist_ok=True)
    (root / "x.png").write_bytes(png(0))
    end = "\r\n" if crlf else "\n"
    (root / "labels.tsv").write_bytes(("\ufeff" + "".join(f"x.png\t{lab}{end}" for lab in labels)).encode())
    ds = D.LabelFileDataset(root / "labels.tsv")
    assert ds.labels == [lab.strip() for lab in labels if lab.strip()]
    assert ds.stats.skipped[D.EMPTY_LABEL] == sum(1 for lab in labels if not lab.strip())


def test_real_iiit5k_slice(data_dir: Path, tmp_path: Path) -> None:
    root = data_dir / "iiit5k_train"
    lines = (root / "labels.tsv").read_text("utf-8").splitlines()[:40]
    slice_file = tmp_path / "slice.tsv"
    slice_file.write_text("\n".join(lines) + "\n", "utf-8")
    flt = D.LabelFilter(load_charset(None), max_text_length=25)
    ds = D.LabelFileDataset(slice_file, root, label_filter=flt, name="iiit5k")
    assert len(ds) == 40 and ds.stats.total_skipped == 0
    assert ds.labels == [line.split("\t", 1)[1] for line in lines]
    for sample in ds:
        assert sample.image.ndim == 3 and sample.image.shape[2] == 3 and sample.image.shape[0] <= 64
    assert {name for name, _ in D.discover_datasets(data_dir)} >= {"iiit5k_train", "svt_train"}


# -- LMDB ----------------------------------------------------------------------------------------------


def test_write_lmdb_round_trip(tmp_path: Path) -> None:
    images = [png(i, 10 + i, 30) for i in range(5)]
    labels = ["one", "two", "drei", "quatre 4", "ü"]
    out = tmp_path / "out" / "lmdb"
    assert D.write_lmdb(out, zip(images, labels), commit_every=2) == 5
    assert sorted(p.name for p in out.parent.iterdir()) == ["lmdb"]  # no temporary folder left
    ds = D.LmdbDataset(out)
    assert len(ds) == 5 and ds.stats.kept == 5
    assert [s.label for s in ds] == labels
    for i, sample in enumerate(ds):
        assert np.array_equal(
            sample.image, cv2.imdecode(np.frombuffer(images[i], np.uint8), cv2.IMREAD_COLOR)
        )
    assert ds.get(2, decode=False).image == images[2] and ds[2].key == "lmdb:3"
    with D.lmdb_env(out).begin() as txn:  # the raw layout, as other tools read it
        assert txn.get(b"num-samples") == b"5" and txn.get(b"label-000000001") == b"one"


def test_write_lmdb_refuses_overwrite_grows_map_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "db"
    big = [(np.random.default_rng(i).bytes(50_000), f"s{i}") for i in range(12)]
    assert D.write_lmdb(out, big, map_size=1 << 16) == 12  # far beyond the first map: it must grow
    with pytest.raises(DatasetError, match="already exists"):
        D.write_lmdb(out, [(b"x", "y")])
    assert D.write_lmdb(out, [(png(0), "new")], overwrite=True) == 1
    assert D.LmdbDataset(out).get(0, decode=False).label == "new"

    def failing():
        yield png(1), "fine"
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        D.write_lmdb(tmp_path / "half", failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]  # nothing half-written left behind
    with pytest.raises(UsageError, match="sample 2"):
        D.write_lmdb(tmp_path / "bad", [(png(0), "ok"), (png(1), "")])


def test_lmdb_missing_corrupt_and_overcounted_records(tmp_path: Path) -> None:
    records = {b"num-samples": b"8"}
    for i, (img, label) in enumerate(
        [
            (png(1), b"good"),
            (b"garbage", b"corrupt"),
            (png(3), None),
            (b"", b"empty"),
            (png(5), b"\xff\xfe"),
            (png(6), b"last"),
            (None, b"label without image"),
        ],
        1,
    ):
        if img is not None:
            records[b"image-%09d" % i] = img
        if label is not None:
            records[b"label-%09d" % i] = label
    path = raw_lmdb(tmp_path / "broken", records)  # 8 announced, 7 present, #3 lacks a label, #7 an image
    ds = D.LmdbDataset(path / "data.mdb")  # the data.mdb file works as well as its folder
    assert len(ds) == 3  # good, corrupt (not detectable before decoding), last
    assert ds.stats.seen == 8
    assert ds.stats.skipped == {D.MISSING_RECORD: 3, D.UNDECODABLE: 1, D.NOT_UTF8: 1}
    assert [s.label for s in D.iter_samples(ds)] == ["good", "last"]
    assert ds.stats.skipped[D.UNDECODABLE] == 2
    assert ds[1].label == "last"
    with pytest.raises(ImageError, match="broken:2"):
        D.LmdbDataset(path, on_error="raise")[1]


@pytest.mark.parametrize("value", [None, b"many", b"-1"])
def test_lmdb_without_a_count_is_refused(tmp_path: Path, value: bytes | None) -> None:
    records = {b"image-000000001": png(0), b"label-000000001": b"x"}
    if value is not None:
        records[b"num-samples"] = value
    path = raw_lmdb(tmp_path / "nocount", records)
    with pytest.raises(DatasetError, match="num-samples"):
        D.LmdbDataset(path)
    with pytest.raises(DatasetError, match="data.mdb"):
        D.LmdbDataset(tmp_path)


def test_lmdb_filter_and_charset(tmp_path: Path) -> None:
    D.write_lmdb(tmp_path / "db", [(png(0), "Street"), (png(1), "café"), (png(2), "x" * 30)])
    ds = D.LmdbDataset(tmp_path / "db", label_filter=D.LabelFilter(load_charset(None), 25))
    assert [s.label for s in ds] == ["Street"]
    assert ds.stats.skipped == {D.UNKNOWN_SYMBOL: 1, D.TOO_LONG: 1}


_PARENT_ENV = None  # set before forking: the child sees the parent's handle here


def _read_label(args: tuple[D.LmdbDataset, int]) -> tuple[str, bool]:
    ds, i = args
    return ds[i].label, D.lmdb_env(ds.path) is _PARENT_ENV


def test_lmdb_survives_fork_and_pickling(tmp_path: Path) -> None:
    labels = [f"w{i}" for i in range(20)]
    D.write_lmdb(tmp_path / "db", [(png(i), lab) for i, lab in enumerate(labels)])
    ds = D.LmdbDataset(tmp_path / "db")
    global _PARENT_ENV
    assert ds[0].label == "w0"  # the parent now holds an open environment
    _PARENT_ENV = D.lmdb_env(ds.path)
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map(_read_label, [(ds, i) for i in range(20)])
    assert [label for label, _ in got] == labels
    assert not any(inherited for _, inherited in got)  # each child opened its own handle
    assert ds[19].label == "w19"  # the parent's handle still works after the children used theirs
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned worker receives
    assert clone[5].label == "w5"
    twin = D.LmdbDataset(tmp_path / "db")  # a second dataset on the same files shares the handle
    assert twin[3].label == "w3"
    D.close_lmdb_envs()
    assert ds[7].label == "w7"  # reopened on demand


# -- discovery and concatenation ------------------------------------------------------------------------


def test_discover_datasets(tmp_path: Path) -> None:
    root = tmp_path / "data"
    D.write_lmdb(root / "training" / "MJ", [(png(0), "mj")])
    D.write_lmdb(root / "eval" / "IIIT", [(png(1), "iiit")])
    real = root / "real" / "svt"
    real.mkdir(parents=True)
    (real / "a.png").write_bytes(png(2))
    (real / "labels.tsv").write_text("a.png\tsvt\n")
    found = D.discover_datasets(root)
    assert [(n, s.kind) for n, s in found] == [
        ("eval/IIIT", "lmdb"),
        ("real/svt", "labels"),
        ("training/MJ", "lmdb"),
    ]
    assert D.discover_datasets(root / "training" / "MJ")[0][0] == "MJ"
    assert D.discover_datasets(root / "training" / "MJ" / "data.mdb")[0][1].kind == "lmdb"
    assert D.discover_datasets(real / "labels.tsv") == [
        ("svt", D.DatasetSpec("labels", real / "labels.tsv", real))
    ]
    everything = D.open_dataset(root)
    assert isinstance(everything, D.ConcatDataset)
    assert sorted(s.label for s in everything) == ["iiit", "mj", "svt"]
    assert everything.stats.kept == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no dataset"):
        D.discover_datasets(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        D.discover_datasets(tmp_path / "nope")


def test_concat_ratios_and_failures_counted_in_the_part(tmp_path: Path) -> None:
    D.write_lmdb(tmp_path / "a", [(png(i), f"a{i}") for i in range(10)])
    D.write_lmdb(tmp_path / "b", [(png(0), "b0"), (b"broken", "b1")])
    a, b = D.LmdbDataset(tmp_path / "a"), D.LmdbDataset(tmp_path / "b")
    mixed = D.ConcatDataset([a, b], ratios=[0.3, 1.0], seed=1)
    assert len(mixed) == 5
    assert [s.label for s in D.iter_samples(mixed)][-1] == "b0"
    assert b.stats.skipped[D.UNDECODABLE] == 1 and a.stats.total_skipped == 0
    assert mixed.stats.skipped[D.UNDECODABLE] == 1
    assert mixed[4].label != "b1"  # substituted by the (wrapped-around) next readable sample
