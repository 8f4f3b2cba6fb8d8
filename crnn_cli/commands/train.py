"""`crnn train`: train a CRNN from a PaddleOCR-style config on the torch backend (DDP under torchrun)."""

from __future__ import annotations

import json
from typing import Any

import click

OVERRIDE_FLAGS = ("-o", "--override")


def expand_overrides(args: list[str]) -> list[str]:
    """PaddleOCR's form, several pairs after one ``-o`` (``-o A=1 B=2``), as click's ``-o A=1 -o B=2``.

    After an override, each following word that holds ``=`` and does not start with ``-`` is one more.
    `crnn train` takes no positional arguments, so no other word can be taken for one.
    """
    out: list[str] = []
    state = "none"  # "value": the next word is -o's own value; "more": further pairs may follow
    for arg in args:
        if arg == "--":
            state = "none"
        elif state == "value":
            state = "more"
        elif state == "more" and "=" in arg and not arg.startswith("-"):
            out += ["-o", arg]
            continue
        elif arg in OVERRIDE_FLAGS:
            state = "value"
        elif arg.startswith("--override=") or (arg.startswith("-o") and len(arg) > 2 and arg[2] != "-"):
            state = "more"
        else:
            state = "none"
        out.append(arg)
    return out


class TrainCommand(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_overrides(list(args)))


@click.command(cls=TrainCommand)
@click.option(
    "-c",
    "--config",
    "config",
    default=None,
    metavar="FILE|NAME",
    help="PaddleOCR-style YAML config, or a shipped one: rec_mv3_none_bilstm_ctc, "
    "rec_r34_vd_none_bilstm_ctc, crnn_default.",
)
@click.option(
    "-o",
    "--override",
    "overrides",
    multiple=True,
    metavar="Key.sub=value",
    help="Override a config value, read as YAML; repeat -o, or give several pairs after one "
    "(-o Global.epoch_num=1 Global.save_model_dir=out, PaddleOCR's form).",
)
@click.option(
    "--resume",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Continue an interrupted run from its checkpoint (latest.pt): same step, optimizer, "
    "schedule, RNG and data position.",
)
@click.option("--device", default=None, help="torch device (cpu, cuda, cuda:1); default: cuda if available.")
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many optimizer steps (saving a resumable checkpoint).",
)
@click.option(
    "--backend", default="torch", show_default=True, help="Backend that trains (must offer 'train')."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Start a fresh run in a save_model_dir that holds another run, deleting that run's files "
    "(refused otherwise, so two runs never mix).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def train(
    config: str | None,
    overrides: tuple[str, ...],
    resume: str | None,
    device: str | None,
    max_steps: int | None,
    backend: str,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Train a CRNN. Metrics go to <save_model_dir>/metrics.jsonl, a training-curve PNG beside it, and
    best_accuracy.pt / latest.pt checkpoints (atomic, resumable). Ctrl-C or SIGTERM saves latest.pt and stops.

    \b
    Several processes (DDP):
      torchrun --nproc_per_node 2 -m crnn_cli train -c my.yml
    """
    from crnn_cli.core.backend import TRAIN
    from crnn_cli.core.errors import UsageError
    from crnn_cli.core.registry import require_available

    if config is None and resume is None:
        raise UsageError("give a config with -c FILE (or a shipped config name), or --resume CHECKPOINT")
    impl = require_available(backend)
    if TRAIN not in impl.capabilities:
        raise UsageError(f"backend '{backend}' cannot train; use --backend torch")
    kw: dict[str, Any] = {"device": device, "quiet": quiet, "stop_at": max_steps}
    if overwrite:
        kw["overwrite"] = True
    summary = impl.train(config, list(overrides), resume, **kw)  # type: ignore[attr-defined]
    if summary:
        click.echo(json.dumps(summary, default=str))
