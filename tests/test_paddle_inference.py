"""Paddle inference models -> ONNX with paddle2onnx, checked against PaddleOCR's own outputs (fixtures).

Conversion tests need paddle2onnx 2.0.1 and paddlepaddle (``pip install 'crnn[paddle]'``) and skip without
them; locating models, the failure paths and the OpenVINO reference run without Paddle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from crnn_paddle import paddle_inference as pi

from crnn_cli.core.backend import Availability
from crnn_cli.core.charset import load_charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.errors import BackendError, ModelError, UsageError

TOL = 1e-4  # fixtures README: what held for every converter and runtime tried
P2O = pi.paddle2onnx_available()
PADDLE = pi.paddle_available()
needs_p2o = pytest.mark.skipif(not P2O.ok, reason=f"{P2O.reason}; install with {P2O.hint}")
needs_paddle = pytest.mark.skipif(not PADDLE.ok, reason=f"{PADDLE.reason}; install with {PADDLE.hint}")

# name -> (model folder below fixtures, reference files, dictionary file or None)
MODELS = {
    "mv3_legacy": ("paddle_crnn_mv3/inference_legacy", ["reference_w100.npz", "reference_w320.npz"], None),
    "mv3_pir": ("paddle_crnn_mv3/inference_pir", ["reference_w100.npz", "reference_w320.npz"], None),
    "ppocrv4": ("ppocrv4_rec", ["reference_w320.npz"], "ppocr_keys_v1.txt"),
}


def _model_dir(fixtures_dir: Path, name: str) -> Path:
    return fixtures_dir / MODELS[name][0]


def _references(fixtures_dir: Path, name: str) -> list[dict[str, np.ndarray]]:
    folder = fixtures_dir / MODELS[name][0].split("/")[0]
    return [dict(np.load(folder / f, allow_pickle=False)) for f in MODELS[name][1]]


def _charset(fixtures_dir: Path, name: str):
    dict_file = MODELS[name][2]
    if dict_file is None:
        return load_charset(None)
    return load_charset(fixtures_dir / MODELS[name][0] / dict_file, use_space_char=True)


def _ort(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _check_parity(run, refs, charset) -> float:
    """Probabilities within TOL of PaddleOCR's, decoded texts identical to its own; returns max |dp|."""
    worst = 0.0
    for ref in refs:
        probs = run(ref["inputs"])
        assert probs.shape == ref["probs"].shape
        diff = float(np.abs(probs - ref["probs"]).max())
        worst = max(worst, diff)
        assert diff <= TOL, f"max |dp| {diff:.2e} at width {ref['inputs'].shape[3]}"
        texts = [d.text for d in decode_greedy(probs, charset)]
        assert texts == [d.text for d in decode_greedy(ref["probs"], charset)]
        assert texts == list(ref["texts"])
    return worst


def _dims(value) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


# -- locating models (no Paddle needed) -----------------------------------------------------------------


def test_find_inference_model_folders_and_files(mv3_dir: Path, ppocrv4_dir: Path) -> None:
    legacy = pi.find_inference_model(mv3_dir / "inference_legacy")
    assert legacy == (
        mv3_dir / "inference_legacy/inference.pdmodel",
        mv3_dir / "inference_legacy/inference.pdiparams",
        "legacy",
    )
    model_file, params_file, fmt = pi.find_inference_model(mv3_dir / "inference_pir")
    assert (model_file.name, params_file.name, fmt) == ("inference.json", "inference.pdiparams", "pir")
    assert pi.find_inference_model(ppocrv4_dir / "inference.pdiparams").format == "legacy"
    assert pi.find_inference_model(mv3_dir / "inference_pir/inference.json").format == "pir"


def test_find_inference_model_prefers_as_asked_when_both_formats(mv3_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "inference.pdiparams").symlink_to(mv3_dir / "inference_pir/inference.pdiparams")
    (tmp_path / "inference.json").symlink_to(mv3_dir / "inference_pir/inference.json")
    (tmp_path / "inference.pdmodel").symlink_to(mv3_dir / "inference_legacy/inference.pdmodel")
    (tmp_path / "inference.yml").write_text("Global: {}\n")
    assert pi.find_inference_model(tmp_path).format == "pir"
    assert pi.find_inference_model(tmp_path, prefer="legacy").model_file.name == "inference.pdmodel"
    with pytest.raises(UsageError, match="prefer"):
        pi.find_inference_model(tmp_path, prefer="onnx")


def test_find_inference_model_errors(mv3_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        pi.find_inference_model(tmp_path / "nope")
    with pytest.raises(ModelError, match="holds no Paddle inference model"):
        pi.find_inference_model(tmp_path)
    # A graph without its weights: paddle2onnx would write a model without weights and exit 0.
    (tmp_path / "inference.json").symlink_to(mv3_dir / "inference_pir/inference.json")
    with pytest.raises(ModelError, match=r"weights inference\.pdiparams are missing"):
        pi.find_inference_model(tmp_path / "inference.json")
    (tmp_path / "config.json").write_text('{"not": "a model"}')
    with pytest.raises(ModelError, match="not a Paddle PIR program"):
        pi.find_inference_model(tmp_path / "config.json")
    with pytest.raises(ModelError, match="expected .pdmodel, .json or .pdiparams"):
        pi.find_inference_model(mv3_dir / "params.tsv")


# -- availability ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("installed", "wanted"),
    [
        ({}, "paddle2onnx is not installed"),
        ({"paddle2onnx": "1.3.1", "paddlepaddle": "3.3.1"}, "writes an empty file for PIR"),
        ({"paddle2onnx": "2.1.0", "paddlepaddle": "3.3.1"}, "2.1.0 writes invalid ONNX"),
        ({"paddle2onnx": "2.0.1"}, "paddle2onnx needs Paddle: paddlepaddle is not installed"),
    ],
)
def test_paddle2onnx_availability_refuses_untrusted_setups(monkeypatch, installed, wanted) -> None:
    monkeypatch.setattr(
        pi, "_dist_version", lambda *names: next((installed[n] for n in names if n in installed), None)
    )
    monkeypatch.setattr(pi, "find_spec", lambda name: object())
    avail = pi.paddle2onnx_available()
    assert not avail.ok
    assert wanted in avail.reason
    assert avail.hint == "pip install 'crnn[paddle]'"


def test_import_stays_cheap() -> None:
    code = (
        "import sys, crnn_paddle.paddle_inference as m; m.paddle2onnx_available(); m.paddle_available(); "
        "print(sorted(n for n in ('paddle', 'paddle2onnx', 'onnx', 'torch', 'openvino') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- failures paddle2onnx hides (its output is never trusted) ---------------------------------------------


@pytest.fixture
def fake_child(monkeypatch):
    """Replace the paddle2onnx child by one that writes the given bytes and exits 0."""

    def install(data: bytes) -> None:
        pytest.importorskip("onnx")
        monkeypatch.setattr(
            pi, "paddle2onnx_available", lambda: Availability(True, version="paddle2onnx 2.0.1")
        )
        monkeypatch.setattr(
            pi, "_run_child", lambda args, work, timeout: Path(args["save_file"]).write_bytes(data)
        )

    return install


def test_empty_output_is_an_error_and_target_untouched(fake_child, mv3_dir: Path, tmp_path: Path) -> None:
    fake_child(b"")
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous")
    with pytest.raises(ModelError, match="exited normally but wrote no model"):
        pi.convert_with_paddle2onnx(mv3_dir / "inference_pir", out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_invalid_output_is_an_error(fake_child, mv3_dir: Path, tmp_path: Path) -> None:
    fake_child(b"\x08\x07garbage that is not an onnx model")
    with pytest.raises(ModelError, match="wrote an invalid ONNX file"):
        pi.convert_with_paddle2onnx(mv3_dir / "inference_pir", tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_bad_options_are_usage_errors(mv3_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="optimize_tool"):
        pi.convert_with_paddle2onnx(
            mv3_dir / "inference_pir", tmp_path / "m.onnx", optimize_tool="polygraphy"
        )
    with pytest.raises(UsageError, match="opset must be an integer >= 7"):
        pi.convert_with_paddle2onnx(mv3_dir / "inference_pir", tmp_path / "m.onnx", opset=5)


# -- real conversions -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def converted(fixtures_dir: Path, tmp_path_factory) -> dict[str, tuple[Path, list[str], list[str]]]:
    """Each fixture model converted once, from an empty working directory with a private TMPDIR.

    name -> (onnx file, files in the working directory afterwards, files left in TMPDIR).
    """
    if not P2O.ok:
        pytest.skip(f"{P2O.reason}; install with {P2O.hint}")
    root = tmp_path_factory.mktemp("p2o")
    results = {}
    old_cwd, old_tmp = os.getcwd(), tempfile.tempdir
    for name in MODELS:
        cwd, tmp = root / f"{name}_cwd", root / f"{name}_tmp"
        cwd.mkdir()
        tmp.mkdir()
        os.chdir(cwd)
        tempfile.tempdir = str(tmp)
        try:
            out = pi.convert_with_paddle2onnx(_model_dir(fixtures_dir, name), root / f"{name}.onnx")
        finally:
            os.chdir(old_cwd)
            tempfile.tempdir = old_tmp
        results[name] = (out, sorted(os.listdir(cwd)), sorted(os.listdir(tmp)))
    return results


@needs_p2o
@pytest.mark.parametrize("name", list(MODELS))
def test_conversion_reproduces_paddleocr(converted, fixtures_dir: Path, name: str) -> None:
    import onnx

    path, cwd_files, tmp_files = converted[name]
    assert cwd_files == [] and tmp_files == []  # no sym_shape_infer_temp.onnx, no intermediate models
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    height, classes = (48, 6625) if name == "ppocrv4" else (32, 37)
    assert _dims(model.graph.input[0]) == ["batch", 3, height, "width"]
    assert _dims(model.graph.output[0]) == ["batch", "time", classes]
    assert model.producer_name == "paddle2onnx"
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {14}
    _check_parity(_ort(path), _references(fixtures_dir, name), _charset(fixtures_dir, name))


@needs_p2o
def test_dynamic_batch_and_width(converted, fixtures_dir: Path) -> None:
    run = _ort(converted["mv3_pir"][0])
    ref = _references(fixtures_dir, "mv3_pir")[1]  # width 320
    one = run(ref["inputs"][3:4])
    assert one.shape == (1, 80, 37)
    np.testing.assert_allclose(one, ref["probs"][3:4], atol=TOL, rtol=0)
    assert run(np.zeros((2, 3, 32, 48), np.float32)).shape == (2, 12, 37)


@needs_p2o
def test_options_opset_raw_dims_and_props(mv3_dir: Path, fixtures_dir: Path, tmp_path: Path) -> None:
    import onnx

    props = {"character": "a\nb", "crnn.metadata": "{}"}
    out = pi.convert_with_paddle2onnx(
        mv3_dir / "inference_legacy/inference.pdmodel",
        tmp_path / "m17.onnx",
        opset=17,
        optimize_tool=None,
        props=props,
        name_dims=False,
    )
    model = onnx.load(str(out))
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
    # What paddle2onnx 2.0.1 itself writes: one fresh symbol per dynamic dim.
    assert _dims(model.graph.input[0]) == ["DynamicDimension.0", 3, 32, "DynamicDimension.1"]
    assert _dims(model.graph.output[0]) == ["DynamicDimension.2", "DynamicDimension.3", 37]
    assert {p.key: p.value for p in model.metadata_props} == props
    _check_parity(_ort(out), _references(fixtures_dir, "mv3_legacy"), load_charset(None))


@needs_p2o
def test_paddle2onnx_abort_is_a_model_error(mv3_dir: Path, tmp_path: Path) -> None:
    # paddle2onnx's C++ core calls abort() when the opset is too low; the child isolates that.
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous")
    with pytest.raises(ModelError, match=r"paddle2onnx crashed \(SIGABRT\).*opset_version to 14"):
        pi.convert_with_paddle2onnx(mv3_dir / "inference_pir", out, opset=11)
    assert out.read_bytes() == b"previous"


@needs_p2o
def test_corrupt_graph_is_a_model_error(mv3_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "inference.json").write_bytes((mv3_dir / "inference_pir/inference.json").read_bytes()[:5000])
    shutil.copy(mv3_dir / "inference_pir/inference.pdiparams", src)
    with pytest.raises(ModelError, match="paddle2onnx failed.*parse error"):
        pi.convert_with_paddle2onnx(src, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


# -- references -----------------------------------------------------------------------------------------


@needs_paddle
@pytest.mark.parametrize("name", ["mv3_pir", "ppocrv4"])
def test_paddle_reference_reproduces_fixtures(fixtures_dir: Path, name: str) -> None:
    run = pi.paddle_reference(_model_dir(fixtures_dir, name), threads=2)
    _check_parity(run, _references(fixtures_dir, name), _charset(fixtures_dir, name))
    if name == "mv3_pir":
        assert pi.reference_runner(_model_dir(fixtures_dir, name), threads=2)[0] == "paddle"


@pytest.mark.parametrize("name", ["mv3_legacy", "ppocrv4"])
def test_openvino_reference_reproduces_fixtures(fixtures_dir: Path, name: str) -> None:
    pytest.importorskip("openvino")
    run = pi.openvino_reference(_model_dir(fixtures_dir, name), threads=2)
    _check_parity(run, _references(fixtures_dir, name), _charset(fixtures_dir, name))


def test_openvino_reference_refuses_pir(mv3_dir: Path) -> None:
    with pytest.raises(ModelError, match="OpenVINO reads only the legacy .pdmodel"):
        pi.openvino_reference(mv3_dir / "inference_pir")


def test_reference_runner_without_paddle(monkeypatch, mv3_dir: Path) -> None:
    monkeypatch.setattr(pi, "paddle_available", lambda: Availability(False, reason="not installed"))
    with pytest.raises(BackendError, match="Paddle is not installed.*OpenVINO cannot stand in"):
        pi.reference_runner(mv3_dir / "inference_pir")
