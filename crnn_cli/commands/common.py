"""Helpers shared by the subcommands: options, console, error mapping."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class LazyConsole:
    """A rich console on stderr that imports rich when first used (most runs print nothing there)."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet
        self._console: Any = None

    @property
    def real(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True, quiet=self._quiet, highlight=False, soft_wrap=True)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def stderr_console(quiet: bool = False) -> Any:
    """A rich console on stderr; silent with --quiet."""
    return LazyConsole(quiet)


def table_width() -> int | None:
    """Width to render stdout's tables at: None lets rich take the terminal's width (or COLUMNS), so a
    table fits the window; a file or pipe has no width, so there each row stays on one line."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit():
        return None
    return 1000


def progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def backend_options(f: F) -> F:
    """--backend/--threads/--device/--providers/--hint shared by recognize, eval and convert."""
    f = click.option(
        "--hint",
        "performance_hint",
        type=click.Choice(["LATENCY", "THROUGHPUT"], case_sensitive=False),
        default=None,
        help="OpenVINO performance hint (THROUGHPUT keeps several requests in flight).",
    )(f)
    f = click.option(
        "--providers",
        default=None,
        metavar="P1,P2",
        help="ONNX Runtime execution providers by ORT's names, e.g. CUDAExecutionProvider,CPUExecutionProvider.",
    )(f)
    f = click.option("--device", default=None, help="OpenVINO device (CPU, GPU, AUTO) or torch device.")(f)
    f = click.option("--threads", type=click.IntRange(min=1), default=None, help="Intra-op threads.")(f)
    f = click.option(
        "--backend",
        default=None,
        metavar="NAME",
        help="Backend to run on (see `crnn backends`); default auto: of the installed backends that open "
        "the model, the fastest here (timed on first use, then remembered).",
    )(f)
    return f


def session_options(threads: int | None, device: str | None, providers: str | None, hint: str | None) -> Any:
    from crnn_cli.core.backend import SessionOptions

    kw: dict[str, Any] = {"threads": threads}
    if device:
        kw["device"] = device
    if providers:
        kw["providers"] = tuple(p.strip() for p in providers.split(",") if p.strip())
    if hint:
        kw["performance_hint"] = hint.upper()
    return SessionOptions(**kw)


def display_path(path: str) -> str:
    """A path as printable text: undecodable bytes in file names become \\x escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
