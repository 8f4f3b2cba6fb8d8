"""`crnn recognize` end to end through click's CliRunner: options, formats, inputs, errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from models_util import make_tiny_onnx, reference_forward

from crnn_cli.cli import cli
from crnn_cli.core.charset import load_charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor


def run(*args, input=None):
    runner = CliRunner()
    return runner.invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_onnx(tmp_path_factory.mktemp("m") / "tiny.onnx")


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, w in enumerate((40, 100, 260)):
        img = rng.integers(0, 256, (32, w, 3), dtype=np.uint8)
        p = folder / f"im{i}.png"
        cv2.imwrite(str(p), img)
        paths.append(p)
    cv2.imwrite(str(folder / "sub" / "deep.png"), rng.integers(0, 256, (20, 50, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder, paths


def expected_text(path, width_min=100):
    """What the tiny model must read: our preprocessing + the numpy reference forward + greedy CTC."""
    img = cv2.imread(str(path))
    cfg = PreprocessConfig(height=32, width=width_min, dynamic_width=True)
    x = Preprocessor(cfg)(img)[None]
    return decode_greedy(reference_forward(x), load_charset(None))[0]


def test_help_for_every_command():
    for cmd in ("recognize", "eval", "train", "export", "convert", "backends"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Usage:" in r.output, cmd


def test_text_output_is_correct_and_in_input_order(tiny, images):
    _, paths = images
    order = [paths[2], paths[0], paths[1]]
    r = run("recognize", "--model", str(tiny), *map(str, order))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(p) for p in order]
    for line, p in zip(lines, order):
        path, text, conf = line.split("\t")
        exp = expected_text(p)
        assert text == exp.text
        assert float(conf) == pytest.approx(exp.confidence, abs=1e-4)


def test_jsonl_with_char_confidences(tiny, images):
    _, paths = images
    r = run("recognize", "--model", str(tiny), "--format", "jsonl", "--char-confidences", str(paths[1]))
    rec = json.loads(r.stdout)
    assert set(rec) == {"path", "text", "confidence", "char_confidences"}
    assert len(rec["char_confidences"]) == len(rec["text"])


def test_tsv_has_header(tiny, images):
    _, paths = images
    r = run("recognize", "--model", str(tiny), "--format", "tsv", str(paths[0]))
    assert r.stdout.splitlines()[0] == "path\ttext\tconfidence"


def test_directory_recursive_and_glob(tiny, images):
    folder, _ = images
    flat = run("recognize", "--model", str(tiny), str(folder))
    assert len(flat.stdout.splitlines()) == 3  # .txt is not an image name; sub/ not walked
    deep = run("recognize", "--model", str(tiny), "--recursive", str(folder))
    assert len(deep.stdout.splitlines()) == 4
    globbed = run("recognize", "--model", str(tiny), str(folder / "im*.png"))
    assert len(globbed.stdout.splitlines()) == 3


def test_stdin_paths(tiny, images):
    _, paths = images
    r = run("recognize", "--model", str(tiny), "-", input="\n".join(map(str, paths)) + "\n")
    assert r.exit_code == 0
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == [str(p) for p in paths]


def test_bad_inputs_are_reported_and_the_rest_go_on(tiny, images, tmp_path):
    _, paths = images
    bad = tmp_path / "bad.png"
    bad.write_text("definitely not a png")
    r = run(
        "recognize",
        "--model",
        str(tiny),
        str(paths[0]),
        str(bad),
        str(tmp_path / "missing.png"),
        str(paths[1]),
    )
    assert r.exit_code == 1
    assert len(r.stdout.splitlines()) == 2
    assert "bad.png" in r.stderr and "missing.png: no such file" in r.stderr
    assert "2 of 4 inputs failed" in r.stderr
    quiet = run("recognize", "-q", "--model", str(tiny), str(bad))
    assert quiet.exit_code == 1 and quiet.stderr == ""


def test_usage_errors_exit_2(tiny, images):
    _, paths = images
    for args in (
        ["--batch-size", "0"],
        ["--format", "xml"],
        ["--decoder", "viterbi"],
    ):
        r = run("recognize", "--model", str(tiny), *args, str(paths[0]))
        assert r.exit_code == 2, args


def test_dictionary_mismatch_is_a_clear_error(tiny, images):
    _, paths = images
    r = subprocess.run(
        [sys.executable, "-m", "crnn_cli", "recognize", "--model", str(tiny), "--dict", "en", str(paths[0])],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "dictionary 'en' gives 95 classes" in r.stderr and "predicts 37" in r.stderr
    assert r.stdout == ""
    # The bundled model carries its dictionary: the fix is to leave --dict out, and the message says so.
    r = subprocess.run(
        [sys.executable, "-m", "crnn_cli", "recognize", "--dict", "ic15", str(paths[0])],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert "carries its own dictionary" in r.stderr and r.stderr.rstrip().endswith("drop --dict")


def test_unknown_backend_one_line_error(tiny, images):
    _, paths = images
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "crnn_cli",
            "recognize",
            "--backend",
            "tensorrt",
            "--model",
            str(tiny),
            str(paths[0]),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert "unknown backend 'tensorrt'" in r.stderr


def test_batch_size_does_not_change_results_and_beam_runs(tiny, images):
    folder, _ = images
    greedy = run("recognize", "--model", str(tiny), "--batch-size", "1", str(folder)).stdout
    batched = run("recognize", "--model", str(tiny), "--batch-size", "64", str(folder)).stdout
    assert greedy == batched
    beam = run("recognize", "--model", str(tiny), "--decoder", "beam", "--beam-width", "5", str(folder))
    assert beam.exit_code == 0
    # Random weights: beam search may find a more probable text than best path; it must report one per input.
    assert [line.split("\t")[0] for line in beam.stdout.splitlines()] == [
        line.split("\t")[0] for line in greedy.splitlines()
    ]


def test_fixed_width_and_image_shape_options(tiny, images):
    _, paths = images
    wide = paths[2]  # 260 px: squashed to 100 in fixed mode, kept in dynamic mode
    fixed = run("recognize", "--model", str(tiny), "--image-shape", "3,32,100", "--fixed-width", str(wide))
    dynamic = run("recognize", "--model", str(tiny), "--dynamic-width", str(wide))
    img = cv2.imread(str(wide))
    x = Preprocessor(PreprocessConfig(height=32, width=100))(img)[None]
    exp = decode_greedy(reference_forward(x), load_charset(None))[0]
    assert fixed.stdout.split("\t")[1] == exp.text
    assert dynamic.stdout.split("\t")[1] == expected_text(wide).text


def test_threads_and_no_rotate_accepted(tiny, tmp_path):
    tall = tmp_path / "tall.png"
    cv2.imwrite(str(tall), np.random.default_rng(1).integers(0, 256, (90, 30, 3), dtype=np.uint8))
    a = run("recognize", "--model", str(tiny), "--threads", "1", str(tall))
    b = run("recognize", "--model", str(tiny), "--no-rotate", str(tall))
    assert a.exit_code == b.exit_code == 0


def test_non_utf8_file_name(tiny, tmp_path):
    name = os.fsdecode(b"caf\xe9.png")
    p = tmp_path / name
    cv2.imencode(".png", np.zeros((32, 64, 3), np.uint8))[1].tofile(str(p))
    r = run("recognize", "--model", str(tiny), str(tmp_path))
    assert r.exit_code == 0
    assert "caf\\xe9.png" in r.stdout


def test_backends_command_json():
    r = run("backends", "--format", "json")
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["onnxruntime"]["available"] is True
    assert "infer" in rows["onnxruntime"]["capabilities"]
    assert {"onnxruntime", "openvino", "torch"} <= set(rows)


def test_console_script_flushes_everything_before_its_fast_exit(tiny, tmp_path):
    """The installed `crnn` ends recognize with os._exit: every line must be out first, exit codes kept."""
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(150):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (32, 60 + i % 50, 3), dtype=np.uint8))
    (folder / "999.png").write_bytes(b"not a png")
    exe = [sys.executable, "-c", "from crnn_cli.cli import main; main()"]
    out = tmp_path / "out.tsv"
    with out.open("w") as f:
        proc = subprocess.run(
            exe + ["recognize", "--model", str(tiny), str(folder)], stdout=f, stderr=subprocess.PIPE
        )
    lines = out.read_text().splitlines()
    assert proc.returncode == 1  # one input failed
    assert len(lines) == 150 and lines[-1].startswith(str(folder / "149.png")), lines[-3:]
    assert b"999.png" in proc.stderr and b"1 of 151 inputs failed" in proc.stderr
    # A reader that leaves early (| head) is no error of ours.
    head = subprocess.Popen(["head", "-n", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    proc = subprocess.run(
        exe + ["recognize", "--model", str(tiny), "-q", str(folder)],
        stdout=head.stdin,
        stderr=subprocess.PIPE,
    )
    head.stdin.close()
    assert len(head.stdout.read().splitlines()) == 2 and head.wait() == 0
    assert proc.returncode in (0, 1) and b"Traceback" not in proc.stderr and b"Exception" not in proc.stderr


def test_folder_on_a_terminal_shows_total_rate_and_a_summary(tiny, tmp_path):
    """stderr on a terminal: a bar that knows the total (so a rate and ETA), then one summary line."""
    from terminal_util import run_on_terminal

    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(40):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (32, 60, 3), dtype=np.uint8))
    (folder / "999.png").write_bytes(b"not a png")
    command = [sys.executable, "-m", "crnn_cli", "recognize", "--model", str(tiny), str(folder)]
    code, err, out = run_on_terminal(command, "stderr", env=dict(os.environ, COLUMNS="120"))
    assert code == 1 and len(out.decode().splitlines()) == 40
    assert "0/41" in err and "img/s" in err, err  # the bar counts toward a known total
    summary = [line for line in err.replace("\r", "\n").splitlines() if "images recognized" in line]
    assert len(summary) == 1 and "crnn: 40 of 41 images recognized in " in summary[0], err
    assert summary[0].rstrip().endswith("img/s), 1 failed"), summary


def test_folder_of_subfolders_hints_recursive(tiny, tmp_path):
    nested = tmp_path / "crops" / "part1"
    nested.mkdir(parents=True)
    cv2.imwrite(str(nested / "a.png"), np.full((32, 60, 3), 255, np.uint8))
    r = run("recognize", "--model", str(tiny), str(tmp_path / "crops"))
    assert r.exit_code == 1 and r.stdout == ""
    assert "no images found" in r.stderr and "add -r (--recursive)" in r.stderr
    assert run("recognize", "--model", str(tiny), "-r", str(tmp_path / "crops")).exit_code == 0


def test_backends_table_fits_80_columns():
    r = CliRunner().invoke(cli, ["backends"], env={"COLUMNS": "80"}, catch_exceptions=False)
    lines = r.stdout.splitlines()
    assert r.exit_code == 0 and max(len(line) for line in lines) <= 80, r.stdout
    header = next(line for line in lines if "name" in line)
    assert header.split() == ["name", "infer", "read", "/", "write", "quantize", "train", "status"]


def test_pdparams_without_config_says_what_it_assumes(mv3_dir, images, tmp_path):
    """No config.yml beside a PaddleOCR checkpoint: one warning line names the defaults taken."""
    pytest.importorskip("torch")
    import shutil

    _, paths = images
    crnn = [sys.executable, "-c", "from crnn_cli.cli import main; main()", "recognize"]
    bare = subprocess.run(
        [*crnn, "--model", str(mv3_dir / "best_accuracy.pdparams"), str(paths[0])],
        capture_output=True,
        text=True,
    )
    assert bare.returncode == 0 and len(bare.stdout.splitlines()) == 1, bare.stderr
    assert bare.stderr == (
        f"crnn: warning: {mv3_dir / 'best_accuracy.pdparams'}: no config.yml beside it, so crnn assumes "
        "PaddleOCR's defaults: dictionary ic15 (0-9a-z, no space) and input 3x32x100; put the training "
        "config.yml beside the checkpoint if the model was trained otherwise\n"
    )
    shutil.copy(mv3_dir / "best_accuracy.pdparams", tmp_path / "best_accuracy.pdparams")
    (tmp_path / "config.yml").write_text(
        "Global: {character_dict_path: null}\n"
        "Eval: {dataset: {transforms: [{RecResizeImg: {image_shape: [3, 32, 100]}}]}}\n"
    )
    with_config = subprocess.run(
        [*crnn, "--model", str(tmp_path / "best_accuracy.pdparams"), str(paths[0])],
        capture_output=True,
        text=True,
    )
    assert with_config.returncode == 0 and with_config.stderr == ""
    assert with_config.stdout.split("\t")[1:] == bare.stdout.split("\t")[1:]
