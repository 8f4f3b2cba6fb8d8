"""The OpenVINO backend: the backend contract on ONNX and on IR, plus IR writing and OpenVINO quirks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from backend_contract import BackendContract, tiny_onnx
from models_util import make_tiny_onnx, reference_forward, tiny_metadata

from crnn_cli.core.backend import Backend, SessionOptions
from crnn_cli.core.errors import BackendError, ModelError, UsageError
from crnn_cli.core.registry import backend_for_model, load_backend

ov = pytest.importorskip("openvino", reason="needs the OpenVINO runtime: pip install 'crnn[openvino]'")
pytest.importorskip("onnx", reason="building the tiny test model needs onnx")

from crnn_openvino import MIN_WIDTH, read_props, write_ir  # noqa: E402  (after the skips)


class TestOpenVinoOnnx(BackendContract):
    """ONNX read by OpenVINO; the metadata comes through the ONNX frontend's rt_info 'framework'."""

    backend_name = "openvino"


class TestOpenVinoIR(BackendContract):
    """IR written by write_ir from an ONNX without metadata, so the props can only come from rt_info
    'crnn'; THROUGHPUT with three requests puts several batches in flight in run_many."""

    backend_name = "openvino"
    options = SessionOptions(threads=1, performance_hint="THROUGHPUT", num_requests=3)

    @pytest.fixture(scope="class")
    @classmethod
    def model_path(
        cls, backend: Backend, tmp_path_factory: pytest.TempPathFactory, expected_props: dict[str, str]
    ) -> Path:
        onnx_path = tiny_onnx(cls, tmp_path_factory, {})
        return write_ir(ov.Core().read_model(onnx_path), onnx_path.with_name("tiny.xml"), expected_props)


class TestOpenVinoIRGray48(TestOpenVinoIR):
    """One channel, height 48, and a dictionary with XML specials, quotes, backslash and CJK symbols."""

    channels = 1
    height = 48
    num_classes = 60


# -- write_ir and rt_info ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ONNX model with its default metadata (in rt_info 'framework' once OpenVINO reads it)."""
    return make_tiny_onnx(tmp_path_factory.mktemp("ov") / "tiny.onnx")


@pytest.fixture(scope="module")
def backend() -> Backend:
    return load_backend("openvino")


def test_write_ir_round_trips_awkward_values(tiny: Path, tmp_path: Path) -> None:
    props = {
        "crnn.metadata": json.dumps({"characters": ["<", "&", '"', "\n", " "]}),
        "character": "a\n<\n&amp;\n\"'\n中\n\t\n ",  # newline-separated, trailing space and tab kept
    }
    xml = write_ir(tiny, tmp_path / "m.xml", props)
    assert read_props(xml) | props == read_props(xml)  # every key present with the same value


def test_write_ir_section_wins_over_onnx_metadata(tiny: Path, tmp_path: Path) -> None:
    # The IR keeps the ONNX metadata in rt_info 'framework'; what write_ir sets must be what is read.
    new = tiny_metadata(num_classes=37).to_props() | {"character": "x\ny"}
    xml = write_ir(ov.Core().read_model(tiny), tmp_path / "m.xml", new)
    assert read_props(xml)["character"] == "x\ny"


def test_write_ir_does_not_modify_the_model(tiny: Path, tmp_path: Path) -> None:
    model = ov.Core().read_model(tiny)
    write_ir(model, tmp_path / "m.xml", {"character": "z"})
    assert "crnn" not in model.get_rt_info()


def test_write_ir_keeps_fp32_unless_asked(tiny: Path, tmp_path: Path, backend: Backend) -> None:
    x = np.random.default_rng(3).uniform(-1, 1, (2, 3, 32, 100)).astype(np.float32)
    ref = reference_forward(x)
    full = write_ir(tiny, tmp_path / "fp32.xml", {})
    half = write_ir(tiny, tmp_path / "fp16.xml", {}, compress_to_fp16=True)
    assert half.with_suffix(".bin").stat().st_size < full.with_suffix(".bin").stat().st_size * 0.6
    with backend.open(full, SessionOptions(threads=1)) as s:
        np.testing.assert_allclose(s.run(x), ref, atol=1e-5, rtol=0)
    with backend.open(half, SessionOptions(threads=1)) as s:
        assert np.abs(s.run(x) - ref).max() > 1e-5  # fp16 weights do move the numbers


def test_write_ir_replaces_pair_and_leaves_no_temp_files(tiny: Path, tmp_path: Path) -> None:
    xml = tmp_path / "m.xml"
    write_ir(tiny, xml, {"character": "old"})
    write_ir(tiny, xml, {"character": "new"})
    assert read_props(xml)["character"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]


def test_write_ir_failure_keeps_old_pair(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crnn_openvino.ir as ir

    xml = write_ir(tiny, tmp_path / "m.xml", {"character": "old"})
    before = (xml.read_bytes(), xml.with_suffix(".bin").read_bytes())

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ir.os, "replace", disk_full)
    with pytest.raises(OSError):
        write_ir(tiny, xml, {"character": "new"})
    monkeypatch.undo()
    assert (xml.read_bytes(), xml.with_suffix(".bin").read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]


@pytest.mark.parametrize(
    ("name", "props", "match"),
    [("m.onnx", {}, r"\.xml"), ("m.xml", {"bad key": "v"}, "bad key"), ("m.xml", {"k": 1}, "string")],
)
def test_write_ir_rejects_bad_arguments(
    tiny: Path, tmp_path: Path, name: str, props: dict, match: str
) -> None:
    with pytest.raises(UsageError, match=match):
        write_ir(tiny, tmp_path / name, props)
    assert list(tmp_path.iterdir()) == []


# -- opening -------------------------------------------------------------------------------------------
def test_folder_with_one_xml_opens(tiny: Path, tmp_path: Path, backend: Backend) -> None:
    write_ir(tiny, tmp_path / "model.xml", tiny_metadata().to_props())
    assert backend.accepts(tmp_path)
    with backend.open(tmp_path, SessionOptions(threads=1)) as s:
        assert s.info.props["character"].startswith("0\n1\n")


def test_pir_folder_gets_advice(tmp_path: Path, backend: Backend) -> None:
    (tmp_path / "inference.json").write_text("{}")
    with pytest.raises(ModelError, match="PIR"):
        backend.open(tmp_path, SessionOptions())


def test_registry_routes_ir_to_openvino(tiny: Path, tmp_path: Path) -> None:
    xml = write_ir(tiny, tmp_path / "m.xml", {})
    assert backend_for_model(xml).name == "openvino"
    assert backend_for_model(tiny).name == "onnxruntime"  # ONNX Runtime stays the default for .onnx


def test_static_batch_ir_runs_any_batch(tiny: Path, tmp_path: Path, backend: Backend) -> None:
    # IRs are often exported at batch 1 with a fixed width; the backend frees the batch dimension.
    model = ov.Core().read_model(tiny)
    model.reshape({0: [1, 3, 32, 100]})
    xml = write_ir(model, tmp_path / "static.xml", {})
    x = np.random.default_rng(4).uniform(-1, 1, (4, 3, 32, 100)).astype(np.float32)
    with backend.open(xml, SessionOptions(threads=1)) as s:
        assert s.info.input_shape == (None, 3, 32, 100)
        np.testing.assert_allclose(s.run(x), reference_forward(x), atol=1e-5, rtol=0)
        with pytest.raises(ModelError, match="W must be 100"):
            s.run(x[:, :, :, :64].copy())


# -- options -------------------------------------------------------------------------------------------
def test_bad_performance_hint(tiny: Path, backend: Backend) -> None:
    with pytest.raises(UsageError, match="performance_hint"):
        backend.open(tiny, SessionOptions(performance_hint="FAST"))


def test_missing_device_lists_available(tiny: Path, backend: Backend) -> None:
    with pytest.raises(BackendError, match="available: .*CPU"):
        backend.open(tiny, SessionOptions(device="NPU7"))


def test_lowercase_device_and_extra_properties(tiny: Path, backend: Backend) -> None:
    options = SessionOptions(device="cpu", threads=1, extra={"INFERENCE_PRECISION_HINT": "f32"})
    with backend.open(tiny, options) as s:
        assert s.run(np.zeros((1, 3, 32, 64), np.float32)).shape == (1, 16, 37)


# -- OpenVINO CPU plugin quirks the backend guards against -----------------------------------------------
def test_too_narrow_batch_is_refused(tiny: Path, backend: Backend) -> None:
    with backend.open(tiny, SessionOptions(threads=1)) as s:
        with pytest.raises(ModelError, match=f"below {MIN_WIDTH}"):
            s.run(np.zeros((1, 3, 32, MIN_WIDTH - 1), np.float32))
        with pytest.raises(ModelError, match=f"below {MIN_WIDTH}"):
            list(s.run_many([np.zeros((1, 3, 32, 8), np.float32)]))


def test_session_recovers_after_failed_batch(
    tiny: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a successful run, a batch that fails inside the graph leaves OpenVINO's compiled model
    # failing every later request; the session recompiles so later batches still run.
    import crnn_openvino

    monkeypatch.setattr(crnn_openvino, "MIN_WIDTH", 0)
    ok = np.random.default_rng(5).uniform(-1, 1, (2, 3, 32, 64)).astype(np.float32)
    bad = np.zeros((2, 3, 32, 2), np.float32)  # narrower than the model's 1x4 pooling window
    # Two threads: with one, this OpenVINO returns the previous batch's output shape instead of failing.
    with backend.open(tiny, SessionOptions(threads=2, num_requests=2)) as s:
        s.run(ok)
        try:
            s.run(bad)
        except ModelError as exc:
            assert "tiny.onnx" in str(exc)
        else:
            pytest.skip("this OpenVINO build does not fail on the too-narrow batch, nothing to recover from")
        np.testing.assert_allclose(s.run(ok), reference_forward(ok), atol=1e-5, rtol=0)
        with pytest.raises(ModelError, match="tiny.onnx"):
            list(s.run_many([ok, bad, ok, ok]))
        outs = list(s.run_many([ok, ok]))
        np.testing.assert_allclose(outs[1], reference_forward(ok), atol=1e-5, rtol=0)


def test_default_precision_is_f32(tiny: Path, backend: Backend) -> None:
    # This CPU (and any with AVX512-BF16/AMX) would otherwise run in bf16, about 1e-2 off.
    with backend.open(tiny, SessionOptions(threads=1)) as s:
        assert str(s._compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")


def test_import_is_cheap() -> None:
    # `import crnn_openvino` must not import openvino (crnn --help stays fast without it).
    import subprocess
    import sys

    code = "import sys, crnn_openvino; print('openvino' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True
    )
    assert out.stdout.strip() == "False"


def test_closed_session_says_so_and_exit_hook_closes_open_ones(tiny: Path, backend: Backend) -> None:
    import crnn_openvino

    x = np.zeros((1, 3, 32, 64), np.float32)
    s = backend.open(tiny, SessionOptions(threads=1))
    assert s in crnn_openvino._open_sessions
    # Sessions left open at exit are closed from atexit, before Python tears OpenVINO down (a teardown
    # with live compiled models aborted such processes with exit code 134).
    crnn_openvino._close_open_sessions()
    assert s not in crnn_openvino._open_sessions
    with pytest.raises(ModelError, match="closed"):
        s.run(x)
    with pytest.raises(ModelError, match="closed"):
        list(s.run_many([x]))
    s.close()  # idempotent
