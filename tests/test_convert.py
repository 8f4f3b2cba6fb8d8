"""`crnn convert` and `crnn export` end to end: every model to ONNX and OpenVINO, verified.

Golden data: ../shared/fixtures (its README). The converted PaddleOCR models must give PaddleOCR's own
texts and probabilities (max |dp| <= 1e-4) when `crnn recognize` reads the reference images. The CLI runs
in-process through ``crnn_cli.cli.main`` (its error boundary sets the exit codes) with stdout and stderr
captured apart. Converted models are shared per module: each conversion runs once.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from crnn_paddle import paddle_inference as pi

from crnn_cli.cli import main
from crnn_cli.core.backend import Availability
from crnn_cli.core.charset import load_charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.errors import ModelError
from crnn_cli.core.images import cv2
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor
from crnn_cli.core.recognizer import Recognizer
from crnn_cli.core.verify import text_images

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino", reason="needs the OpenVINO runtime: pip install 'crnn[openvino]'")

pytestmark = pytest.mark.shared
torch.set_num_threads(1)  # two cores shared with other work: more threads only add contention

TOL = 1e-4  # fixtures README: what every converter and runtime met
P2O = pi.paddle2onnx_available()
needs_p2o = pytest.mark.skipif(not P2O.ok, reason=f"{P2O.reason}; install with {P2O.hint}")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def crnn(*args: object) -> Run:
    """Run `crnn ARGS` in this process, through main()'s error boundary (exit codes 0 / 1 / 2)."""
    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Run(code, out.getvalue().decode(), err.getvalue().decode())


def converted(args: list[object]) -> Run:
    run = crnn(*args)
    assert run.code == 0, run.stderr
    return run


# -- fixtures: references and shared conversions ------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("convert")


@pytest.fixture(scope="module")
def mv3_refs(mv3_dir: Path) -> dict[int, dict[str, np.ndarray]]:
    return {w: dict(np.load(mv3_dir / f"reference_w{w}.npz")) for w in (100, 320)}


@pytest.fixture(scope="module")
def mv3_images(mv3_refs: dict, data_dir: Path) -> list[Path]:
    paths = [data_dir / "iiit5k_train" / p for p in mv3_refs[100]["paths"]]
    assert list(mv3_refs[320]["paths"]) == list(mv3_refs[100]["paths"])
    return paths


@pytest.fixture(scope="module")
def mv3_onnx(mv3_dir: Path, work: Path) -> tuple[Path, Run]:
    out = work / "mv3.onnx"
    return out, converted(["convert", mv3_dir / "best_accuracy.pdparams", "--to", "onnx", "-o", out])


@pytest.fixture(scope="module")
def mv3_xml(mv3_dir: Path, work: Path) -> tuple[Path, Run]:
    out = work / "mv3.xml"
    return out, converted(["convert", mv3_dir / "best_accuracy.pdparams", "--to", "openvino", "-o", out])


@pytest.fixture(scope="module")
def mv3_pt(mv3_dir: Path, work: Path) -> Path:
    out = work / "mv3.pt"
    converted(["convert", mv3_dir / "best_accuracy.pdparams", "--to", "torch", "-o", out])
    return out


def check_reproduces_paddleocr(model: Path, refs: dict, images: list[Path]) -> float:
    """`crnn recognize` texts and confidences, and Recognizer probabilities, equal PaddleOCR's; max |dp|."""
    worst = 0.0
    for width, ref in refs.items():
        run = crnn(
            "recognize", "--model", model, "--image-shape", f"3,32,{width}", "--fixed-width",
            "--format", "jsonl", *images,
        )  # fmt: skip
        assert run.code == 0, run.stderr
        rows = [json.loads(line) for line in run.stdout.splitlines()]
        assert [r["path"] for r in rows] == [str(p) for p in images]
        assert [r["text"] for r in rows] == [str(t) for t in ref["texts"]]
        np.testing.assert_allclose([r["confidence"] for r in rows], ref["confs"], atol=TOL, rtol=0)
        crops = [cv2.imread(str(p)) for p in images]
        with Recognizer(model, image_shape=(3, 32, width), dynamic_width=False) as rec:
            probs = np.stack(rec.probabilities(crops))
        assert probs.shape == ref["probs"].shape
        diff = float(np.abs(probs - ref["probs"]).max())
        assert diff <= TOL, f"{model.name} at width {width}: max |dp| {diff:.2e}"
        worst = max(worst, diff)
    return worst


def summary_lines(run: Run, prefix: str) -> list[str]:
    return [line for line in run.stdout.splitlines() if line.startswith(prefix)]


# -- 1. PaddleOCR checkpoint and inference models -> ONNX / OpenVINO ---------------------------------


@pytest.mark.parametrize("model", ["mv3_onnx", "mv3_xml"])
def test_pdparams_converts_and_reproduces_paddleocr(
    model: str, request: pytest.FixtureRequest, mv3_refs: dict, mv3_images: list[Path]
) -> None:
    out, run = request.getfixturevalue(model)
    checks = summary_lines(run, "check")
    assert any("285 tensors loaded" in c for c in checks)
    assert any("vs " in c and ": OK:" in c and "decoded strings identical" in c for c in checks), checks
    if out.suffix == ".onnx":
        assert any("onnx.checker (full check" in c for c in checks)
    else:
        assert out.with_suffix(".bin").is_file()
    check_reproduces_paddleocr(out, mv3_refs, mv3_images)


def _hide_paddle(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = Availability(
        False, reason="paddlepaddle is not installed (hidden by the test)", hint=pi.INSTALL_HINT
    )
    monkeypatch.setattr(pi, "paddle_available", lambda: gone)
    monkeypatch.setattr(pi, "paddle2onnx_available", lambda: gone)


def test_legacy_inference_model_to_openvino_needs_no_paddle(
    monkeypatch: pytest.MonkeyPatch, mv3_dir: Path, work: Path, mv3_refs: dict, mv3_images: list[Path]
) -> None:
    _hide_paddle(monkeypatch)
    out = work / "legacy_nopaddle.xml"
    run = converted(["convert", mv3_dir / "inference_legacy", "--to", "openvino", "-o", out])
    assert "reference: OpenVINO reading the .pdmodel directly" in run.stdout
    assert "paddle2onnx" not in run.stdout
    # The verification above compared OpenVINO with itself; the fixtures are the real check.
    check_reproduces_paddleocr(out, mv3_refs, mv3_images)


@needs_p2o
@pytest.mark.parametrize(
    ("folder", "target", "engine"),
    [
        ("inference_legacy", "openvino", "OpenVINO vs source"),  # read directly, verified against Paddle
        ("inference_pir", "onnx", "ONNX Runtime vs source"),
        ("inference_pir", "openvino", "OpenVINO vs source"),
        ("inference_legacy", "onnx", "ONNX Runtime vs source"),
    ],
)
def test_paddle_inference_models_convert_and_reproduce_paddleocr(
    folder: str, target: str, engine: str, mv3_dir: Path, work: Path, mv3_refs: dict, mv3_images: list[Path]
) -> None:
    out = work / f"{folder}.{'xml' if target == 'openvino' else 'onnx'}"
    run = converted(["convert", mv3_dir / folder, "--to", target, "-o", out])
    assert "reference: Paddle Inference (oneDNN off)" in run.stdout
    assert ("paddle2onnx 2.0.1: converted" in run.stdout) == (folder == "inference_pir" or target == "onnx")
    assert any(c.startswith(f"check       {engine}: OK:") for c in run.stdout.splitlines()), run.stdout
    check_reproduces_paddleocr(out, mv3_refs, mv3_images)


# -- 2. PP-OCRv4: a real recognizer, self-describing after conversion ---------------------------------


def test_ppocrv4_to_openvino_reads_the_reference_words_with_no_flags(
    ppocrv4_dir: Path, data_dir: Path, work: Path
) -> None:
    out = work / "ppocrv4.xml"
    keys = ppocrv4_dir / "ppocr_keys_v1.txt"
    run = converted(
        ["convert", ppocrv4_dir, "--to", "openvino", "-o", out, "--dict", keys, "--use-space-char"]
    )
    assert "6624 symbols + blank (space included)" in run.stdout
    ref = np.load(ppocrv4_dir / "reference_w320.npz")
    images = [data_dir / "iiit5k_train" / p for p in ref["paths"]]
    rec = crnn("recognize", "--model", out, "--format", "jsonl", *images)
    assert rec.code == 0, rec.stderr
    texts = [json.loads(line)["text"] for line in rec.stdout.splitlines()]
    assert texts == [str(t) for t in ref["texts"]]  # PLEASE, ATM, photo, 125, MORE!, ...
    # And the IR itself on PaddleOCR's own preprocessed inputs.
    from crnn_cli.core.registry import load_backend

    with load_backend("openvino").open(out, _threads()) as session:
        probs = session.run(ref["inputs"])
    assert float(np.abs(probs - ref["probs"]).max()) <= TOL


def _threads():  # type: ignore[no-untyped-def]
    from crnn_cli.core.backend import SessionOptions

    return SessionOptions(threads=2)


# -- 3. a checkpoint that would run code ---------------------------------------------------------------


class _Payload:
    def __init__(self, func: Callable, args: tuple) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


@pytest.mark.parametrize("kind", ["system", "exec"])
def test_code_running_pdparams_is_refused_and_nothing_runs_or_is_written(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "marker"
    if kind == "system":
        payload, name = _Payload(os.system, (f"touch '{marker}'",)), f"{os.system.__module__}.system"
    else:
        payload, name = _Payload(exec, (f"open({str(marker)!r}, 'w').write('x')",)), "builtins.exec"
    evil = tmp_path / "best_accuracy.pdparams"
    evil.write_bytes(pickle.dumps({"head.fc.weight": np.zeros((2, 2), np.float32), "x": payload}, protocol=4))
    out = tmp_path / "out.onnx"
    run = crnn("convert", evil, "--to", "onnx", "-o", out)
    assert run.code == 1
    assert name in run.stderr and "refused" in run.stderr
    assert run.stdout == ""
    assert not marker.exists()
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_accuracy.pdparams"]


# -- 4. ResNet34_vd from the parameter list -------------------------------------------------------------


def _r34_checkpoint(tsv: Path, path: Path, seed: int = 0) -> None:
    """A PaddleOCR-style r34 checkpoint: params.tsv's names and shapes, random values, pickled as Paddle does."""
    rng = np.random.default_rng(seed)
    state: dict[str, object] = {}
    for line in tsv.read_text().splitlines():
        name, shape_text, _dtype = line.split("\t")
        shape = tuple(int(v) for v in shape_text.strip("[]").split(","))
        if name.endswith("._variance"):
            value = 1.0 + 0.2 * rng.random(shape)  # positive, as running variances are
        elif name.endswith("._mean") or name.endswith("_batch_norm.bias"):
            value = 0.1 * rng.standard_normal(shape)
        elif name.endswith("_batch_norm.weight"):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) == 4:  # conv kernels, He-scaled so 34 layers neither vanish nor explode
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        elif name.startswith("head."):  # a sharp head: probabilities far from uniform
            value = rng.standard_normal(shape) * (0.5 if len(shape) == 2 else 0.1)
        else:  # LSTM
            value = rng.uniform(-1, 1, shape) / 16
        state[name] = np.ascontiguousarray(value, dtype=np.float32)
    for name in list(state):
        if ".cell_" in name:  # Paddle's second copy of each LSTM weight, equal to the flat one
            prefix, layer, cell, param = name.rsplit(".", 3)
            suffix = "_reverse" if cell == "cell_bw" else ""
            state[name] = np.array(state[f"{prefix}.{param}_l{layer}{suffix}"])
    state["StructuredToParameterName@@"] = {k: f"param_{i}" for i, k in enumerate(state)}
    path.write_bytes(pickle.dumps(state, protocol=4))


@pytest.fixture(scope="module")
def r34_pdparams(r34_dir: Path, work: Path) -> Path:
    path = work / "r34" / "best_accuracy.pdparams"
    path.parent.mkdir()
    _r34_checkpoint(r34_dir / "params.tsv", path)
    return path


def _ort(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x})[0]


@pytest.mark.slow
def test_r34_checkpoint_converts_to_onnx_and_openvino_matching_torch(r34_pdparams: Path, work: Path) -> None:
    from crnn_torch.loading import load_paddle_checkpoint
    from crnn_torch.models import WithSoftmax

    onnx_out = work / "r34.onnx"
    run = converted(["convert", r34_pdparams, "--to", "onnx", "-o", onnx_out, "--format", "json"])
    summary = run.json()
    assert summary["metadata"]["architecture"] == "rec_r34_vd_none_bilstm_ctc"
    assert summary["verify"]["ok"] and summary["verify"]["strings_identical"]
    assert summary["verify"]["max_abs_diff"] <= TOL
    assert summary["verify"]["widths"] == [100, 125, 150]

    # Our own check: torch (the Paddle weights) against ONNX Runtime, on crops and on random input.
    model, meta, report = load_paddle_checkpoint(r34_pdparams)
    assert report.ok
    net = WithSoftmax(model).eval()
    rng = np.random.default_rng(1)
    batches = [
        Preprocessor(PreprocessConfig(height=32, width=160)).batch(text_images(4)),
        rng.uniform(-1, 1, (2, 3, 32, 100)).astype(np.float32),
    ]
    run_onnx = _ort(onnx_out)
    charset = load_charset(None)
    for x in batches:
        with torch.inference_mode():
            want = net(torch.from_numpy(x)).numpy()
        got = run_onnx(x)
        assert got.shape == want.shape == (x.shape[0], x.shape[3] // 4, 37)
        assert float(np.abs(got - want).max()) <= TOL
        assert want.max(axis=2).mean() > 0.1  # not uniform: the comparison means something
        assert [d.text for d in decode_greedy(got, charset)] == [d.text for d in decode_greedy(want, charset)]

    xml_out = work / "r34.xml"
    run = converted(["convert", r34_pdparams, "--to", "openvino", "-o", xml_out, "--format", "json"])
    assert run.json()["verify"]["ok"]
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml_out), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    for x in batches:
        assert float(np.abs(compiled(x)[0] - run_onnx(x)).max()) <= TOL


# -- 5. a failed verification writes nothing ---------------------------------------------------------


def _shifted(run: Callable[[np.ndarray], np.ndarray], by: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: run(x) + by


def test_write_verified_with_a_disagreeing_reference_raises_and_writes_nothing(
    mv3_onnx: tuple[Path, Run], tmp_path: Path
) -> None:
    import tempfile

    from crnn_cli.convert import ConvertOptions, ConvertSummary, plugins, write_verified
    from crnn_cli.core.conversion import SourceModel
    from crnn_cli.core.metadata import ModelMetadata

    src, _ = mv3_onnx
    with Recognizer(src) as rec:
        meta = rec.metadata
    writer = plugins().writers["onnx"][1]
    existing = tmp_path / "existing.onnx"
    existing.write_bytes(b"the previous model")
    fresh = tmp_path / "fresh.onnx"
    for out in (existing, fresh):
        opts = ConvertOptions(target="onnx", out=out)
        summary = ConvertSummary(str(src), "onnx", "onnx", out, ModelMetadata())
        model = SourceModel("onnx", src, "onnx", meta, _shifted(_ort(src), 1e-3))
        with (
            tempfile.TemporaryDirectory() as work,
            pytest.raises(ModelError, match=r"FAILED.*max \|dp\| = 1\.00e-03.*was not written"),
        ):
            write_verified(writer, model, opts, summary, Path(work))
    assert existing.read_bytes() == b"the previous model"
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.onnx"]  # no temporary left


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_cli_conversion_failing_verification_exits_1_and_keeps_the_old_output(
    monkeypatch: pytest.MonkeyPatch, mv3_dir: Path, tmp_path: Path, target: str
) -> None:
    import crnn_torch.export as export

    real = export.torch_reference
    monkeypatch.setattr(export, "torch_reference", lambda model: _shifted(real(model), 1e-3))
    out = tmp_path / ("model.xml" if target == "openvino" else "model.onnx")
    old = {out: b"old model", out.with_suffix(".bin"): b"old weights"}
    for path, data in old.items():
        path.write_bytes(data)
    run = crnn("convert", mv3_dir / "best_accuracy.pdparams", "--to", target, "-o", out)
    assert run.code == 1
    assert "FAILED" in run.stderr and "1.00e-03" in run.stderr and "not written" in run.stderr
    assert run.stdout == ""
    assert {p: p.read_bytes() for p in old} == old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in old)


# -- 6. crnn export from a crnn checkpoint -------------------------------------------------------------


def test_export_checkpoint_to_onnx_and_openvino_reproduces_paddleocr(
    mv3_pt: Path, work: Path, mv3_refs: dict, mv3_images: list[Path]
) -> None:
    refs = {100: mv3_refs[100]}  # width 320 is covered by the conversions above
    for suffix, target in ((".onnx", "onnx"), (".xml", "openvino")):
        out = work / f"exported{suffix}"
        run = converted(["export", mv3_pt, "--to", target, "-o", out, "--format", "json"])
        summary = run.json()
        assert summary["source_kind"] == "checkpoint" and summary["target"] == target
        assert summary["verify"]["ok"] and summary["verify"]["max_abs_diff"] <= TOL
        assert summary["quantization"] is None
        check_reproduces_paddleocr(out, refs, mv3_images)


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_export_static_width_gives_a_fixed_width_input(
    target: str, mv3_pt: Path, mv3_onnx: tuple[Path, Run], work: Path
) -> None:
    out = work / f"static160.{'xml' if target == 'openvino' else 'onnx'}"
    summary = converted(
        ["export", mv3_pt, "--to", target, "-o", out, "--static-width", "160", "--format", "json"]
    ).json()
    assert summary["metadata"]["input"]["width"] == 160
    assert summary["metadata"]["input"]["dynamic_width"] is False
    assert summary["verify"]["widths"] == [160]
    from crnn_cli.core.backend import SessionOptions
    from crnn_cli.core.registry import load_backend

    with load_backend("onnxruntime" if target == "onnx" else "openvino").open(out, SessionOptions()) as s:
        assert s.info.input_shape == (None, 3, 32, 160)
        with Recognizer(out) as rec:  # the file says its width: no flags needed
            assert rec.metadata.width == 160 and not rec.metadata.dynamic_width
        x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 32, 160)).astype(np.float32)
        assert float(np.abs(s.run(x) - _ort(mv3_onnx[0])(x)).max()) <= TOL
        with pytest.raises(ModelError, match="must be 160"):
            s.run(np.zeros((1, 3, 32, 100), np.float32))


def test_export_max_width_sets_how_wide_crops_stay_unsquashed(mv3_pt: Path, work: Path) -> None:
    out = work / "wide.onnx"
    summary = converted(
        ["export", mv3_pt, "--to", "onnx", "-o", out, "--max-width", "960", "--format", "json"]
    )
    assert summary.json()["metadata"]["input"]["max_width"] == 960
    with Recognizer(out) as rec:
        assert rec.preprocess_config.max_width == 960
        assert rec.preprocess_config.sizes(32, 900) == (900, 928)  # 900 px kept, padded to a multiple of 32
    run = crnn(
        "export", mv3_pt, "--to", "onnx", "-o", work / "x.onnx", "--max-width", "960", "--static-width", "160"
    )
    assert run.code == 2 and "--max-width applies to dynamic-width models" in run.stderr


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_onnx_source_reconverts_with_a_static_width(
    target: str, mv3_onnx: tuple[Path, Run], work: Path
) -> None:
    src = mv3_onnx[0]
    out = work / f"from_onnx_static.{'xml' if target == 'openvino' else 'onnx'}"
    summary = converted(
        ["convert", src, "--to", target, "-o", out, "--static-width", "160", "--format", "json"]
    ).json()
    assert summary["source_kind"] == "onnx"
    assert summary["metadata"]["architecture"] == "rec_mv3_none_bilstm_ctc"  # read from the source
    assert summary["verify"]["widths"] == [160] and summary["verify"]["ok"]
    with Recognizer(out) as rec:
        assert rec.session.info.input_shape == (None, 3, 32, 160)
        assert (rec.metadata.width, rec.metadata.dynamic_width) == (160, False)
    run = crnn("convert", out, "--to", "onnx", "-o", work / "x.onnx", "--static-width", "200")
    if target == "onnx":  # a fixed-width source cannot be given another width
        assert run.code == 2 and "fixed input width of 160" in run.stderr
    else:
        assert run.code == 2 and "converting from openvino is not supported" in run.stderr
    assert not (work / "x.onnx").exists()


def test_export_fp16_openvino_is_half_size_and_decodes_identically(
    mv3_pt: Path, mv3_xml: tuple[Path, Run], work: Path, mv3_refs: dict, mv3_images: list[Path]
) -> None:
    out = work / "fp16.xml"
    run = converted(["export", mv3_pt, "--to", "openvino", "-o", out, "--fp16"])
    assert "OpenVINO IR written (FP16 weights)" in run.stdout
    fp32_bin = mv3_xml[0].with_suffix(".bin").stat().st_size
    assert out.with_suffix(".bin").stat().st_size < 0.55 * fp32_bin
    assert 'element_type="f16"' in out.read_text()
    ref = mv3_refs[100]
    crops = [cv2.imread(str(p)) for p in mv3_images]
    with Recognizer(out, image_shape=(3, 32, 100), dynamic_width=False) as rec:
        decoded = rec.predict_batch(crops)
        probs = np.stack(rec.probabilities(crops))
    assert [d.text for d in decoded] == [str(t) for t in ref["texts"]]
    assert float(np.abs(probs - ref["probs"]).max()) <= 2e-2  # FP16 weights: not the FP32 tolerance
    assert (probs.argmax(axis=2) == ref["probs"].argmax(axis=2)).all()


# -- 7. usage errors -------------------------------------------------------------------------------


def test_dictionary_that_does_not_fit_the_model_is_a_usage_error(mv3_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.onnx"
    run = crnn("convert", mv3_dir / "best_accuracy.pdparams", "--to", "onnx", "-o", out, "--dict", "en")
    assert run.code == 2
    assert "dictionary 'en' gives 95 classes" in run.stderr and "predicts 37" in run.stderr
    assert run.stderr.count("\n") == 1 and run.stdout == ""
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--to", "onnx", "--fp16"], "--fp16 compresses OpenVINO IR weights"),
        (["--to", "torch", "--static-width", "160"], "--static-width applies to ONNX and OpenVINO"),
        (["--to", "onnx", "--int8"], "--int8 needs --calibration DIR"),
        (["--to", "torch", "--int8", "--calibration", "."], "--int8 applies to ONNX and OpenVINO"),
        (["--to", "onnx", "--calibration", "."], "--calibration is only used with --int8"),
    ],
)
def test_option_combinations_that_cannot_work_exit_2(
    mv3_dir: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    out = tmp_path / "out.model"
    run = crnn("convert", mv3_dir / "best_accuracy.pdparams", "-o", out, *extra)
    assert run.code == 2
    assert message in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_folder_must_exist_and_export_refuses_other_sources(mv3_dir: Path, tmp_path: Path) -> None:
    run = crnn(
        "convert", mv3_dir / "best_accuracy.pdparams", "--to", "onnx", "-o", tmp_path / "no" / "x.onnx"
    )
    assert run.code == 2 and "does not exist" in run.stderr
    run = crnn("export", mv3_dir / "best_accuracy.pdparams", "--to", "onnx", "-o", tmp_path / "x.onnx")
    assert run.code == 2 and "is not a crnn checkpoint" in run.stderr


def test_summary_shows_the_padding_rule_preprocessing_applies(tmp_path: Path) -> None:
    """The model line names the narrowest padded width and the step (the metadata's, else 100 / 32)."""
    from crnn_cli.convert import ConvertSummary
    from crnn_cli.core.metadata import ModelMetadata

    def model_line(**meta: Any) -> str:
        summary = ConvertSummary("m.onnx", "onnx", "onnx", tmp_path / "o.onnx", ModelMetadata(**meta))
        return next(line for line in summary.lines() if line.startswith("model"))

    assert "(width dynamic, min 32, steps of 8)" in model_line(
        height=32, width=100, min_width=32, width_step=8
    )
    assert "(width dynamic, min 100, steps of 32)" in model_line(height=32, width=100)
    assert "3x32x320," in model_line(height=32, width=320, dynamic_width=False)
