"""What a plugin implements to take part in `crnn convert` and `crnn export`: readers, writers, quantizers.

A conversion is a pipeline the core (crnn_cli/convert.py) assembles from what installed backends declare
(``Backend.readers()``, ``writers()``, ``quantizers()``); it names no plugin:

    source file --Reader.read--> SourceModel (a graph in a format the writer takes, metadata, reference)
                --Writer.write--> a candidate in the target format, in a private folder
                --core: the candidate runs on the writer's backend (``Writer.runner``) and is compared
                        with the reference (core/verify.py)--> Writer.install moves it to OUT

ONNX is the pivot: every writer takes ``"onnx"``; a writer may take other graph formats first (OpenVINO
reads a legacy Paddle ``.pdmodel`` itself), and a reader offers the first of ``formats`` it can make.
INT8: the FP32 ONNX is made as above, then the target's Quantizer writes the INT8 candidate, which the
core scores on held-out crops (crnn_cli/quantization.py) before the writer installs it.

Nothing here imports a runtime; plugins import this module, never the other way round.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from crnn_cli.core.backend import Availability
from crnn_cli.core.errors import UsageError
from crnn_cli.core.metadata import ModelMetadata

ONNX = "onnx"  # graph format: a path to an ONNX file
Reference = Callable[[np.ndarray], np.ndarray]  # batch N, C, H, W float32 -> probabilities N, T, C


@dataclass
class ConvertOptions:
    """One conversion, as the user asked for it. Plugins read the fields that concern them."""

    target: str  # target format: a Writer.target ("onnx", "openvino", "torch", or a plugin's)
    out: Path
    dictionary: str | None = None
    use_space_char: bool | None = None
    image_shape: tuple[int, int, int | None] | None = None
    config: Path | None = None  # PaddleOCR config.yml beside a .pdparams
    opset: int = 17
    static_width: int | None = None
    max_width: int | None = None  # dynamic width: widest crop (px) inference keeps unsquashed
    fp16: bool = False
    verify: bool = True
    int8: bool = False
    calibration: Path | None = None  # labelled dataset or folder of crops for INT8 calibration
    calibration_samples: int = 256  # crops used to calibrate (more: slower, rarely better ranges)
    holdout: float = 0.2  # share of labelled calibration crops kept out to measure accuracy
    int8_ops: str = "conv"  # ONNX Runtime: which ops to quantize (crnn_onnxruntime.quantize.OP_SETS)
    int8_lstm: bool = False  # ONNX Runtime: LSTM int8 too (DynamicQuantizeLSTM; results then batch-dependent)
    widths_input: bool = False  # ONNX: add the per-crop widths input (core/widths.py)


@dataclass
class SourceModel:
    """What a reader made of a source file."""

    kind: str  # source kind shown to the user: "pdparams", "checkpoint", "paddle", "onnx", ...
    graph: Any  # the model in ``graph_format``: a Path for file formats, an object for in-memory ones
    graph_format: str
    metadata: ModelMetadata  # of the output: dictionary, input shape (widths already settled)
    reference: Reference | None = None  # the source on its own runtime; None with --no-verify
    checks: list[str] = field(default_factory=list)  # what the reader did, one line each


class Reader(ABC):
    """Reads one family of source files (``kinds``) into a graph a writer takes."""

    kinds: ClassVar[tuple[str, ...]]  # source kinds it reads, e.g. ("pdparams", "checkpoint")
    priority: ClassVar[int] = 50  # lower wins when several readers take the same file

    @abstractmethod
    def probe(self, path: Path) -> str | None:
        """The kind of ``path`` when this reader reads it, else None. Cheap: no runtime imports."""

    def availability(self, kind: str) -> Availability:
        """Whether this reader can read ``kind`` here (its runtime installed)."""
        return Availability(True)

    def formats(self, kind: str) -> tuple[str, ...]:
        """Graph formats it can make from ``kind``, e.g. ("onnx",)."""
        return (ONNX,)

    @abstractmethod
    def read(
        self, path: Path, kind: str, opts: ConvertOptions, formats: Sequence[str], workdir: Path
    ) -> SourceModel:
        """Read ``path`` and make a graph in the first of ``formats`` it can (temporary files in
        ``workdir``). With ``opts.verify`` the SourceModel carries a reference."""


class Writer(ABC):
    """Writes one target format (``--to TARGET``) from a graph."""

    target: ClassVar[str]
    label: ClassVar[str]  # how messages name the output, e.g. "OpenVINO", "a torch checkpoint"
    suffix: ClassVar[str] = ""  # the output file's suffix, e.g. ".xml"
    formats: ClassVar[tuple[str, ...]] = (ONNX,)  # graph formats it takes, best first
    runner: ClassVar[str | None] = None  # backend that runs the output (verification); None: not verified
    static_width: ClassVar[bool] = True  # --static-width applies
    fp16: ClassVar[bool] = False  # --fp16 applies
    tolerance: ClassVar[float] = 1e-4  # verification: absolute part (core/verify.py)
    fp16_tolerance: ClassVar[float] = 2e-2
    needs: ClassVar[str] = ""  # what a source must be when no reader makes one of ``formats``

    def availability(self) -> Availability:
        return Availability(True)

    def check(self, opts: ConvertOptions) -> None:  # noqa: B027  (optional hook)
        """Refuse options that cannot work (e.g. the output's suffix) before anything is loaded."""

    @abstractmethod
    def write(self, source: SourceModel, opts: ConvertOptions, workdir: Path) -> tuple[Path, list[str]]:
        """Write ``source.graph`` with ``source.metadata`` in the target format inside ``workdir``;
        returns the candidate file (what ``runner`` opens) and check lines."""

    @abstractmethod
    def install(self, candidate: Path, opts: ConvertOptions, meta: ModelMetadata) -> None:
        """Move a written (or quantized) candidate to ``opts.out``; no reader may see a partial file."""


class Quantizer(ABC):
    """INT8 post-training quantization for one target format, from a verified FP32 ONNX."""

    target: ClassVar[str]

    def availability(self) -> Availability:
        return Availability(True)

    @abstractmethod
    def quantize(
        self,
        fp32_onnx: Path,
        meta: ModelMetadata,
        batches: list[np.ndarray],
        opts: ConvertOptions,
        workdir: Path,
    ) -> tuple[Path, str, list[str]]:
        """(candidate in the target format inside ``workdir``, one-line method, check lines).
        batches: calibration crops preprocessed as the Recognizer does, N x C x H x W each."""


# -- helpers readers share -------------------------------------------------------------------------------


def metadata_from_graph(
    props: dict[str, str],
    input_shape: tuple[int | None, ...],
    num_classes: int | None,
    opts: ConvertOptions,
    src: Path,
    arch: str,
) -> ModelMetadata:
    """The output's metadata for a graph: what it says of itself, then the user's options."""
    from crnn_cli import __version__
    from crnn_cli.core.recognizer import resolve_metadata

    meta = resolve_metadata(
        props,
        input_shape,
        num_classes,
        dictionary=opts.dictionary,
        use_space_char=opts.use_space_char,
        image_shape=opts.image_shape,
        source=str(src),
    )
    if meta.architecture == "unknown":
        meta = replace(meta, architecture=arch)
    return replace(meta, producer=f"crnn {__version__} (converted from {src.name})")


def output_widths(
    meta: ModelMetadata, opts: ConvertOptions, src: Path, width_agnostic: bool = False
) -> ModelMetadata:
    """The output's metadata as to width: --static-width fixes it, --max-width bounds a dynamic one.

    width_agnostic: the network runs at any width whatever its metadata says (a CRNN in torch trained
    on fixed-width crops): such a model exports dynamic, its trained width the minimum, or at the width
    asked for. A graph with a fixed input width keeps it.
    """
    if width_agnostic and not meta.dynamic_width:
        meta = replace(meta, dynamic_width=True)
    if opts.max_width is not None:
        if opts.static_width is not None or not meta.dynamic_width:
            raise UsageError("--max-width applies to dynamic-width models (and not with --static-width)")
        if opts.max_width < (meta.width or 1):
            raise UsageError(f"--max-width {opts.max_width} is below the model's minimum width {meta.width}")
        meta = replace(meta, max_width=opts.max_width)
    if opts.static_width is None:
        return meta
    if not meta.dynamic_width and meta.width not in (None, opts.static_width):
        raise UsageError(
            f"{src} has a fixed input width of {meta.width}; --static-width {opts.static_width} cannot apply"
        )
    return replace(meta, width=opts.static_width, dynamic_width=False)


def onnx_shapes(proto: Any) -> tuple[tuple[int | None, ...], int | None]:
    """(input shape with None for dynamic dims, number of classes or None) of an ONNX recognizer."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    ishape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)
    odims = proto.graph.output[0].type.tensor_type.shape.dim
    classes = odims[2].dim_value if len(odims) == 3 and odims[2].HasField("dim_value") else None
    return ishape, classes or None
