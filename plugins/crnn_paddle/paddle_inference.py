"""Paddle inference models to ONNX through paddle2onnx, and the Paddle runtimes that check the result.

Two on-disk formats hold the same thing (a graph plus ``.pdiparams`` weights): the legacy
``inference.pdmodel`` (protobuf) and Paddle 3's PIR ``inference.json``. paddle2onnx 2.0.1 converts both;
other releases are refused (1.x writes a 0-byte file for ``.json``, 2.1.0 writes invalid ONNX for
PP-OCRv4 rec) and whatever it writes is checked anyway: its exit status means nothing.

The conversion runs in a child Python process that calls paddle2onnx's Python API, because:
paddle2onnx's C++ core calls abort() on some failures (an opset too low for the graph), which would take
the caller down with it; it prints to the process's stdout (where crnn writes results); it may leave
files in the working directory and in TMPDIR. The child runs in a private temporary folder that is both
its working directory and its TMPDIR, and its output goes to a log that failures quote.

Nothing here imports paddle or paddle2onnx at module level; ``import crnn_paddle.paddle_inference`` is cheap.
The Paddle Inference runtime itself is the backend's session (session.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from crnn_cli.core.backend import Availability, SessionOptions
from crnn_cli.core.errors import BackendError, ModelError, UsageError
from crnn_cli.core.fileio import atomic_path

__all__ = [
    "InferenceModel",
    "graph_shapes",
    "convert_with_paddle2onnx",
    "find_inference_model",
    "openvino_reference",
    "paddle2onnx_available",
    "paddle_available",
    "paddle_reference",
    "reference_runner",
]

LEGACY, PIR = "legacy", "pir"
INSTALL_HINT = "pip install 'crnn[paddle]'"
OPTIMIZERS = (None, "onnxoptimizer")  # paddle2onnx's "polygraphy" pip-installs packages mid-conversion
MIN_OPSET = 7  # the lowest opset paddle2onnx 2.0.1 accepts
# Names for the symbolic dims of a recognizer (x: N, C, H, W -> probs: N, T, C), the same ones crnn's
# torch export writes; paddle2onnx 2.0.1 writes 'DynamicDimension.0' .. 'DynamicDimension.3'.
INPUT_DIMS = {0: "batch", 3: "width"}
OUTPUT_DIMS = {0: "batch", 1: "time"}


class InferenceModel(NamedTuple):
    """One Paddle inference model: unpacks as ``(model_file, params_file, format)``."""

    model_file: Path  # inference.pdmodel or inference.json
    params_file: Path  # inference.pdiparams (weights; paddle2onnx silently drops a missing one)
    format: str  # "legacy" or "pir"


def _params_for(model_file: Path) -> Path:
    params = model_file.with_suffix(".pdiparams")
    if not params.is_file():
        raise ModelError(
            f"{model_file}: its weights {params.name} are missing beside it; a Paddle inference model is "
            "the graph file plus the .pdiparams file of the same name"
        )
    return params


def _is_pir_json(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096)
    return head.lstrip().startswith(b"{") and b'"pir"' in head


def find_inference_model(path: str | os.PathLike[str], prefer: str = PIR) -> InferenceModel:
    """Locate a Paddle inference model given its folder, graph file or .pdiparams file.

    ``prefer`` picks between a PIR ``.json`` and a legacy ``.pdmodel`` when a folder holds both.
    Raises ModelError, naming what was looked for, when there is none.
    """
    if prefer not in (LEGACY, PIR):
        raise UsageError(f"prefer must be {LEGACY!r} or {PIR!r}, got {prefer!r}")
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise ModelError(f"{path} does not exist (expected a Paddle inference model folder or file)")
    if path.is_file():
        if path.suffix == ".pdiparams":
            graphs = [path.with_suffix(s) for s in (".json", ".pdmodel") if path.with_suffix(s).is_file()]
            if not graphs:
                raise ModelError(f"{path}: no {path.stem}.json or {path.stem}.pdmodel beside these weights")
            graphs.sort(key=lambda g: (g.suffix == ".json") != (prefer == PIR))
            path = graphs[0]
        if path.suffix == ".pdmodel":
            return InferenceModel(path, _params_for(path), LEGACY)
        if path.suffix == ".json":
            if not _is_pir_json(path):
                raise ModelError(f"{path} is not a Paddle PIR program (no 'pir' magic in its header)")
            return InferenceModel(path, _params_for(path), PIR)
        raise ModelError(
            f"{path}: not a Paddle inference model file (expected .pdmodel, .json or .pdiparams)"
        )
    found: list[InferenceModel] = []
    for params in sorted(path.glob("*.pdiparams")):
        pdmodel, pir = params.with_suffix(".pdmodel"), params.with_suffix(".json")
        if pir.is_file() and _is_pir_json(pir):
            found.append(InferenceModel(pir, params, PIR))
        if pdmodel.is_file():
            found.append(InferenceModel(pdmodel, params, LEGACY))
    stems = {m.model_file.stem for m in found}
    if len(stems) > 1:
        if "inference" not in stems:
            raise ModelError(
                f"{path} holds several Paddle models ({', '.join(sorted(stems))}); give the graph file"
            )
        found = [m for m in found if m.model_file.stem == "inference"]
    if not found:
        raise ModelError(
            f"{path} holds no Paddle inference model (inference.pdmodel or inference.json, each with "
            "inference.pdiparams)"
        )
    found.sort(key=lambda m: m.format != prefer)
    return found[0]


def quiet_import(module: str) -> Any:
    """Import a Paddle module without its import-time chatter (ccache warning, OMP_NUM_THREADS advice)."""
    import contextlib
    import importlib
    import io
    import warnings

    noise = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
        warnings.simplefilter("ignore")
        return importlib.import_module(module)


def graph_shapes(model: InferenceModel) -> tuple[tuple[int | None, ...], tuple[int | None, ...]]:
    """(input shape, output shape) an inference model declares, dynamic dims None.

    Paddle Inference reports a shape only after a run, so the graph file is read: a PIR .json's data and
    fetch ops, or a legacy .pdmodel's feed and fetch variables (Paddle's own protobuf classes).
    """

    def dims(values: Any) -> tuple[int | None, ...]:
        return tuple(int(v) if int(v) > 0 else None for v in values)

    try:
        if model.format == PIR:
            with open(model.model_file, encoding="utf-8") as f:
                ops = json.load(f)["program"]["regions"][0]["blocks"][0]["ops"]
            data = next(o for o in ops if o.get("#") == "1.data")
            fetch = next(o for o in ops if o.get("#") == "1.fetch")
            return dims(data["O"][0]["TT"]["D"][1]), dims(fetch["O"][0]["TT"]["D"][1])
        framework_pb2 = quiet_import("paddle.base.proto.framework_pb2")
        program = framework_pb2.ProgramDesc()
        program.ParseFromString(model.model_file.read_bytes())
        block = program.blocks[0]
        found = {v.name: v for v in block.vars}
        feed = next(op for op in block.ops if op.type == "feed").outputs[0].arguments[0]
        fetch_var = next(op for op in block.ops if op.type == "fetch").inputs[0].arguments[0]
        shape = [found[n].type.dense_tensor.tensor.dims for n in (feed, fetch_var)]
        return dims(shape[0]), dims(shape[1])
    except (OSError, ValueError, KeyError, IndexError, StopIteration, AttributeError) as exc:
        raise ModelError(
            f"{model.model_file}: cannot read the model's input and output shapes ({type(exc).__name__})"
        ) from None


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def paddle_available() -> Availability:
    """Whether Paddle Inference (paddlepaddle) is installed; checked without importing it."""
    v = _dist_version("paddlepaddle", "paddlepaddle-gpu")
    if v is None or find_spec("paddle") is None:
        return Availability(False, reason="paddlepaddle is not installed", hint=INSTALL_HINT)
    return Availability(True, version=v)


def paddle2onnx_available() -> Availability:
    """Whether a paddle2onnx crnn trusts (2.0.x, with paddlepaddle and onnx) is installed; no imports."""
    v = _dist_version("paddle2onnx")
    if v is None or find_spec("paddle2onnx") is None:
        return Availability(False, reason="paddle2onnx is not installed", hint=INSTALL_HINT)
    major_minor = tuple(int(p) if p.isdigit() else 0 for p in v.split(".")[:2])
    if major_minor != (2, 0):
        why = (
            "reads only .pdmodel and writes an empty file for PIR .json"
            if major_minor < (2, 0)
            else "is untested by crnn (2.1.0 writes invalid ONNX for PP-OCRv4 rec)"
        )
        return Availability(
            False,
            version=v,
            reason=f"paddle2onnx {v} is installed, and it {why}; crnn needs 2.0.1",
            hint=INSTALL_HINT,
        )
    paddle = paddle_available()
    if not paddle.ok:
        return Availability(
            False, version=v, reason=f"paddle2onnx needs Paddle: {paddle.reason}", hint=INSTALL_HINT
        )
    if find_spec("onnx") is None:
        return Availability(False, version=v, reason="onnx is not installed", hint=INSTALL_HINT)
    return Availability(True, version=f"paddle2onnx {v}, paddlepaddle {paddle.version}")


def _child_main() -> None:
    """Entry of the conversion child: one JSON argument, paddle2onnx's Python API, exit status 0 on return."""
    args = json.loads(sys.argv[1])
    import paddle2onnx

    paddle2onnx.export(**args)


def _log_excerpt(log: Path, lines: int = 12) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [ln.strip() for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= set("-=")]
    errors = [ln for ln in kept if "error" in ln.lower() or "please" in ln.lower()]
    return " | ".join((errors or kept)[-lines:]) or "(no output)"


def _run_child(args: dict[str, Any], work: Path, timeout: float) -> None:
    """Run paddle2onnx.export(**args) in a child Python whose cwd and TMPDIR are ``work``."""
    log = work / "paddle2onnx.log"
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env.update(
        TMPDIR=str(work),
        TEMP=str(work),
        TMP=str(work),
        P2O_KEEP_TEMP_MODEL="0",
        POLYGRAPHY_AUTOINSTALL_DEPS="0",
    )
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    code = "from crnn_paddle.paddle_inference import _child_main; _child_main()"
    with open(log, "wb") as out:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code, json.dumps(args)],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ModelError(f"paddle2onnx did not finish within {timeout:.0f} s") from None
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else "?"
        raise ModelError(f"paddle2onnx crashed ({sig}): {_log_excerpt(log)}")
    if proc.returncode != 0:
        raise ModelError(f"paddle2onnx failed (exit status {proc.returncode}): {_log_excerpt(log)}")


def _name_dims(model: Any) -> None:
    """Give a recognizer's symbolic dims readable names (batch, width, time); others are left alone."""
    inputs, outputs = model.graph.input, model.graph.output
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        return
    for value, names in [(inputs[0], INPUT_DIMS)] + [(o, OUTPUT_DIMS) for o in outputs]:
        dims = value.type.tensor_type.shape.dim
        if value is not inputs[0] and len(dims) != 3:
            continue
        for axis, name in names.items():
            if dims[axis].dim_param or not dims[axis].HasField("dim_value"):
                dims[axis].dim_param = name


def convert_with_paddle2onnx(
    model: str | os.PathLike[str],
    out_onnx: str | os.PathLike[str],
    opset: int | None = None,
    *,
    optimize_tool: str | None = "onnxoptimizer",
    props: Mapping[str, str] | None = None,
    name_dims: bool = True,
    timeout: float = 600.0,
) -> Path:
    """Convert a Paddle inference model (folder, graph or weights file) to ONNX at ``out_onnx``.

    opset: the ONNX opset to write; None lets paddle2onnx pick the lowest the graph needs (14 for
        PaddleOCR recognizers). An explicit opset too low for the graph is an error, not an upgrade.
    optimize_tool: "onnxoptimizer" (dead-node and identity removal) or None.
    props: ONNX metadata_props to embed (e.g. ``ModelMetadata.to_props()``).
    name_dims: rename paddle2onnx's 'DynamicDimension.N' dims of x (N, C, H, W) and the output
        (N, T, C) to batch / width / time.

    The written file has passed ``onnx.checker.check_model(full_check=True)``; numerical parity is the
    caller's check (``reference_runner`` gives the Paddle side). Raises ModelError with paddle2onnx's
    own error lines on any failure; ``out_onnx`` is then untouched. Nothing is left in the working
    directory or in TMPDIR.
    """
    src = find_inference_model(model)
    if optimize_tool not in OPTIMIZERS:
        raise UsageError(f"optimize_tool must be one of {OPTIMIZERS}, got {optimize_tool!r}")
    if opset is not None and (not isinstance(opset, int) or opset < MIN_OPSET):
        raise UsageError(f"opset must be an integer >= {MIN_OPSET} (or None for automatic), got {opset!r}")
    out = Path(out_onnx)
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: folder {out.parent} does not exist")
    avail = paddle2onnx_available()
    if not avail.ok:
        raise BackendError(f"cannot convert {src.model_file}: {avail.reason}; install it with: {avail.hint}")
    import onnx

    with tempfile.TemporaryDirectory(prefix="crnn-paddle2onnx-") as tmp:
        work = Path(tmp)
        written = work / "model.onnx"
        args = dict(
            model_filename=str(src.model_file),
            params_filename=str(src.params_file),
            save_file=str(written),
            opset_version=opset or MIN_OPSET,
            auto_upgrade_opset=opset is None,
            enable_onnx_checker=True,
            enable_optimize=True,
            export_fp16_model=False,
            optimize_tool=optimize_tool,
        )
        _run_child(args, work, timeout)
        what = f"paddle2onnx ({avail.version}) on {src.model_file}"
        if not written.is_file() or written.stat().st_size == 0:
            raise ModelError(
                f"{what} exited normally but wrote no model: {_log_excerpt(work / 'paddle2onnx.log')}"
            )
        try:
            proto = onnx.load(str(written))
            onnx.checker.check_model(proto, full_check=True)
        except Exception as exc:
            raise ModelError(f"{what} wrote an invalid ONNX file: {type(exc).__name__}: {exc}") from None
        opsets = {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")}
        if opset is not None and opsets != {opset}:
            raise ModelError(f"{what} wrote opset {sorted(opsets)}, not the requested {opset}")
        if name_dims:
            _name_dims(proto)
        if not proto.producer_name:
            proto.producer_name, proto.producer_version = "paddle2onnx", _dist_version("paddle2onnx") or ""
        existing = {p.key: p for p in proto.metadata_props}
        for key, value in (props or {}).items():
            entry = existing[key] if key in existing else proto.metadata_props.add()
            entry.key, entry.value = key, value
        with atomic_path(out) as target:
            onnx.save(proto, str(target))
    return out


def paddle_reference(
    model: str | os.PathLike[str], threads: int | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """Paddle Inference on CPU with oneDNN off (PaddleOCR's own runtime): ``run(batch N,C,H,W) -> N,T,C``."""
    from crnn_paddle.session import PaddleSession

    return PaddleSession(Path(model), SessionOptions(threads=threads)).run


def openvino_reference(
    model: str | os.PathLike[str], threads: int | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """A legacy .pdmodel read by OpenVINO's Paddle frontend (no Paddle needed): ``run(batch) -> N,T,C``."""
    src = find_inference_model(model, prefer=LEGACY)
    if src.format != LEGACY:
        raise ModelError(
            f"{src.model_file}: OpenVINO reads only the legacy .pdmodel format, not Paddle's PIR .json; "
            f"verify against Paddle itself ({INSTALL_HINT})"
        )
    from crnn_cli.core.registry import require_available

    session = require_available("openvino").open(src.model_file, SessionOptions(threads=threads))
    return session.run


def reference_runner(
    model: str | os.PathLike[str], threads: int | None = None
) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """The best available source of truth for a Paddle model: ("paddle", run) or ("openvino", run)."""
    if paddle_available().ok:
        return "paddle", paddle_reference(model, threads)
    try:
        return "openvino", openvino_reference(model, threads)
    except (BackendError, ModelError) as exc:
        raise BackendError(
            f"nothing here can run {model} to verify a conversion: Paddle is not installed ({INSTALL_HINT}) "
            f"and OpenVINO cannot stand in: {exc}"
        ) from None
