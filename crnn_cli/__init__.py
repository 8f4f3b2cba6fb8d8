"""crnn: CRNN text-line recognition on PyTorch, ONNX Runtime and OpenVINO.

Importing this package is cheap: no deep-learning runtime is imported until a backend is used, and
``__version__`` is read from the installed distribution only when someone asks for it (scanning the
installed distributions costs a cold `crnn recognize` more than the rest of its own imports).
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    if name != "__version__":
        raise AttributeError(f"module 'crnn_cli' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("crnn")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
