"""Paddle backend for crnn: PaddleOCR inference models on Paddle Inference, and their conversion.

* Inference (``--backend paddle``): a PaddleOCR inference model, legacy ``inference.pdmodel`` or
  Paddle 3's PIR ``inference.json`` (each with ``inference.pdiparams``), given as its folder or graph
  file, runs on Paddle Inference (session.py): PaddleOCR's own numbers beside crnn's other runtimes.
  OpenVINO (priority 30) stays the default for a legacy .pdmodel; only Paddle runs a PIR .json.
* Conversion (conversion.py): the reader of inference models for `crnn convert`, through paddle2onnx
  2.0.1 in a child process (paddle_inference.py), verified against Paddle Inference (or OpenVINO reading
  the .pdmodel when Paddle is not installed).

Importing this package is cheap: paddle, paddle2onnx and importlib.metadata load when they are used.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from crnn_cli.core.backend import INFER, Availability, Backend, Session, SessionOptions
from crnn_cli.core.registry import distribution_version

if TYPE_CHECKING:
    from crnn_cli.core.conversion import Reader

INSTALL_HINT = "pip install 'crnn[paddle]'"
GRAPH_NAMES = ("inference.json", "inference.pdmodel")


def is_pir_json(path: Path) -> bool:
    """A Paddle 3 PIR program (not any .json): the 'pir' magic in its first 4 kB."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and b'"pir"' in head


class PaddleBackend(Backend):
    name: ClassVar[str] = "paddle"
    capabilities: ClassVar[frozenset[str]] = frozenset({INFER})
    suffixes: ClassVar[tuple[str, ...]] = (".pdmodel", ".json")  # a .json only if a PIR program
    priority: ClassVar[int] = 40  # OpenVINO (30) stays the default for a legacy .pdmodel
    auto_fallback: ClassVar[bool] = True  # --backend auto runs a .pdmodel on OpenVINO, as before
    distributions: ClassVar[tuple[str, ...]] = ("paddlepaddle", "paddlepaddle-gpu")

    def availability(self) -> Availability:
        version = next((v for d in self.distributions if (v := distribution_version(d))), None)
        if version is None or find_spec("paddle") is None:
            return Availability(False, reason="paddlepaddle is not installed", hint=INSTALL_HINT)
        return Availability(True, version=version)

    def open(self, model: Path, options: SessionOptions) -> Session:
        from crnn_paddle.session import PaddleSession

        return PaddleSession(Path(model), options)

    def accepts(self, model: Path) -> bool:
        name = model.name.lower()
        if name.endswith(".json"):
            return is_pir_json(model)
        if name.endswith(".pdiparams"):
            return any(model.with_suffix(s).is_file() for s in (".json", ".pdmodel"))
        return super().accepts(model)

    def _accepts_dir(self, model: Path) -> bool:
        return any((model / g).is_file() for g in GRAPH_NAMES)

    def readers(self) -> tuple[Reader, ...]:
        from crnn_paddle.conversion import PaddleReader

        return (PaddleReader(),)
