"""The --ray options `crnn recognize` and `crnn eval` share (click only: Ray is imported when used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def ray_options(f: F) -> F:
    f = click.option(
        "--ray-actors",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="With --ray: model sessions (Ray actors) across the cluster, each with --threads threads "
        "(default 1); default: the cluster's CPUs / threads.",
    )(f)
    f = click.option(
        "--ray",
        "ray_address",
        default=None,
        metavar="ADDRESS",
        help="Run on Ray: local (a Ray instance for this run), auto (the cluster this machine is in) or "
        "the cluster's HOST:PORT. Inputs must be paths every node can read. Needs crnn[ray].",
    )(f)
    return f
