"""PyTorch CRNNs: PaddleOCR checkpoints load by name and reproduce PaddleOCR's own outputs."""

from __future__ import annotations

import io
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from crnn_torch.models import (  # noqa: E402
    ARCHITECTURES,
    DEFAULT,
    MV3,
    R34,
    WithSoftmax,
    build_from_paddle,
    build_model,
    detect_architecture,
    load_paddle_into,
    paddle_build_kwargs,
    paddle_to_torch_state_dict,
)

from crnn_cli.core.charset import load_charset  # noqa: E402
from crnn_cli.core.ctc import decode_greedy  # noqa: E402
from crnn_cli.core.errors import ModelError, UsageError  # noqa: E402
from crnn_cli.core.pdparams import load_pdparams  # noqa: E402

TOLERANCE = 1e-4  # max abs difference of probabilities that held for every converter (fixtures README)
LSTM_CELL_COPIES = 16  # 2 layers x 2 directions x 4 tensors, stored a second time per cell by Paddle


@pytest.fixture(autouse=True, scope="module")
def _two_threads() -> None:
    torch.set_num_threads(1)  # two cores shared with other runs: more threads only add contention


def _read_tsv(path: Path) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in path.read_text().splitlines():
        name, shape, _dtype = line.split("\t")
        shapes[name] = tuple(int(v) for v in shape.strip("[]").split(","))
    return shapes


def _random_paddle_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """A checkpoint with the given names and shapes; LSTM cell copies equal their flat twins, as in Paddle."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in shapes.items():
        value = rng.standard_normal(shape, dtype=np.float32) * 0.05
        state[name] = np.abs(value) + 1.0 if name.endswith("_variance") else value
    for name in shapes:
        if ".cell_" in name:
            prefix, layer, cell, param = name.rsplit(".", 3)
            flat = f"{prefix}.{param}_l{layer}{'_reverse' if cell == 'cell_bw' else ''}"
            state[name] = state[flat]
    return state


@pytest.fixture(scope="module")
def mv3_state(mv3_dir: Path) -> dict[str, np.ndarray]:
    return load_pdparams(mv3_dir)


@pytest.fixture(scope="module")
def mv3_model(mv3_state: dict[str, np.ndarray]) -> torch.nn.Module:
    model, report = build_from_paddle(mv3_state)
    assert report.ok, report.summary()
    return model.eval()


@pytest.fixture(scope="module")
def r34_state(r34_dir: Path) -> dict[str, np.ndarray]:
    return _random_paddle_state(_read_tsv(r34_dir / "params.tsv"))


# -- MobileNetV3 CRNN against PaddleOCR's outputs ------------------------------------------------------


@pytest.mark.shared
def test_mv3_checkpoint_maps_every_tensor(mv3_state: dict[str, np.ndarray]) -> None:
    model = build_model(MV3, 37)
    state, report = paddle_to_torch_state_dict(mv3_state, model)
    assert report.ok and not report.notes, report.summary()
    assert len(report.loaded) == len(mv3_state) - LSTM_CELL_COPIES
    assert set(report.ignored) == {k for k in mv3_state if ".cell_" in k}
    torch_keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(state) == torch_keys
    # The renames and the Linear transpose, checked on values.
    assert np.array_equal(state["head.fc.weight"].numpy(), mv3_state["head.fc.weight"].T)
    assert np.array_equal(
        state["backbone.conv2.bn.running_var"].numpy(), mv3_state["backbone.conv2.bn._variance"]
    )
    assert np.array_equal(
        state["neck.encoder.lstm.weight_hh_l1_reverse"].numpy(),
        mv3_state["neck.encoder.lstm.1.cell_bw.weight_hh"],
    )


@pytest.mark.shared
@pytest.mark.parametrize("width", [100, 320])
def test_mv3_matches_paddleocr_probabilities_and_texts(mv3_dir: Path, mv3_model, width: int) -> None:
    ref = np.load(mv3_dir / f"reference_w{width}.npz")
    with torch.no_grad():
        probs = WithSoftmax(mv3_model)(torch.from_numpy(ref["inputs"])).numpy()
    assert probs.shape == ref["probs"].shape == (32, width // 4, 37)
    diff = float(np.abs(probs - ref["probs"]).max())
    assert diff < TOLERANCE, f"max abs difference {diff:.3g} at width {width}"
    assert np.array_equal(probs.argmax(-1), ref["probs"].argmax(-1))
    decoded = decode_greedy(probs, load_charset(None))
    assert [d.text for d in decoded] == ref["texts"].tolist()
    np.testing.assert_allclose([d.confidence for d in decoded], ref["confs"], atol=TOLERANCE)


@pytest.mark.shared
def test_mv3_lstm_loads_from_cell_copies_when_flat_names_are_absent(mv3_state, mv3_model) -> None:
    cells_only = {k: v for k, v in mv3_state.items() if not k.startswith("neck.encoder.lstm.weight")}
    cells_only = {k: v for k, v in cells_only.items() if not k.startswith("neck.encoder.lstm.bias")}
    model, report = build_from_paddle(cells_only)
    assert report.ok and not report.ignored, report.summary()
    x = torch.linspace(-1, 1, 2 * 3 * 32 * 64).reshape(2, 3, 32, 64)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), mv3_model(x))


@pytest.mark.shared
def test_detect_architecture_and_build_kwargs(mv3_state, r34_state) -> None:
    assert detect_architecture(mv3_state) == (MV3, 37)
    assert detect_architecture(r34_state) == (R34, 37)
    assert paddle_build_kwargs(mv3_state) == {
        "arch": MV3,
        "num_classes": 37,
        "in_channels": 3,
        "hidden_size": 96,
        "scale": 0.5,
    }
    assert paddle_build_kwargs(r34_state) == {
        "arch": R34,
        "num_classes": 37,
        "in_channels": 3,
        "hidden_size": 256,
    }
    with pytest.raises(ModelError, match="not a PaddleOCR CRNN checkpoint"):
        detect_architecture({k: v for k, v in mv3_state.items() if not k.startswith("head.")})
    backbone_only = {k: v for k, v in mv3_state.items() if not k.startswith("backbone.")}
    with pytest.raises(ModelError, match="unknown CRNN backbone"):
        detect_architecture(backbone_only)


# -- the backbone, against an independent reading of Paddle's inference program ------------------------
#
# The fixture's random weights shrink the backbone's signal to ~1e-7 by its last layer, so the golden
# probabilities barely depend on the image (their spread over the 32 images is 3e-7) and a wrong backbone
# (torch's hardsigmoid in SE, ReLU for hard-swish, another BN eps) still lands within 1e-4 of them. Here
# every BatchNorm gets the statistics of its actual input, as training would give it; the signal then
# survives to the head. The same statistics go into a copy of Paddle's exported inference model, which
# OpenVINO runs through its own Paddle reader: the two must agree.

LOGIT_TOLERANCE = 5e-3  # measured: torch float32 vs float64 6e-4, OpenVINO vs torch 9e-4; bugs give > 20


class _NoGlobals(pickle.Unpickler):
    """For the .pdiparams.info pickle, which holds only dicts, strings and booleans."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a .pdiparams.info")


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _tensor_dims(desc: bytes) -> list[int]:
    """dims of a Paddle TensorDesc protobuf (field 1 data type, field 2 dims, packed or not)."""
    dims, i = [], 0
    while i < len(desc):
        key, i = _varint(desc, i)
        if key & 7 == 0:
            value, i = _varint(desc, i)
            if key >> 3 == 2:
                dims.append(value)
        else:  # length-delimited: packed dims
            n, i = _varint(desc, i)
            j, end = i, i + n
            while j < end:
                value, j = _varint(desc, j)
                dims.append(value)
            i = end
    return dims


def _pdiparams_offsets(buf: bytes) -> list[tuple[tuple[int, ...], int]]:
    """(shape, byte offset of the float32 data) of each tensor of a legacy combined .pdiparams file."""
    out, i = [], 0
    while i < len(buf):
        i += 4  # tensor version
        (lod_levels,) = struct.unpack_from("<Q", buf, i)
        i += 8
        for _ in range(lod_levels):
            (size,) = struct.unpack_from("<Q", buf, i)
            i += 8 + size
        i += 4  # dense tensor version
        (desc_size,) = struct.unpack_from("<i", buf, i)
        dims = tuple(_tensor_dims(buf[i + 4 : i + 4 + desc_size]))
        i += 4 + desc_size
        out.append((dims, i))
        i += 4 * int(np.prod(dims))
    return out


def _recalibrated(state: dict[str, np.ndarray], x: torch.Tensor) -> dict[str, np.ndarray]:
    """``state`` with every BatchNorm's running statistics replaced by those of its input on ``x``."""
    model = build_from_paddle(state)[0]
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one batch gives exactly its statistics
            module.reset_running_stats()
    with torch.no_grad():
        model.train()(x)
    stats = model.state_dict()
    out = dict(state)
    for name in state:
        for paddle_suffix, torch_suffix in (("_mean", "running_mean"), ("_variance", "running_var")):
            if name.endswith("." + paddle_suffix):
                out[name] = stats[name[: -len(paddle_suffix)] + torch_suffix].numpy()
    return out


@pytest.mark.shared
def test_mv3_backbone_matches_openvino_reading_paddles_program(
    mv3_dir: Path, mv3_state, tmp_path: Path
) -> None:
    ov = pytest.importorskip("openvino")
    ref = np.load(mv3_dir / "reference_w100.npz")
    x = torch.from_numpy(ref["inputs"])
    state = _recalibrated(mv3_state, x)

    src = mv3_dir / "inference_legacy"
    info = _NoGlobals(io.BytesIO((src / "inference.pdiparams.info").read_bytes())).load()
    params = bytearray((src / "inference.pdiparams").read_bytes())
    offsets = _pdiparams_offsets(bytes(params))
    assert len(offsets) == len(info) == len(mv3_state) - LSTM_CELL_COPIES
    for (shape, offset), internal in zip(offsets, sorted(info)):  # stored in sorted internal-name order
        value = state[info[internal]["structured_name"]]
        assert value.shape == shape
        params[offset : offset + value.nbytes] = np.ascontiguousarray(value, np.float32).tobytes()
    shutil.copy(src / "inference.pdmodel", tmp_path / "inference.pdmodel")
    (tmp_path / "inference.pdiparams").write_bytes(params)

    core = ov.Core()
    program = core.read_model(str(tmp_path / "inference.pdmodel"))
    softmax = [op for op in program.get_ordered_ops() if op.get_type_name() == "Softmax"]
    program.add_outputs([softmax[-1].input(0).get_source_output()])
    compiled = core.compile_model(
        program, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2}
    )
    ov_probs, ov_logits = (compiled(ref["inputs"])[i] for i in (0, 1))

    model = build_from_paddle(state)[0].eval()
    features = []
    model.backbone.register_forward_hook(lambda _m, _i, out: features.append(out))
    with torch.no_grad():
        logits = model(x).numpy()
    assert float(features[0].std(0).mean()) > 0.1  # the image now reaches the head: the test has teeth
    diff = float(np.abs(logits - ov_logits).max())
    assert diff < LOGIT_TOLERANCE, f"logits differ from OpenVINO's by {diff:.3g}"
    top2 = np.sort(logits, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2 * LOGIT_TOLERANCE
    assert clear.mean() > 0.99
    assert np.array_equal(logits.argmax(-1)[clear], ov_probs.argmax(-1)[clear])
    charset = load_charset(None)
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    assert [d.text for d in decode_greedy(probs, charset)] == [
        d.text for d in decode_greedy(ov_probs, charset)
    ]


# -- strict and fine-tuning loads ----------------------------------------------------------------------


@pytest.mark.shared
def test_strict_load_refuses_other_class_count_and_leaves_model_untouched(mv3_state) -> None:
    model = build_model(MV3, 100)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ModelError, match=r"head\.fc\.weight: checkpoint \[100, 37\]|head\.fc\.weight"):
        load_paddle_into(model, mv3_state, strict=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.shared
def test_non_strict_load_keeps_what_fits_for_fine_tuning(mv3_state) -> None:
    model = build_model(MV3, 100)
    head_before = model.head.fc.weight.detach().clone()
    report = load_paddle_into(model, mv3_state, strict=False)
    assert {m[0] for m in report.mismatched} == {"head.fc.weight", "head.fc.bias"}
    assert dict((m[0], m[2]) for m in report.mismatched)["head.fc.weight"] == (100, 192)
    assert not report.missing and not report.unexpected
    assert len(report.loaded) == len(mv3_state) - LSTM_CELL_COPIES - 2
    assert torch.equal(model.head.fc.weight, head_before)
    assert np.array_equal(
        model.backbone.conv1.conv.weight.detach().numpy(), mv3_state["backbone.conv1.conv.weight"]
    )


@pytest.mark.shared
def test_missing_and_unexpected_tensors_are_named(mv3_state) -> None:
    broken = dict(mv3_state)
    del broken["backbone.blocks.3.mid_se.conv2.bias"]
    broken["backbone.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(
        ModelError, match=r"missing from the checkpoint \(backbone\.blocks\.3\.mid_se\.conv2\.bias"
    ):
        load_paddle_into(build_model(MV3, 37), broken)
    report = load_paddle_into(build_model(MV3, 37), broken, strict=False)
    assert report.missing == ("backbone.blocks.3.mid_se.conv2.bias",)
    assert report.unexpected == ("backbone.extra.weight",)
    assert not report.ok


# -- ResNet34_vd CRNN ----------------------------------------------------------------------------------


@pytest.mark.shared
def test_r34_maps_every_tensor_of_params_tsv(r34_state) -> None:
    model = build_model(R34, 37)
    state, report = paddle_to_torch_state_dict(r34_state, model)
    assert report.ok and not report.notes, report.summary()
    assert len(r34_state) == 229
    assert len(report.loaded) == 229 - LSTM_CELL_COPIES
    assert set(state) == {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert all(tuple(state[k].shape) == tuple(v.shape) for k, v in model.state_dict().items() if k in state)
    used = sum(v.size for k, v in r34_state.items() if ".cell_" not in k)
    assert used == sum(t.numel() for t in state.values())
    assert np.array_equal(
        state["backbone.bb_3_0.short._batch_norm.running_mean"].numpy(),
        r34_state["backbone.bb_3_0.short._batch_norm._mean"],
    )


@pytest.mark.shared
def test_r34_forward_shape(r34_state) -> None:
    model, report = build_from_paddle(r34_state)
    assert report.ok
    model.eval()
    with torch.no_grad():
        out = WithSoftmax(model)(torch.randn(2, 3, 32, 100, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, 25, 37)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(2, 25))


def test_r34_vd_shortcut_averages_before_projecting() -> None:
    # The "vd" trick: a strided shortcut sees every input row, so changing only odd rows changes it.
    block = build_model(R34, 37).backbone.bb_1_0.short.eval()
    x = torch.zeros(1, 64, 8, 5)
    y = x.clone()
    y[:, :, 1::2] = 1.0
    with torch.no_grad():
        assert not torch.equal(block(x), block(y))
    assert block._pool is not None and build_model(R34, 37).backbone.bb_0_0.short._pool is None
    # ceil_mode with Paddle's exclusive averaging: an odd last row is averaged alone, not halved.
    rows = torch.arange(5.0).reshape(1, 1, 5, 1)
    assert block._pool(rows).flatten().tolist() == [0.5, 2.5, 4.0]


# -- all architectures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize(("channels", "height"), [(3, 32), (1, 48)])
def test_output_is_logits_with_width_over_four(arch: str, channels: int, height: int) -> None:
    model = build_model(arch, 11, in_channels=channels).eval()
    gen = torch.Generator().manual_seed(1)
    for width in (100, 37, 320) if arch != R34 else (100, 37):
        x = torch.randn(1, channels, height, width, generator=gen)
        with torch.no_grad():
            logits = model(x)
            probs = WithSoftmax(model)(x)
        assert logits.shape == (1, width // 4, 11)
        assert not torch.allclose(logits.sum(-1), torch.ones(1, width // 4))  # forward is not softmaxed
        torch.testing.assert_close(probs, torch.softmax(logits, -1))
    assert model.config["arch"] == arch
    rebuilt = build_model(**model.config)
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


def test_default_model_size_and_training_step() -> None:
    torch.manual_seed(0)
    model = build_model(DEFAULT, 37)
    n_params = sum(p.numel() for p in model.parameters())
    assert 2_000_000 <= n_params <= 6_000_000, n_params
    x = torch.randn(4, 3, 32, 100)
    logits = model.train()(x)
    log_probs = logits.log_softmax(-1).transpose(0, 1)  # T, N, C for ctc_loss
    targets = torch.randint(1, 37, (4, 5))
    loss = torch.nn.functional.ctc_loss(log_probs, targets, torch.full((4,), 25), torch.full((4,), 5))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters())


def test_wrapper_keeps_eval_mode_and_batch_rows_are_independent() -> None:
    model = build_model(DEFAULT, 37).eval()
    wrapped = WithSoftmax(model)
    assert not wrapped.training and not model.training
    x = torch.randn(3, 3, 32, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(wrapped(x)[1:2], wrapped(x[1:2]), atol=1e-6, rtol=0)


def test_build_model_rejects_bad_arguments() -> None:
    with pytest.raises(UsageError, match="unknown architecture 'vgg99'.*crnn_default"):
        build_model("vgg99", 37)
    with pytest.raises(UsageError, match="has no option depth"):
        build_model(DEFAULT, 37, depth=3)
    with pytest.raises(UsageError, match="num_classes must be >= 2"):
        build_model(MV3, 1)
    assert build_model("crnn_mv3", 37).arch == MV3  # the metadata names are aliases
    with pytest.raises(UsageError, match="4 rows high"):
        build_model(MV3, 37)(torch.zeros(1, 3, 128, 64))
