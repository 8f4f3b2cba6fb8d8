"""The real Paddle fixtures read directly by OpenVINO (no Paddle installed) against PaddleOCR's outputs.

Golden data: ../shared/fixtures (see its README): ``inputs`` are PaddleOCR's resize_norm_img output,
``probs`` Paddle Inference's output, ``texts``/``confs`` PaddleOCR's CTCLabelDecode.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from crnn_cli.core.backend import Session, SessionOptions
from crnn_cli.core.charset import Charset, load_charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.registry import backend_for_model, load_backend

pytest.importorskip("openvino", reason="needs the OpenVINO runtime: pip install 'crnn[openvino]'")

pytestmark = pytest.mark.shared

PROB_ATOL = 1e-4  # the tolerance every converter and runtime met (fixtures README)
CONF_ATOL = 1e-5
OPTIONS = SessionOptions(threads=2)


def _open(model: Path, options: SessionOptions = OPTIONS) -> Session:
    return load_backend("openvino").open(model, options)


@pytest.fixture(scope="module")
def mv3(mv3_dir: Path) -> Iterator[Session]:
    with _open(mv3_dir / "inference_legacy") as session:  # the folder form
        yield session


@pytest.fixture(scope="module")
def ppocrv4(ppocrv4_dir: Path) -> Iterator[Session]:
    with _open(ppocrv4_dir) as session:
        yield session


def _check(session: Session, ref: np.lib.npyio.NpzFile, charset: Charset) -> None:
    """Probabilities within PROB_ATOL, texts identical, confidences within CONF_ATOL."""
    probs = session.run(ref["inputs"])
    assert probs.shape == ref["probs"].shape
    diff = float(np.abs(probs - ref["probs"]).max())
    assert diff <= PROB_ATOL, f"max abs difference of probabilities {diff:.2e}"
    assert (probs.argmax(axis=2) == ref["probs"].argmax(axis=2)).all()
    decoded = decode_greedy(probs, charset)
    assert [d.text for d in decoded] == [str(t) for t in ref["texts"]]
    np.testing.assert_allclose([d.confidence for d in decoded], ref["confs"], atol=CONF_ATOL, rtol=0)


def test_mv3_input_is_dynamic_batch_and_width(mv3: Session) -> None:
    assert mv3.info.input_name == "x"
    assert mv3.info.input_shape == (None, 3, 32, None)
    assert mv3.info.output_shape == (None, None, 37)  # OpenVINO reports T as the interval 1..


def test_ppocrv4_input_is_dynamic_batch_and_width(ppocrv4: Session) -> None:
    assert ppocrv4.info.input_shape == (None, 3, 48, None)
    assert ppocrv4.info.output_shape == (None, None, 6625)


@pytest.mark.parametrize("width", [100, 320])
def test_mv3_matches_paddleocr(mv3: Session, mv3_dir: Path, width: int) -> None:
    _check(mv3, np.load(mv3_dir / f"reference_w{width}.npz"), load_charset(None))


def test_ppocrv4_matches_paddleocr(ppocrv4: Session, ppocrv4_dir: Path) -> None:
    ref = np.load(ppocrv4_dir / "reference_w320.npz")
    charset = load_charset(ppocrv4_dir / "ppocr_keys_v1.txt", use_space_char=True)
    assert charset.num_classes == 6625
    _check(ppocrv4, ref, charset)
    assert "PLEASE" in [str(t) for t in ref["texts"]]  # a real recognizer: the golden texts read right


def test_pdmodel_path_opens_like_the_folder(mv3_dir: Path) -> None:
    model = mv3_dir / "inference_legacy" / "inference.pdmodel"
    assert backend_for_model(model).name == "openvino"
    with _open(model) as session:
        _check(session, np.load(mv3_dir / "reference_w100.npz"), load_charset(None))


def test_ppocrv4_async_throughput_matches(ppocrv4_dir: Path) -> None:
    # Batches of 4 through the async queue with parallel streams: same numbers, same order.
    ref = np.load(ppocrv4_dir / "reference_w320.npz")
    options = SessionOptions(threads=2, performance_hint="THROUGHPUT", num_requests=2)
    with _open(ppocrv4_dir, options) as session:
        outs = list(session.run_many(ref["inputs"][i : i + 4] for i in range(0, 12, 4)))
    diff = float(np.abs(np.concatenate(outs) - ref["probs"]).max())
    assert diff <= PROB_ATOL, f"max abs difference of probabilities {diff:.2e}"
