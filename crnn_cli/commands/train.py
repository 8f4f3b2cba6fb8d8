"""`crnn train`: train a CRNN from a PaddleOCR-style config on the torch backend (DDP under torchrun)."""

from __future__ import annotations

import json
import signal
import sys
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the summary as one JSON object (the default when stdout is not a terminal).",
)
def train(
    config: str | None,
    overrides: tuple[str, ...],
    resume: str | None,
    device: str | None,
    max_steps: int | None,
    backend: str,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Train a CRNN. Metrics go to <save_model_dir>/metrics.jsonl, a training-curve PNG beside it, and
    best_accuracy.pt / latest.pt checkpoints (atomic, resumable). Ctrl-C or SIGTERM saves latest.pt and
    stops with exit status 130 or 143. The summary goes to stdout: readable text on a terminal, else JSON.

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
        if as_json or not sys.stdout.isatty():
            click.echo(json.dumps(summary, default=str))
        else:
            click.echo(describe(summary))
    if summary and summary.get("interrupted"):
        # Saved and resumable, but not done: a script or scheduler must not take it for a finished run.
        sys.exit(128 + signal.Signals[summary["interrupted"]].value)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {s:02d}s" if m else f"{seconds:.1f} s")


def describe(summary: dict[str, Any]) -> str:
    """The training summary as a few lines for a person (the JSON holds everything)."""
    if summary["finished"]:
        state = "finished"
    elif summary.get("interrupted"):
        state = f"interrupted ({summary['interrupted']})"
    else:
        state = "stopped"
    run = summary["steps_this_run"]
    epochs = f" ({summary['epoch']} epochs done)" if summary["epoch"] else ""
    lines = [
        f"{state}: step {summary['steps']}{epochs}; {run} step{'s' if run != 1 else ''} in "
        f"{_duration(summary['seconds'])}, {summary['samples_per_second']:.1f} samples/s"
    ]
    if summary.get("loss") is not None:
        lines.append(f"loss      {summary['loss']:.4f} (smoothed)")
    if summary.get("skipped_steps"):
        lines.append(f"skipped   {summary['skipped_steps']} steps (non-finite loss or gradients)")
    last = summary.get("last_eval")
    if last:
        lines.append(
            f"eval      step {last['step']}: acc {last['acc']:.4f}, 1-NED {last['norm_edit_dis']:.4f} "
            f"({last['count']} samples)"
        )
    best = summary.get("best") or {}
    if best.get("value") is not None:
        lines.append(
            f"best      {best['metric']} {best['value']:.4f} at step {best['step']}: {summary['best_path']}"
        )
    lines.append(f"latest    {summary['latest']}")
    lines.append(f"metrics   {summary['metrics']}")
    if summary.get("curves"):
        lines.append(f"curves    {summary['curves']}")
    if summary.get("resume_command"):
        lines.append(f"resume    {summary['resume_command']}")
    return "\n".join(lines)
