"""The ONNX Runtime backend against the backend contract."""

from __future__ import annotations

from typing import ClassVar

from backend_contract import BackendContract

from crnn_cli.core.backend import SessionOptions


class TestOnnxRuntime(BackendContract):
    backend_name = "onnxruntime"


class TestOnnxRuntimeGray48(BackendContract):
    """One channel, height 48 and a dictionary with XML/JSON specials and CJK symbols."""

    backend_name = "onnxruntime"
    channels = 1
    height = 48
    num_classes = 60


class TestOnnxRuntimeTwoLanes(BackendContract):
    """threads=2: run_many runs two calls side by side on a one-thread twin of the session."""

    backend_name = "onnxruntime"
    options: ClassVar[SessionOptions] = SessionOptions(threads=2)


def test_run_many_lanes_are_one_thread_calls_side_by_side_bit_for_bit(tmp_path) -> None:
    """Two lanes of one thread each, whose first two calls are in the model at once (each waits at a
    barrier for the other); their outputs equal the two-thread run()'s bit for bit, so a crop's
    result does not depend on which path read it."""
    import threading

    import numpy as np
    from crnn_onnxruntime import OnnxRuntimeSession
    from models_util import make_tiny_onnx

    from crnn_cli.core.registry import load_backend

    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((n, 3, 32, w)).astype(np.float32) for n, w in [(3, 64), (1, 100)] * 8]
    both_in = threading.Barrier(2, timeout=10)
    calls: list[str] = []
    real_run = OnnxRuntimeSession._run

    def spy(self, batch):
        if self._options.threads == 1:  # the lane session
            calls.append(threading.current_thread().name)
            if len(calls) <= 2:
                both_in.wait()  # BrokenBarrierError unless the other call runs at the same time
        return real_run(self, batch)

    with load_backend("onnxruntime").open(model, SessionOptions(threads=2)) as s:
        assert s.parallel_calls() == 2
        OnnxRuntimeSession._run = spy
        try:
            outs = list(s.run_many(batches))
        finally:
            OnnxRuntimeSession._run = real_run
        assert len(calls) == len(batches) and all(n.startswith("crnn-ort") for n in calls)
        assert len(set(calls[:2])) == 2
        for batch, out in zip(batches, outs):
            assert np.array_equal(out, s.run(batch))
    assert s._lane is None and s._lanes is None  # closed with the session


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
