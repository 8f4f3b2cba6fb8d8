"""INT8: `crnn convert/export ... --int8 --calibration DIR` (crnn_cli/quantization.py; the quantizers:
crnn_onnxruntime/quantize.py for ONNX, crnn_openvino/conversion.py for OpenVINO).

The mv3 fixture has random weights, so its word accuracy means nothing; what is tested is the pipeline:
calibration from a labelled dataset or a bare image folder, a held-out share never used to calibrate,
an INT8 graph that passes onnx.checker, carries the metadata and decodes through `crnn recognize`, and
a summary that reports accuracy before and after. OpenVINO INT8 needs NNCF: without it, a clear error.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import shutil
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_util import run_crnn

from crnn_cli.core import calibration as cal
from crnn_cli.core.images import cv2
from crnn_cli.core.preprocess import PreprocessConfig
from crnn_cli.core.recognizer import Recognizer

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")
from crnn_onnxruntime import quantize as q  # noqa: E402  (after the skip: needs onnxruntime)

pytestmark = pytest.mark.shared
torch.set_num_threads(1)

HAS_NNCF = importlib.util.find_spec("nncf") is not None


crnn = run_crnn  # `crnn ARGS` in-process: (exit code, stdout, stderr)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("int8")


@pytest.fixture(scope="module")
def calib_dir(data_dir: Path) -> Path:
    return data_dir / "iiit5k_train"  # labels.tsv + train/*.png


@pytest.fixture(scope="module")
def mv3_pdparams(mv3_dir: Path) -> Path:
    return mv3_dir / "best_accuracy.pdparams"


@pytest.fixture(scope="module")
def fp32(mv3_pdparams: Path, work: Path) -> Path:
    out = work / "fp32.onnx"
    code, _, err = crnn("convert", mv3_pdparams, "--to", "onnx", "-o", out)
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def int8(mv3_pdparams: Path, calib_dir: Path, work: Path) -> tuple[Path, dict]:
    out = work / "int8.onnx"
    code, stdout, err = crnn(
        "convert", mv3_pdparams, "--to", "onnx", "-o", out, "--int8", "--calibration", calib_dir,
        "--calibration-samples", "48", "--holdout", "0.2", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    return out, json.loads(stdout)


def test_int8_onnx_passes_the_checker_and_is_quantized(int8: tuple[Path, dict], fp32: Path) -> None:
    out, _ = int8
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    ops = Counter(n.op_type for n in proto.graph.node)
    assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0
    int8_weights = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.dims]
    assert len(int8_weights) >= 40  # every conv kernel (mv3 has 50-odd), stored as int8
    assert out.stat().st_size < 0.8 * fp32.stat().st_size
    # The BiLSTM stays in float by default (one node per layer): see the --int8-lstm test.
    assert ops["LSTM"] == 2 and ops["DynamicQuantizeLSTM"] == 0, ops
    assert "LSTM kept in float" in int8[1]["quantization"]["method"]
    # Probabilities stay float: the Softmax output is not quantized.
    softmax = [n for n in proto.graph.node if n.op_type == "Softmax"]
    assert len(softmax) == 1
    assert not [
        n for n in proto.graph.node if n.op_type == "QuantizeLinear" and softmax[0].output[0] in n.input
    ]


def test_int8_summary_reports_accuracy_before_and_after_on_the_holdout(int8: tuple[Path, dict]) -> None:
    _, summary = int8
    assert summary["verify"]["ok"]  # the FP32 step was verified as usual
    quant = summary["quantization"]
    assert quant["calibration_crops"] == 48
    assert quant["holdout_crops"] == 48  # 20 % of 2000, capped at --calibration-samples
    assert quant["protocol"] == "benchmark"  # the model's dictionary is case-less 0-9a-z
    for key in ("accuracy_fp32", "accuracy_int8", "agreement"):
        assert 0.0 <= quant[key] <= 1.0
    assert 0.0 < quant["max_abs_diff"] < 0.1
    assert quant["bytes_int8"] < quant["bytes_fp32"]
    assert "--int8-ops conv" in quant["method"]
    assert "onnx.checker (full check) on the INT8 graph: passed" in quant["checks"]


def test_int8_model_describes_itself_and_decodes_like_fp32(
    int8: tuple[Path, dict], fp32: Path, mv3_dir: Path, data_dir: Path
) -> None:
    out, _ = int8
    ref = np.load(mv3_dir / "reference_w100.npz")
    images = [data_dir / "iiit5k_train" / p for p in ref["paths"]]
    code, stdout, err = crnn("recognize", "--model", out, "--format", "jsonl", *images)
    assert code == 0, err
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == len(images) and all(r["text"] for r in rows)
    crops = [cv2.imread(str(p)) for p in images]
    with Recognizer(out) as a, Recognizer(fp32) as b:
        assert a.metadata.characters == b.metadata.characters and a.metadata.width == 100
        pa, pb = a.probabilities(crops), b.probabilities(crops)
        texts_a = [d.text for d in a.predict_batch(crops)]
        texts_b = [d.text for d in b.predict_batch(crops)]
    assert [r["text"] for r in rows] == texts_a
    diff = max(float(np.abs(x - y).max()) for x, y in zip(pa, pb))
    argmax = np.mean([(x.argmax(1) == y.argmax(1)).mean() for x, y in zip(pa, pb)])
    assert diff < 0.1 and argmax > 0.95, (diff, argmax)
    assert np.mean([x == y for x, y in zip(texts_a, texts_b)]) >= 0.9


def test_text_summary_has_the_accuracy_line(mv3_pdparams: Path, calib_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, stdout, err = crnn(
        "convert", mv3_pdparams, "--to", "onnx", "-o", out, "--int8", "--calibration", calib_dir,
        "--calibration-samples", "16", "--int8-ops", "all",
    )  # fmt: skip
    assert code == 0, err
    assert "(onnx, INT8)" in stdout
    assert "every op it can (--int8-ops all)" in stdout
    line = next(x for x in stdout.splitlines() if "word accuracy" in x)
    assert "16 labelled crops (benchmark protocol): word accuracy FP32" in line and "-> INT8" in line
    assert out.is_file()


def test_export_int8_from_a_bare_image_folder_with_static_width(
    mv3_pdparams: Path, calib_dir: Path, tmp_path: Path
) -> None:
    pt = tmp_path / "m.pt"
    assert crnn("convert", mv3_pdparams, "--to", "torch", "-o", pt)[0] == 0
    folder = tmp_path / "crops"
    folder.mkdir()
    for src in sorted((calib_dir / "train").iterdir())[:20]:
        shutil.copy(src, folder / src.name)
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "static.onnx"
    code, stdout, err = crnn(
        "export", pt, "--to", "onnx", "-o", out, "--static-width", "160", "--int8",
        "--calibration", folder, "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    quant = json.loads(stdout)["quantization"]
    assert (quant["calibration_crops"], quant["holdout_crops"]) == (16, 4)
    assert quant["accuracy_fp32"] is None and quant["protocol"] is None  # no labels, no accuracy
    assert 0.0 <= quant["agreement"] <= 1.0
    dims = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim
    assert dims[3].dim_value == 160
    with Recognizer(out) as rec:
        assert not rec.metadata.dynamic_width and rec.metadata.width == 160
        assert len(rec.predict_batch([cv2.imread(str(p)) for p in sorted(folder.glob("*.png"))[:3]])) == 3


@pytest.mark.skipif(HAS_NNCF, reason="nncf is installed: the missing-NNCF message cannot be shown")
def test_openvino_int8_without_nncf_says_how_to_install_it(
    mv3_pdparams: Path, calib_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "m.xml"
    code, stdout, err = crnn(
        "convert", mv3_pdparams, "--to", "openvino", "-o", out, "--int8", "--calibration", calib_dir
    )
    assert code == 1
    assert "pip install nncf" in err and "--to onnx --int8" in err
    assert stdout == "" and list(tmp_path.iterdir()) == []


def test_openvino_int8_path_with_a_stand_in_nncf(
    monkeypatch: pytest.MonkeyPatch, mv3_pdparams: Path, calib_dir: Path, tmp_path: Path
) -> None:
    """The plumbing around nncf.quantize (calibration items, IR with metadata, held-out comparison).

    The stand-in returns the model unchanged, so this checks crnn's side only; NNCF itself is not
    installed here.
    """
    pytest.importorskip("openvino")
    calls: list[tuple[int, tuple[int, ...]]] = []
    fake = types.ModuleType("nncf")
    fake.__spec__ = importlib.machinery.ModuleSpec("nncf", None)

    class Dataset:
        def __init__(self, items: list[np.ndarray]) -> None:
            self.items = items

    def quantize(model: object, dataset: Dataset, subset_size: int) -> object:
        calls.append((subset_size, dataset.items[0].shape))
        return model

    fake.Dataset, fake.quantize = Dataset, quantize  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nncf", fake)
    out = tmp_path / "m.xml"
    code, stdout, err = crnn(
        "convert", mv3_pdparams, "--to", "openvino", "-o", out, "--int8", "--calibration", calib_dir,
        "--calibration-samples", "8", "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert calls and calls[0][0] == 8 and calls[0][1][:3] == (1, 3, 32)  # one crop per item
    quant = json.loads(stdout)["quantization"]
    assert quant["method"].startswith("NNCF") and quant["holdout_crops"] == 8
    assert quant["agreement"] == 1.0 and quant["max_abs_diff"] < 1e-4  # unchanged model
    assert out.with_suffix(".bin").is_file()
    with Recognizer(out) as rec:
        assert rec.metadata.architecture == "rec_mv3_none_bilstm_ctc"


def test_bad_calibration_data_is_a_usage_error(mv3_pdparams: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    out = tmp_path / "m.onnx"
    code, _, err = crnn("convert", mv3_pdparams, "--to", "onnx", "-o", out, "--int8", "--calibration", empty)
    assert code == 2 and "gave no readable crops" in err
    code, _, err = crnn(
        "convert", mv3_pdparams, "--to", "onnx", "-o", out, "--int8", "--calibration", tmp_path / "nope"
    )
    assert code == 2 and "does not exist" in err
    assert not out.exists()


def test_holdout_split_is_disjoint_seeded_and_capped() -> None:
    calib, held = cal._split(100, 0.2, 50, seed=0)
    assert len(held) == 20 and len(calib) == 50 and not set(calib) & set(held)
    assert cal._split(100, 0.2, 50, seed=0) == (calib, held)
    assert cal._split(100, 0.2, 50, seed=1) != (calib, held)
    assert cal._split(10, 0.0, 50, seed=0) == (list(range(10)), [])
    assert len(cal._split(1000, 0.5, 30, seed=0)[1]) == 30  # the holdout is capped too


def test_calibration_batches_group_crops_by_padded_width() -> None:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (32, w, 3), dtype=np.uint8) for w in [50] * 20 + [150, 150, 300]]
    cfg = PreprocessConfig(height=32, width=100, dynamic_width=True)
    batches = cal.calibration_batches(crops, cfg)
    # 50 px crops pad to the minimum width 100; 150 and 300 px ones to multiples of width_step (32).
    assert [b.shape for b in batches] == [(16, 3, 32, 100), (4, 3, 32, 100), (2, 3, 32, 160), (1, 3, 32, 320)]
    assert all(b.dtype == np.float32 for b in batches)
    assert float(batches[0][0, :, :, 50:].max()) == 0.0  # padding after the 50-px crop


def small_int8(source: Path, calib_dir: Path, out: Path, *flags: str) -> str:
    """`crnn convert SOURCE --int8` on 16 calibration crops with ``flags``; its JSON summary."""
    code, stdout, err = crnn(
        "convert", source, "--to", "onnx", "-o", out, "--int8", "--calibration", calib_dir,
        "--calibration-samples", "16", "--holdout", "0.25", *flags, "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    return stdout


def test_float_lstm_keeps_the_lstm_in_float(mv3_pdparams: Path, calib_dir: Path, work: Path) -> None:
    out = work / "int8_float_lstm.onnx"
    stdout = small_int8(mv3_pdparams, calib_dir, out, "--float-lstm")
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    assert ops["LSTM"] == 2 and ops["DynamicQuantizeLSTM"] == 0 and ops["QuantizeLinear"] > 0
    assert "LSTM kept in float" in json.loads(stdout)["quantization"]["method"]


def test_int8_lstm_quantizes_the_lstm_with_a_scale_per_channel(
    mv3_pdparams: Path, calib_dir: Path, work: Path
) -> None:
    """--int8-lstm: DynamicQuantizeLSTM with one scale per gate unit. One scale per direction read
    the bundled model's dev IC15 words 10.8 points worse than FP32 (on an AVX2 CPU); per channel, as
    the float LSTM."""
    out = work / "int8_lstm.onnx"
    stdout = small_int8(mv3_pdparams, calib_dir, out, "--int8-lstm")
    proto = onnx.load(str(out))
    lstms = [n for n in proto.graph.node if n.op_type == "DynamicQuantizeLSTM"]
    assert len(lstms) == 2 and not [n for n in proto.graph.node if n.op_type == "LSTM"]
    dims = {t.name: list(t.dims) for t in proto.graph.initializer}
    for node in lstms:
        w, r = node.input[1], node.input[2]  # int8 input and recurrent weights: (directions, in, 4 * hidden)
        for weight, scale in ((w, node.input[8]), (r, node.input[10])):
            assert dims[scale] == [dims[weight][0], dims[weight][2]], (scale, dims[scale])  # per channel
    assert "per channel" in json.loads(stdout)["quantization"]["method"]


def test_default_int8_reads_a_crop_alike_in_any_batch(int8: tuple[Path, dict], data_dir: Path) -> None:
    """Static ranges everywhere (the LSTM in float): a crop's text and confidence do not depend on the
    crops it shares a call with, as for FP32 models (which `crnn serve` relies on)."""
    out, _ = int8
    images = [cv2.imread(str(p)) for p in sorted((data_dir / "ic15_train").glob("*/*.png"))[:24]]
    with Recognizer(out, "onnxruntime") as rec:
        together = rec.predict_batch(images)
        alone = [rec.predict_batch([image])[0] for image in images]
    assert [d.text for d in together] == [d.text for d in alone]
    assert [d.confidence for d in together] == [d.confidence for d in alone]


def test_relu_and_max_pool_stay_int8_between_convs(tmp_path: Path) -> None:
    """Conv -> Relu -> MaxPool -> Conv: with the default op set ONNX Runtime keeps the activations in
    uint8 from one Conv to the next. Quantizing Conv alone left a dequantize-requantize pair there
    (about 15 % of the default model's INT8 time) and the pool running in float."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32),
        "b1": rng.normal(0, 0.1, 8).astype(np.float32),
        "w2": rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32),
        "b2": rng.normal(0, 0.1, 8).astype(np.float32),
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_relu_pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, "width"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, name) for name, w in weights.items()],
    )
    fp32 = tmp_path / "fp32.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(fp32))
    batches = [rng.uniform(-1, 1, (4, 3, 16, 32)).astype(np.float32) for _ in range(4)]
    out = tmp_path / "int8.onnx"
    q.quantize_onnx(fp32, out, batches, "conv", lstm=False)

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx")).graph.node
    producer = {o: n.op_type for n in optimized for o in n.output}
    requantized = [
        n.name
        for n in optimized
        if n.op_type == "QuantizeLinear" and producer.get(n.input[0]) == "DequantizeLinear"
    ]
    float_pools = [n.name for n in optimized if n.op_type == "MaxPool"]
    assert sum(n.op_type == "QLinearConv" for n in optimized) == 2
    assert not requantized and not float_pools, [n.op_type for n in optimized]
    # and the numbers are still the float model's, to within the uint8 steps
    ref = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    x = batches[0]
    a, b = ref.run(None, {"x": x})[0], sess.run(None, {"x": x})[0]
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()
