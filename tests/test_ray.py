"""Recognition and evaluation on a real local Ray instance: the same answers as one machine, in order,
one per input, bad images reported by path; the CLI's --ray, --ray-actors and --output; the Ray
Dataset API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="needs Ray: pip install 'crnn[ray]'")

from ray_util import RAY_INIT, as_tuples, make_corpus, reference  # noqa: E402
from test_bad_input import crnn as _invoke  # noqa: E402  (main(): the real error boundary)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    """One small Ray instance for the module; the code under test finds it initialised and reuses it
    (the path a notebook takes), leaving it running."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(**RAY_INIT)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("raycorpus")
    paths, labels = make_corpus(data_dir, root)
    return root, paths, labels


@pytest.fixture(scope="module")
def plain(corpus):
    return reference(corpus[1])


def test_same_results_in_input_order_across_windows(local_ray, corpus, plain):
    from crnn_cli.distributed import RayRecognizer

    _, paths, _ = corpus
    # Small windows and tasks: several Ray Data runs, many batches, two actors.
    with RayRecognizer("local", actors=2, window=17, rows_per_task=5) as rec:
        got = as_tuples(rec.recognize(paths))
    assert got == plain  # text, confidence (exactly) and error per crop, in input order
    assert len(got) == len(paths)
    errors = [e for *_, e in got if e is not None]
    assert len(errors) == 2 and "050_bad.png" in errors[0] and "missing.png" in errors[1]
    assert ray.is_initialized()  # the caller's connection stays open


def test_cli_recognize_on_ray_prints_what_the_plain_run_prints(local_ray, corpus):
    _, paths, _ = corpus
    for fmt in ("text", "jsonl"):
        want = _invoke("recognize", "--format", fmt, *paths)
        got = _invoke("recognize", "--ray", "local", "--ray-actors", "2", "--format", fmt, *paths)
        assert got.code == want.code == 1  # a bad and a missing input: exit 1, as without Ray
        assert got.stdout == want.stdout
        assert "skipped" in got.stderr and "050_bad.png" in got.stderr and "missing.png" in got.stderr
        assert "2 of 42 inputs failed" in got.stderr
    lines = got.stdout.splitlines()
    assert len(lines) == len(paths)  # jsonl: exactly one line per input, errors included
    assert json.loads(lines[-1])["error"].endswith("no such file")


def test_cli_output_dir_shards_hold_exactly_the_plain_lines(local_ray, corpus, tmp_path):
    _, paths, _ = corpus
    want = _invoke("recognize", "--format", "jsonl", *paths)
    out = tmp_path / "texts"
    got = _invoke("recognize", "--ray", "local", "--format", "jsonl", "--output", str(out), *paths)
    assert got.code == 1 and got.stdout == ""
    assert "050_bad.png" in got.stderr and f"42 results written to {out}" in got.stderr
    shards = sorted(out.glob("part-*.jsonl"))
    assert "".join(p.read_text("utf-8") for p in shards) == want.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"] == 42 and manifest["failed"] == 2
    assert manifest["shards"] == [p.name for p in shards]
    assert not (out / ".crnn-output").exists()
    again = _invoke("recognize", "--ray", "local", "--output", str(out), *paths)
    assert again.code == 2 and "already holds results" in again.stderr


def test_shards_of_many_batches_and_windows_keep_input_order(local_ray, corpus, tmp_path):
    from crnn_cli.distributed import RayRecognizer

    _, paths, _ = corpus
    want = _invoke("recognize", "--format", "jsonl", *paths).stdout
    seen = []
    with RayRecognizer("local", actors=2, window=20, rows_per_task=6) as rec:
        done, failed = rec.write_output(paths, tmp_path / "o", "jsonl", lambda n, e: seen.append((n, e)))
    shards = sorted((tmp_path / "o").glob("part-*.jsonl"))
    assert len(shards) == 9  # windows of 20, 20, 2 inputs in batches of at most 6: 4 + 4 + 1
    assert "".join(p.read_text("utf-8") for p in shards) == want
    assert (done, failed) == (42, 2) and sum(n for n, _ in seen) == 42
    assert sorted(e for _, errs in seen for e in errs)[0].endswith(
        "050_bad.png: not an image OpenCV can decode (unknown format or truncated file)"
    )


def test_tsv_shards_each_have_the_header(local_ray, corpus, tmp_path):
    _, paths, _ = corpus
    out = tmp_path / "tsv"
    got = _invoke("recognize", "--ray", "local", "--format", "tsv", "--output", str(out), *paths[:6])
    assert got.code == 0, got.output
    want = _invoke("recognize", "--format", "tsv", *paths[:6]).stdout.splitlines()
    rows = []
    for shard in sorted(out.glob("part-*.tsv")):
        header, *body = shard.read_text("utf-8").splitlines()
        assert header == want[0]
        rows += body
    assert rows == want[1:]


def test_ray_only_options_need_ray(corpus, tmp_path):
    _, paths, _ = corpus
    for extra in (["--output", str(tmp_path / "o")], ["--ray-actors", "2"]):
        r = _invoke("recognize", *extra, paths[0])
        assert r.code == 2 and "needs --ray ADDRESS" in r.stderr
    r = _invoke("eval", "--ray-actors", "2", str(tmp_path))
    assert r.code == 2 and "needs --ray ADDRESS" in r.stderr


def test_eval_on_ray_counts_and_scores_like_eval(local_ray, corpus):
    root, _, labels = corpus
    ds = root / "labels.tsv"
    ds.write_text("\n".join(labels + ["crops/not_there.png\tgone"]) + "\n", "utf-8")
    want = _invoke("eval", "--format", "json", str(ds))
    got = _invoke("eval", "--ray", "local", "--ray-actors", "2", "--format", "json", str(ds))
    assert got.code == want.code, got.output
    w, g = json.loads(want.stdout), json.loads(got.stdout)
    for d in (w, g):
        for row in d["datasets"]:
            row.pop("images_per_second")
    assert g == w
    row = g["datasets"][0]
    assert row["count"] + row["filtered"] + row["bad_samples"] > 0 and row["bad_samples"] >= 1


def test_recognize_dataset_maps_bytes_paths_and_arrays(local_ray, corpus, plain):
    from crnn_cli.distributed import recognize_dataset

    _, paths, _ = corpus
    good = [p for p, (_, _, _, e) in zip(paths, plain) if e is None][:12]
    want = {src: (text, conf) for src, text, conf, e in plain if e is None}
    by_path = recognize_dataset(ray.data.from_items([{"path": p, "n": k} for k, p in enumerate(good)]))
    rows = by_path.take_all()
    assert sorted(r["n"] for r in rows) == list(range(len(good)))  # other columns pass through
    for r in rows:
        assert (r["text"], r["confidence"]) == want[r["path"]] and r["error"] is None
    files = ray.data.read_binary_files(good, include_paths=True)
    rows = recognize_dataset(files, actors=1).take_all()
    assert {r["path"]: (r["text"], r["confidence"]) for r in rows} == {p: want[p] for p in good}
    assert "bytes" not in rows[0]  # the crops themselves are not carried into the output
    images = ray.data.read_images(good, include_paths=True, mode="RGB")
    rows = recognize_dataset(images, actors=1).take_all()
    assert {r["path"]: (r["text"], r["confidence"]) for r in rows} == {p: want[p] for p in good}


def test_recognize_dataset_reports_a_bad_row_and_goes_on(local_ray, corpus, plain):
    from crnn_cli.distributed import recognize_dataset

    _, paths, _ = corpus
    rows = recognize_dataset(ray.data.from_items([{"path": p} for p in paths])).take_all()
    assert len(rows) == len(paths)
    got = {r["path"]: (r["text"], r["confidence"], r["error"]) for r in rows}
    assert got == {src: (text, conf, err) for src, text, conf, err in plain}


def test_recognize_dataset_names_a_missing_column(local_ray):
    from crnn_cli.core.errors import UsageError
    from crnn_cli.distributed import recognize_dataset

    with pytest.raises(UsageError, match="no image, bytes or path column"):
        recognize_dataset(ray.data.from_items([{"file": "a.png"}]))


def test_without_ray_installed_the_message_says_how_to_get_it(monkeypatch):
    from crnn_cli.core.errors import UsageError
    from crnn_cli.distributed.cluster import connect

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(UsageError, match=r"pip install 'crnn\[ray\]'"):
        connect("local")


def test_model_bundle_carries_companion_files(tmp_path):
    from crnn_cli.distributed.bundle import pack, unpack

    (tmp_path / "m.xml").write_text("<net/>")
    (tmp_path / "m.bin").write_bytes(b"\0" * 10)
    (tmp_path / "other.bin").write_bytes(b"x")
    (tmp_path / "keys.txt").write_text("a\nb\n")
    bundle = pack(tmp_path / "m.xml", tmp_path / "keys.txt")
    assert [name for name, _ in bundle.files] == ["m.xml", "m.bin"]
    model, dictionary = unpack(bundle, tmp_path / "cache")
    assert model.name == "m.xml" and (model.parent / "m.bin").read_bytes() == b"\0" * 10
    assert dictionary is not None and dictionary.read_text() == "a\nb\n"
    assert unpack(bundle, tmp_path / "cache") == (model, dictionary)  # once per node, then reused
    assert Path(model).parent.parent.name == bundle.digest


def _crnn_process(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`crnn ARGS` in its own process: --ray then starts or joins Ray itself."""
    crnn = str(Path(sys.executable).with_name("crnn"))
    small = {"RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES": str(RAY_INIT["object_store_memory"])}
    return subprocess.run(
        [crnn, *args], capture_output=True, text=True, timeout=600, env={**os.environ, **small, **env}
    )


def test_ray_local_starts_a_ray_instance_for_the_run(corpus):
    _, paths, _ = corpus
    plain = _crnn_process("recognize", *paths[:5])
    run = _crnn_process("recognize", "--ray", "local", *paths[:5])
    assert run.returncode == plain.returncode == 0, run.stderr
    assert run.stdout == plain.stdout


def test_an_address_nobody_answers_at_fails_in_seconds_with_advice(corpus):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    _, paths, _ = corpus
    start = time.monotonic()
    run = _crnn_process("recognize", "--ray", f"127.0.0.1:{port}", paths[0])
    auto = _crnn_process("recognize", "--ray", "auto", paths[0], RAY_ADDRESS=f"127.0.0.1:{port}")
    assert time.monotonic() - start < 300  # ray.init alone retries such an address for minutes
    for r, option in ((run, f"127.0.0.1:{port}"), (auto, "auto")):
        assert r.returncode == 1 and r.stdout == ""
        assert f"crnn: error: --ray {option}: nothing answers at 127.0.0.1:{port}" in r.stderr
        assert "ray start --head" in r.stderr


def test_arrays_from_ray_readers_are_turned_to_the_cores_bgr():
    import numpy as np

    from crnn_cli.distributed.worker import _sources

    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 200  # red
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    column = np.empty(3, dtype=object)
    column[:] = [rgb, rgba, np.full((2, 3), 7, np.uint8)]
    bgr, bgra, gray = _sources(column, "image")
    assert (bgr[..., 2] == 200).all() and (bgr[..., :2] == 0).all()
    assert (bgra[..., 2] == 200).all() and (bgra[..., 3] == 255).all() and (bgra[..., :2] == 0).all()
    assert gray.shape == (2, 3) and (gray == 7).all()
    stacked = _sources(np.stack([rgb, rgb]), "image")  # same-sized arrays arrive as one 4-d array
    assert len(stacked) == 2 and (stacked[0][..., 2] == 200).all()


def test_a_run_ray_gives_up_on_is_resumed_where_it_stopped(local_ray, corpus, plain, monkeypatch):
    """Ray Data can fail a whole run when an actor dies while it starts (seen on a loaded machine with
    the two-node test): the driver runs the inputs it has not yielded again, once each."""
    from crnn_cli.distributed import RayRecognizer

    _, paths, _ = corpus
    with RayRecognizer("local", actors=2, rows_per_task=4) as rec:
        real_run = rec._run
        calls = []

        class DiesAfterTwoBatches:  # the real output, cut by an actor death after two blocks
            def __init__(self, out):
                self.out = out

            def iter_batches(self, **kw):
                for k, batch in enumerate(self.out.iter_batches(**kw)):
                    if k == 2:
                        raise ray.exceptions.ActorDiedError()
                    yield batch

        def run(kind, rows, sink=None):
            calls.append((rows[0]["index"], len(rows)))
            out = real_run(kind, rows, sink)
            return DiesAfterTwoBatches(out) if len(calls) == 1 else out

        monkeypatch.setattr(rec, "_run", run)
        got = as_tuples(rec.recognize(paths))
    assert got == plain
    assert calls == [(0, 42), (8, 34)] and rec.window_retries == 1
