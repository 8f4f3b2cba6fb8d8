"""`crnn recognize`: text from cropped word or line images, streamed to stdout."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import click

from crnn_cli.commands.common import (
    backend_options,
    display_path,
    progress_enabled,
    session_options,
    stderr_console,
)
from crnn_cli.distributed.options import ray_options


def format_result(r: Any, fmt: str, char_confidences: bool = False) -> str:
    """One result as its output line (with the newline); "" for a failed input in text and tsv."""
    path = display_path(r.source)
    if r.error is not None:
        return json.dumps({"path": path, "error": display_path(r.error)}) + "\n" if fmt == "jsonl" else ""
    if fmt == "jsonl":
        d = r.to_dict(char_confidences)
        d["path"] = path
        return json.dumps(d, ensure_ascii=False) + "\n"
    text = r.text.replace("\t", " ").replace("\n", " ")
    return f"{path}\t{text}\t{r.confidence:.4f}\n"


TSV_HEADER = "path\ttext\tconfidence\n"

MAX_NOTICES = 5  # inputs named in "does not look like a text line" warnings; the rest are counted


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option(
    "--model",
    type=click.Path(dir_okay=True, path_type=str),
    default=None,
    help=".onnx / .xml / checkpoint; default: the bundled English model.",
)
@backend_options
@click.option(
    "--dict", "dictionary", default=None, metavar="NAME|PATH", help="Dictionary (ic15, en or a file)."
)
@click.option(
    "--use-space-char",
    is_flag=True,
    default=None,
    help="The model predicts a space class after the dictionary.",
)
@click.option("--image-shape", default=None, metavar="C,H,W", help="Model input shape, e.g. 3,48,320.")
@click.option(
    "--fixed-width/--dynamic-width",
    "fixed_width",
    default=None,
    help="Squash/pad every crop to W (PaddleOCR resize_norm_img) or keep its aspect ratio (W = minimum).",
)
@click.option(
    "--rotate",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Tall crops (h/w >= 1.5): auto reads them upright and turned both ways and keeps the most "
    "confident reading; always turns them as PaddleOCR does; never.",
)
@click.option("--no-rotate", is_flag=True, help="Same as --rotate never.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--decoder", type=click.Choice(["greedy", "beam"]), default="greedy", show_default=True)
@click.option("--beam-width", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "tsv", "jsonl"]), default="text", show_default=True
)
@click.option("--char-confidences", is_flag=True, help="jsonl: add per-character confidences.")
@click.option("--recursive", "-r", is_flag=True, help="Walk directories recursively.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or per-file errors on stderr.")
@ray_options
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    metavar="DIR",
    help="With --ray: the workers write the results as shard files here (a folder every node sees), "
    "for inputs too large to pass through this machine in order; stdout stays empty.",
)
def recognize(
    inputs: tuple[str, ...],
    model: str | None,
    backend: str | None,
    threads: int | None,
    device: str | None,
    providers: str | None,
    performance_hint: str | None,
    dictionary: str | None,
    use_space_char: bool | None,
    image_shape: str | None,
    fixed_width: bool | None,
    rotate: str,
    no_rotate: bool,
    batch_size: int,
    decoder: str,
    beam_width: int,
    fmt: str,
    char_confidences: bool,
    recursive: bool,
    quiet: bool,
    ray_address: str | None,
    ray_actors: int | None,
    output: str | None,
) -> None:
    """Recognise text in INPUT images: files, directories, glob patterns, or - (paths on stdin).

    Results go to stdout in input order (text: PATH<TAB>TEXT<TAB>CONFIDENCE; tsv with a header;
    jsonl: {"path","text","confidence"}). Unreadable inputs are reported on stderr and skipped;
    the exit code is 1 if any input failed.
    """
    from crnn_cli.commands.inputs import expand_inputs
    from crnn_cli.core.recognizer import Recognizer, parse_image_shape

    shape = parse_image_shape(image_shape) if image_shape else None
    console = stderr_console(quiet)
    stdin = sys.stdin.buffer if "-" in inputs else None
    paths: Any = expand_inputs(inputs, recursive, stdin)
    if ray_address is None and (output is not None or ray_actors is not None):
        raise click.UsageError(f"{'--output' if output else '--ray-actors'} needs --ray ADDRESS")
    show_progress = progress_enabled(quiet)
    if show_progress and stdin is None:
        paths = list(paths)  # a folder walk is quick beside recognition; the bar gets a total and an ETA
    options: dict[str, Any] = dict(
        dictionary=dictionary,
        use_space_char=use_space_char,
        image_shape=shape,
        dynamic_width=None if fixed_width is None else not fixed_width,
        rotate_vertical="never" if no_rotate else rotate,
        batch_size=batch_size,
        threads=threads,
        decoder=decoder,
        beam_width=beam_width,
        session_options=session_options(threads, device, providers, performance_hint),
    )
    if ray_address is not None:
        from crnn_cli.distributed.recognizer import RayRecognizer

        rec: Any = RayRecognizer(
            ray_address, model, backend, actors=ray_actors, char_confidences=char_confidences, **options
        )
    else:
        rec = Recognizer(model, backend, **options)
    if rec.selection is not None and rec.selection.measured and not quiet:
        rates = ", ".join(f"{name} {rate:.0f} img/s" for name, rate in rec.selection.rates.items())
        console.print(
            f"crnn: backend auto: {rec.selection.label} ({rates}); remembered for this model", markup=False
        )
    failed = 0
    done = 0
    notices = 0
    out = sys.stdout
    progress: Any = None
    task = None
    started = time.monotonic()
    if show_progress:
        progress = _progress(console.real, len(paths) if isinstance(paths, list) else None)
        progress.start()
        task = progress.add_task("recognize", total=len(paths) if isinstance(paths, list) else None, failed=0)
    if fmt == "tsv" and output is None:
        out.write(TSV_HEADER)

    def on_batch(n: int, errors: list[str]) -> None:  # --output: a shard landed
        nonlocal done, failed
        done, failed = done + n, failed + len(errors)
        for e in errors if not quiet else ():
            console.print(f"crnn: skipped {display_path(e)}", markup=False)
        if progress is not None:
            progress.update(task, completed=done, failed=failed)

    try:
        with rec:
            if output is not None:
                rec.write_output(paths, output, fmt, on_batch)
                if done and not quiet:
                    console.print(f"crnn: {done} results written to {output}", markup=False)
            for r in rec.recognize(paths) if output is None else ():
                done += 1
                notice = getattr(r, "notice", None)
                if notice is not None:
                    notices += 1
                    if notices <= MAX_NOTICES and not quiet:
                        console.print(f"crnn: warning: {display_path(r.source)}: {notice}", markup=False)
                if r.error is not None:
                    failed += 1
                    if not quiet:
                        console.print(f"crnn: skipped {display_path(r.error)}", markup=False)
                line = format_result(r, fmt, char_confidences)
                if line:
                    out.write(line)
                if done % 64 == 0:
                    out.flush()
                if progress is not None:
                    progress.update(task, completed=done, failed=failed)
    finally:
        if progress is not None:
            progress.stop()
        out.flush()
    if notices > MAX_NOTICES and not quiet:
        console.print(
            f"crnn: warning: {notices} inputs in all do not look like cropped text lines", markup=False
        )
    if done == 0:
        console.print(
            f"crnn: no images found in the given inputs{_recursive_hint(inputs, recursive)}", markup=False
        )
        sys.exit(1)
    if show_progress:
        seconds = time.monotonic() - started
        console.print(
            f"crnn: {done - failed} of {done} images recognized in {seconds:.1f} s "
            f"({done / max(seconds, 1e-9):.1f} img/s)" + (f", {failed} failed" if failed else ""),
            markup=False,
        )
    if failed:
        if not quiet:
            console.print(f"crnn: {failed} of {done} inputs failed", markup=False)
        sys.exit(1)


def _progress(console: Any, total: int | None) -> Any:
    """A bar with count, rate and ETA when the number of inputs is known; a counter when it is not."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:.0f} img/s" if task.speed else "? img/s")

    failed = TextColumn("{task.fields[failed]} failed")
    if total is None:
        columns = [SpinnerColumn(), TextColumn("recognizing {task.completed} images"), Rate(), failed]
        return Progress(*columns, TimeElapsedColumn(), console=console, transient=True)
    columns = [TextColumn("recognizing"), BarColumn(), MofNCompleteColumn(), Rate(), failed]
    return Progress(*columns, TimeRemainingColumn(), console=console, transient=True)


def _recursive_hint(inputs: tuple[str, ...], recursive: bool) -> str:
    """'; DIR holds images in subfolders: add -r' when a folder given without -r has images deeper down."""
    if recursive:
        return ""
    from crnn_cli.commands.inputs import walk_images

    for item in inputs:
        if item != "-" and os.path.isdir(item) and next(walk_images(item, True), None) is not None:
            return f"; {item} holds images in subfolders only: add -r (--recursive) to read them"
    return ""
