"""Property tests (hypothesis): CTC decoding, resize geometry, label lines and model metadata on random input.

Each property is one a user would notice when broken: text longer than the frames that produced it,
a confidence outside [0, 1], a crop padded narrower than itself, a label line split wrongly, or a
malformed model file crashing with something other than crnn's own MetadataError.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from crnn_cli.core.charset import charset_from_symbols  # noqa: E402
from crnn_cli.core.ctc import BLANK, decode_beam, decode_greedy  # noqa: E402
from crnn_cli.core.datasets import (  # noqa: E402
    EMPTY_LABEL,
    EMPTY_PATH,
    MISSING_TAB,
    LabelLineError,
    parse_label_line,
)
from crnn_cli.core.errors import MetadataError  # noqa: E402
from crnn_cli.core.metadata import METADATA_KEY, RAPIDOCR_KEY, ModelMetadata  # noqa: E402
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor  # noqa: E402

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SYMBOLS = "abcdefghijklmnopqrstuvwxyz0123456789"

# -- CTC decoding ------------------------------------------------------------------------------------


@st.composite
def prob_tensors(draw: st.DrawFn, max_t: int = 30, max_c: int = 12) -> np.ndarray:
    """N x T x C float32 rows that sum to 1 (C >= 2: the blank and at least one symbol)."""
    n = draw(st.integers(1, 3))
    t = draw(st.integers(1, max_t))
    c = draw(st.integers(2, max_c))
    raw = draw(
        hnp.arrays(np.float32, (n, t, c), elements=st.floats(0.0, 1.0, width=32, allow_subnormal=False))
    )
    raw = raw + np.float32(1e-6)  # no all-zero row
    return (raw / raw.sum(axis=2, keepdims=True)).astype(np.float32)


def _charset(num_classes: int):  # type: ignore[no-untyped-def]
    return charset_from_symbols(tuple(SYMBOLS[: num_classes - 1]))


def _greedy_by_definition(frames: np.ndarray, symbols: tuple[str, ...]) -> tuple[str, list[float]]:
    """Best path, the textbook way: argmax per frame, merge runs of a class, drop blanks."""
    text, confs, previous = [], [], None
    for row in frames:
        k = int(np.argmax(row))
        if k != previous and k != BLANK:
            text.append(symbols[k - 1])
            confs.append(float(row[k]))
        previous = k
    return "".join(text), confs


@FAST
@given(prob_tensors())
def test_greedy_matches_the_definition_and_stays_in_bounds(probs):
    charset = _charset(probs.shape[2])
    out = decode_greedy(probs, charset)
    assert len(out) == probs.shape[0]
    for frames, d in zip(probs, out):
        text, confs = _greedy_by_definition(frames, charset.symbols)
        assert d.text == text
        assert len(d.text) <= frames.shape[0]
        assert list(d.char_confidences) == pytest.approx(confs, abs=1e-6)
        assert 0.0 <= d.confidence <= 1.0
        assert d.confidence == (pytest.approx(float(np.mean(confs)), abs=1e-6) if confs else 0.0)


@FAST
@given(prob_tensors(), st.floats(0.25, 4.0))
def test_greedy_text_ignores_temperature(probs, temperature):
    # Argmax is invariant to a monotone rescaling of the logits: sharper or flatter, the same text.
    charset = _charset(probs.shape[2])
    logits = np.log(probs.astype(np.float64)) / temperature
    z = np.exp(logits - logits.max(axis=2, keepdims=True))
    rescaled = (z / z.sum(axis=2, keepdims=True)).astype(np.float32)
    assume(np.array_equal(rescaled.argmax(axis=2), probs.argmax(axis=2)))  # float ties can flip
    assert [d.text for d in decode_greedy(rescaled, charset)] == [
        d.text for d in decode_greedy(probs, charset)
    ]


@settings(max_examples=60, deadline=None)
@given(prob_tensors(max_t=12, max_c=6), st.integers(1, 6))
def test_beam_stays_in_bounds(probs, width):
    charset = _charset(probs.shape[2])
    for frames, d in zip(probs, decode_beam(probs, charset, width)):
        assert len(d.text) <= frames.shape[0]
        assert len(d.char_confidences) == len(d.text)
        assert 0.0 <= d.confidence <= 1.0 + 1e-9
        assert all(0.0 <= c <= 1.0 for c in d.char_confidences)
        assert (d.confidence == 0.0) == (d.text == "")


@FAST
@given(st.integers(1, 3), st.integers(1, 30), st.integers(2, 12), st.data())
def test_beam_equals_greedy_on_certain_frames(n, t, c, data):
    # With one-hot frames a single alignment has all the probability: both decoders must agree.
    classes = data.draw(hnp.arrays(np.int64, (n, t), elements=st.integers(0, c - 1)))
    probs = np.eye(c, dtype=np.float32)[classes]
    charset = _charset(c)
    greedy = decode_greedy(probs, charset)
    beam = decode_beam(probs, charset, beam_width=data.draw(st.integers(1, 5)))
    assert [b.text for b in beam] == [g.text for g in greedy]
    assert all(b.confidence == pytest.approx(1.0) for b in beam if b.text)


# -- resize geometry ---------------------------------------------------------------------------------


@st.composite
def preprocess_configs(draw: st.DrawFn) -> PreprocessConfig:
    dynamic = draw(st.booleans())
    width = draw(st.integers(1, 640))
    return PreprocessConfig(
        channels=(channels := draw(st.sampled_from([1, 3]))),
        mean=(0.5,) * channels,
        std=(0.5,) * channels,
        height=draw(st.integers(1, 128)),
        width=width,
        dynamic_width=dynamic,
        max_width=draw(st.integers(width, 4096)) if dynamic else draw(st.integers(1, 4096)),
        width_step=draw(st.integers(1, 64)),
        min_width=draw(st.one_of(st.none(), st.integers(1, width))),
    )


@settings(max_examples=400, deadline=None)
@given(preprocess_configs(), st.integers(1, 100_000), st.integers(1, 100_000))
def test_sizes_invariants(cfg, h, w):
    resized, padded = cfg.sizes(h, w)
    assert 1 <= resized <= padded
    want = math.ceil(cfg.height * w / h)
    if not cfg.dynamic_width:
        assert padded == cfg.width and resized == min(want, cfg.width)
        return
    assert resized == min(want, cfg.max_width)
    least = cfg.width if cfg.min_width is None else cfg.min_width
    assert least <= padded <= max(cfg.max_width, least)
    if resized > least and padded < cfg.max_width:
        assert padded % cfg.width_step == 0 and padded - resized < cfg.width_step
    # A wider crop never gets a narrower input (batches group by padded width).
    wider = cfg.sizes(h, w + 1)
    assert wider[0] >= resized and wider[1] >= padded


@settings(max_examples=60, deadline=None)
@given(preprocess_configs(), st.integers(1, 80), st.integers(1, 80), st.booleans())
def test_preprocessed_crop_has_the_promised_shape(cfg, h, w, rotate):
    from dataclasses import replace

    # Smaller inputs keep this fast; a dynamic config must keep max_width >= width.
    max_width = max(min(cfg.max_width, 512), cfg.width if cfg.dynamic_width else 1)
    cfg = replace(cfg, rotate_vertical=rotate, height=min(cfg.height, 48), max_width=max_width)
    img = np.random.default_rng(h * 131 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    pre = Preprocessor(cfg)
    out = pre(img)
    assert out.shape == (cfg.channels, cfg.height, pre.padded_width(img))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out).max() <= 1.0 + 1e-6  # (x/255 - 0.5) / 0.5


# -- label lines -------------------------------------------------------------------------------------


@FAST
@given(st.text(max_size=60))
def test_label_line_parses_or_says_why(line):
    try:
        path, label = parse_label_line(line)
    except LabelLineError as exc:
        assert exc.reason in (MISSING_TAB, EMPTY_PATH, EMPTY_LABEL)
        assert (exc.reason == MISSING_TAB) == ("\t" not in line)
        return
    assert path and label and "\t" not in path
    assert path == path.strip() and label == label.strip()
    assert line.partition("\t")[0].strip() == path


@FAST
@given(
    st.text(st.characters(blacklist_characters="\t\r\n"), min_size=1, max_size=30),
    st.text(st.characters(blacklist_characters="\r\n"), min_size=1, max_size=30),
    st.sampled_from(["", "\n", "\r\n"]),
)
def test_label_line_round_trip(path, label, ending):
    assume(path == path.strip() and label == label.strip() and path and label)
    assert parse_label_line(f"{path}\t{label}{ending}") == (path, label)


# -- model metadata ----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = [
    "schema_version",
    "characters",
    "use_space_char",
    "lowercase",
    "input",
    "normalize",
    "output",
    "architecture",
    "producer",
    "dictionary",
    "extra",
]
INPUT_KEYS = ["channels", "height", "width", "dynamic_width", "max_width"]


@st.composite
def metadata_like(draw: st.DrawFn) -> dict:
    """Objects close to the schema (so parsing gets past the version check) with random values."""
    doc = draw(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8))
    if draw(st.booleans()):
        doc["schema_version"] = 1
    if draw(st.booleans()):
        doc["input"] = draw(st.dictionaries(st.sampled_from(INPUT_KEYS), JSON, max_size=5))
    if draw(st.booleans()):
        doc["normalize"] = {"mean": draw(JSON), "std": draw(JSON)}
    return doc


def _parse(props: dict) -> ModelMetadata | None:
    try:
        return ModelMetadata.from_props(props)
    except MetadataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


@settings(max_examples=400, deadline=None)
@given(st.one_of(JSON, metadata_like()))
def test_metadata_parsing_raises_only_metadata_error(doc):
    meta = _parse({METADATA_KEY: json.dumps(doc)})
    if meta is not None:  # what parses is usable: it survives its own round trip
        assert ModelMetadata.from_props(meta.to_props()) == meta


@FAST
@given(st.text(max_size=40), st.text(max_size=40))
def test_metadata_text_that_is_not_json(text, characters):
    _parse({METADATA_KEY: text})
    meta = ModelMetadata.from_props({RAPIDOCR_KEY: characters})
    assert meta is not None and meta.characters == tuple(characters.splitlines())


@pytest.mark.parametrize(
    "text",
    [
        '{"schema_version": 1, "input": {"height": Infinity}}',  # int(inf): OverflowError
        '{"schema_version": 1, "normalize": {"mean": [1e999]}}',
        '{"schema_version": 1, "normalize": {"mean": [' + "9" * 400 + "]}}",  # float(): OverflowError
        "[" * 100_000 + "]" * 100_000,  # nesting deep enough to exhaust the parser's recursion
        '{"schema_version": 1, "input": {"channels": 7}}',
        '{"schema_version": 1, "input": {"height": -32}}',
        '{"schema_version": 1, "normalize": {"std": [0, 1, 1]}}',
    ],
)
def test_metadata_regressions(text):
    # Found by the properties above: each used to escape as a bare Python exception or load as
    # geometry that failed later without naming the metadata.
    with pytest.raises(MetadataError):
        ModelMetadata.from_props({METADATA_KEY: text})


# -- crashes found by scripts/fuzz.py ----------------------------------------------------------------


class _DtypeWithState:
    """Pickles as numpy.dtype("f4", False, True) followed by BUILD with a malformed 6-item state."""

    def __reduce__(self) -> tuple:
        return (np.dtype, ("f4", False, True), (3, "<", None, -1, -1, 0))


def test_malformed_dtype_state_in_pdparams_is_an_error_not_a_crash(tmp_path):
    import pickle
    import subprocess
    import sys

    path = tmp_path / "crash.pdparams"
    path.write_bytes(pickle.dumps({"w": _DtypeWithState()}, protocol=2))
    code = (
        "import sys\n"
        "from crnn_cli.core.errors import ModelError, UnsafeFileError\n"
        "from crnn_cli.core.pdparams import load_pdparams\n"
        "try:\n"
        "    load_pdparams(sys.argv[1])\n"
        "except (ModelError, UnsafeFileError) as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"the loader process died (status {r.returncode})"
    assert r.stdout.strip() in ("ModelError", "UnsafeFileError")


def test_grey_model_with_the_default_three_value_mean():
    # The default normalisation is (0.5, 0.5, 0.5); a 1-channel model's metadata carries it unchanged
    # and must still preprocess (it used to fail with "mean needs 1 or 1 values, got 3").
    meta = ModelMetadata(channels=1, height=32, width=100)
    parsed = ModelMetadata.from_props(meta.to_props())
    assert parsed is not None and parsed.preprocess().mean == (0.5,)
