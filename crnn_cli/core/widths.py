"""A per-crop ``widths`` input for ONNX CRNNs, so crops of different widths can share one model call.

A batch pads every crop to the widest one, and the padding changes what a convolution next to a crop's
right edge sees and where the backward LSTM starts: so today crops share a call only with crops of the
same padded width, and a service taking single crops from many clients, or a folder of real crops of
many sizes, makes many small calls. ``add_widths_input`` rewrites a graph so that it takes, beside the
images, each crop's own (padded) width in pixels (int64, one per crop):

- the input of every convolution but the first is multiplied by a 0/1 mask of the columns inside the
  crop (at that layer's width scale), so a convolution sees zeros past the crop's edge, as it does
  through its own zero padding when the crop is alone;
- every LSTM gets ``sequence_lens`` (the crop's frames), so the backward direction starts at the crop's
  last frame, as when the crop is alone; frames past it come out as zeros and are not decoded.

Pools must not straddle a crop's edge: they are non-overlapping (kernel = stride along the width) and
every padded width is a multiple of the total width stride (the model's width step and minimum width
must be). A graph with anything else that looks along the width (global pooling, squeeze-excitation,
attention, resizing) is refused. The result is checked, not assumed: ``check_widths_input`` runs both
graphs in ONNX Runtime on crops of several widths, each alone and all together, and the frames of each
crop must match (the CompactCNN CRNN gives identical numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from crnn_cli.core.errors import ModelError

WIDTHS_INPUT = "widths"  # the input's name: int64 [N], each crop's padded width in pixels

# Ops that act on each column by itself (elementwise, or over channels / height only).
_COLUMNWISE = {
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "PRelu",
    "BatchNormalization", "Identity", "Dropout", "Cast",
}  # fmt: skip
_POOLS = {"MaxPool", "AveragePool"}
_HEIGHT_REDUCE = {"ReduceMean", "ReduceMax", "ReduceSum"}
_RECURRENT = {"LSTM", "GRU", "RNN"}


@dataclass(frozen=True)
class WidthsReport:
    """What the rewrite did: masks inserted (one per convolution after the first), recurrent layers
    given sequence lengths, and the total width stride (pixels per output frame)."""

    masks: int
    recurrent: int
    stride: int


def _attr(node: Any, name: str, default: Any = None) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _const_ints(graph: Any, name: str) -> list[int] | None:
    """The values of an initializer or Constant node output, if ``name`` is one."""
    import onnx

    for init in graph.initializer:
        if init.name == name:
            return [int(v) for v in onnx.numpy_helper.to_array(init).reshape(-1)]
    for node in graph.node:
        if node.op_type == "Constant" and name in node.output:
            value = _attr(node, "value")
            return (
                [int(v) for v in onnx.numpy_helper.to_array(value).reshape(-1)] if value is not None else None
            )
    return None


def add_widths_input(model: Any, width_step: int, min_width: int) -> tuple[Any, WidthsReport]:
    """A copy of ``model`` (onnx.ModelProto of a conv + pool + recurrent CRNN, one N x C x H x W input)
    with the ``widths`` input. width_step / min_width: the model's padding rules (metadata), which
    must keep every padded width a multiple of the total width stride. Raises ModelError naming what
    stops the rewrite."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelError(f"the model has inputs {names}; a widths input is added to one-input models only")
    image = inputs[0].name
    if any(n.op_type in _RECURRENT and len(n.input) > 4 and n.input[4] for n in graph.node):
        raise ModelError("the model's recurrent layers already take sequence lengths")

    # Width stride of every tensor that still has the image's column layout (N, C, H, W).
    stride: dict[str, int] = {image: 1}
    new_nodes: list[Any] = []
    made: dict[int, str] = {}  # stride -> name of the per-crop column count at that stride (N,1,1,1)
    total = 1
    masks = recurrent = 0

    def columns(s: int) -> str:
        """Nodes computing widths / s as N x 1 x 1 x 1 (int64), once per stride."""
        if s not in made:
            pre = f"crnn_widths/s{s}"
            new_nodes.extend([
                helper.make_node("Constant", [], [f"{pre}/stride"], value=numpy_helper.from_array(np.array(s, np.int64))),
                helper.make_node("Div", [WIDTHS_INPUT, f"{pre}/stride"], [f"{pre}/cols"]),
                helper.make_node("Constant", [], [f"{pre}/shape"], value=numpy_helper.from_array(np.array([-1, 1, 1, 1], np.int64))),
                helper.make_node("Reshape", [f"{pre}/cols", f"{pre}/shape"], [f"{pre}/cols4"]),
            ])  # fmt: skip
            made[s] = pre
        return made[s]

    masks_made: dict[int, str] = {}  # stride -> the 0/1 column mask (N, 1, 1, W/stride), float

    def mask(s: int, like: str) -> str:
        """Nodes computing the column mask at stride s (from a tensor of that stride), once per stride."""
        if s not in masks_made:
            pre = columns(s)
            tag = f"crnn_widths/mask{s}"
            new_nodes.extend([
                helper.make_node("Shape", [like], [f"{tag}/shape"], start=3, end=4),
                helper.make_node("Constant", [], [f"{tag}/axis0"], value=numpy_helper.from_array(np.array([0], np.int64))),
                helper.make_node("Squeeze", [f"{tag}/shape", f"{tag}/axis0"], [f"{tag}/W"]),
                helper.make_node("Constant", [], [f"{tag}/zero"], value=numpy_helper.from_array(np.array(0, np.int64))),
                helper.make_node("Constant", [], [f"{tag}/one"], value=numpy_helper.from_array(np.array(1, np.int64))),
                helper.make_node("Range", [f"{tag}/zero", f"{tag}/W", f"{tag}/one"], [f"{tag}/range"]),
                helper.make_node("Less", [f"{tag}/range", f"{pre}/cols4"], [f"{tag}/inside"]),
                helper.make_node("Cast", [f"{tag}/inside"], [f"{tag}/mask"], to=TensorProto.FLOAT),
            ])  # fmt: skip
            masks_made[s] = f"{tag}/mask"
        return masks_made[s]

    for node in graph.node:
        spatial = [x for x in node.input if x in stride]
        if node.op_type in _RECURRENT:
            pre = columns(total)
            lens = f"crnn_widths/{node.output[0]}/lens"
            new_nodes.append(helper.make_node("Cast", [f"{pre}/cols"], [lens], to=TensorProto.INT32))
            while len(node.input) < 5:
                node.input.append("")
            node.input[4] = lens
            recurrent += 1
            new_nodes.append(node)
            continue
        if not spatial:
            new_nodes.append(node)
            continue
        s = stride[spatial[0]]
        op = node.op_type
        if op == "Conv":
            kernel = list(_attr(node, "kernel_shape", []))
            steps = list(_attr(node, "strides", [1, 1]))
            if len(kernel) != 2 or steps[1] != 1:
                raise ModelError(f"{node.name or op}: only 2-D convolutions of width stride 1 can be masked")
            if node.input[0] != image and kernel[1] > 1:
                masked = f"crnn_widths/{node.output[0]}/masked"
                new_nodes.append(helper.make_node("Mul", [node.input[0], mask(s, node.input[0])], [masked]))
                node.input[0] = masked
                masks += 1
            stride[node.output[0]] = s
        elif op in _COLUMNWISE or (
            op in ("Add", "Mul", "Sub") and all(stride.get(x, s) == s for x in spatial)
        ):
            stride[node.output[0]] = s
        elif op in _POOLS:
            kernel = list(_attr(node, "kernel_shape", []))
            steps = list(_attr(node, "strides", [1, 1]))
            pads = list(_attr(node, "pads", [0, 0, 0, 0]))
            if len(kernel) != 2 or kernel[1] != steps[1] or pads[1] or pads[3] or _attr(node, "ceil_mode", 0):
                raise ModelError(
                    f"{node.name or op}: a pool that overlaps or pads along the width would straddle a "
                    "crop's edge"
                )
            stride[node.output[0]] = s * steps[1]
            total = max(total, s * steps[1])
        elif op in _HEIGHT_REDUCE:
            axes = _attr(node, "axes")
            if axes is None and len(node.input) > 1:
                axes = _const_ints(graph, node.input[1])
            if axes is None or sorted(int(a) % 4 for a in axes) != [2]:
                raise ModelError(f"{node.name or op}: reduces over {axes}, not the height alone")
            stride[node.output[0]] = s
        elif op in ("Squeeze", "Transpose", "Reshape", "Shape", "Unsqueeze", "Flatten"):
            pass  # leaves the image layout (to the sequence); recurrent layers get their lengths
        else:
            raise ModelError(f"{node.name or op}: {op} on the feature map is not known to keep columns apart")
        new_nodes.append(node)

    if recurrent == 0:
        raise ModelError("the model has no LSTM, GRU or RNN layer: not a CRNN")
    for name, value in (("width step", width_step), ("minimum width", min_width)):
        if value % total:
            raise ModelError(
                f"the model's {name} ({value} px) is not a multiple of its width stride ({total} px): "
                "a pool would straddle a crop's edge"
            )
    graph.input.append(helper.make_tensor_value_info(WIDTHS_INPUT, TensorProto.INT64, ["batch"]))
    del graph.node[:]
    graph.node.extend(new_nodes)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # ValidationError
        raise ModelError(f"the rewritten graph fails onnx.checker: {exc}") from None
    return model, WidthsReport(masks, recurrent, total)


def check_widths_input(
    original: bytes, rewritten: bytes, height: int, channels: int, widths: list[int], tolerance: float = 1e-5
) -> float:
    """Run crops of ``widths`` through the original graph one at a time and through the rewritten one
    all together; return the largest difference of any crop's frames. Raises ModelError above
    ``tolerance`` or if the frame counts differ."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    one = ort.InferenceSession(original, sess_options=so, providers=["CPUExecutionProvider"])
    many = ort.InferenceSession(rewritten, sess_options=so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    crops = [rng.uniform(-1, 1, (channels, height, w)).astype(np.float32) for w in widths]
    widest = max(widths)
    batch = np.zeros((len(crops), channels, height, widest), np.float32)
    for i, c in enumerate(crops):
        batch[i, :, :, : c.shape[2]] = c
    name = one.get_inputs()[0].name
    together = many.run(None, {name: batch, WIDTHS_INPUT: np.asarray(widths, np.int64)})[0]
    worst = 0.0
    for i, c in enumerate(crops):
        alone = one.run(None, {name: c[None]})[0][0]
        frames = alone.shape[0]
        if frames * widest != together.shape[1] * c.shape[2]:
            raise ModelError(
                f"a crop {c.shape[2]} px wide gives {frames} frames alone, not its share together"
            )
        worst = max(worst, float(np.abs(together[i, :frames] - alone).max()))
    if worst > tolerance:
        raise ModelError(
            f"with the widths input, crops read together differ from each read alone by {worst:.2e} "
            f"(tolerance {tolerance:.0e}): this graph keeps no crop apart from its neighbours"
        )
    return worst
