"""Running the app under uvicorn: one process, or N worker processes sharing one listening socket.

SIGTERM (or SIGINT): uvicorn stops accepting, lets in-flight requests finish (up to the drain
timeout), runs the app's shutdown, and ``serve`` returns; with ``--workers N`` the parent passes the
signal to each worker and waits for all of them.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from crnn_cli.serving.config import CONFIG_ENV, ServeConfig
from crnn_cli.serving.observe import log_config, log_event

FACTORY = "crnn_cli.serving.server:worker_app"


def recognizer_loader(config: ServeConfig) -> Any:
    """A function that opens this config's model (the worker's one session)."""

    def load() -> Any:
        from crnn_cli.core.recognizer import Recognizer

        return Recognizer(**config.model.recognizer_kwargs(config.max_batch))

    return load


def worker_app() -> Any:
    """uvicorn's factory in each worker process: the config comes from the parent's environment."""
    from crnn_cli.serving.app import create_app

    config = ServeConfig.from_json(os.environ[CONFIG_ENV])
    return create_app(config, recognizer_loader(config))


def serve(config: ServeConfig, host: str, port: int, workers: int = 1, log_level: str = "info") -> None:
    """Serve until SIGTERM / SIGINT; returns once in-flight requests are answered."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from crnn_cli.serving.app import create_app

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(log_level),
        "log_level": log_level,
        "access_log": False,  # the app logs each request as one JSON line (observe.py)
        "timeout_graceful_shutdown": int(config.drain_timeout_s),
        "server_header": False,
        "lifespan": "on",
    }
    if workers > 1:
        os.environ[CONFIG_ENV] = config.to_json()  # the spawned workers read it in worker_app
        uv_config = uvicorn.Config(FACTORY, factory=True, workers=workers, **common)
        log_event("starting", host=host, port=port, workers=workers)
        Multiprocess(uv_config, sockets=[uv_config.bind_socket()]).run()
        return
    app = create_app(config, recognizer_loader(config))
    server = uvicorn.Server(uvicorn.Config(app, **common))
    # uvicorn re-raises the signal it drained on, once the server is down, to end the process the
    # way the signal would have. A drained shutdown is a success, so SIGTERM then does nothing here
    # and the command exits 0 (SIGINT keeps its KeyboardInterrupt: exit 130).
    previous = signal.signal(signal.SIGTERM, lambda sig, frame: None)
    try:
        log_event("starting", host=host, port=port, workers=1)
        server.run()
    except SystemExit as exc:  # uvicorn exits (code 1 or 3) when it cannot bind or start the app
        if exc.code not in (0, None):
            started = False
        else:
            raise
    else:
        started = server.started
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not started:
        from crnn_cli.core.errors import CrnnError

        raise CrnnError(f"the server did not start on {host}:{port} (the log line above says why)")
