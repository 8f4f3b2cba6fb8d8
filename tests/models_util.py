"""Tiny CRNN-shaped models for backend tests, built with the ``onnx`` helper API (no torch needed).

The graph keeps what matters to a backend: input ``x`` N x C x H x W with dynamic batch and width,
output N x T x classes probabilities with T = W // 4, and only per-sample operations so a row of a
batch does not depend on its neighbours::

    x -> Conv 3x3 (C -> 8) -> Relu -> AveragePool 1x4 /4 -> ReduceMean over H -> Transpose (N, T, 8)
      -> MatMul (8 -> classes) -> Add bias -> Softmax

Weights come from a seeded generator, and the head is scaled so the probabilities are far from
uniform: an error in a backend then shows in the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from crnn_cli.core.metadata import ModelMetadata

FEATURES = 8  # conv channels; small keeps the file a few kB
OPSET = 17  # ReduceMean takes axes as an attribute up to opset 17; every runtime we test reads 17
DEFAULT_CHARS = tuple("0123456789abcdefghijklmnopqrstuvwxyz")


def tiny_metadata(num_classes: int = 37, height: int = 32, channels: int = 3) -> ModelMetadata:
    """The metadata ``make_tiny_onnx`` embeds by default: a dictionary sized to ``num_classes``."""
    if num_classes == len(DEFAULT_CHARS) + 1:
        chars = DEFAULT_CHARS
        lowercase = True
    else:
        # Symbols that stress the storage: XML/JSON specials and non-ASCII survive a round trip.
        pool = [*DEFAULT_CHARS, "<", "&", '"', "'", "中", "é", "\\"]
        pool += [chr(0x3400 + i) for i in range(max(0, num_classes - 1 - len(pool)))]  # CJK Ext. A
        chars = tuple(pool[: num_classes - 1])
        lowercase = False
    return ModelMetadata(
        characters=chars,
        lowercase=lowercase,
        channels=channels,
        height=height,
        width=100,
        dynamic_width=True,
        architecture="tiny_test",
        producer="crnn tests",
        dictionary="tiny",
    )


def tiny_weights(channels: int, num_classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The tiny model's float32 weights by initializer name, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return {
        "conv_w": rng.normal(0.0, 0.5, (FEATURES, channels, 3, 3)).astype(np.float32),
        "conv_b": rng.normal(0.0, 0.1, (FEATURES,)).astype(np.float32),
        # Scale 4 spreads the logits over several units, so softmax rows have clear winners.
        "head_w": rng.normal(0.0, 4.0, (FEATURES, num_classes)).astype(np.float32),
        "head_b": rng.normal(0.0, 1.0, (num_classes,)).astype(np.float32),
    }


def make_tiny_onnx(
    path: str | Path,
    num_classes: int = 37,
    height: int = 32,
    channels: int = 3,
    props: Mapping[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """Write a tiny CRNN-like ONNX model to ``path`` and return the path.

    Input ``x``: N, channels, height, W (N and W dynamic). Output ``probs``: N, W // 4, num_classes.
    ``props`` become ONNX metadata_props; None embeds ``tiny_metadata(...).to_props()``, ``{}`` none.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[1, 4], strides=[1, 4]),
        helper.make_node("ReduceMean", ["p"], ["m"], axes=[2], keepdims=0),  # N, F, T
        helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1]),  # N, T, F
        helper.make_node("MatMul", ["t", "head_w"], ["l"]),
        helper.make_node("Add", ["l", "head_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_crnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", channels, height, "width"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", "time", num_classes])],
        initializer=[
            numpy_helper.from_array(w, name) for name, w in tiny_weights(channels, num_classes, seed).items()
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="crnn-tests"
    )
    # Pin the IR version so older runtimes (which cap the IR version they read) still open the file.
    model.ir_version = 8
    if props is None:
        props = tiny_metadata(num_classes, height, channels).to_props()
    if props:
        helper.set_model_props(model, dict(props))
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def reference_forward(x: np.ndarray, num_classes: int = 37, seed: int = 0) -> np.ndarray:
    """The tiny model's output computed in numpy (float64), for checking a backend's numbers.

    x: N, C, H, W float32 -> N, W // 4, num_classes probabilities.
    """
    weights = {k: v.astype(np.float64) for k, v in tiny_weights(x.shape[1], num_classes, seed).items()}
    conv_w, conv_b, head_w, head_b = (weights[k] for k in ("conv_w", "conv_b", "head_w", "head_b"))
    n, _, h, w = x.shape
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((n, FEATURES, h, w))
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, :, dy : dy + h, dx : dx + w]  # N, C, H, W
            conv += np.einsum("nchw,fc->nfhw", patch, conv_w[:, :, dy, dx])
    conv = np.maximum(conv + conv_b[None, :, None, None], 0.0)
    t = w // 4
    pooled = conv[:, :, :, : t * 4].reshape(n, FEATURES, h, t, 4).mean(axis=4)  # N, F, H, T
    feats = pooled.mean(axis=2).transpose(0, 2, 1)  # N, T, F
    logits = feats @ head_w + head_b
    logits -= logits.max(axis=2, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=2, keepdims=True)
