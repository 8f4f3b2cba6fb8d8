"""Paddle Inference sessions: PaddleOCR's own runtime behind crnn's Session interface.

CPU only, oneDNN off unless ``extra={"onednn": "1"}``: the fixtures' reference outputs were made that
way, and oneDNN reorders sums (its outputs differ in the 5th decimal). Paddle is imported when a session
opens, with its import-time chatter (ccache, OMP_NUM_THREADS advice) kept off the user's terminal.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crnn_cli.core.backend import ModelInfo, Session, SessionOptions
from crnn_cli.core.errors import BackendError, ModelError, UsageError
from crnn_paddle.paddle_inference import find_inference_model, graph_shapes, paddle_available, quiet_import

TRUE = ("1", "true", "yes", "on")


class PaddleSession(Session):
    """One Paddle Inference predictor for an inference model (legacy .pdmodel or PIR .json)."""

    def __init__(self, model: Path, options: SessionOptions) -> None:
        src = find_inference_model(model)
        in_shape, out_shape = graph_shapes(src)
        if len(in_shape) != 4:
            raise ModelError(f"{src.model_file}: input must be N x C x H x W, is {list(in_shape)}")
        avail = paddle_available()
        if not avail.ok:
            raise BackendError(
                f"cannot run {src.model_file} with Paddle: {avail.reason}; install it with: {avail.hint}"
            )
        if options.device.upper() not in ("CPU", "CPU:0"):
            raise BackendError(f"the paddle backend runs on CPU only here, not on device '{options.device}'")
        unknown = set(options.extra) - {"onednn"}
        if unknown:
            raise UsageError(f"the paddle backend takes extra option 'onednn' only, got {sorted(unknown)}")
        inference = quiet_import("paddle.inference")
        config = inference.Config(str(src.model_file), str(src.params_file))
        config.disable_gpu()
        if str(options.extra.get("onednn", "0")).lower() in TRUE:
            config.enable_mkldnn()
        else:
            config.disable_mkldnn()
        config.disable_glog_info()
        config.set_cpu_math_library_num_threads(options.threads or os.cpu_count() or 1)
        try:
            self._predictor = inference.create_predictor(config)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{src.model_file}: Paddle Inference cannot load this model: {first}") from None
        self._path = src.model_file
        in_name = self._predictor.get_input_names()[0]
        self._input = self._predictor.get_input_handle(in_name)
        self._output = self._predictor.get_output_handle(self._predictor.get_output_names()[0])
        self.info = ModelInfo(
            input_name=in_name,
            input_shape=in_shape,
            output_shape=out_shape if len(out_shape) == 3 else (None, None, None),
            props={},  # a Paddle inference model carries no crnn metadata: --dict and friends say it
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._predictor is None:
            raise ModelError(f"{self._path}: the session is closed; open the model again")
        if batch.shape[0] == 0:  # nothing to run; Paddle refuses a zero-sized input
            return np.zeros((0, 0, self.info.output_shape[2] or 0), np.float32)
        self._input.reshape(list(batch.shape))
        self._input.copy_from_cpu(batch)
        try:
            self._predictor.run()
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"{self._path}: Paddle Inference failed on a batch of {batch.shape}: {first}"
            ) from None
        return np.asarray(self._output.copy_to_cpu(), np.float32)

    def close(self) -> None:
        self._predictor = None
