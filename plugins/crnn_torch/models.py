"""CRNN networks in PyTorch: PaddleOCR's two CRNNs, laid out to take their weights by name, and our own.

Every model is ``backbone -> neck -> head``: the CNN turns ``x: N, C, H, W`` into ``N, C', 1, T``, the
neck reads that as a sequence ``N, T, C'`` through a 2-layer bidirectional LSTM, and the head maps each
frame to class logits. ``forward`` always returns logits ``N, T, num_classes``; wrap a model in
``WithSoftmax`` for inference and export, where crnn's backends expect probabilities.

Module names mirror PaddleOCR's (``backbone.blocks.3.mid_se.conv1``, ``backbone.bb_1_0.short._conv``,
``neck.encoder.lstm``, ``head.fc``) so that a Paddle state dict maps on by renaming BatchNorm statistics
and transposing Linear weights: ``paddle_to_torch_state_dict`` / ``load_paddle_into`` at the end of
this module, with ``detect_architecture`` to pick the network from a checkpoint alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from crnn_cli.core.errors import ModelError, UsageError

MV3 = "rec_mv3_none_bilstm_ctc"
R34 = "rec_r34_vd_none_bilstm_ctc"
DEFAULT = "crnn_default"

BN_EPS = 1e-5  # Paddle's BatchNorm default; torch's is the same, stated so nobody "fixes" it


def _act(name: str | None) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "hardswish":
        return nn.Hardswish()  # x * relu6(x + 3) / 6, as Paddle's
    return nn.Identity()


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of 8 without losing more than 10 % (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# -- MobileNetV3, recognition variant ----------------------------------------------------------------


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm + activation; Paddle names ``conv`` / ``bn``. x: N, C, H, W."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        stride: int | tuple[int, int] = 1,
        groups: int = 1,
        act: str | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.act = _act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Channel attention. Paddle's gate is hardsigmoid with slope 0.2 and offset 0.5, not relu6(x+3)/6."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // reduction, 1)
        self.conv2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(x, 1))))
        return x * torch.clamp(0.2 * s + 0.5, 0.0, 1.0)


class ResidualUnit(nn.Module):
    """Inverted residual: 1x1 expand, depthwise k x k (strided), optional SE, 1x1 project."""

    def __init__(
        self, cin: int, mid: int, cout: int, k: int, stride: tuple[int, int], use_se: bool, act: str
    ) -> None:
        super().__init__()
        self.expand_conv = ConvBN(cin, mid, 1, act=act)
        self.bottleneck_conv = ConvBN(mid, mid, k, stride, groups=mid, act=act)
        self.mid_se = SqueezeExcite(mid) if use_se else None
        self.linear_conv = ConvBN(mid, cout, 1)
        self.residual = stride == (1, 1) and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.residual else y


# kernel, expanded width, output width, SE, activation, stride (H, W) of MobileNetV3-large. The rec
# variant halves only the height in later stages, so a 100-pixel line keeps 25 time steps.
_MV3_LARGE = (
    (3, 16, 16, False, "relu", (1, 1)),
    (3, 64, 24, False, "relu", (2, 1)),
    (3, 72, 24, False, "relu", (1, 1)),
    (5, 72, 40, True, "relu", (2, 1)),
    (5, 120, 40, True, "relu", (1, 1)),
    (5, 120, 40, True, "relu", (1, 1)),
    (3, 240, 80, False, "hardswish", (1, 1)),
    (3, 200, 80, False, "hardswish", (1, 1)),
    (3, 184, 80, False, "hardswish", (1, 1)),
    (3, 184, 80, False, "hardswish", (1, 1)),
    (3, 480, 112, True, "hardswish", (1, 1)),
    (3, 672, 112, True, "hardswish", (1, 1)),
    (5, 672, 160, True, "hardswish", (2, 1)),
    (5, 960, 160, True, "hardswish", (1, 1)),
    (5, 960, 160, True, "hardswish", (1, 1)),
)


class MobileNetV3Rec(nn.Module):
    """MobileNetV3-large for text lines. x: N, C, H, W -> N, make_divisible(960*scale), H/32, ceil(W/2)/2."""

    def __init__(self, in_channels: int = 3, scale: float = 0.5) -> None:
        super().__init__()
        width = make_divisible(16 * scale)
        self.conv1 = ConvBN(in_channels, width, 3, stride=2, act="hardswish")
        blocks = []
        for k, exp, out, se, act, stride in _MV3_LARGE:
            mid, out_w = make_divisible(scale * exp), make_divisible(scale * out)
            blocks.append(ResidualUnit(width, mid, out_w, k, stride, se, act))
            width = out_w
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = make_divisible(scale * 960)
        self.conv2 = ConvBN(width, self.out_channels, 1, act="hardswish")
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv2(self.blocks(self.conv1(x))))


# -- ResNet34_vd, recognition variant ----------------------------------------------------------------


class ConvBNvd(nn.Module):
    """Conv (no bias) + BatchNorm (+ ReLU); Paddle names ``_conv`` / ``_batch_norm``.

    vd_pool: the "vd" downsampling shortcut averages stride-sized windows first (ceil mode, so an odd
    edge row is averaged alone) and then runs a stride-1 conv, instead of a strided 1x1 conv that
    would skip three quarters of the input.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        stride: tuple[int, int] = (1, 1),
        relu: bool = False,
        vd_pool: bool = False,
    ) -> None:
        super().__init__()
        self._pool = nn.AvgPool2d(stride, stride, ceil_mode=True) if vd_pool else None
        self._conv = nn.Conv2d(cin, cout, k, (1, 1) if vd_pool else stride, padding=(k - 1) // 2, bias=False)
        self._batch_norm = nn.BatchNorm2d(cout, eps=BN_EPS)
        self._relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._pool is not None:
            x = self._pool(x)
        x = self._batch_norm(self._conv(x))
        return F.relu(x) if self._relu else x


class BasicBlock(nn.Module):
    """Two 3x3 convs plus a shortcut (identity, or a projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int], project: bool, first: bool) -> None:
        super().__init__()
        self.conv0 = ConvBNvd(cin, cout, 3, stride, relu=True)
        self.conv1 = ConvBNvd(cout, cout, 3)
        vd = not first and stride[0] != 1
        self.short = ConvBNvd(cin, cout, 1, stride, vd_pool=vd) if project else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.short is None else self.short(x)
        return F.relu(self.conv1(self.conv0(x)) + shortcut)


class ResNet34vdRec(nn.Module):
    """ResNet34_vd for text lines. x: N, C, H, W -> N, 512, H/32, ceil(W/2)/2 (blocks named bb_stage_i)."""

    depth = (3, 4, 6, 3)
    widths = (64, 128, 256, 512)

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1_1 = ConvBNvd(in_channels, 32, 3, relu=True)
        self.conv1_2 = ConvBNvd(32, 32, 3, relu=True)
        self.conv1_3 = ConvBNvd(32, 64, 3, relu=True)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self._names: list[str] = []
        cin = 64
        for s, (n, cout) in enumerate(zip(self.depth, self.widths)):
            for i in range(n):
                # Later stages halve only the height, so the sequence keeps its length.
                stride = (2, 1) if i == 0 and s > 0 else (1, 1)
                name = f"bb_{s}_{i}"
                self.add_module(name, BasicBlock(cin, cout, stride, project=i == 0, first=s == i == 0))
                self._names.append(name)
                cin = cout
        self.out_channels = cin
        self.out_pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv1_3(self.conv1_2(self.conv1_1(x))))
        for name in self._names:
            x = getattr(self, name)(x)
        return self.out_pool(x)


# -- crnn_default: a compact VGG-style CNN -----------------------------------------------------------


class CompactCNN(nn.Module):
    """Six 3x3 conv+BN+ReLU layers. x: N, C, H, W -> N, 256, 1, W/4 for any H >= 16.

    Two 2x2 pools set the frame rate (4 pixels per frame, 25 frames at W=100); two (2,1) pools shrink
    only the height; the remaining rows are averaged, so the height need not be a fixed number.
    """

    channels = (32, 64, 128, 128, 256, 256)
    pools: tuple[tuple[int, int] | None, ...] = ((2, 2), (2, 2), None, (2, 1), None, (2, 1))

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for cout, pool in zip(self.channels, self.pools):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            if pool is not None:
                layers.append(nn.MaxPool2d(pool, pool))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=2, keepdim=True)


# -- neck, head, whole model -------------------------------------------------------------------------


class BiLSTMEncoder(nn.Module):
    """Two bidirectional LSTM layers. seq: N, T, C -> N, T, 2*hidden."""

    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        # Paddle's LSTM uses torch's layout and gate order (i, f, g, o): its weights load unchanged.
        self.lstm = nn.LSTM(in_channels, hidden_size, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.lstm(seq)[0]


class SequenceNeck(nn.Module):
    """Feature map to sequence (height 1 squeezed away) then the BiLSTM. feats: N, C, 1, T -> N, T, 2*hidden."""

    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.encoder = BiLSTMEncoder(in_channels, hidden_size)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        # Checked eagerly only: under tracing the comparison would be frozen into the graph with a warning.
        if not torch.jit.is_tracing() and feats.shape[2] != 1:
            raise UsageError(
                f"the backbone left a feature map {feats.shape[2]} rows high, the neck needs 1: "
                "use the input height the model was built for (32 for the PaddleOCR CRNNs)"
            )
        return self.encoder(feats.squeeze(2).transpose(1, 2))


class CTCHead(nn.Module):
    """Per-frame linear classifier. seq: N, T, C -> logits N, T, num_classes."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.fc(seq)


class CRNN(nn.Module):
    """backbone -> neck -> head. forward(x: N, C, H, W) -> logits N, T, num_classes (never softmaxed)."""

    def __init__(
        self, arch: str, backbone: nn.Module, hidden_size: int, num_classes: int, **config: Any
    ) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self._config = dict(config, arch=arch, num_classes=num_classes, hidden_size=hidden_size)
        self.backbone = backbone
        out_channels = int(backbone.out_channels)  # type: ignore[arg-type]
        self.neck = SequenceNeck(out_channels, hidden_size)
        self.head = CTCHead(2 * hidden_size, num_classes)

    @property
    def config(self) -> dict[str, Any]:
        """Arguments that rebuild this network: ``build_model(**model.config)``."""
        return dict(self._config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.neck(self.backbone(x)))


class WithSoftmax(nn.Module):
    """Inference/export wrapper: x: N, C, H, W -> probabilities N, T, num_classes (softmax over classes).

    Save ``wrapper.model.state_dict()``, not the wrapper's, so checkpoint names stay unprefixed.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)  # a fresh wrapper must not flip an eval-mode model back to training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=-1)


# -- registry ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchSpec:
    """One buildable architecture."""

    name: str
    backbone: Callable[..., nn.Module]  # (in_channels, **options) -> backbone with .out_channels
    hidden_size: int  # BiLSTM hidden units per direction
    options: tuple[str, ...]  # extra keyword options the backbone accepts
    paddle: bool  # loads PaddleOCR checkpoints of the config of the same name
    description: str


ARCHITECTURES: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec(
            MV3, MobileNetV3Rec, 96, ("scale",), True, "PaddleOCR CRNN: MobileNetV3-large x0.5, BiLSTM 96"
        ),
        ArchSpec(R34, ResNet34vdRec, 256, (), True, "PaddleOCR CRNN: ResNet34_vd, BiLSTM 256"),
        ArchSpec(DEFAULT, CompactCNN, 192, (), False, "crnn's own: 6-layer VGG-style CNN, BiLSTM 192"),
    )
}
ALIASES = {"crnn_mv3": MV3, "crnn_r34": R34, "mv3": MV3, "r34": R34, "default": DEFAULT}


def canonical_arch(name: str) -> str:
    """The registry name for ``name`` or one of its aliases (``crnn_mv3``, ``r34``...)."""
    name = ALIASES.get(name, name)
    if name not in ARCHITECTURES:
        known = ", ".join([*ARCHITECTURES, *ALIASES])
        raise UsageError(f"unknown architecture '{name}'; choose one of: {known}")
    return name


def build_model(arch: str, num_classes: int, in_channels: int = 3, **kwargs: Any) -> CRNN:
    """A freshly initialised CRNN. kwargs: ``hidden_size`` (any arch), ``scale`` (mv3 only).

    The result's forward maps x: N, in_channels, H, W to logits N, T, num_classes.
    """
    spec = ARCHITECTURES[canonical_arch(arch)]
    if num_classes < 2:
        raise UsageError(f"num_classes must be >= 2 (blank + at least one symbol), got {num_classes}")
    if in_channels < 1:
        raise UsageError(f"in_channels must be >= 1, got {in_channels}")
    hidden = int(kwargs.pop("hidden_size", spec.hidden_size))
    unknown = sorted(set(kwargs) - set(spec.options))
    if unknown:
        allowed = ", ".join(("hidden_size", *spec.options))
        raise UsageError(
            f"architecture '{spec.name}' has no option {', '.join(unknown)} (it takes: {allowed})"
        )
    backbone = spec.backbone(in_channels, **kwargs)
    return CRNN(spec.name, backbone, hidden, num_classes, in_channels=in_channels, **kwargs)


# -- PaddleOCR checkpoints -----------------------------------------------------------------------------

PADDLE_NAME_MAP_KEY = "StructuredToParameterName@@"
# Paddle keeps each LSTM weight twice: flat (torch layout) and per cell. The cell copies are the fallback.
_LSTM_CELL = re.compile(r"^(.*\.lstm)\.(\d+)\.cell_(fw|bw)\.(weight_ih|weight_hh|bias_ih|bias_hh)$")
_MV3_MARK = "backbone.blocks.0.expand_conv.conv.weight"
_R34_MARK = "backbone.bb_0_0.conv0._conv.weight"


@dataclass(frozen=True)
class LoadReport:
    """How a Paddle state dict mapped onto a torch model. Names are torch's unless said otherwise."""

    loaded: tuple[str, ...]  # torch entries that received a Paddle tensor
    missing: tuple[str, ...]  # torch entries nothing filled (BatchNorm batch counters not counted)
    unexpected: tuple[str, ...]  # Paddle names with no torch counterpart
    mismatched: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]  # name, Paddle shape, torch shape
    ignored: tuple[str, ...]  # Paddle names left out on purpose (per-cell LSTM copies)
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every Paddle tensor used and every torch entry filled, shapes equal."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} tensors loaded"]
        if self.mismatched:
            shown = "; ".join(
                f"{n}: checkpoint {list(a)} vs model {list(b)}" for n, a, b in self.mismatched[:5]
            )
            parts.append(f"{len(self.mismatched)} with other shapes ({shown})")
        if self.missing:
            parts.append(f"{len(self.missing)} missing from the checkpoint ({', '.join(self.missing[:5])})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} not in the model ({', '.join(self.unexpected[:5])})")
        return "; ".join(parts + list(self.notes))


def _torch_name(paddle_name: str, paddle_state: Mapping[str, np.ndarray]) -> str | None:
    """The torch entry a Paddle name fills; None for a per-cell LSTM copy whose flat twin is present."""
    m = _LSTM_CELL.match(paddle_name)
    if m:
        prefix, layer, direction, param = m.groups()
        flat = f"{prefix}.{param}_l{layer}{'_reverse' if direction == 'bw' else ''}"
        return None if flat in paddle_state else flat
    if paddle_name.endswith("._mean"):
        return paddle_name[: -len("_mean")] + "running_mean"
    if paddle_name.endswith("._variance"):
        return paddle_name[: -len("_variance")] + "running_var"
    return paddle_name


def paddle_to_torch_state_dict(
    paddle_state: Mapping[str, np.ndarray], model: nn.Module
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Map a Paddle state dict (``load_pdparams`` output) onto ``model``'s entries.

    Renames BatchNorm ``_mean``/``_variance`` to ``running_mean``/``running_var``, transposes Linear
    weights (Paddle stores them in, out), and uses the flat LSTM names, ignoring the per-cell copies.
    Entries whose shape differs from the model's are left out and listed in the report.
    """
    target = model.state_dict()
    linear = {name for name, mod in model.named_modules() if isinstance(mod, nn.Linear)}
    out: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    ignored: list[str] = []
    differing: list[str] = []
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for pname, array in paddle_state.items():
        if pname == PADDLE_NAME_MAP_KEY:
            continue
        tname = _torch_name(pname, paddle_state)
        if tname is None:
            ignored.append(pname)
            flat = _torch_name(pname, {})
            if flat is not None and not np.array_equal(array, paddle_state[flat]):
                differing.append(pname)
            continue
        if tname not in target:
            unexpected.append(pname)
            continue
        value = np.asarray(array)
        if tname.rpartition(".")[0] in linear and tname.endswith(".weight") and value.ndim == 2:
            value = value.T
        want = tuple(target[tname].shape)
        if value.shape != want:
            mismatched.append((tname, tuple(value.shape), want))
            continue
        out[tname] = torch.from_numpy(np.array(value, copy=True)).to(target[tname].dtype)
    missing = [k for k in target if k not in out and not k.endswith("num_batches_tracked")]
    missing = [k for k in missing if k not in {m[0] for m in mismatched}]
    report = LoadReport(
        loaded=tuple(out),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        mismatched=tuple(mismatched),
        ignored=tuple(ignored),
        notes=(f"{len(differing)} per-cell LSTM copies differ from the flat LSTM weights, which were used",)
        if differing
        else (),
    )
    return out, report


def load_paddle_into(
    model: nn.Module, paddle_state: Mapping[str, np.ndarray], strict: bool = True
) -> LoadReport:
    """Copy a Paddle state dict into ``model``.

    strict=True: all or nothing; any missing, unexpected or differently shaped tensor raises ModelError
    and the model is left untouched. strict=False (fine-tuning, e.g. a new dictionary): whatever
    matches in name and shape is loaded and the report lists the rest.
    """
    state, report = paddle_to_torch_state_dict(paddle_state, model)
    if strict and not report.ok:
        raise ModelError(
            f"checkpoint does not fit the {getattr(model, 'arch', 'model')} network: {report.summary()}"
        )
    model.load_state_dict(state, strict=False)
    return report


def detect_architecture(paddle_state: Mapping[str, np.ndarray]) -> tuple[str, int]:
    """(architecture, num_classes) of a PaddleOCR CRNN checkpoint, from its names and shapes alone."""
    head = paddle_state.get("head.fc.bias")
    has_lstm = "neck.encoder.lstm.weight_ih_l0" in paddle_state or any(map(_LSTM_CELL.match, paddle_state))
    if head is None or not has_lstm:
        sample = ", ".join(sorted(paddle_state)[:3])
        raise ModelError(
            "not a PaddleOCR CRNN checkpoint (expected a BiLSTM neck 'neck.encoder.lstm' and a CTC head "
            f"'head.fc'; it has {len(paddle_state)} entries such as {sample}). Supported: {MV3}, {R34}"
        )
    num_classes = int(head.shape[0])
    if _MV3_MARK in paddle_state and "backbone.conv2.conv.weight" in paddle_state:
        return MV3, num_classes
    if _R34_MARK in paddle_state:
        depth = []
        for stage in range(8):
            n = sum(1 for i in range(64) if f"backbone.bb_{stage}_{i}.conv0._conv.weight" in paddle_state)
            if n == 0:
                break
            depth.append(n)
        if tuple(depth) == ResNet34vdRec.depth and "backbone.bb_0_0.conv2._conv.weight" not in paddle_state:
            return R34, num_classes
        raise ModelError(
            f"ResNet_vd checkpoint with stage depths {depth}: only ResNet34_vd {R34} is supported"
        )
    raise ModelError(f"unknown CRNN backbone in this checkpoint; supported: {MV3}, {R34}")


def paddle_build_kwargs(paddle_state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``build_model`` arguments that fit a Paddle checkpoint: arch, classes, input channels, sizes."""
    arch, num_classes = detect_architecture(paddle_state)
    first = paddle_state.get("backbone.conv1.conv.weight" if arch == MV3 else "backbone.conv1_1._conv.weight")
    kwargs: dict[str, Any] = {
        "arch": arch,
        "num_classes": num_classes,
        "in_channels": 3 if first is None else int(first.shape[1]),  # absent: strict loading will say so
    }
    hh = paddle_state.get(
        "neck.encoder.lstm.weight_hh_l0", paddle_state.get("neck.encoder.lstm.0.cell_fw.weight_hh")
    )
    if hh is not None:
        kwargs["hidden_size"] = int(hh.shape[1])
    if arch == MV3:
        width = int(paddle_state["backbone.conv2.conv.weight"].shape[0])
        scales = [s for s in (0.35, 0.5, 0.75, 1.0, 1.25) if make_divisible(960 * s) == width]
        if scales:
            kwargs["scale"] = scales[0]
    return kwargs


def build_from_paddle(paddle_state: Mapping[str, np.ndarray], strict: bool = True) -> tuple[CRNN, LoadReport]:
    """Detect the architecture, build it and load the weights: a CRNN equal to the Paddle one."""
    model = build_model(**paddle_build_kwargs(paddle_state))
    report = load_paddle_into(model, paddle_state, strict=strict)
    return model, report
