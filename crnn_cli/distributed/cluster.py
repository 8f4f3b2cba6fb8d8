"""Joining a Ray cluster for one run: ``--ray local``, ``--ray auto`` or ``--ray HOST:PORT`` / ``ray://...``.

local starts a private Ray instance on this machine for the run (stopped at the end); auto joins the
cluster this machine belongs to (``ray start`` ran here, or RAY_ADDRESS says where); anything else is a
cluster address as ``ray.init`` takes it. A process that already called ``ray.init`` (a notebook, a test)
keeps its connection: the run uses it and leaves it open.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from crnn_cli.core.errors import CrnnError, UsageError

INSTALL_HINT = "pip install 'crnn[ray]'"
CONNECT_TIMEOUT_S = 10  # a head node on a slow network still answers a TCP connect in this time


class ClusterError(CrnnError):
    """The Ray cluster could not be reached or started."""


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data needs the [data] extra's pyarrow and pandas)
    except ImportError as exc:
        raise UsageError(f"--ray needs Ray Data, which is not installed ({exc}): {INSTALL_HINT}") from None
    return ray


def connect(address: str, **init_options: Any) -> bool:
    """Connect this process to Ray at ``address``; True when this call started the connection (so the
    caller shuts it down). ``init_options`` go to ray.init (num_cpus, object_store_memory, ...)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    if not address:
        raise UsageError("--ray needs an address: local, auto, or the cluster's HOST:PORT")
    options: dict[str, Any] = {
        "include_dashboard": False,  # a run needs no web UI, and it costs a process and a port
        # Ray's INFO and WARNING lines (token set-up, deprecations) would bury crnn's own stderr.
        "logging_level": logging.ERROR,
        "configure_logging": True,
        # Workers' and Ray's own log lines stay in the session's log folder; a worker's exception
        # still reaches the driver as an exception.
        "log_to_driver": False,
    }
    if address != "local":
        # Joining an existing cluster: its size and object store are its own.
        init_options = {k: v for k, v in init_options.items() if k not in ("num_cpus", "object_store_memory")}
    options.update(init_options)
    target = os.environ.get("RAY_ADDRESS", "") if address == "auto" else address
    if target and target not in ("local", "auto"):
        _check_reachable(address, target)
    try:
        ray.init(address=address, **options)
    except ConnectionError as exc:
        what = (
            "no Ray cluster runs on this machine (start one with `ray start --head`, or use --ray local)"
            if address == "auto"
            else f"cannot reach the Ray cluster at {address} ({exc})"
        )
        raise ClusterError(f"--ray {address}: {what}") from None
    except (ValueError, RuntimeError) as exc:
        raise ClusterError(f"--ray {address}: Ray did not start ({exc})") from None
    return True


def _check_reachable(option: str, address: str) -> None:
    """Fail in seconds on a cluster address nobody listens at: ray.init retries one for minutes."""
    host, sep, port = address.rpartition("://")[2].rpartition(":")
    if not sep or not port.isdigit():
        return  # not HOST:PORT: left to ray.init to judge
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(
            f"--ray {option}: nothing answers at {address} ({exc.strerror or exc}); is the cluster's head "
            "node up (`ray start --head`), and is that its address and port?"
        ) from None


def quiet_ray_data() -> None:
    """crnn draws its own progress on stderr: Ray Data's bars and INFO logs would interleave with it."""
    from ray.data import DataContext

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # before: turning the bars off logs a warning
    DataContext.get_current().enable_progress_bars = False


def disconnect(started: bool) -> None:
    if started:
        import ray

        ray.shutdown()
