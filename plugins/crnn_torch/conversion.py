"""`crnn convert` / `crnn export` from torch: the reader of .pdparams and crnn checkpoints, the .pt writer.

The reader loads a PaddleOCR training checkpoint (without Paddle: core/pdparams.py's safe unpickler) or
a crnn checkpoint into our torch CRNN and exports ONNX (export.py); the torch model is the reference the
output is verified against. A CRNN reads any width, so a model trained at a fixed width (PaddleOCR's
``RecResizeImg: [3, 32, 100]``) exports with a dynamic width, its trained width the minimum, or at the
width asked for (--static-width). The writer saves a crnn checkpoint (``--to torch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from crnn_cli.core.backend import Availability
from crnn_cli.core.conversion import ONNX, ConvertOptions, Reader, SourceModel, Writer, output_widths
from crnn_cli.core.fileio import atomic_path
from crnn_cli.core.metadata import ModelMetadata

TORCH = "torch"  # graph format: a torch CRNN (nn.Module, logits N, T, C) in memory
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")


def _availability() -> Availability:
    from crnn_torch import TorchBackend

    return TorchBackend().availability()


class TorchReader(Reader):
    kinds: ClassVar[tuple[str, ...]] = ("pdparams", "checkpoint")
    priority: ClassVar[int] = 10  # a folder with a .pdparams and an inference model: the checkpoint

    def probe(self, path: Path) -> str | None:
        name = path.name.lower()
        if path.is_dir():
            return "pdparams" if any(path.glob("*.pdparams")) else None
        if name.endswith(".pdparams") or (not path.exists() and path.with_suffix(".pdparams").is_file()):
            return "pdparams"
        return "checkpoint" if name.endswith(CHECKPOINT_SUFFIXES) else None

    def availability(self, kind: str) -> Availability:
        return _availability()

    def formats(self, kind: str) -> tuple[str, ...]:
        return (TORCH, ONNX)

    def read(
        self, path: Path, kind: str, opts: ConvertOptions, formats: Sequence[str], workdir: Path
    ) -> SourceModel:
        from crnn_torch import export

        checks = []
        if kind == "pdparams":
            from crnn_torch.loading import load_paddle_checkpoint

            model, meta, report = load_paddle_checkpoint(
                path,
                opts.config,
                dictionary=opts.dictionary,
                use_space_char=opts.use_space_char,
                image_shape=opts.image_shape,
            )
            checks.append(f"PaddleOCR checkpoint: {report.summary()}")
        else:
            from crnn_torch.checkpoint import model_from_checkpoint

            model, meta = model_from_checkpoint(path)
        fmt = next(f for f in formats if f in (TORCH, ONNX))
        # A checkpoint written back keeps its own input description; an exported graph reads any width.
        meta = output_widths(meta, opts, path, width_agnostic=fmt != TORCH)
        reference = export.torch_reference(model) if opts.verify else None
        if fmt == TORCH:
            return SourceModel(kind, model, TORCH, meta, reference, checks)
        onnx_path = workdir / "torch.onnx"
        export.export_onnx(
            model, meta, onnx_path, opset=opts.opset, static_width=opts.static_width, verify=False
        )
        return SourceModel(kind, onnx_path, ONNX, meta, reference, checks)


class TorchWriter(Writer):
    target: ClassVar[str] = "torch"
    label: ClassVar[str] = "a torch checkpoint"
    suffix: ClassVar[str] = ".pt"
    formats: ClassVar[tuple[str, ...]] = (TORCH,)
    static_width: ClassVar[bool] = False
    needs: ClassVar[str] = "--to torch needs a PaddleOCR .pdparams training checkpoint"

    def availability(self) -> Availability:
        return _availability()

    def write(self, source: SourceModel, opts: ConvertOptions, workdir: Path) -> tuple[Path, list[str]]:
        from crnn_torch.loading import save_inference_checkpoint

        candidate = save_inference_checkpoint(source.graph, source.metadata, workdir / "model.pt")
        return candidate, ["checkpoint written (loads with torch.load(weights_only=True))"]

    def install(self, candidate: Path, opts: ConvertOptions, meta: ModelMetadata) -> None:
        with atomic_path(opts.out) as tmp:
            tmp.write_bytes(candidate.read_bytes())
