"""What a worker tells the outside: Prometheus metrics and one JSON object per log line.

Metrics live in a registry of the app's own (not the global one), so two apps in one process (tests)
count apart. With ``--workers N`` each process counts its own requests; a scrape reaches one of them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LOGGER = "crnn.serve"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The counters /metrics exposes, in Prometheus' text format."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self, queue_depth: Any) -> None:
        """queue_depth: a callable giving the crops admitted and not yet answered."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "crnn_requests", "HTTP requests by route and status code.", ["path", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "crnn_request_duration_seconds", "Time from request to response, by route.", ["path"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "crnn_batch_size", "Crops per model call.", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.model_seconds = Histogram(
            "crnn_model_duration_seconds", "Time of one model call (preprocess, run, decode).",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        depth = Gauge("crnn_queue_depth", "Crops admitted and not yet answered.", registry=self.registry)
        depth.set_function(queue_depth)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        self.requests.labels(path, str(status)).inc()
        self.latency.labels(path).observe(seconds)

    def observe_batch(self, crops: int, seconds: float) -> None:
        self.batch_size.observe(crops)
        self.model_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, pid, msg, and the record's ``fields`` if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_config(level: str = "info") -> dict[str, Any]:
    """logging.config.dictConfig for uvicorn and crnn.serve: JSON lines on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "crnn_cli.serving.observe.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", LOGGER)
        },
    }


def log_event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    logging.getLogger(LOGGER).log(level, msg, extra={"fields": fields})
