"""The PaddleOCR side of scripts/bench.py, run in its own process (Paddle's oneDNN/OpenMP stay out of ours).

Two jobs, driven by one JSON object per line on stdin (one JSON reply per line on stdout):

* ``{"cmd": "build", ...}``: write a Paddle inference model of a crnn torch network ("twin"): the same
  layers, built with paddle.nn under the torch module names, given the torch weights (an .npz written by
  benchkit/paddle_side.py), saved with paddle.jit.save. Used for the networks no PaddleOCR inference
  model exists for here (the random-weight r34, crnn's default model); benchkit/throughput.py checks
  the twin against our ONNX export.
* ``{"cmd": "load", ...}`` then ``{"cmd": "run", ...}``: PaddleOCR's recognition pipeline, end to end, as
  its predict_rec does it (see ../shared/REFERENCE.md): read every crop with cv2.imread, sort by aspect
  ratio, cut batches (6 by default), pad each batch to int(H * its widest ratio) with resize_norm_img,
  run Paddle Inference (CPU, oneDNN on, the given thread count), greedy CTC decode per crop, results in
  input order. Replies with the wall time, padding counts and the texts.

Reimplemented for the benchmark from the behaviour described in REFERENCE.md; no PaddleOCR code.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _quiet_import_paddle() -> Any:
    noise = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
        warnings.simplefilter("ignore")
        import paddle
    return paddle


# -- twins: paddle.nn copies of crnn's torch networks --------------------------------------------------


def _twin(spec: dict[str, Any]) -> Any:
    """A paddle.nn.Layer equal to crnn_torch.models' network ``spec['arch']``, with the same names."""
    paddle = _quiet_import_paddle()
    nn = paddle.nn
    F = paddle.nn.functional

    class ConvBNvd(nn.Layer):
        def __init__(self, cin: int, cout: int, k: int, stride=(1, 1), relu=False, vd_pool=False) -> None:
            super().__init__()
            self._pool = nn.AvgPool2D(stride, stride, ceil_mode=True) if vd_pool else None
            self._conv = nn.Conv2D(
                cin, cout, k, (1, 1) if vd_pool else stride, padding=(k - 1) // 2, bias_attr=False
            )
            self._batch_norm = nn.BatchNorm2D(cout, epsilon=1e-5)
            self._relu = relu

        def forward(self, x: Any) -> Any:
            if self._pool is not None:
                x = self._pool(x)
            x = self._batch_norm(self._conv(x))
            return F.relu(x) if self._relu else x

    class Block(nn.Layer):
        def __init__(self, cin: int, cout: int, stride, project: bool, first: bool) -> None:
            super().__init__()
            self.conv0 = ConvBNvd(cin, cout, 3, stride, relu=True)
            self.conv1 = ConvBNvd(cout, cout, 3)
            vd = not first and stride[0] != 1
            self.short = ConvBNvd(cin, cout, 1, stride, vd_pool=vd) if project else None

        def forward(self, x: Any) -> Any:
            shortcut = x if self.short is None else self.short(x)
            return F.relu(self.conv1(self.conv0(x)) + shortcut)

    class ResNet34vd(nn.Layer):
        def __init__(self, cin: int) -> None:
            super().__init__()
            self.conv1_1 = ConvBNvd(cin, 32, 3, relu=True)
            self.conv1_2 = ConvBNvd(32, 32, 3, relu=True)
            self.conv1_3 = ConvBNvd(32, 64, 3, relu=True)
            self.pool = nn.MaxPool2D(3, 2, padding=1)
            self.names: list[str] = []
            c = 64
            for s, (n, cout) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
                for i in range(n):
                    stride = (2, 1) if i == 0 and s > 0 else (1, 1)
                    name = f"bb_{s}_{i}"
                    self.add_sublayer(name, Block(c, cout, stride, i == 0, s == i == 0))
                    self.names.append(name)
                    c = cout
            self.out_channels = c
            self.out_pool = nn.MaxPool2D(2, 2)

        def forward(self, x: Any) -> Any:
            x = self.pool(self.conv1_3(self.conv1_2(self.conv1_1(x))))
            for name in self.names:
                x = getattr(self, name)(x)
            return self.out_pool(x)

    class Compact(nn.Layer):
        def __init__(self, cin: int) -> None:
            super().__init__()
            layers: list[Any] = []
            pools = ((2, 2), (2, 2), None, (2, 1), None, (2, 1))
            for cout, pool in zip((32, 64, 128, 128, 256, 256), pools):
                layers += [
                    nn.Conv2D(cin, cout, 3, padding=1, bias_attr=False),
                    nn.BatchNorm2D(cout),
                    nn.ReLU(),
                ]
                if pool is not None:
                    layers.append(nn.MaxPool2D(pool, pool))
                cin = cout
            self.features = nn.Sequential(*layers)
            self.out_channels = cin

        def forward(self, x: Any) -> Any:
            return self.features(x).mean(axis=2, keepdim=True)

    class Encoder(nn.Layer):
        def __init__(self, cin: int, hidden: int) -> None:
            super().__init__()
            self.lstm = nn.LSTM(cin, hidden, num_layers=2, direction="bidirect", time_major=False)

        def forward(self, seq: Any) -> Any:
            return self.lstm(seq)[0]

    class Neck(nn.Layer):
        def __init__(self, cin: int, hidden: int) -> None:
            super().__init__()
            self.encoder = Encoder(cin, hidden)

        def forward(self, feats: Any) -> Any:
            return self.encoder(feats.squeeze(2).transpose([0, 2, 1]))

    class Head(nn.Layer):
        def __init__(self, cin: int, classes: int) -> None:
            super().__init__()
            self.fc = nn.Linear(cin, classes)

        def forward(self, seq: Any) -> Any:
            return self.fc(seq)

    class Net(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            backbones = {"rec_r34_vd_none_bilstm_ctc": ResNet34vd, "crnn_default": Compact}
            self.backbone = backbones[spec["arch"]](spec["in_channels"])
            self.neck = Neck(self.backbone.out_channels, spec["hidden_size"])
            self.head = Head(2 * spec["hidden_size"], spec["num_classes"])

        def forward(self, x: Any) -> Any:
            return F.softmax(self.head(self.neck(self.backbone(x))), axis=-1)

    return Net()


def build(args: dict[str, Any]) -> dict[str, Any]:
    """Save the twin of args['arch'] with the weights in args['weights'] (Paddle names) at args['out']."""
    paddle = _quiet_import_paddle()
    net = _twin(args)
    weights = dict(np.load(args["weights"]))
    own = net.state_dict()
    # Paddle's LSTM lists every weight twice (flat and per cell, one tensor); the flat names are given.
    needed = {k for k in own if ".cell_" not in k}
    missing = sorted(needed - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        return {
            "ok": False,
            "error": f"twin names differ: missing {missing[:5]}, unexpected {unexpected[:5]}",
        }
    for name, value in weights.items():
        if tuple(own[name].shape) != value.shape:
            return {"ok": False, "error": f"{name}: twin {own[name].shape} vs weights {value.shape}"}
    net.set_state_dict(weights)
    net.eval()
    spec = paddle.static.InputSpec([None, args["in_channels"], args["height"], None], "float32", "x")
    paddle.jit.save(net, args["out"], input_spec=[spec])
    return {"ok": True, "params": int(sum(int(np.prod(v.shape)) for v in weights.values()))}


# -- PaddleOCR's recognition pipeline ------------------------------------------------------------------


class PaddlePipeline:
    def __init__(self, args: dict[str, Any]) -> None:
        from paddle import inference

        model, params = args["model"], args["params"]
        config = inference.Config(model, params)
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(int(args["threads"]))
        if args.get("onednn", True):
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(10)  # widths vary per batch: keep compiled shapes around
        config.switch_ir_optim(True)
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self.height, self.width = int(args["height"]), int(args["width"])
        self.symbols = list(args["symbols"])

    def resize_norm(self, img: np.ndarray, width: int) -> tuple[np.ndarray, int]:
        """One crop -> (3 x H x width float32, columns holding the image): resize_norm_img."""
        import cv2

        h, w = img.shape[:2]
        want = math.ceil(self.height * (w / h))
        rw = width if want > width else want
        small = cv2.resize(img, (rw, self.height)).astype("float32")
        small = small.transpose((2, 0, 1)) / 255
        small -= 0.5
        small /= 0.5
        out = np.zeros((3, self.height, width), dtype=np.float32)
        out[:, :, :rw] = small
        return out, rw

    def decode(self, probs: np.ndarray) -> list[str]:
        """Greedy CTC, one crop at a time: best class per frame, repeats merged, blanks dropped."""
        texts = []
        for row in probs:
            best = row.argmax(axis=1)
            keep = np.ones(len(best), dtype=bool)
            keep[1:] = best[1:] != best[:-1]
            keep &= best != 0
            texts.append("".join(self.symbols[c - 1] for c in best[keep]))
        return texts

    def run(self, paths: list[str], batch: int) -> dict[str, Any]:
        import cv2

        start = time.perf_counter()
        images = [cv2.imread(p) for p in paths]
        ratios = [img.shape[1] / img.shape[0] for img in images]
        order = np.argsort(np.array(ratios))
        texts: list[str] = [""] * len(images)
        padded = total = 0
        shapes = []
        for first in range(0, len(images), batch):
            chosen = order[first : first + batch]
            widest = max(self.width / self.height, max(ratios[i] for i in chosen))
            width = int(self.height * widest)
            rows = [self.resize_norm(images[i], width) for i in chosen]
            x = np.stack([r for r, _ in rows])
            padded += sum(width - used for _, used in rows)
            total += width * len(rows)
            shapes.append(list(x.shape))
            self.input.reshape(list(x.shape))
            self.input.copy_from_cpu(x)
            self.predictor.run()
            probs = self.output.copy_to_cpu()
            for i, text in zip(chosen, self.decode(probs)):
                texts[i] = text
        seconds = time.perf_counter() - start
        return {
            "ok": True,
            "seconds": seconds,
            "padded": padded,
            "total": total,
            "texts": texts,
            "shapes": shapes,
        }

    def infer(self, x: np.ndarray) -> np.ndarray:
        self.input.reshape(list(x.shape))
        self.input.copy_from_cpu(np.ascontiguousarray(x, dtype=np.float32))
        self.predictor.run()
        return self.output.copy_to_cpu()


def main() -> None:
    # Replies go to the original stdout; anything Paddle's C++ side prints lands on stderr instead.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    _quiet_import_paddle()
    pipelines: dict[str, PaddlePipeline] = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        args = json.loads(line)
        try:
            cmd = args["cmd"]
            if cmd == "build":
                reply = build(args)
            elif cmd == "load":
                pipelines[args["key"]] = PaddlePipeline(args)
                reply = {"ok": True}
            elif cmd == "run":
                reply = pipelines[args["key"]].run(args["paths"], int(args["batch"]))
            elif cmd == "infer":  # parity checks: one batch from an .npy file, probabilities to another
                x = np.load(args["input"])
                np.save(args["output"], pipelines[args["key"]].infer(x))
                reply = {"ok": True}
            elif cmd == "quit":
                break
            else:
                reply = {"ok": False, "error": f"unknown command {cmd!r}"}
        except Exception as exc:  # reported to bench.py, which notes it in the table
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
