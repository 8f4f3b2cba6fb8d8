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


def test_extra_options_reach_the_ort_session(tmp_path) -> None:
    import numpy as np
    from models_util import make_tiny_onnx

    from crnn_cli.core.backend import SessionOptions
    from crnn_cli.core.registry import load_backend

    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    key = "session.intra_op.allow_spinning"
    with load_backend("onnxruntime").open(model, SessionOptions(threads=1, extra={key: "0"})) as s:
        assert s._sess.get_session_options().get_session_config_entry(key) == "0"
        assert s.run(np.zeros((2, 3, 32, 100), np.float32)).shape[0] == 2
