"""`crnn convert`: PaddleOCR checkpoints, Paddle inference models and foreign ONNX files -> ONNX,
OpenVINO IR or a crnn torch checkpoint, verified before anything is written."""

from __future__ import annotations

from pathlib import Path

import click

from crnn_cli.commands.common import stderr_console


def convert_options(f):  # type: ignore[no-untyped-def]
    for opt in reversed(
        [
            click.option(
                "--to",
                "target",
                required=True,
                metavar="FORMAT",
                help="Target format: onnx, openvino, torch, or one a plugin adds (`crnn backends`: write).",
            ),
            click.option(
                "-o",
                "--output",
                "out",
                type=click.Path(dir_okay=False, path_type=Path),
                required=True,
                help="Output file (.onnx, .xml with .bin beside it, or .pt).",
            ),
            click.option(
                "--opset", type=click.IntRange(11, 23), default=17, show_default=True, help="ONNX opset."
            ),
            click.option(
                "--static-width",
                type=click.IntRange(min=8),
                default=None,
                help="Fix the input width (default: dynamic batch and width).",
            ),
            click.option(
                "--max-width",
                type=click.IntRange(min=8),
                default=None,
                help="Dynamic width: crops up to this width (px, at the model's height) are read unsquashed "
                "(default: the width the model was trained or evaluated at).",
            ),
            click.option("--fp16", is_flag=True, help="OpenVINO: compress weights to FP16 (default FP32)."),
            click.option("--no-verify", is_flag=True, help="Skip the numeric check against the source."),
            click.option(
                "--int8",
                is_flag=True,
                help="Quantize to INT8 (ONNX: ONNX Runtime; OpenVINO: NNCF). Needs --calibration.",
            ),
            click.option(
                "--calibration",
                type=click.Path(exists=True, path_type=Path),
                default=None,
                metavar="DIR",
                help="INT8 calibration crops: a labelled dataset (labels.tsv, LMDB) or a folder of images.",
            ),
            click.option(
                "--calibration-samples",
                type=click.IntRange(min=1),
                default=256,
                show_default=True,
                help="INT8: crops used for calibration.",
            ),
            click.option(
                "--holdout",
                type=click.FloatRange(0.0, 1.0, max_open=True),
                default=0.2,
                show_default=True,
                help="INT8: share of the calibration data kept out to compare accuracy before and after.",
            ),
            click.option(
                "--int8-ops",
                type=click.Choice(["conv", "weighted", "all"]),
                default="conv",
                show_default=True,
                help="INT8 with ONNX Runtime: quantize Conv with the Relu and MaxPool around it (most "
                "accurate), also MatMul/Gemm weights, or every op (fastest on dense CNNs, loses the "
                "most accuracy).",
            ),
            click.option(
                "--widths-input",
                is_flag=True,
                help="ONNX: add an input of each crop's width, so that crops of different widths share a "
                "model call with the same results as alone (faster on real crops and in `crnn serve`; "
                "conv + pool + LSTM models only; checked before writing).",
            ),
            click.option(
                "--int8-lstm/--float-lstm",
                default=False,
                show_default=True,
                help="INT8 with ONNX Runtime: also quantize the LSTM (DynamicQuantizeLSTM, int8 weights per "
                "channel; about 1.15x faster on the bundled model). Its inputs are quantized per call, "
                "so a crop's confidence then moves a little with the crops it shares a call with; the "
                "default keeps the LSTM in float and every result independent of its batch.",
            ),
        ]
    ):
        f = opt(f)
    return f


@click.command()
@click.argument("source", type=click.Path(path_type=Path))
@convert_options
@click.option(
    "--dict", "dictionary", default=None, metavar="NAME|PATH", help="Dictionary the model was trained with."
)
@click.option(
    "--use-space-char", is_flag=True, default=None, help="The model has a space class after the dictionary."
)
@click.option(
    "--image-shape", default=None, metavar="C,H,W", help="Input shape when the source does not say it."
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PaddleOCR config.yml (default: the one beside the checkpoint).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def convert(
    source: Path,
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
    dictionary: str | None,
    use_space_char: bool | None,
    image_shape: str | None,
    config: Path | None,
    fmt: str,
) -> None:
    """Convert SOURCE to ONNX, OpenVINO, a crnn checkpoint or a format a plugin writes.

    \b
    SOURCE is one of:
      best_accuracy.pdparams (or its prefix/folder)  PaddleOCR training checkpoint, read without Paddle
      a folder with inference.pdmodel|json + .pdiparams  Paddle inference model
      model.onnx                                   an ONNX recognizer from elsewhere (e.g. RapidOCR)
      anything else an installed plugin reads (`crnn backends`: read)

    The output is checked (onnx.checker; the new model against the source on text crops at several
    widths) before it replaces OUT; a failed check writes nothing and exits 1.

    --int8 --calibration DIR quantizes the verified model (ONNX: ONNX Runtime; OpenVINO: NNCF) and
    reports word accuracy before and after on a held-out share of DIR.
    """
    from crnn_cli.convert import ConvertOptions
    from crnn_cli.convert import convert as run_convert
    from crnn_cli.core.recognizer import parse_image_shape

    opts = ConvertOptions(
        target=target,
        out=out,
        dictionary=dictionary,
        use_space_char=use_space_char,
        image_shape=parse_image_shape(image_shape) if image_shape else None,
        config=config,
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
    console = stderr_console()
    with console.status(f"converting {source} -> {target}"):
        summary = run_convert(source, opts)
    emit(summary, fmt)


def emit(summary, fmt: str) -> None:  # type: ignore[no-untyped-def]
    import json

    if fmt == "json":
        v = summary.verify
        click.echo(
            json.dumps(
                {
                    "source": summary.source,
                    "source_kind": summary.source_kind,
                    "target": summary.target,
                    "output": str(summary.out),
                    "metadata": summary.metadata.to_json(),
                    "checks": summary.checks,
                    "verify": None
                    if v is None
                    else {
                        "ok": v.ok,
                        "max_abs_diff": v.max_abs_diff,
                        "tolerance": v.tolerance,
                        "relative_tolerance": v.relative_tolerance,
                        "worst_ratio": v.worst_ratio,
                        "strings_identical": v.strings_identical,
                        "widths": v.widths,
                        "samples": v.samples,
                    },
                    "quantization": None if summary.quantization is None else summary.quantization.to_json(),
                }
            )
        )
    else:
        for line in summary.lines():
            click.echo(line)
