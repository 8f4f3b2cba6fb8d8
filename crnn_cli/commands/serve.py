"""`crnn serve`: the recognizer as an HTTP service with dynamic batching (see crnn_cli/serving/)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import click

from crnn_cli.commands.recognize import recognize


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True,
    help="Worker processes on the one port, each with its own model session.",
)  # fmt: skip
@click.option(
    "--instances", type=click.IntRange(1, 64), default=None,
    help="Model calls in flight per worker, each on a session and thread of its own "
    "[default: the cores a worker gets divided by --threads, which defaults to 1; "
    "1 with --device or --providers naming an accelerator].",
)  # fmt: skip
@click.option(
    "--max-batch", type=click.IntRange(1, 4096), default=32, show_default=True,
    help="Crops per model call: requests arriving together share a call up to this many.",
)  # fmt: skip
@click.option(
    "--max-wait-ms", type=click.FloatRange(0, 10_000), default=5.0, show_default=True,
    help="How long a request waits for others being decoded to join its batch.",
)  # fmt: skip
@click.option(
    "--max-queue", type=click.IntRange(min=1), default=1024, show_default=True,
    help="Crops waiting per worker before new requests get 503 + Retry-After.",
)  # fmt: skip
@click.option(
    "--max-body-mb", type=click.FloatRange(min=0, min_open=True, max=4096), default=20.0, show_default=True,
    help="Request body limit (413 above it). Images are also held to CRNN_MAX_IMAGE_PIXELS.",
)  # fmt: skip
@click.option(
    "--api-key-env", default=None, metavar="NAME",
    help="Require 'Authorization: Bearer <key>' on /v1/*, the key read from environment variable NAME.",
)  # fmt: skip
@click.option(
    "--drain-timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
    help="Seconds SIGTERM waits for in-flight requests.",
)  # fmt: skip
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
def serve(
    host: str,
    port: int,
    workers: int,
    instances: int | None,
    max_batch: int,
    max_wait_ms: float,
    max_queue: int,
    max_body_mb: float,
    api_key_env: str | None,
    drain_timeout: float,
    log_level: str,
    **model_options: Any,
) -> None:
    """Serve the recognizer over HTTP: POST /v1/recognize, GET / (a page), /healthz, /readyz,
    /metrics, /v1/model, /openapi.json. Logs are JSON lines on stderr. SIGTERM drains and exits 0.

    \b
    Examples:
      crnn serve                                  # bundled model on 127.0.0.1:8000
      curl --data-binary @word.png -H 'Content-Type: image/png' localhost:8000/v1/recognize
      curl -F image=@a.png -F image=@b.png localhost:8000/v1/recognize
    """
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401

        from crnn_cli.serving.server import serve as run_server
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"crnn serve needs {exc.name}, which is not installed: pip install 'crnn[serve]'"
        ) from None
    from crnn_cli.core.recognizer import Recognizer
    from crnn_cli.serving.config import ModelConfig, ServeConfig

    opts = dict(model_options)
    if instances is None and on_accelerator(opts["device"], opts["providers"]):
        instances = 1  # one session on the device: an instance a core would open that many on it
    instances, opts["threads"] = split_cores(os.cpu_count() or 1, workers, instances, opts["threads"])
    model_config = ModelConfig.from_options(**opts)
    config = ServeConfig(
        model=model_config,
        instances=instances,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
        max_body_mb=max_body_mb,
        api_key_env=api_key_env,
        drain_timeout_s=drain_timeout,
    )
    config.api_key()  # an unset key variable is a usage error now, not a 401 on every request
    # Open the model once here: a wrong path, dictionary or backend is an error before the port opens,
    # and "auto" picks one backend that every worker then uses.
    with Recognizer(**model_config.recognizer_kwargs(max_batch)) as rec:
        hint = rec.selection.hint if rec.selection is not None else None
        chosen = {"backend": rec.backend.name}
        if hint is not None and model_config.performance_hint is None:
            chosen["performance_hint"] = hint
    config = replace(config, model=replace(model_config, **chosen))
    run_server(config, host, port, workers, log_level)


def on_accelerator(device: str | None, providers: str | None) -> bool:
    """--device or --providers name something other than the CPU (a GPU, an NPU, AUTO)."""
    names = [p.strip() for p in (providers or "").split(",") if p.strip()]
    return (device or "CPU").upper() != "CPU" or any(p != "CPUExecutionProvider" for p in names)


def split_cores(cores: int, workers: int, instances: int | None, threads: int | None) -> tuple[int, int]:
    """(instances a worker, threads a call): each worker gets ``cores / workers``, shared by calls
    running side by side. Served crops come a few at a time, so a call's work is small and splits
    poorly over threads; whole calls side by side, one thread each, keep the cores busier (measured
    in the README). What is given is kept; what is not fills the worker's cores."""
    per_worker = max(1, cores // workers)
    if threads is None:
        threads = 1 if instances is None else max(1, per_worker // instances)
    if instances is None:
        instances = max(1, per_worker // threads)
    return instances, threads


# The model options are `crnn recognize`'s own (same names, defaults and help), so the two commands
# read a model the same way and cannot drift apart.
MODEL_OPTIONS = (
    "model", "backend", "threads", "device", "providers", "performance_hint", "dictionary",
    "use_space_char", "image_shape", "fixed_width", "rotate", "no_rotate", "decoder", "beam_width",
)  # fmt: skip
serve.params[:0] = [p for p in recognize.params if p.name in MODEL_OPTIONS]
