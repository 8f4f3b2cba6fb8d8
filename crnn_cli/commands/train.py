"""`crnn train`: train a CRNN from a PaddleOCR-style config on the torch backend (DDP under torchrun)."""

from __future__ import annotations

import json

import click


@click.command()
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
    help="Override a config value (repeatable; the value is read as YAML).",
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
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def train(
    config: str | None,
    overrides: tuple[str, ...],
    resume: str | None,
    device: str | None,
    max_steps: int | None,
    backend: str,
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
    summary = impl.train(config, list(overrides), resume, device=device, quiet=quiet, stop_at=max_steps)  # type: ignore[attr-defined]
    if summary:
        click.echo(json.dumps(summary, default=str))
