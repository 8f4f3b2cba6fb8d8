"""Bad input end to end: the generated corpus (scripts/make_bad_corpus.py) through the API and the CLI.

Each image gives the right pixels or a one-line error naming the file, and a batch goes on past it; a
decompression bomb is refused from its header (the process's peak memory barely moves); symlink loops
end; broken or inconsistent models fail before any image is read, naming the model; eval counts bad
samples and goes on; config errors name the key and the file; hostile pickles never run; an interrupted
or failing write leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from scripts_util import load_script

from crnn_cli.cli import main
from crnn_cli.commands.common import display_path
from crnn_cli.core import fileio
from crnn_cli.core.datasets import LabelFileDataset, LmdbDataset, open_dataset
from crnn_cli.core.errors import ConfigError, CrnnError, DatasetError, ImageError, UnsafeFileError
from crnn_cli.core.images import load_image
from crnn_cli.core.pdparams import load_pdparams
from crnn_cli.core.recognizer import Recognizer

for _needed in ("PIL", "onnx", "lmdb"):  # the corpus generator needs them (crnn[torch] / crnn[onnxruntime])
    pytest.importorskip(_needed)


corpus_script = load_script("make_bad_corpus.py")


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def crnn(*args: str | os.PathLike[str]) -> Run:
    """`crnn ARGS` in this process through main(), the real error boundary, stdout and stderr apart."""
    with CliRunner().isolation() as (out, err, _):
        try:
            main([os.fspath(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
    return Run(code, out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("bad_corpus")
    manifest = corpus_script.build_corpus(root)
    assert not manifest["missing"], manifest["missing"]  # every part is testable in this environment
    return root, manifest


@pytest.fixture(scope="module")
def model(corpus: tuple[Path, dict[str, Any]]) -> Path:
    return corpus[0] / "models" / "good.onnx"


def _cases(corpus: tuple[Path, dict[str, Any]], part: str) -> list[dict[str, Any]]:
    return corpus[1][part]


def _one(corpus: tuple[Path, dict[str, Any]], part: str, name: str) -> dict[str, Any]:
    (case,) = [c for c in corpus[1][part] if c["name"] == name]
    return case


def _file_cases(corpus: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    """Image cases that are single files as far as the CLI is concerned (folders are tested apart)."""
    return [c for c in _cases(corpus, "images") if c["name"] not in ("loop_dir", "folder.png")]


# -- images through the API --------------------------------------------------------------------------


def test_corpus_is_generated_with_a_manifest(corpus):
    root, manifest = corpus
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert len(manifest["images"]) >= 30 and len(manifest["models"]) >= 10
    names = [c["name"] for part in corpus_script.PARTS for c in manifest[part]]
    assert len(names) == len(set(names))
    for part in corpus_script.PARTS:
        for case in manifest[part]:
            if case["name"] not in ("missing.yml", "missing.onnx"):
                assert os.path.lexists(root / case["path"]), case["name"]


def test_every_image_case_decodes_right_or_fails_naming_the_file(corpus):
    root, _ = corpus
    wrong = []
    for case in _cases(corpus, "images"):
        if case["name"] == "loop_dir":
            continue
        path = root / case["path"]
        try:
            img = load_image(path)
        except ImageError as exc:
            msg = str(exc)
            if case["expect"] != "error" or case["error"] not in msg:
                wrong.append(f"{case['name']}: unexpected error {msg!r}")
            elif os.path.basename(str(path)) not in msg or "\n" in msg:
                wrong.append(f"{case['name']}: error does not name the file on one line: {msg!r}")
            continue
        if case["expect"] != "ok":
            wrong.append(f"{case['name']}: decoded {img.shape}, expected an error with {case['error']!r}")
            continue
        mean = img.reshape(-1, 3).mean(axis=0)
        if img.dtype != np.uint8 or list(img.shape) != case["shape"]:
            wrong.append(f"{case['name']}: {img.dtype} {img.shape}, expected uint8 {case['shape']}")
        elif not np.allclose(mean, case["mean_bgr"], atol=case["tolerance"]):
            wrong.append(f"{case['name']}: mean BGR {mean.round(2)}, expected {case['mean_bgr']}")
    assert not wrong, "\n".join(wrong)


def test_bytes_and_paths_agree(corpus):
    root, _ = corpus
    for case in _file_cases(corpus):
        path = root / case["path"]
        if case["expect"] != "ok" or not path.is_file() or path.is_symlink():
            continue
        assert np.array_equal(load_image(path), load_image(path.read_bytes())), case["name"]


def test_unreadable_file_error_when_not_root(corpus):
    case = _one(corpus, "images", "unreadable.png")
    if os.geteuid() == 0:
        assert case["expect"] == "ok" and case["details"]["root"]
    else:
        with pytest.raises(ImageError, match="unreadable.png.*Permission denied"):
            load_image(corpus[0] / case["path"])


# -- images through the CLI and the streaming API ----------------------------------------------------


def test_cli_batch_reports_each_bad_file_on_one_line_and_goes_on(corpus, model):
    root, _ = corpus
    cases = _file_cases(corpus)
    paths = [str(root / c["path"]) for c in cases]
    r = crnn("recognize", "--model", model, *paths)
    assert r.code == 1
    ok = [c for c in cases if c["expect"] == "ok"]
    bad = [c for c in cases if c["expect"] == "error"]
    lines = r.stdout.splitlines()
    # Every readable image, in input order, once.
    assert [line.split("\t")[0] for line in lines] == [display_path(str(root / c["path"])) for c in ok]
    with Recognizer(model) as rec:
        for line, case in zip(lines, ok):
            expected = rec.recognize_one(load_image(root / case["path"]))
            _, text, conf = line.split("\t")
            assert text == expected.text and float(conf) == pytest.approx(expected.confidence, abs=1e-4)
    errors = r.stderr.splitlines()
    assert errors[-1] == f"crnn: {len(bad)} of {len(cases)} inputs failed"
    skipped = errors[:-1]
    assert len(skipped) == len(bad)
    for line, case in zip(skipped, bad):
        assert line.startswith("crnn: skipped ") and display_path(str(root / case["path"])) in line, line
        assert case["error"] in line


def test_streaming_api_yields_a_result_per_input_in_order(corpus, model):
    root, _ = corpus
    cases = _file_cases(corpus)
    with Recognizer(model, batch_size=4) as rec:
        results = list(rec.recognize([root / c["path"] for c in cases], window=5))
    assert [r.index for r in results] == list(range(len(cases)))
    for r, case in zip(results, cases):
        assert r.ok == (case["expect"] == "ok"), (case["name"], r.error)
        if not r.ok:
            assert case["error"] in r.error and os.path.basename(case["path"]) in display_path(r.error)
            assert r.text == "" and r.confidence == 0.0


def test_directory_named_like_an_image(corpus, model):
    root, _ = corpus
    folder = root / _one(corpus, "images", "folder.png")["path"]
    with pytest.raises(ImageError, match="folder.png: is a directory"):
        load_image(folder)
    # Given on the command line it is a folder like any other: its images (none) are read.
    r = crnn("recognize", "--model", model, folder)
    assert r.code == 1 and r.stdout == ""
    assert r.stderr.strip() == "crnn: no images found in the given inputs"
    # Walking its parent never takes it for a file.
    walked = crnn("recognize", "--model", model, folder.parent)
    assert "folder.png" not in walked.stdout + walked.stderr


@pytest.mark.parametrize("how", ["folder", "glob"])
def test_symlink_loops_end(corpus, model, how):
    root, _ = corpus
    loop = root / "images" / "loop_dir"
    target = str(loop) if how == "folder" else str(loop / "**" / "*.png")
    r = subprocess.run(
        [sys.executable, "-m", "crnn_cli", "recognize", "-r", "--model", str(model), target],
        capture_output=True,
        text=True,
        timeout=60,  # glob.glob(recursive=True) on this tree runs for hours
    )
    assert r.returncode == 0, r.stderr
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == [str(loop / "inside.png")]


# Peak resident memory in KiB. VmHWM belongs to the process's own address space, so it starts afresh at
# exec; getrusage's ru_maxrss survives exec and would start at the size of the (large) pytest parent.
_RSS_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    from crnn_cli.core.errors import ImageError
    from crnn_cli.core.images import load_image

    def peak_kib():
        try:
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    load_image(sys.argv[1])  # warm up: codecs loaded, allocator primed
    out = {}
    for path in sys.argv[2:]:
        before = peak_kib()
        try:
            load_image(path)
            outcome = "decoded"
        except ImageError as exc:
            outcome = str(exc)
        out[path] = [outcome, (peak_kib() - before) / 1024.0]
    print(json.dumps(out))
    """
)


def _peak_memory(paths: list[Path], warm: Path, env: dict[str, str] | None = None) -> dict[str, list]:
    r = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(warm), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_bombs_are_refused_before_any_allocation(corpus):
    root, _ = corpus
    names = [
        "bomb.png",
        "bomb.gif",
        "bomb.jpg",
        "bomb.tiff",
        "bomb.webp",
        "frame_bomb.gif",
        "frame_bomb.png",
        "huge.png",
        "huge_random.png",
    ]
    cases = [_one(corpus, "images", n) for n in names]
    paths = [root / c["path"] for c in cases]
    result = _peak_memory(paths, root / "images" / "good_first.png")
    for case, path in zip(cases, paths):
        outcome, grown_mb = result[str(path)]
        assert case["error"] in outcome, (case["name"], outcome)
        assert grown_mb < 24, f"{case['name']}: peak memory grew by {grown_mb:.0f} MB"


def test_control_the_memory_probe_sees_a_real_decode(corpus):
    # The same probe with the limit raised: huge.png now decodes, and the probe must see it.
    root, _ = corpus
    huge = _one(corpus, "images", "huge.png")
    limit = str(2 * huge["details"]["pixels"])
    env = {"CRNN_MAX_IMAGE_PIXELS": limit, "OPENCV_IO_MAX_IMAGE_PIXELS": limit}
    result = _peak_memory([root / huge["path"]], root / "images" / "good_first.png", env)
    outcome, grown_mb = result[str(root / huge["path"])]
    assert outcome == "decoded"
    assert grown_mb > huge["details"]["pixels"] * 3 / 2**20 * 0.9  # at least the BGR result


# -- models ------------------------------------------------------------------------------------------


def test_models_fail_before_any_image_is_read(corpus, model):
    root, _ = corpus
    image = root / "images" / "good_first.png"
    for case in _cases(corpus, "models"):
        path = root / case["path"]
        r = crnn("recognize", "--model", path, image)
        assert r.code == case["exit_code"], (case["name"], r.stderr)
        if case["exit_code"] == 0:
            assert r.stdout.startswith(f"{image}\t")
            continue
        assert r.stdout == "", case["name"]  # nothing recognised: the model was refused up front
        line = r.stderr.strip()
        assert "\n" not in line and line.startswith("crnn: error: "), (case["name"], r.stderr)
        assert case["error"] in line and path.name in line, (case["name"], line)


def test_model_errors_through_the_api_name_the_model(corpus):
    root, _ = corpus
    for case in _cases(corpus, "models"):
        if case["exit_code"] == 0:
            continue
        path = root / case["path"]
        with pytest.raises(CrnnError) as err:
            Recognizer(path)
        assert path.name in str(err.value) and case["error"] in str(err.value), case["name"]


def test_symbolic_height_works_once_the_shape_is_given(corpus):
    root, _ = corpus
    case = _one(corpus, "models", "symbolic_height.onnx")
    image = root / "images" / "good_first.png"
    r = crnn("recognize", "--model", root / case["path"], *case["details"]["works_with"], image)
    good = crnn("recognize", "--model", root / "models" / "good.onnx", image)
    assert r.code == 0 and r.stdout == good.stdout  # same weights, same dictionary (PaddleOCR's default)


# -- datasets ----------------------------------------------------------------------------------------


def test_dataset_readers_count_bad_lines_and_records(corpus):
    root, _ = corpus
    for case in _cases(corpus, "datasets"):
        path = root / case["path"]
        if case["expect"] == "error":
            with pytest.raises(DatasetError, match=case["error"]):
                open_dataset(path)
            continue
        ds = open_dataset(path)
        want = case["details"]
        assert ds.stats.kept == want["kept"] == len(ds), case["name"]
        assert dict(ds.stats.skipped) == want["skipped"], case["name"]
        if "labels" in want:
            assert [ds[i].label for i in range(len(ds))] == want["labels"]


def test_paths_leaving_the_data_folder_are_refused_when_confined(corpus):
    root, _ = corpus
    case = _one(corpus, "datasets", "escape")
    labels = root / case["path"] / "labels.txt"
    assert len(LabelFileDataset(labels, confine_paths=True)) == case["details"]["kept_if_confined"]
    allowed = LabelFileDataset(labels)
    assert len(allowed) == case["details"]["kept"]
    assert all(s.image.shape[2] == 3 for s in allowed)


def test_eval_counts_bad_samples_and_goes_on(corpus, model):
    root, _ = corpus
    r = crnn("eval", root / "datasets", "--model", model, "--protocol", "exact", "--format", "json", "-q")
    # One dataset of the corpus cannot be opened at all: the others are scored, and the exit status says so.
    assert r.code == 1, r.stderr
    result = json.loads(r.stdout)
    assert {d["name"] for d in result["skipped_datasets"]} == {
        Path(c["path"]).name for c in _cases(corpus, "datasets") if c["expect"] == "error"
    }
    reports = {d["name"]: d for d in result["datasets"]}
    for case in _cases(corpus, "datasets"):
        name = Path(case["path"]).name
        if case["expect"] == "error":
            assert name not in reports
            continue
        got, want = reports[name], case["details"]
        # Every labelled line counts (protocol exact filters nothing); what cannot be read is wrong.
        lost = sum(n for reason, n in want["skipped"].items() if reason != "empty label")
        bad = want.get("bad_samples", 0) + lost
        assert got["bad_samples"] == bad and got["count"] == want["kept"] + lost, name
        assert got["scored"] == got["count"] - bad, name
        assert got["load_skipped"] == want["skipped"], name


def test_eval_names_a_dataset_it_cannot_open(corpus, model):
    root, _ = corpus
    case = _one(corpus, "datasets", "lmdb_nonint")
    r = crnn("eval", root / "datasets", "--model", model, "--protocol", "exact", "--format", "json")
    (line,) = [x for x in r.stderr.splitlines() if "lmdb_nonint" in x]
    assert line.startswith("crnn: skipped dataset") and case["error"] in line
    alone = crnn("eval", root / case["path"], "--model", model, "--format", "json")
    assert alone.code == 1 and "no dataset could be evaluated" in alone.stderr


def test_eval_refuses_escaping_label_paths_when_confined(corpus, model):
    root, _ = corpus
    case = _one(corpus, "datasets", "escape")
    args = ("eval", root / case["path"], "--model", model, "--protocol", "exact", "--format", "json", "-q")
    (report,) = json.loads(crnn(*args, "--confine-paths").stdout)["datasets"]
    assert report["load_skipped"] == {"path outside the data folder": 3}
    assert (report["count"], report["scored"], report["missing"]) == (4, 1, 3)  # refused = wrong
    (report,) = json.loads(crnn(*args).stdout)["datasets"]
    assert (report["count"], report["scored"], report["missing"]) == (4, 4, 0)


# -- training configs --------------------------------------------------------------------------------


def test_config_errors_name_the_key_and_the_file(corpus):
    pytest.importorskip("torch")
    pytest.importorskip("yaml")
    from crnn_torch.config import load_config

    root, _ = corpus
    for case in _cases(corpus, "configs"):
        path = root / case["path"]
        with pytest.raises(ConfigError) as err:
            load_config(path)
        msg = str(err.value)
        assert case["error"] in msg and str(path) in msg, (case["name"], msg)


def test_config_error_on_the_command_line_is_one_line_exit_2(corpus):
    pytest.importorskip("torch")
    root, _ = corpus
    path = root / _one(corpus, "configs", "unknown_key.yml")["path"]
    r = crnn("train", "-c", path)
    assert r.code == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        f"crnn: error: Global.epoch_numb: unknown key; did you mean 'epoch_num'? (in {path})"
    )


# -- hostile files -----------------------------------------------------------------------------------


def _hostile(corpus: tuple[Path, dict[str, Any]], suffix: str) -> list[dict[str, Any]]:
    return [c for c in _cases(corpus, "hostile") if c["path"].endswith(suffix)]


def test_pdparams_payloads_are_refused_by_the_loader(corpus):
    root, _ = corpus
    for case in _hostile(corpus, ".pdparams"):
        with pytest.raises(UnsafeFileError, match="refused to load.*exec"):
            load_pdparams(root / case["path"])
        assert not (root / case["details"]["marker"]).exists()


@pytest.mark.parametrize("suffix", [".pdparams", ".pt"])
def test_recognize_refuses_hostile_models(corpus, suffix):
    pytest.importorskip("torch")
    root, _ = corpus
    image = root / "images" / "good_first.png"
    for case in _hostile(corpus, suffix):
        r = crnn("recognize", "--model", root / case["path"], image)
        assert r.code == 1 and r.stdout == ""
        assert "refused to load" in r.stderr and Path(case["path"]).name in r.stderr
        assert not (root / case["details"]["marker"]).exists()


def test_export_refuses_a_hostile_checkpoint(corpus, tmp_path):
    pytest.importorskip("torch")
    root, _ = corpus
    (case,) = _hostile(corpus, ".pt")
    out = tmp_path / "out.onnx"
    r = crnn("export", root / case["path"], "--to", "onnx", "-o", out)
    assert r.code == 1 and "refused to load" in r.stderr
    assert not out.exists() and not (root / case["details"]["marker"]).exists()


def test_control_the_hostile_checkpoint_really_runs_code(corpus, tmp_path):
    # Shows the refusals above matter: torch.load without weights_only runs the payload.
    pytest.importorskip("torch")
    root, _ = corpus
    (case,) = _hostile(corpus, ".pt")
    copy = tmp_path / "evil.pt"
    marker_text = case["details"]["marker"]
    copy.write_bytes((root / case["path"]).read_bytes())
    code = f"import torch; torch.load({str(copy)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, cwd=tmp_path)
    marker = root / marker_text
    assert marker.exists()
    marker.unlink()  # the other tests check it stays absent


def test_pt_beside_a_pdparams_of_the_same_name_is_read_as_a_checkpoint(corpus, tmp_path):
    pytest.importorskip("torch")
    root, _ = corpus
    (case,) = _hostile(corpus, ".pt")
    (tmp_path / "evil.pt").write_bytes((root / case["path"]).read_bytes())
    (tmp_path / "evil.pdparams").write_bytes(b"\x80\x04N.")
    r = crnn("recognize", "--model", tmp_path / "evil.pt", root / "images" / "good_first.png")
    assert "refused to load" in r.stderr


# -- atomic writes -----------------------------------------------------------------------------------

_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from crnn_cli.core.fileio import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"new model " * 100_000)
            f.flush()
            print(tmp, flush=True)  # the parent kills us once it reads this
            while True:
                f.write(b"more" * 16_384)
                f.flush()
                time.sleep(0.01)
    """
)


def test_sigkill_mid_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")
    child = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        tmp = Path(child.stdout.readline().strip())
        assert tmp.parent == tmp_path and tmp.stat().st_size >= 1_000_000
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"previous model"
    # The half-written file stays under its hidden temporary name (no cleanup runs after SIGKILL).
    assert [p.name for p in tmp_path.iterdir() if p != target] == [tmp.name]
    assert tmp.name.startswith(".model.onnx.") and tmp.name.endswith(".tmp.onnx")
    # The next write still works and replaces the previous file whole.
    fileio.write_bytes_atomic(target, b"next model")
    assert target.read_bytes() == b"next model"


_FILE_SIZE_LIMITED = textwrap.dedent(
    """
    import resource, signal, sys
    from crnn_cli.core.errors import CrnnError
    from crnn_cli.core.fileio import write_bytes_atomic
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
    try:
        write_bytes_atomic(sys.argv[1], b"x" * 1_000_000)
    except CrnnError as exc:
        print(exc)
        sys.exit(3)
    """
)


def test_a_full_disk_gives_a_clear_error_and_keeps_the_previous_file(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")
    r = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMITED, str(target)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 3, r.stderr
    assert r.stdout.strip() == f"cannot write {target}: File too large; the previous file is intact"
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # the temporary file is gone


_CRNN_WITH_SMALL_FILES = textwrap.dedent(
    """
    import resource, runpy, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))  # no file this process writes may pass 64 bytes
    sys.argv = ["crnn", *sys.argv[1:]]
    runpy.run_module("crnn_cli", run_name="__main__")
    """
)


def test_eval_output_on_a_full_disk(corpus, model, tmp_path):
    root, _ = corpus
    out = tmp_path / "result.json"
    out.write_text("previous result")
    args = ["eval", root / "datasets" / "crlf", "--model", model, "--format", "json", "--output", out]
    r = subprocess.run(
        [sys.executable, "-c", _CRNN_WITH_SMALL_FILES, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"crnn: error: cannot write {out}: File too large; the previous file is intact"
    assert out.read_text() == "previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_no_space_while_writing(tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous model")

    def no_space(self: Path, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(CrnnError, match="No space left on device; the previous file is intact"):
        fileio.write_bytes_atomic(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_missing_output_folder(tmp_path):
    with pytest.raises(CrnnError, match="folder .*nope does not exist"):
        fileio.write_bytes_atomic(tmp_path / "nope" / "model.onnx", b"x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"previous model")
    folder.chmod(0o555)
    try:
        with pytest.raises(CrnnError, match="is not writable"):
            fileio.write_bytes_atomic(folder / "model.onnx", b"new")
    finally:
        folder.chmod(0o755)
    assert (folder / "model.onnx").read_bytes() == b"previous model"


def test_refused_temporary_file_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)
    with pytest.raises(CrnnError, match="Permission denied"):
        fileio.write_bytes_atomic(tmp_path / "model.onnx", b"x")


def test_lmdb_dataset_with_a_corrupt_record_raises_only_when_asked(corpus):
    root, _ = corpus
    case = _one(corpus, "datasets", "lmdb_corrupt")
    ds = LmdbDataset(root / case["path"], on_error="raise")
    with pytest.raises(ImageError, match="lmdb_corrupt:2"):
        ds[1]
    forgiving = LmdbDataset(root / case["path"])
    assert forgiving[1].label == "word3"  # the next readable sample stands in
    assert sum(forgiving.stats.skipped.values()) == 1
