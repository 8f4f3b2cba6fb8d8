"""`crnn serve`: the recognizer as an HTTP service (Starlette on uvicorn) with dynamic batching.

config.py (what a worker needs), batcher.py (requests to model calls), payload.py (bodies to crops),
app.py (routes), observe.py (metrics, JSON logs), openapi.py, server.py (uvicorn, workers, signals).
Needs the `serve` extra; nothing here is imported by `crnn --help` or the core.
"""
