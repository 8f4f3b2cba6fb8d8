"""Readiness: a worker answers /healthz at once and /readyz only once its model is loaded.

A real uvicorn server on a free loopback port runs the real app in a thread; only the moment the
model finishes loading is in the test's hands (its loader waits on an event), so the loading window
can be seen.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from serve_util import sample_paths

from crnn_cli.core.recognizer import Recognizer
from crnn_cli.serving.app import create_app
from crnn_cli.serving.config import ModelConfig, ServeConfig


@contextmanager
def running(load: Callable[[], Any]) -> Iterator[str]:
    config = ServeConfig(model=ModelConfig(backend="onnxruntime"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(config, load), log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def test_not_ready_while_the_model_loads():
    release = threading.Event()

    def slow_load() -> Recognizer:
        release.wait(60)
        return Recognizer(backend="onnxruntime")

    with running(slow_load) as url:
        assert httpx.get(url + "/healthz").status_code == 200
        r = httpx.get(url + "/readyz")
        assert r.status_code == 503 and "loading" in r.json()["error"]
        img = sample_paths()[0].read_bytes()
        r = httpx.post(url + "/v1/recognize", content=img, headers={"content-type": "image/png"})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        release.set()
        for _ in range(600):
            if httpx.get(url + "/readyz").status_code == 200:
                break
            time.sleep(0.05)
        assert httpx.get(url + "/readyz").json() == {"status": "ready"}
        r = httpx.post(url + "/v1/recognize", content=img, headers={"content-type": "image/png"})
        assert r.status_code == 200 and r.json()["results"][0]["text"]


def test_a_model_that_fails_to_load_keeps_the_worker_unready_and_says_why(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")

    with running(lambda: Recognizer(broken, backend="onnxruntime")) as url:
        for _ in range(600):
            r = httpx.get(url + "/readyz")
            if "failed" in r.text:
                break
            time.sleep(0.05)
        assert r.status_code == 503 and "the model failed to load" in r.json()["error"]
        assert "retry-after" not in r.headers  # retrying will not help
        assert httpx.get(url + "/healthz").status_code == 200
