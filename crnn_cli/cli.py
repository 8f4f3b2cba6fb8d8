"""The `crnn` command: a click group whose subcommands load lazily, and the one error boundary.

Core code raises crnn's own exceptions; this module maps them to exit codes: usage mistakes to 2,
runtime failures to 1, each as one line on stderr (with the traceback under --debug).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import traceback
import warnings
from typing import Any

import click

# name -> (module, attribute, one-line help). Modules import only when their command runs, so
# `crnn --help` never pays for numpy, OpenCV or a deep-learning runtime.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "recognize": ("crnn_cli.commands.recognize", "recognize", "Recognise text in cropped word/line images."),
    "eval": ("crnn_cli.commands.evaluate", "evaluate", "Measure accuracy on labeled datasets."),
    "train": ("crnn_cli.commands.train", "train", "Train a CRNN from a PaddleOCR-style config."),
    "export": ("crnn_cli.commands.export", "export", "Export a crnn checkpoint to ONNX or OpenVINO."),
    "convert": ("crnn_cli.commands.convert", "convert", "Convert PaddleOCR / ONNX models, verified."),
    "serve": ("crnn_cli.commands.serve", "serve", "Serve the recognizer over HTTP, batching requests."),
    "backends": ("crnn_cli.commands.backends", "backends", "List backends and whether they can run here."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (mod, _, _) in COMMANDS.items() if importlib.util.find_spec(mod) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table above, so listing commands imports none of them.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    import crnn_cli

    click.echo(f"crnn, version {crnn_cli.__version__}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
    help="Show the version and exit.",
)  # fmt: skip
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """crnn: CRNN text recognition: train, convert PaddleOCR models, evaluate, and run on
    PyTorch, ONNX Runtime or OpenVINO.

    \b
    Examples:
      crnn recognize word.png                 # bundled English model
      crnn recognize --format jsonl crops/    # a folder, JSON lines
      crnn convert best_accuracy.pdparams --to onnx -o rec.onnx
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if "\n" in text and len(text) > 400 else text


# Commands whose process may end with os._exit once their output is flushed: tearing down a loaded
# ONNX Runtime session and the interpreter costs a one-image `crnn recognize` a third of its run
# (about 90 ms on 2 cores) and does nothing a finished command needs. CRNN_NO_FAST_EXIT=1 (coverage
# tools, which write their data at exit) turns it off.
FAST_EXIT = frozenset({"recognize"})


def _finish(code: int, fast: bool) -> None:
    if fast and not os.environ.get("CRNN_NO_FAST_EXIT"):
        for stream in (sys.stdout, sys.stderr):
            # OSError: the reader left (| head); ValueError: the stream was closed
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point with crnn's error boundary; ends the process (sys.exit or os._exit)."""
    args = list(argv if argv is not None else sys.argv[1:])
    # Only as the console script (argv None): a caller running main() in its own process keeps it.
    fast = argv is None and next((a for a in args if not a.startswith("-")), None) in FAST_EXIT
    try:
        _run(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
        _finish(code, fast)
    _finish(0, fast)


def _run(argv: list[str]) -> Any:
    from crnn_cli.core.errors import CrnnError, CrnnWarning, UsageError  # light: no numpy

    debug = "--debug" in argv
    show = warnings.showwarning

    def show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        # crnn's own warnings (what it assumed) read as one line, like its errors; others as Python shows them.
        if issubclass(category, CrnnWarning):
            click.echo(f"crnn: warning: {message}", err=True)
        else:
            show(message, category, *args, **kwargs)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            return cli.main(args=argv, prog_name="crnn", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("crnn: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"crnn: error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except CrnnError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"crnn: error: {_one_line(exc)}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("crnn: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # `crnn recognize ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        sys.exit(0)
