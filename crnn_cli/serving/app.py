"""The ASGI app of `crnn serve` (Starlette): routes, limits, authentication, and the model's lifetime.

Each worker process builds one app holding ``instances`` Recognizers (model sessions), each read on a
thread of the batcher's. The models load on a thread after startup, so /healthz answers at once and
/readyz says 503 until they are ready. Decoding runs on a small thread pool of the app's: the event
loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crnn_cli.serving.batcher import Batcher, QueueFullError
from crnn_cli.serving.config import ServeConfig
from crnn_cli.serving.observe import Metrics, log_event
from crnn_cli.serving.openapi import openapi_document
from crnn_cli.serving.payload import BadRequest, decode_crops, read_images

RETRY_AFTER_S = 1  # what a 503 asks the client to wait: a batch or two at most


@dataclass
class Model:
    """The loaded recognizers (one a model instance, each with its own session) and what /v1/model
    says about them."""

    recognizers: list[Any]
    info: dict[str, Any]


def describe(rec: Any) -> dict[str, Any]:
    """/v1/model's body: the metadata a client needs to read the answers."""
    meta = rec.metadata
    cfg = rec.preprocess_config  # what is applied: the metadata's padding and stretch rules, resolved
    return {
        "name": rec.model_path.name,
        "backend": rec.backend.name,
        "architecture": meta.architecture,
        "producer": meta.producer,
        "input": {
            "channels": meta.channels,
            "height": meta.height,
            "width": meta.width,
            "dynamic_width": meta.dynamic_width,
            "max_width": meta.max_width,
            "min_width": (cfg.min_width or cfg.width) if cfg.dynamic_width else cfg.width,
            "width_step": cfg.width_step if cfg.dynamic_width else None,
            "min_aspect": cfg.min_aspect,
            "mean": list(meta.mean),
            "std": list(meta.std),
        },
        "dictionary": {
            "name": rec.charset.name,
            "size": len(rec.charset.symbols),
            "use_space_char": rec.charset.use_space_char,
            "lowercase": rec.charset.lowercase,
        },
        "decoder": rec.decoder,
        "rotate": rec.rotate,
    }


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class ObserveMiddleware:
    """Counts and logs every request (one JSON line each), including the ones a route refused."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        path = scope["path"]
        route = path if path in self.state.paths else "other"  # bounded label set

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        scope.setdefault("state", {})
        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            self.state.metrics.observe_request(route, status, seconds)
            fields = {
                "method": scope["method"],
                "path": path,
                "status": status,
                "ms": round(seconds * 1000, 2),
                "client": (scope.get("client") or ("", 0))[0],
            }
            fields.update(scope["state"].get("log", {}))
            log_event("request", **fields)


class State:
    """One worker's serving state: config, model (once loaded), batcher, metrics."""

    def __init__(self, config: ServeConfig, load: Callable[[], Any]) -> None:
        self.config = config
        self.load = load
        self.api_key = config.api_key()
        self.model: Model | None = None
        self.load_error: str | None = None
        self.loaded = threading.Event()
        self.batcher: Batcher | None = None
        self.metrics = Metrics(lambda: self.batcher.admitted if self.batcher else 0)
        self.paths: set[str] = set()
        # Decoding runs off the event loop on a pool of its own: a few threads that stay warm, where
        # Starlette's shared pool (40 threads) wakes a different one for each request.
        self.decode_pool = ThreadPoolExecutor(
            max_workers=max(2, min(8, os.cpu_count() or 1)), thread_name_prefix="crnn-decode"
        )

    def load_model(self) -> None:
        """Runs on a thread at startup: opens the sessions, then marks the worker ready."""
        recognizers: list[Any] = []
        try:
            for _ in range(self.config.instances):
                recognizers.append(self.load())
            self.model = Model(recognizers, {**describe(recognizers[0]), "instances": len(recognizers)})
            log_event("model loaded", model=self.model.info["name"], backend=self.model.info["backend"])
        except Exception as exc:  # the worker stays up, not ready, and says why
            for rec in recognizers:
                rec.close()
            self.load_error = f"{type(exc).__name__}: {exc}"
            log_event("model failed to load", logging.ERROR, error=self.load_error)
        finally:
            self.loaded.set()


def create_app(config: ServeConfig, load: Callable[[], Any]) -> Starlette:
    """The app for one worker. ``load`` builds the Recognizer (called once, on a thread)."""
    state = State(config, load)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        def instance(i: int) -> Callable[[list[Any]], list[Any]]:
            def predict(crops: list[Any]) -> list[Any]:
                assert state.model is not None
                return state.model.recognizers[i].predict_batch(crops)

            return predict

        state.batcher = Batcher(
            [instance(i) for i in range(config.instances)],
            config.max_batch,
            config.max_wait_ms / 1000,
            config.max_queue,
            state.metrics.observe_batch,
        )
        state.batcher.start()
        loader = threading.Thread(target=state.load_model, name="crnn-load-model", daemon=True)
        loader.start()
        try:
            yield
        finally:
            # uvicorn calls this after in-flight requests finished (SIGTERM drains first).
            await state.batcher.stop()
            await asyncio.to_thread(loader.join, config.drain_timeout_s)  # a load still running: bounded
            state.decode_pool.shutdown(wait=True)
            if state.model is not None:
                for rec in state.model.recognizers:
                    rec.close()
            log_event("stopped")

    def authorized(request: Request) -> bool:
        if state.api_key is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        # compare_digest on bytes: the time taken does not depend on where a wrong key differs.
        given = token.strip().encode("utf-8") if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(given, state.api_key)

    def unauthorized() -> JSONResponse:
        return error(
            401,
            "missing or wrong API key: send the header 'Authorization: Bearer <key>'",
            {"WWW-Authenticate": 'Bearer realm="crnn"'},
        )

    def not_ready() -> JSONResponse | None:
        if state.model is not None:
            return None
        if state.load_error is not None:
            return error(503, f"the model failed to load: {state.load_error}")
        return error(503, "the model is still loading", {"Retry-After": str(RETRY_AFTER_S)})

    async def recognize(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        refused = not_ready()
        if refused is not None:
            return refused
        assert state.batcher is not None and state.model is not None
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            parts = await read_images(request, config.max_body_bytes, config.max_queue)
            request.scope["state"]["log"] = {"images": len(parts)}
            with state.batcher.admit(len(parts)):
                crops = await loop.run_in_executor(state.decode_pool, decode_crops, parts)
                decoded = await state.batcher.submit(crops)
        except BadRequest as exc:
            return error(exc.status, str(exc))
        except QueueFullError as exc:
            return error(503, f"busy: {exc}; retry later", {"Retry-After": str(RETRY_AFTER_S)})
        want_chars = request.query_params.get("char_confidences", "").lower() in ("1", "true", "yes")
        results = []
        for d in decoded:
            r: dict[str, Any] = {"text": d.text, "confidence": round(d.confidence, 6)}
            if want_chars:
                r["char_confidences"] = [round(c, 6) for c in d.char_confidences]
            results.append(r)
        return JSONResponse(
            {
                "results": results,
                "model": state.model.info["name"],
                "elapsed_ms": round((time.perf_counter() - start) * 1000, 2),
            }
        )

    async def model_info(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        refused = not_ready()
        return refused or JSONResponse(state.model.info if state.model else {})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        refused = not_ready()
        return refused or JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document(config))

    page_html = resources.files("crnn_cli.serving").joinpath("page.html").read_text("utf-8")
    page_html = page_html.replace("__AUTH__", json.dumps(state.api_key is not None))

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/v1/recognize", recognize, methods=["POST"]),
        Route("/v1/model", model_info, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    state.paths = {r.path for r in routes}

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        # Logged with its traceback; the client gets one line, never the traceback.
        log_event(
            "unhandled error", logging.ERROR, path=request.url.path, error=f"{type(exc).__name__}: {exc}"
        )
        return error(500, f"internal error ({type(exc).__name__}); the request can be retried")

    handlers = {HTTPException: http_error, Exception: server_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
    app.add_middleware(ObserveMiddleware, state=state)
    app.state.crnn = state
    return app
