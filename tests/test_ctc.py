"""CTC decoding: golden parity with PaddleOCR's CTCLabelDecode, beam search properties."""

from __future__ import annotations

import numpy as np
import pytest

from crnn_cli.core.charset import load_charset
from crnn_cli.core.ctc import decode_beam, decode_greedy


@pytest.mark.parametrize("ref", ["reference_w100.npz", "reference_w320.npz"])
def test_greedy_matches_paddleocr_crnn(mv3_dir, ref):
    d = np.load(mv3_dir / ref)
    out = decode_greedy(d["probs"], load_charset(None))
    assert [o.text for o in out] == list(d["texts"])
    np.testing.assert_allclose([o.confidence for o in out], d["confs"], atol=1e-6)


def test_greedy_matches_paddleocr_ppocrv4(ppocrv4_dir):
    d = np.load(ppocrv4_dir / "reference_w320.npz")
    charset = load_charset(ppocrv4_dir / "ppocr_keys_v1.txt", use_space_char=True)
    assert charset.num_classes == d["probs"].shape[2] == 6625
    out = decode_greedy(d["probs"], charset)
    assert [o.text for o in out] == list(d["texts"])
    np.testing.assert_allclose([o.confidence for o in out], d["confs"], atol=1e-6)


def _onehot(seq, num_classes=37, p=0.9):
    probs = np.full((len(seq), num_classes), (1 - p) / (num_classes - 1), np.float32)
    probs[np.arange(len(seq)), seq] = p
    return probs[None]


def test_greedy_collapses_repeats_but_keeps_blank_separated_doubles():
    cs = load_charset(None)
    l_ = cs.encode("l")[0]
    o = cs.encode("o")[0]
    h = cs.encode("h")[0]
    probs = _onehot([h, h, 0, l_, l_, 0, l_, o, 0])
    d = decode_greedy(probs, cs)[0]
    assert d.text == "hllo"
    assert len(d.char_confidences) == 4
    assert d.confidence == pytest.approx(0.9, abs=1e-6)


def test_empty_text_has_zero_confidence():
    d = decode_greedy(_onehot([0, 0, 0]), load_charset(None))[0]
    assert d.text == "" and d.confidence == 0.0 and d.char_confidences == ()


def test_beam_agrees_with_greedy_on_peaked_output_and_keeps_doubles():
    cs = load_charset(None)
    seq = [cs.encode(c)[0] if c != "-" else 0 for c in "b-oo-o-kk-"]
    probs = _onehot(seq, p=0.95)
    assert decode_beam(probs, cs, beam_width=5)[0].text == decode_greedy(probs, cs)[0].text == "book"


def test_beam_finds_the_more_probable_sequence_greedy_misses():
    # Two frames. Best path is "-" "-" (blank twice, 0.6*0.6 = 0.36), but "a" is more probable in
    # total: a-, -a, aa all give "a" (0.4*0.6 + 0.6*0.4 + 0.4*0.4 = 0.64).
    cs = load_charset(None)
    a = cs.encode("a")[0]
    probs = np.zeros((1, 2, 37), np.float32)
    probs[0, :, 0] = 0.6
    probs[0, :, a] = 0.4
    assert decode_greedy(probs, cs)[0].text == ""
    beam = decode_beam(probs, cs, beam_width=4)[0]
    assert beam.text == "a"
    assert beam.confidence == pytest.approx(0.64, abs=1e-5)
