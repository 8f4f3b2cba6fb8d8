#!/usr/bin/env python3
"""Recover a trainable torch checkpoint from a crnn_default model that crnn exported to ONNX.

The bundled model's training checkpoint was lost with the machine that trained it; its ONNX file keeps
every weight, but the exporter folded each BatchNorm into the conv before it. This script puts the
weights back into a fresh ``crnn_default`` network so that training can start from them
(``Global.pretrained_model``):

- conv: the folded weight; its BatchNorm is rebuilt so that eval mode gives exactly the folded conv
  (x * 1 + bias) and train mode gives nearly the same: gamma and the running statistics are set to
  each channel's spread and mean over real training crops, so a batch's own statistics, which train
  mode normalises with, undo themselves;
- LSTM: ONNX keeps the gates in the order i, o, f, c; torch in i, f, g, o;
- head: the MatMul weight transposed, and its bias.

The script then checks that the torch network reproduces the ONNX model's probabilities on the same
crops (max |dp| <= 1e-4) and refuses to write the checkpoint otherwise.

    python scripts/default_model/onnx_to_checkpoint.py crnn_cli/models/default.onnx \\
        --calibrate runs/default/split/train_iiit5k_train.tsv --data-dir ../shared/data/real \\
        -o runs/default/stage0/default_from_onnx.pt
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from crnn_torch import checkpoint as ckpt_io
from crnn_torch.models import build_model
from onnx import numpy_helper

from crnn_cli import __version__
from crnn_cli.core.datasets import LabelFileDataset
from crnn_cli.core.metadata import ModelMetadata
from crnn_cli.core.preprocess import Preprocessor

# ONNX LSTM gate blocks (i, o, f, c) -> torch's (i, f, g, o)
_GATES_TO_TORCH = (0, 2, 3, 1)


def _gates(w: np.ndarray, hidden: int) -> np.ndarray:
    blocks = [w[k * hidden : (k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in _GATES_TO_TORCH], axis=0)


def onnx_weights(path: Path) -> tuple[list, list, list]:
    """(convs [(W, b)], lstms [(W, R, B)], linears [(W, b)]) in graph order."""
    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs, lstms, linears = [], [], []
    for i, node in enumerate(model.graph.node):
        ins = [init.get(name) for name in node.input]
        if node.op_type == "Conv":
            convs.append((ins[1], ins[2] if len(ins) > 2 else None))
        elif node.op_type == "LSTM":
            lstms.append((ins[1], ins[2], ins[3]))
        elif node.op_type in ("MatMul", "Gemm") and ins[1] is not None:
            bias = ins[2] if len(ins) > 2 else None
            if bias is None:  # MatMul then Add(bias)
                for nxt in model.graph.node[i + 1 :]:
                    if nxt.op_type == "Add" and node.output[0] in nxt.input:
                        bias = next(init[n] for n in nxt.input if n in init)
                        break
            linears.append((ins[1], bias))
    return convs, lstms, linears


def calibration_batch(labels: Path, data_dir: Path, pre: Preprocessor, n: int) -> np.ndarray:
    dataset = LabelFileDataset(labels, data_dir)
    order = list(range(len(dataset)))
    random.Random(0).shuffle(order)
    crops = [dataset[i].image for i in order[:n]]
    return pre.batch(crops, width=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("onnx_model", type=Path)
    ap.add_argument("--calibrate", type=Path, required=True, help="label file of real training crops")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("-n", type=int, default=256, help="crops for the BatchNorm statistics")
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args(argv)

    props = {p.key: p.value for p in onnx.load(str(args.onnx_model), load_external_data=False).metadata_props}
    meta = ModelMetadata.from_props(props)
    if meta is None:
        sys.exit(f"{args.onnx_model}: no crnn metadata; export the model with crnn")
    if meta.architecture != "crnn_default":
        sys.exit(
            f"{args.onnx_model}: architecture {meta.architecture!r}; this script knows crnn_default only"
        )
    num_classes = meta.charset().num_classes
    convs, lstms, linears = onnx_weights(args.onnx_model)
    hidden = lstms[0][1].shape[-1]
    model = build_model("crnn_default", num_classes, in_channels=meta.channels, hidden_size=hidden).eval()

    conv_mods = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    bn_mods = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    lstm = next(m for m in model.modules() if isinstance(m, torch.nn.LSTM))
    fc = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if (len(conv_mods), len(bn_mods), lstm.num_layers, len(fc)) != (
        len(convs),
        len(convs),
        len(lstms),
        len(linears),
    ):
        sys.exit(f"{args.onnx_model}: its layers do not match crnn_default's")

    with torch.no_grad():
        for conv, bn, (w, b) in zip(conv_mods, bn_mods, convs):
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(np.array(b)))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        for layer, (w, r, b) in enumerate(lstms):
            for d, suffix in enumerate(("", "_reverse")):
                getattr(lstm, f"weight_ih_l{layer}{suffix}").copy_(torch.from_numpy(_gates(w[d], hidden)))
                getattr(lstm, f"weight_hh_l{layer}{suffix}").copy_(torch.from_numpy(_gates(r[d], hidden)))
                wb, rb = b[d][: 4 * hidden], b[d][4 * hidden :]
                getattr(lstm, f"bias_ih_l{layer}{suffix}").copy_(torch.from_numpy(_gates(wb, hidden)))
                getattr(lstm, f"bias_hh_l{layer}{suffix}").copy_(torch.from_numpy(_gates(rb, hidden)))
        ((w, b),) = linears
        fc[0].weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T)))
        fc[0].bias.copy_(torch.from_numpy(np.array(b)))

    pre = Preprocessor(meta.preprocess())
    x = calibration_batch(args.calibrate, args.data_dir, pre, args.n)

    # Each conv's output statistics (eval mode = the folded network, whatever the BN statistics are).
    stats: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [
        c.register_forward_hook(lambda m, i, o: stats.append((o.mean((0, 2, 3)), o.var((0, 2, 3)))))
        for c in conv_mods
    ]
    with torch.no_grad():
        model(torch.from_numpy(np.array(x)))
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for bn, (mean, var), (_, b) in zip(bn_mods, stats, convs):
            std = (var + bn.eps).sqrt()
            bn.weight.copy_(std)
            bn.bias.copy_(mean + torch.from_numpy(np.array(b)))
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(args.onnx_model), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = torch.softmax(model(torch.from_numpy(np.array(x))), -1).numpy()
    if got.shape != want.shape:
        sys.exit(f"output shapes differ: torch {got.shape}, ONNX {want.shape}")
    dp = float(np.abs(got - want).max())
    print(f"torch vs ONNX on {len(x)} crops: max |dp| = {dp:.2e}", file=sys.stderr)
    if dp > 1e-4:
        sys.exit("the recovered network does not reproduce the ONNX model; nothing written")

    payload = {
        "format": ckpt_io.FORMAT,
        "format_version": ckpt_io.FORMAT_VERSION,
        "crnn_version": __version__,
        "torch_version": str(torch.__version__),
        "arch": "crnn_default",
        "arch_kwargs": {"in_channels": meta.channels, "hidden_size": hidden},
        "num_classes": num_classes,
        "characters": list(meta.charset().symbols),
        "metadata": meta.to_json(),
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "source": str(args.onnx_model),
    }
    ckpt_io.save_checkpoint(payload, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
