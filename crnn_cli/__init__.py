"""crnn: CRNN text-line recognition on PyTorch, ONNX Runtime and OpenVINO.

Importing this package is cheap: no deep-learning runtime is imported until a backend is used.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crnn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
