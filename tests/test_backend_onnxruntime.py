"""The ONNX Runtime backend against the backend contract."""

from __future__ import annotations

from backend_contract import BackendContract


class TestOnnxRuntime(BackendContract):
    backend_name = "onnxruntime"


class TestOnnxRuntimeGray48(BackendContract):
    """One channel, height 48 and a dictionary with XML/JSON specials and CJK symbols."""

    backend_name = "onnxruntime"
    channels = 1
    height = 48
    num_classes = 60
