"""`crnn export`: a crnn torch checkpoint -> ONNX or OpenVINO IR, with metadata, checked and verified."""

from __future__ import annotations

from pathlib import Path

import click

from crnn_cli.commands.common import stderr_console
from crnn_cli.commands.convert import convert_options, emit


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, path_type=Path))
@convert_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def export(
    checkpoint: Path,
    target: str,
    out: Path,
    opset: int,
    static_width: int | None,
    max_width: int | None,
    fp16: bool,
    no_verify: bool,
    int8: bool,
    calibration: Path | None,
    calibration_samples: int,
    holdout: float,
    int8_ops: str,
    widths_input: bool,
    int8_lstm: bool,
    fmt: str,
) -> None:
    """Export CHECKPOINT (a crnn .pt from `crnn train`) to ONNX or OpenVINO.

    The file carries the model's dictionary, input shape and normalisation, so
    `crnn recognize --model OUT img.png` needs no other flags. ONNX has dynamic batch and width unless
    --static-width is given; the graph passes onnx.checker and is compared with torch before it is written.

    --int8 --calibration DIR quantizes the verified model (ONNX: ONNX Runtime; OpenVINO: NNCF) and
    reports word accuracy before and after on a held-out share of DIR.
    """
    from crnn_cli.convert import ConvertOptions, convert, source_kind
    from crnn_cli.core.errors import UsageError

    if source_kind(checkpoint) != "checkpoint":
        raise UsageError(f"{checkpoint} is not a crnn checkpoint (.pt); for other models use `crnn convert`")
    opts = ConvertOptions(
        target=target,
        out=out,
        opset=opset,
        static_width=static_width,
        max_width=max_width,
        fp16=fp16,
        verify=not no_verify,
        int8=int8,
        calibration=calibration,
        calibration_samples=calibration_samples,
        holdout=holdout,
        int8_ops=int8_ops,
        int8_lstm=int8_lstm,
        widths_input=widths_input,
    )
    with stderr_console().status(f"exporting {checkpoint} -> {target}"):
        summary = convert(checkpoint, opts)
    emit(summary, fmt)
