"""Conversion and export: any model a plugin reads -> any format a plugin writes, verified.

The pipeline is assembled from what the installed backends declare (core/conversion.py), found through
the registry; this module names no plugin. Today's plugins give:

  readers  torch        .pdparams (PaddleOCR training checkpoint, read without Paddle), crnn .pt
           paddle       Paddle inference models (inference.pdmodel or inference.json + .pdiparams)
           onnxruntime  an ONNX file from anywhere (paddle2onnx, RapidOCR)
  writers  onnx (onnxruntime), openvino (IR), torch (crnn checkpoint)
  INT8     onnx (ONNX Runtime static QDQ), openvino (NNCF)

Every output is checked before it replaces OUT: the writer's own checks (onnx.checker for ONNX), then
the new model, opened by the backend that runs it, against the source on its own runtime, on text crops
at several widths (|dp| <= 1e-4 + 3e-3 x p everywhere, identical decoded strings; core/verify.py). A
failed check raises ModelError and OUT is left as it was.

INT8 (``int8=True``): the source is first converted to a verified FP32 ONNX in a temporary folder, then
the target's quantizer writes the INT8 model, scored on a held-out share of the calibration crops
(crnn_cli/quantization.py) before it is installed at OUT.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crnn_cli.core import registry
from crnn_cli.core.backend import SessionOptions
from crnn_cli.core.conversion import ConvertOptions, Quantizer, Reader, SourceModel, Writer
from crnn_cli.core.errors import BackendError, CrnnError, ModelError, UsageError
from crnn_cli.core.metadata import ModelMetadata
from crnn_cli.core.verify import VerifyReport, compare, verification_batches

__all__ = ["ConvertOptions", "ConvertSummary", "Plugins", "convert", "plugins", "source_kind"]

# The runtime names of the verification line ("ONNX Runtime vs source"), by backend; others: the name.
ENGINES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "torch": "torch", "paddle": "Paddle"}


@dataclass
class ConvertSummary:
    source: str
    source_kind: str
    target: str
    out: Path
    metadata: ModelMetadata
    checks: list[str] = field(default_factory=list)
    verify: VerifyReport | None = None
    quantization: Any = None  # crnn_cli.quantization.QuantizationReport for --int8

    def lines(self) -> list[str]:
        m = self.metadata
        shape = f"{m.channels}x{m.height}x{'W' if m.dynamic_width else m.width}"
        if m.dynamic_width:  # the padding rule preprocessing applies (absent keys: PaddleOCR's 100 / 32)
            narrowest = m.min_width or m.width
            shape += " (width dynamic" + (
                f", min {narrowest}, steps of {m.width_step or 32})" if narrowest else ")"
            )
        return [
            f"source      {self.source} ({self.source_kind})",
            f"output      {self.out} ({self.target}{', INT8' if self.quantization else ''})",
            f"model       {m.architecture}, input N x {shape}, {len(m.characters or ())} symbols + blank"
            + (" (space included)" if m.use_space_char else ""),
            *[f"check       {c}" for c in self.checks],
            *(self.quantization.lines() if self.quantization else []),
        ]


# -- what the installed plugins offer --------------------------------------------------------------------


@dataclass
class Plugins:
    """Readers, writers and quantizers of the backends that load, each with its backend's name."""

    readers: list[tuple[str, Reader]]
    writers: dict[str, tuple[str, Writer]]  # target -> (backend, writer); the first registration wins
    quantizers: dict[str, tuple[str, Quantizer]]


def plugins() -> Plugins:
    found = Plugins([], {}, {})
    for name in registry.backend_names():
        try:
            backend = registry.load_backend(name)
        except BackendError:
            continue  # `crnn backends` says why; a broken plugin must not take conversions down
        found.readers += [(name, r) for r in backend.readers()]
        for w in backend.writers():
            found.writers.setdefault(w.target, (name, w))
        for q in backend.quantizers():
            found.quantizers.setdefault(q.target, (name, q))
    found.readers.sort(key=lambda item: (item[1].priority, item[0]))
    return found


def _labels(writers: list[Writer]) -> str:
    names = [w.label for w in writers]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _find_reader(src: Path, found: Plugins) -> tuple[Reader, str]:
    for _, reader in found.readers:
        kind = reader.probe(src)
        if kind is not None:
            return reader, kind
    if not src.exists():
        raise UsageError(f"{src}: no such file or folder")
    for name in registry.backend_names():  # a model some backend runs, but none converts from
        try:
            if registry.load_backend(name).accepts(src):
                raise UsageError(
                    f"{src}: converting from {name} is not supported (export from the checkpoint instead)"
                )
        except BackendError:
            continue
    kinds = sorted({k for _, r in found.readers for k in r.kinds})
    what = "folder holds no model" if src.is_dir() else "unknown model type"
    raise UsageError(f"{src}: {what} that an installed plugin reads (readers for: {', '.join(kinds)})")


def source_kind(path: Path) -> str:
    """What kind of model ``path`` is, as the plugin that reads it says: pdparams, checkpoint, ..."""
    return _find_reader(Path(path), plugins())[1]


def _check_options(opts: ConvertOptions, found: Plugins) -> Writer:
    """The target's writer; option combinations that cannot work are refused before any model loads."""
    if opts.target not in found.writers:
        if not found.writers:
            raise UsageError(
                f"no installed plugin writes {opts.target!r} (none writes anything; see `crnn backends`)"
            )
        raise UsageError(f"--to must be one of {', '.join(sorted(found.writers))}, got {opts.target!r}")
    writer = found.writers[opts.target][1]
    writers = [w for _, w in sorted(found.writers.values(), key=lambda item: item[1].target)]
    if opts.fp16 and not writer.fp16:
        fp16 = _labels([w for w in writers if w.fp16])
        raise UsageError(f"--fp16 compresses {fp16} IR weights; it does not apply to --to {opts.target}")
    if opts.static_width is not None and not writer.static_width:
        raise UsageError(
            f"--static-width applies to {_labels([w for w in writers if w.static_width])} output, "
            f"not to {writer.label}"
        )
    if opts.int8:
        if opts.target not in found.quantizers:
            quantized = [w for w in writers if w.target in found.quantizers]
            raise UsageError(f"--int8 applies to {_labels(quantized)} output, not to {writer.label}")
        if opts.fp16:
            raise UsageError("--int8 and --fp16 exclude each other: choose one weight format")
        if opts.calibration is None:
            raise UsageError(
                "--int8 needs --calibration DIR: a labelled dataset (labels.tsv, LMDB) or a folder of "
                "crops like the ones the model will read"
            )
        if not 0.0 <= opts.holdout < 1.0:
            raise UsageError(f"--holdout must be a fraction in [0, 1), got {opts.holdout}")
        if opts.calibration_samples < 1:
            raise UsageError(f"--calibration-samples must be >= 1, got {opts.calibration_samples}")
    elif opts.calibration is not None:
        raise UsageError("--calibration is only used with --int8")
    if opts.widths_input and (opts.target != "onnx" or opts.int8 or opts.static_width is not None):
        raise UsageError(
            "--widths-input applies to float ONNX output of dynamic width (not with --int8 or --static-width)"
        )
    parent = opts.out.parent if str(opts.out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {opts.out}: folder {parent} does not exist")
    writer.check(opts)
    return writer


def _require(what: str, avail: Any) -> None:
    if not avail.ok:
        hint = f"; install it with: {avail.hint}" if avail.hint else ""
        raise BackendError(f"{what}: {avail.reason}{hint}")


# -- the pipeline ----------------------------------------------------------------------------------------


def convert(source: str | Path, opts: ConvertOptions) -> ConvertSummary:
    """Convert ``source`` (any file a plugin reads) to ``opts.target`` at ``opts.out``."""
    found = plugins()
    writer = _check_options(opts, found)
    src = Path(source)
    reader, kind = _find_reader(src, found)
    if opts.out.resolve() == src.resolve():
        raise UsageError(f"output {opts.out} would overwrite the source")
    if opts.int8:
        return _convert_int8(src, reader, kind, writer, found, opts)
    return _convert(src, reader, kind, writer, opts)


def _convert(src: Path, reader: Reader, kind: str, writer: Writer, opts: ConvertOptions) -> ConvertSummary:
    summary = ConvertSummary(str(src), kind, opts.target, opts.out, ModelMetadata())
    formats = [f for f in writer.formats if f in reader.formats(kind)]
    if not formats:
        need = writer.needs or f"--to {opts.target} takes {' or '.join(writer.formats)} graphs"
        raise UsageError(f"{need}; {src} is a {kind} model")
    _require(f"cannot read {src}", reader.availability(kind))
    _require(f"cannot write {writer.label}", writer.availability())
    with tempfile.TemporaryDirectory(prefix="crnn-convert-") as tmpdir:
        work = Path(tmpdir)
        model = reader.read(src, kind, opts, formats, work)
        if model.graph_format not in formats:
            raise ModelError(
                f"the {kind} reader made a {model.graph_format} graph; --to {opts.target} takes {formats}"
            )
        summary.metadata = model.metadata
        summary.checks.extend(model.checks)
        write_verified(writer, model, opts, summary, work)
    return summary


def write_verified(
    writer: Writer, model: SourceModel, opts: ConvertOptions, summary: ConvertSummary, work: Path
) -> None:
    """Write ``model`` with ``writer`` in ``work``, verify it against ``model.reference`` on the backend
    that runs the output, then install it at ``opts.out``; a failure leaves ``opts.out`` untouched."""
    candidate, checks = writer.write(model, opts, work)
    summary.checks.extend(checks)
    if opts.verify and model.reference is not None and writer.runner is not None:
        engine = ENGINES.get(writer.runner, writer.runner)
        tol = writer.fp16_tolerance if opts.fp16 else writer.tolerance
        report = _verify(model, candidate, writer.runner, f"{engine} vs source", opts.out, tol)
        summary.checks.append(f"{engine} vs source: {report.summary()}")
        summary.verify = report
    if opts.widths_input:
        summary.checks.append(add_widths(candidate, model.metadata))
    writer.install(candidate, opts, model.metadata)


def add_widths(path: Path, metadata: ModelMetadata) -> str:
    """Give the ONNX file at ``path`` the per-crop widths input (core/widths.py), checked against the
    graph without it on crops of several widths read alone and together; returns the check's line."""
    import onnx

    from crnn_cli.core.widths import add_widths_input, check_widths_input

    cfg = metadata.preprocess()
    step, least = cfg.width_step, cfg.min_width or cfg.width
    original = onnx.load(str(path))
    try:
        rewritten, report = add_widths_input(original, step, least)
    except ModelError as exc:
        raise ModelError(
            f"--widths-input: this graph cannot keep crops of different widths apart: {exc}"
        ) from None
    widths = sorted({least, least + step, 2 * least, least + 5 * step, 4 * least + 3 * step})
    worst = check_widths_input(
        original.SerializeToString(), rewritten.SerializeToString(), cfg.height, cfg.channels, widths
    )
    onnx.save(rewritten, str(path))
    return (
        f"widths input: {report.masks} convolution inputs masked, {report.recurrent} LSTM layers given "
        f"lengths; crops of {len(widths)} widths read together as alone: max |dp| = {worst:.1e}"
    )


def _verify(
    model: SourceModel, candidate: Path, runner: str, what: str, out: Path, tol: float
) -> VerifyReport:
    charset = model.metadata.charset()
    if charset is None or model.reference is None:
        raise ModelError(f"{what}: the model has no dictionary to decode with; {out} was not written")
    try:
        with registry.require_available(runner).open(candidate, SessionOptions()) as session:
            batches = verification_batches(model.metadata.preprocess())
            report = compare(model.reference, session.run, batches, charset, tolerance=tol)
    except CrnnError:
        raise
    except Exception as exc:  # a runtime refusing the batch (shape, op): the check could not run
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{what}: verification could not run: {first}; {out} was not written") from None
    if not report.ok:
        raise ModelError(f"{what}: {report.summary()}; {out} was not written")
    return report


def _convert_int8(
    src: Path, reader: Reader, kind: str, writer: Writer, found: Plugins, opts: ConvertOptions
) -> ConvertSummary:
    """A verified FP32 ONNX in a temporary folder, then quantized to opts.out (quantization.py)."""
    from crnn_cli.core.calibration import load_calibration
    from crnn_cli.quantization import quantize_model

    quantizer = found.quantizers[opts.target][1]
    avail = quantizer.availability()
    if not avail.ok:
        raise BackendError(f"{avail.reason}: {avail.hint}" if avail.hint else avail.reason)
    assert opts.calibration is not None  # _check_options
    data = load_calibration(opts.calibration, holdout=opts.holdout, max_samples=opts.calibration_samples)
    onnx_writer = _check_options(replace(opts, target="onnx", int8=False, calibration=None), found)
    with tempfile.TemporaryDirectory(prefix="crnn-int8-") as tmpdir:
        fp32 = Path(tmpdir) / "fp32.onnx"
        fp32_opts = replace(opts, target="onnx", out=fp32, int8=False, calibration=None)
        summary = _convert(src, reader, kind, onnx_writer, fp32_opts)
        summary.target, summary.out = opts.target, opts.out
        summary.quantization = quantize_model(fp32, quantizer, writer, summary.metadata, data, opts)
    return summary
