"""The models under test: converted once into --work (ONNX, OpenVINO IR, Paddle twin) and reused
while their sources are unchanged."""

from __future__ import annotations

import argparse
import math
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .machine import installed_version
from .paddle_side import PaddleWorker, build_twin
from .report import Report


@dataclass
class Model:
    name: str
    onnx: Path
    xml: Path | None = None  # OpenVINO IR; None: OpenVINO reads the ONNX file
    paddle: tuple[Path, Path] | None = None  # Paddle inference model (graph, params)
    paddle_note: str = ""  # what the Paddle model is
    size: str = "small"  # "small" | "large": sets the sample sizes
    checks: list[str] = field(default_factory=list)


def _stamp(sources: list[Path]) -> str:
    parts = []
    for s in sources:
        st = s.stat()
        parts.append(f"{s.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join([installed_version("crnn"), *parts])


def cached(out: Path, sources: list[Path], make: Callable[[Path], Any], report: Report, what: str) -> Path:
    """Build ``out`` from ``sources`` with ``make(out)`` unless a build from the same sources is there."""
    stamp = out.with_name(out.name + ".stamp")
    want = _stamp(sources)
    if out.exists() and stamp.exists() and stamp.read_text() == want:
        return out
    report.log(f"building {what} -> {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    make(out)
    stamp.write_text(want)
    report.log(f"built {what} in {time.monotonic() - t:.0f} s")
    return out


def convert_to(src: Path, target: str, out: Path, **options: Any) -> None:
    from crnn_cli.convert import ConvertOptions, convert

    convert(src, ConvertOptions(target, out, **options))


def write_r34_checkpoint(tsv: Path, out: Path, seed: int = 34) -> None:
    """A PaddleOCR r34 training checkpoint with params.tsv's names and shapes and random values."""
    rng = np.random.default_rng(seed)
    state: dict[str, Any] = {}
    for line in tsv.read_text().splitlines():
        name, shape_text, _ = line.split("\t")
        shape = tuple(int(v) for v in shape_text.strip("[]").split(","))
        if name.endswith("._variance"):
            value = rng.uniform(0.8, 1.2, shape)
        elif name.endswith("._mean") or name.endswith("_batch_norm.bias"):
            value = rng.normal(0.0, 0.1, shape)
        elif name.endswith("_batch_norm.weight"):
            value = rng.normal(1.0, 0.1, shape)
        elif len(shape) == 4:  # He-scaled kernels keep 34 layers' activations in range
            value = rng.normal(0.0, 1.0, shape) * math.sqrt(2.0 / float(np.prod(shape[1:])))
        elif name.startswith("head."):
            value = rng.normal(0.0, 0.5 if len(shape) == 2 else 0.1, shape)
        else:
            value = rng.uniform(-1 / 16, 1 / 16, shape)
        state[name] = np.ascontiguousarray(value, dtype=np.float32)
    for name in list(state):  # Paddle's per-cell LSTM copies equal the flat weights
        if ".cell_" in name:
            prefix, layer, cell, param = name.rsplit(".", 3)
            flat = f"{prefix}.{param}_l{layer}{'_reverse' if cell == 'cell_bw' else ''}"
            state[name] = state[flat].copy()
    state["StructuredToParameterName@@"] = {k: f"p{i}" for i, k in enumerate(state)}
    out.write_bytes(pickle.dumps(state, protocol=4))


def _onnx_default_spec(onnx_path: Path) -> dict[str, Any] | None:
    """build_model arguments of a crnn_default ONNX export, read from its metadata and LSTM shapes."""
    import onnx

    from crnn_cli.core.metadata import ModelMetadata

    proto = onnx.load(str(onnx_path))
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    if meta is None or meta.architecture != "crnn_default" or meta.characters is None:
        return None
    hidden = [i.dims[1] // 4 for i in proto.graph.initializer if len(i.dims) == 3 and i.dims[0] == 2]
    if not hidden:
        return None
    return {"num_classes": len(meta.characters) + 1, "in_channels": meta.channels, "hidden_size": hidden[0]}


def prepare_models(args: argparse.Namespace, report: Report, worker: PaddleWorker | None) -> list[Model]:
    work: Path = args.work
    fixtures: Path = args.shared / "fixtures"
    models: list[Model] = []
    wanted = args.models

    def attempt(name: str, fn: Callable[[], Model | None]) -> None:
        if name not in wanted:
            return
        try:
            m = fn()
        except Exception as exc:  # one model failing to convert must not end the benchmark
            report.note(f"{name}: skipped, could not be prepared: {type(exc).__name__}: {exc}")
            return
        if m is not None:
            models.append(m)

    def mv3() -> Model:
        src = fixtures / "paddle_crnn_mv3" / "best_accuracy.pdparams"
        onnx_path = cached(
            work / "mv3" / "mv3.onnx", [src], lambda o: convert_to(src, "onnx", o), report, "mv3 ONNX"
        )
        xml = cached(
            work / "mv3" / "mv3.xml",
            [onnx_path],
            lambda o: convert_to(onnx_path, "openvino", o),
            report,
            "mv3 IR",
        )
        pir = fixtures / "paddle_crnn_mv3" / "inference_pir"
        return Model(
            "mv3", onnx_path, xml, (pir / "inference.json", pir / "inference.pdiparams"),
            "PaddleOCR's own export (fixture inference_pir)",
        )  # fmt: skip

    def r34() -> Model:
        tsv = fixtures / "paddle_crnn_r34" / "params.tsv"
        pd = cached(
            work / "r34" / "best_accuracy.pdparams",
            [tsv],
            lambda o: write_r34_checkpoint(tsv, o),
            report,
            "r34 checkpoint",
        )
        onnx_path = cached(
            work / "r34" / "r34.onnx", [pd], lambda o: convert_to(pd, "onnx", o), report, "r34 ONNX"
        )
        xml = cached(
            work / "r34" / "r34.xml",
            [onnx_path],
            lambda o: convert_to(onnx_path, "openvino", o),
            report,
            "r34 IR",
        )
        m = Model("r34", onnx_path, xml, size="large")
        if worker is not None:

            def twin(out: Path) -> None:
                from crnn_torch.loading import load_paddle_checkpoint

                model, _, _ = load_paddle_checkpoint(pd)
                spec = {
                    "arch": model.arch,
                    **{k: model.config[k] for k in ("num_classes", "in_channels", "hidden_size")},
                }
                build_twin(worker, model, spec, 32, out.parent)

            graph = cached(work / "r34" / "paddle" / "inference.json", [pd], twin, report, "r34 Paddle twin")
            m.paddle = (graph, graph.with_suffix(".pdiparams"))
            m.paddle_note = "paddle.nn twin of our r34 with the same weights (jit.save)"
        return m

    def default() -> Model | None:
        src = args.default_model
        if src is None:
            from crnn_cli.core.recognizer import default_model_path

            try:
                src = default_model_path()
            except Exception as exc:
                report.note(f"default: skipped: {exc}")
                return None
        src = Path(src)
        if not src.exists():
            report.note(f"default: skipped: {src} does not exist")
            return None
        torch_model = None
        if src.suffix == ".onnx":
            onnx_path = src
        else:  # a crnn checkpoint: export it here
            onnx_path = cached(
                work / "default" / "default.onnx",
                [src],
                lambda o: convert_to(src, "onnx", o),
                report,
                "default ONNX",
            )
        xml = cached(
            work / "default" / "default.xml",
            [onnx_path],
            lambda o: convert_to(onnx_path, "openvino", o),
            report,
            "default IR",
        )
        m = Model("default", onnx_path, xml)
        m.checks.append(f"default model: {src}")
        spec = _onnx_default_spec(onnx_path)
        if worker is not None and spec is not None:
            ckpt = src if src.suffix != ".onnx" else args.default_checkpoint
            if ckpt is not None:
                from crnn_torch.checkpoint import model_from_checkpoint

                torch_model, _ = model_from_checkpoint(ckpt)
            spec = {"arch": "crnn_default", **spec}
            height = 32

            def twin(out: Path) -> None:
                build_twin(worker, torch_model, spec, height, out.parent)

            graph = cached(
                work / "default" / "paddle" / "inference.json",
                [onnx_path] + ([Path(ckpt)] if ckpt is not None else []),
                twin,
                report,
                "default Paddle twin",
            )
            m.paddle = (graph, graph.with_suffix(".pdiparams"))
            m.paddle_note = (
                "paddle.nn twin with the checkpoint's weights"
                if torch_model is not None
                else "paddle.nn twin, same layers, random weights (no checkpoint given: speed only)"
            )
        elif worker is not None:
            report.note("default: not a crnn_default export; no Paddle twin, section 2 skipped for it")
        return m

    def ppocrv4() -> Model | None:
        from crnn_paddle import paddle_inference as pi

        src = fixtures / "ppocrv4_rec"
        keys = src / "ppocr_keys_v1.txt"
        opts = {"dictionary": str(keys), "use_space_char": True}
        if not pi.paddle2onnx_available().ok:
            report.note(
                f"ppocrv4: skipped: no ONNX without paddle2onnx ({pi.paddle2onnx_available().reason})"
            )
            return None
        srcs = [src / "inference.pdmodel", src / "inference.pdiparams"]

        def to_onnx(out: Path) -> None:
            from crnn_cli.core.errors import ModelError

            unverified.unlink(missing_ok=True)
            try:
                convert_to(src, "onnx", out, **opts)
            except ModelError as exc:  # benchmark anyway, and say so: speed does not hinge on 1e-4
                if "FAILED" not in str(exc):
                    raise
                convert_to(src, "onnx", out, verify=False, **opts)
                unverified.write_text(f"crnn convert's check failed ({exc}); benchmarked the unverified ONNX")

        unverified = work / "ppocrv4" / "UNVERIFIED"
        onnx_path = cached(work / "ppocrv4" / "ppocrv4.onnx", srcs, to_onnx, report, "PP-OCRv4 ONNX")
        if unverified.exists():
            report.note(f"ppocrv4: {unverified.read_text()}")
        xml = cached(
            work / "ppocrv4" / "ppocrv4.xml",
            srcs,
            lambda o: convert_to(src, "openvino", o, **opts),
            report,
            "PP-OCRv4 IR",
        )
        return Model(
            "ppocrv4", onnx_path, xml, (src / "inference.pdmodel", src / "inference.pdiparams"),
            "the real PP-OCRv4 rec inference model", size="large",
        )  # fmt: skip

    attempt("mv3", mv3)
    attempt("r34", r34)
    attempt("default", default)
    attempt("ppocrv4", ppocrv4)
    for i, path in enumerate(args.onnx):
        models.append(Model(Path(path).stem if len(args.onnx) == 1 else f"{Path(path).stem}{i}", Path(path)))
    return models
