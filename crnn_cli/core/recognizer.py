"""The public Python API: a Recognizer turns images into text on any backend.

    from crnn_cli.core.recognizer import Recognizer
    with Recognizer() as rec:                      # the bundled default model, ONNX Runtime
        for r in rec.recognize(["a.png", "b.jpg"]):
            print(r.source, r.text, r.confidence)

``recognize`` streams: it reads ahead a bounded window of inputs, so an iterator of a million paths
never sits in memory. Results come back in input order. Crops are grouped into batches by their own
padded width (see preprocess.py), so a crop's text and confidence never depend on its neighbours.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from crnn_cli.core import registry
from crnn_cli.core.autoselect import Selection, backends_taking, select_backend
from crnn_cli.core.backend import OPTION_FLAGS, Session, SessionOptions
from crnn_cli.core.charset import Charset, load_charset
from crnn_cli.core.ctc import Decoded, decode_beam, decode_greedy
from crnn_cli.core.errors import CrnnError, ImageError, MetadataError, ModelError, UsageError
from crnn_cli.core.images import ImageSource, load_image, load_image_sized
from crnn_cli.core.metadata import ModelMetadata, default_width
from crnn_cli.core.preprocess import PreprocessConfig, Preprocessor

DEFAULT_MODEL_NAME = "default.onnx"
LOAD_CHUNK = 16  # inputs per loader task (fewer when the window is small)
# The first window's size in batches: the model starts once this much is read. One batch, not two: on
# 200 receipt lines the pipeline went from 0.84 to 0.89 of the bare runtime (words: unchanged, 0.91).
FIRST_WINDOW_BATCHES = 1
# The window after it, in batches. Crops share a batch only with crops of the same padded width (so a
# text never depends on its neighbours), and with widths in steps of 8 px a window of 8 batches of real
# word crops spread over so many widths that a model call averaged 9 crops (IIIT5K) to 11 (IC15). 32
# batches: 13 and 16 crops a call, a third fewer calls.
WINDOW_BATCHES = 32
# A large JPEG is decoded reduced (by libjpeg, by 2, 4 or 8) while its shorter side stays at least this
# many times the model's input height. libjpeg's scaled decode low-passes properly (whole 8 x 8 blocks
# shrink in the DCT domain), while cv2.resize's bilinear shrink by more than 2 skips pixels; so letting
# libjpeg do all the shrinking it can (1: what is left for cv2.resize is under 2x) costs no accuracy. On
# 701 photo-sized dev crops (IIIT5K, IC15, SVT; two upscaling draws) margins 1, 2 and 4 and whole
# decodes all read within 3 crops of one another, while a crop's decode took 0.45 ms at 1 against 0.49
# at 2 and 0.62 at 4 (scripts/bench.py section 9 makes such crops).
DECODE_MARGIN = 1


# What one model call costs beyond its columns, in columns of one crop: a call of n crops padded to W
# columns costs about CALL_COLUMNS + n * W. Measured with the bundled model on ONNX Runtime, 2 threads
# on 2 cores: one 64 px crop a call took 1.30 ms, 32 took 1.05 ms each, so a call adds about 0.25 ms,
# the work of 15 columns. So on a CPU, crops of different widths share a call only when their widths
# are close; a runtime with a dearer call (an accelerator) gains more from sharing.
CALL_COLUMNS = 16


def mixed_cuts(widths: list[int], batch_size: int) -> list[int]:
    """Where to cut crops sorted by width (``widths`` ascending) into calls of at most ``batch_size``
    for a model that takes crops of several widths in one call: the cuts (0, ..., len) that minimise
    the calls' cost, CALL_COLUMNS each plus every crop padded to its call's widest (dynamic program)."""
    n = len(widths)
    best = np.zeros(n + 1)
    start = np.zeros(n + 1, np.int64)
    w = np.asarray(widths, np.float64)
    for end in range(1, n + 1):
        first = np.arange(max(0, end - batch_size), end)
        cost = best[first] + CALL_COLUMNS + (end - first) * w[end - 1]
        k = int(np.argmin(cost))
        best[end], start[end] = cost[k], first[k]
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(int(start[cuts[-1]]))
    return cuts[::-1]


def default_model_path() -> Path:
    """The bundled English model shipped inside the package."""
    # Beside the package's modules, where a wheel installs it: importlib.resources gives the same
    # path here and would cost 7 ms of imports on every cold start.
    path = Path(__file__).resolve().parents[1] / "models" / DEFAULT_MODEL_NAME
    if not path.is_file():
        raise ModelError(
            f"the bundled default model is missing ({path}); reinstall crnn or pass --model PATH"
        )
    return path


@dataclass(frozen=True)
class Result:
    """One recognised input. ``error`` is set (and text empty) when the input could not be read."""

    index: int  # position in the input sequence
    source: str  # path, or "<bytes>" / "<array>" / a caller-given name
    text: str = ""
    confidence: float = 0.0
    char_confidences: tuple[float, ...] = ()
    error: str | None = None
    notice: str | None = None  # why the input may not be what a recognizer reads (see crop_notice)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, char_confidences: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.source, "text": self.text, "confidence": round(self.confidence, 6)}
        if char_confidences:
            d["char_confidences"] = [round(c, 6) for c in self.char_confidences]
        if self.error is not None:
            d["error"] = self.error
        return d


def parse_image_shape(text: str) -> tuple[int, int, int | None]:
    """'3,48,320' -> (3, 48, 320); the width may be '?' or '-1' for "dynamic, no minimum"."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3:
        raise UsageError(f"image shape must be C,H,W (e.g. 3,48,320), got {text!r}")
    try:
        c, h = int(parts[0]), int(parts[1])
        w = None if parts[2] in ("?", "-1", "") else int(parts[2])
    except ValueError:
        raise UsageError(f"image shape must be three integers C,H,W, got {text!r}") from None
    if c not in (1, 3) or h < 1 or (w is not None and w < 1):
        raise UsageError(f"image shape {text!r}: channels must be 1 or 3, height and width positive")
    return c, h, w


def resolve_metadata(
    info_props: dict[str, str],
    input_shape: tuple[int | None, ...],
    num_classes: int | None,
    *,
    dictionary: str | Path | None = None,
    use_space_char: bool | None = None,
    image_shape: tuple[int, int, int | None] | None = None,
    dynamic_width: bool | None = None,
    source: str = "the model",
) -> ModelMetadata:
    """Merge what a model file says about itself with the user's options (options win).

    Checks the dictionary against the model's class count when that is known, so a wrong dictionary is
    an error before any work starts, never garbage text.
    """
    try:
        meta = ModelMetadata.from_props(info_props)
    except MetadataError as exc:
        raise MetadataError(f"{source}: {exc}") from None
    embedded = meta is not None
    if meta is None:
        meta = ModelMetadata(architecture="unknown")
    # Input geometry: the file's static dims, then the metadata, then the user's option.
    _, c, h, w = (list(input_shape) + [None] * 4)[:4]
    if not embedded or meta.height is None:
        meta = replace(
            meta,
            channels=c or meta.channels,
            height=h or meta.height,
            width=w or meta.width,
            dynamic_width=w is None,
        )
    if image_shape is not None:
        ic, ih, iw = image_shape
        if c is not None and ic != c:
            raise UsageError(f"--image-shape asks for {ic} channels but {source} takes {c}")
        if h is not None and ih != h:
            raise UsageError(f"--image-shape asks for height {ih} but {source} takes {h}")
        meta = replace(meta, channels=ic, height=ih, width=iw or meta.width)
        if iw is not None:  # the user's width is the minimum, as --image-shape says
            meta = replace(meta, min_width=None)
    if w is not None:
        meta = replace(meta, width=w, dynamic_width=False)
        if dynamic_width:
            raise UsageError(f"{source} has a fixed input width of {w}; --dynamic-width cannot apply")
    elif dynamic_width is not None:
        meta = replace(meta, dynamic_width=dynamic_width)
    if meta.height is None:
        raise UsageError(
            f"{source} does not say its input height (dynamic dims and no crnn metadata): "
            "give it with --image-shape C,H,W (e.g. 3,48,320 for PP-OCR, 3,32,100 for CRNN)"
        )

    if meta.width is None:  # dynamic width and nothing says the minimum: PaddleOCR's usual one
        meta = replace(meta, width=default_width(meta.height))

    # Dictionary: the user's, else the embedded one, else PaddleOCR's default (0-9a-z).
    if dictionary is not None or use_space_char is not None:
        base = dictionary if dictionary is not None else None
        if dictionary is None and meta.characters is not None:
            charset = meta.charset()
            assert charset is not None
            if use_space_char and not charset.use_space_char:
                charset = Charset(charset.symbols + (" ",), charset.lowercase, charset.name)
        else:
            charset = load_charset(base, use_space_char=bool(use_space_char))
    elif meta.characters is not None:
        charset = meta.charset()
        assert charset is not None
        # A RapidOCR-style 'character' list omits the space class its models have.
        if num_classes is not None and num_classes == charset.num_classes + 1 and not charset.use_space_char:
            charset = Charset(charset.symbols + (" ",), charset.lowercase, charset.name)
    else:
        charset = load_charset(None)
    if num_classes is not None:
        if dictionary is not None and meta.characters is not None and charset.num_classes != num_classes:
            raise UsageError(
                f"{source} carries its own dictionary ({len(meta.characters)} symbols); --dict's dictionary "
                f"'{charset.name}' gives {charset.num_classes} classes but the model predicts {num_classes}: "
                "drop --dict"
            )
        charset.check_classes(num_classes, source)
    return meta.with_charset(charset)


class Recognizer:
    """Recognise text in cropped word or line images with one model on one backend.

    model: .onnx / .xml / checkpoint path; None = the bundled default model.
    backend: a registered backend name; None or "auto" = the fastest that opens it (autoselect.py).
    rotate_vertical: what to do with tall crops (h/w >= 1.5): "auto" reads them as they are and
        turned 90 degrees either way and keeps the most confident reading (a single "1" stays a "1",
        a vertical line is read turned); True / "always" turns them counter-clockwise as PaddleOCR
        does; False / "never" reads them as they are.
    Options not given are read from the model's metadata (see metadata.py).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        backend: str | None = None,
        *,
        dictionary: str | Path | None = None,
        use_space_char: bool | None = None,
        image_shape: tuple[int, int, int | None] | str | None = None,
        dynamic_width: bool | None = None,
        rotate_vertical: bool | str = "auto",
        batch_size: int = 32,
        threads: int | None = None,
        workers: int | None = None,
        decoder: str = "greedy",
        beam_width: int = 10,
        session_options: SessionOptions | None = None,
    ) -> None:
        if batch_size < 1:
            raise UsageError(f"batch size must be >= 1, got {batch_size}")
        if decoder not in ("greedy", "beam"):
            raise UsageError(f"decoder must be greedy or beam, got {decoder!r}")
        if beam_width < 1:
            raise UsageError(f"beam width must be >= 1, got {beam_width}")
        modes = {True: "always", False: "never", "auto": "auto", "always": "always", "never": "never"}
        if rotate_vertical not in modes:
            raise UsageError(f"rotate must be auto, always or never, got {rotate_vertical!r}")
        self.rotate = modes[rotate_vertical]
        self.model_path = Path(model) if model is not None else default_model_path()
        if not self.model_path.exists():
            raise ModelError(f"{self.model_path}: no such model file")
        options = session_options or SessionOptions()
        if threads is not None:
            options = replace(options, threads=threads)
        # How "auto" chose (see autoselect.py): the backend and, when measured, each candidate's speed.
        self.selection: Selection | None = None
        if backend in (None, "auto"):
            self.backend, self.selection = select_backend(self.model_path, options, batch_size)
            if self.selection.hint is not None:
                options = replace(options, performance_hint=self.selection.hint)
        else:
            self.backend = registry.require_available(backend)
            ignored = self.backend.unsupported(options)
            if ignored:
                flags = " and ".join(OPTION_FLAGS[o] for o in ignored)
                takers = backends_taking(ignored)
                use = f"use --backend {' or '.join(takers)} (or leave --backend out), or " if takers else ""
                raise UsageError(f"backend '{backend}' cannot honour {flags}; {use}drop {flags}")
            if not self.backend.accepts(self.model_path):
                raise UsageError(
                    f"backend '{backend}' does not open {self.model_path.name} "
                    f"(it opens {', '.join(self.backend.suffixes) or 'other files'})"
                )
        self.session: Session = self.backend.open(self.model_path, options)
        try:
            info = self.session.info
            if len(info.output_shape) not in (0, 3):  # 0: rank unknown until run; checked per batch then
                dims = " x ".join("?" if d is None else str(d) for d in info.output_shape)
                raise ModelError(
                    f"{self.model_path}: output must be N x T x C (a CTC recognizer), this model's is {dims}"
                )
            if isinstance(image_shape, str):
                image_shape = parse_image_shape(image_shape)
            self.metadata = resolve_metadata(
                dict(info.props),
                tuple(info.input_shape),
                info.output_shape[2] if len(info.output_shape) == 3 else None,
                dictionary=dictionary,
                use_space_char=use_space_char,
                image_shape=image_shape,
                dynamic_width=dynamic_width,
                source=str(self.model_path),
            )
            charset = self.metadata.charset()
            assert charset is not None
            self.charset: Charset = charset
            self.preprocess_config: PreprocessConfig = replace(
                self.metadata.preprocess(), rotate_vertical=self.rotate == "always"
            )
        except BaseException:
            self.session.close()
            raise
        self._classes_checked = len(info.output_shape) == 3 and info.output_shape[2] is not None
        self.preprocessor = Preprocessor(self.preprocess_config)
        self.batch_size = batch_size
        self.decoder = decoder
        self.beam_width = beam_width
        self.workers = workers or min(4, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self._runner: ThreadPoolExecutor | None = None  # runs the session one batch ahead (_run_ahead)
        self.padding_stats = [0, 0]  # [padded columns, total columns] over all batches, for reporting

    # -- context management --------------------------------------------------------------------------
    def close(self) -> None:
        for pool in (self._pool, self._runner):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._runner = None
        self.session.close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- core steps ------------------------------------------------------------------------------------
    def _decode(self, probs: np.ndarray) -> list[Decoded]:
        if not self._classes_checked:
            self.charset.check_classes(probs.shape[2], str(self.model_path))
            self._classes_checked = True
        if self.metadata.output == "logits":
            z = probs - probs.max(axis=2, keepdims=True)
            np.exp(z, out=z)
            probs = z / z.sum(axis=2, keepdims=True)
        if self.decoder == "beam":
            return decode_beam(probs, self.charset, self.beam_width)
        return decode_greedy(probs, self.charset)

    def predict_batch(self, images: list[np.ndarray]) -> list[Decoded]:
        """Decoded text for crops, batched by padded width (batch-invariant). Order is kept.

        images: arrays as recognize() takes them (BGR, gray, BGRA; uint8, uint16 or float), or encoded
        bytes or paths. Raises ImageError naming the index of one it cannot use.
        """
        return [d for d, _ in self._read(self._prepare_all(images))]

    def probabilities(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Per-crop model output (T x C) for crops (as predict_batch), computed exactly as recognize() does."""
        return [p for _, p in self._read(self._prepare_all(images))]

    def _prepare_all(self, images: list[Any]) -> list[list[tuple[np.ndarray, int]]]:
        # load_image brings any array recognize() accepts to uint8 BGR (a BGR uint8 one is not copied).
        return [self._prepare(load_image(img, f"images[{i}]")) for i, img in enumerate(images)]

    def _read(self, prepared: list[list[tuple[np.ndarray, int]]]) -> list[tuple[Decoded, np.ndarray]]:
        """(decoded, probabilities T x C) of each crop's chosen reading, in order (see _choose)."""
        items = [((i, k), v) for i, variants in enumerate(prepared) for k, v in enumerate(variants)]
        out: dict[tuple[int, int], tuple[Decoded, np.ndarray]] = {}
        for keys, (batch, widths) in self._batches(items):
            probs, frames = self._own_frames(self.session.run(batch, widths), widths)
            for key, d, p, n in zip(keys, self._decode(probs), probs, frames):
                out[key] = (d, p[:n])
        return [self._choose([out[(i, k)] for k in range(len(v))]) for i, v in enumerate(prepared)]

    @staticmethod
    def _choose(readings: list[Any]) -> Any:
        """Of a crop's readings (as it is, turned one way, the other), the most confident; first on ties.

        A turned reading must hold two symbols or more: a tall crop read as one symbol either way is a
        lone character standing upright (a turned "1" reads as a confident "H"), while a vertical line
        turned reads as several.
        """
        best = readings[0]
        for r in readings[1:]:
            if len(r[0].text) >= 2 and r[0].confidence > best[0].confidence:
                best = r
        return best

    def _prepare(self, img: np.ndarray) -> list[tuple[np.ndarray, int]]:
        """The crop's readings, each resized: [(uint8 H x w x C, padded width)]. One, except for a tall
        crop under rotate "auto": as it is, turned counter-clockwise and turned clockwise."""
        h, w = img.shape[:2]
        variants = [img]
        if self.rotate == "auto" and h >= 1.5 * w:
            variants += [np.ascontiguousarray(np.rot90(img, 1)), np.ascontiguousarray(np.rot90(img, -1))]
        return [self.preprocessor.fit(v) for v in variants]

    def _batches(
        self, items: list[tuple[Any, tuple[np.ndarray, int]]]
    ) -> Iterator[tuple[list[Any], tuple[np.ndarray, np.ndarray | None]]]:
        """Prepared crops (key, (resized, padded width)) -> (keys, (batch, widths)), at most batch_size a
        batch. Most models read a crop only beside crops of its own padded width (widths None), since
        padding to a wider neighbour would change its text. A model with a widths input (widths.py)
        reads crops of any widths together as it reads each alone, so the crops, sorted by width, are
        cut where the calls saved outweigh the padding added (see mixed_cuts)."""
        entries = [(i, resized, width) for i, (resized, width) in items]
        if self.session.info.widths_input is None:
            by_width: dict[int, list[tuple[Any, np.ndarray, int]]] = {}
            for entry in entries:
                by_width.setdefault(entry[2], []).append(entry)
            for width in sorted(by_width):
                group = by_width[width]
                for start in range(0, len(group), self.batch_size):
                    yield self._batch(group[start : start + self.batch_size])
            return
        entries.sort(key=lambda entry: entry[2])
        cuts = mixed_cuts([w for _, _, w in entries], self.batch_size)
        for start, end in zip(cuts, cuts[1:]):
            yield self._batch(entries[start:end])

    def _batch(
        self, chunk: list[tuple[Any, np.ndarray, int]]
    ) -> tuple[list[Any], tuple[np.ndarray, np.ndarray | None]]:
        cfg = self.preprocess_config
        width = max(w for _, _, w in chunk)
        batch = np.zeros((len(chunk), cfg.channels, cfg.height, width), np.float32)
        used = 0
        for row, (_, resized, _) in enumerate(chunk):
            self.preprocessor.normalize_into(resized, batch[row])
            used += resized.shape[1]
        self.padding_stats[0] += len(chunk) * width - used
        self.padding_stats[1] += len(chunk) * width
        mixed = any(w != width for _, _, w in chunk)
        widths = np.asarray([w for _, _, w in chunk], np.int64) if mixed else None
        return [i for i, _, _ in chunk], (batch, widths)

    def _own_frames(self, probs: np.ndarray, widths: np.ndarray | None) -> tuple[np.ndarray, list[int]]:
        """Each crop's own frames of a batch run with widths: the count per crop, and the frames after
        them set to a certain blank so that decoding the batch reads each crop as it reads alone."""
        n, t = probs.shape[:2]
        if widths is None or n == 0:
            return probs, [t] * n
        frames = [int(t * int(w) // max(int(widths.max()), 1)) for w in widths]
        if min(frames) < t:
            probs = probs.copy()
            blank = 0.0 if self.metadata.output == "logits" else 1.0
            other = -1e30 if self.metadata.output == "logits" else 0.0
            for row, f in enumerate(frames):
                probs[row, f:, :] = other
                probs[row, f:, 0] = blank
        return probs, frames

    def _run_ahead(self, batches: Iterator[tuple[np.ndarray, np.ndarray | None]]) -> Iterator[np.ndarray]:
        """Model outputs (N, T, C) for ``batches``, in order, computed while the caller works.

        A backend with its own run_many (OpenVINO: an async queue; ONNX Runtime: calls side by side)
        gets the batches as they come. For the others, run() goes to a helper thread one batch ahead:
        this thread builds the next batch and decodes the previous one while the model runs (runtimes
        release the GIL), instead of leaving the cores idle in between. One batch at a time reaches
        the session, as with run().
        """
        if type(self.session).run_many is not Session.run_many:
            # Plain arrays where there are no widths: a plugin's run_many need not know of pairs.
            yield from self.session.run_many(b if w is None else (b, w) for b, w in batches)
            return
        if self._runner is None:
            self._runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crnn-run")
        running: Future | None = None
        try:
            for batch, widths in batches:
                previous, running = running, self._runner.submit(self.session.run, batch, widths)
                if previous is not None:
                    yield previous.result()
            if running is not None:
                last, running = running, None
                yield last.result()
        finally:
            # The caller stopped early or a batch failed: the session must be idle when this returns.
            if running is not None and not running.cancel():
                running.exception()

    def _load_and_prepare(
        self, source: ImageSource, name: str
    ) -> tuple[list[tuple[np.ndarray, int]], str | None]:
        img, (h, w) = load_image_sized(source, name, DECODE_MARGIN * self.preprocess_config.height)
        return self._prepare(img), crop_notice(h, w)  # the stored size, also when decoded reduced

    def _load_chunk(
        self, items: list[tuple[ImageSource, str]]
    ) -> list[tuple[list[tuple[np.ndarray, int]], str | None] | Exception]:
        """Load and resize several inputs on a loader thread; a failure is returned in its place."""
        out: list[tuple[list[tuple[np.ndarray, int]], str | None] | Exception] = []
        for source, name in items:
            try:
                out.append(self._load_and_prepare(source, name))
            except Exception as exc:  # reported for this input alone by recognize()
                out.append(exc)
        return out

    # -- streaming API ---------------------------------------------------------------------------------
    def recognize(
        self, inputs: Iterable[ImageSource], names: Iterable[str] | None = None, window: int | None = None
    ) -> Iterator[Result]:
        """Recognise each input (path, encoded bytes or BGR array); yields Results in input order.

        Inputs are read and resized on worker threads, ``window`` at a time (default WINDOW_BATCHES
        batches), while the model runs on the previous window. A bad input yields a Result with ``error`` set.
        """
        window = window or self.batch_size * WINDOW_BATCHES
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="crnn-load")
        pool = self._pool
        # Inputs go to the loaders in chunks: a task per image costs more in thread hand-offs than
        # resizing a word crop does.
        chunk = max(1, min(LOAD_CHUNK, window // (2 * self.workers)))
        name_iter = iter(names) if names is not None else None
        pending: deque[tuple[list[tuple[int, str]], Future]] = deque()  # (index, name)s, their task
        source_iter = enumerate(inputs)
        exhausted = False
        queued = 0  # inputs in pending

        def fill() -> None:
            nonlocal exhausted, queued
            while not exhausted and queued < 2 * window:
                items: list[tuple[int, str, ImageSource]] = []
                for index, src in source_iter:
                    name = next(name_iter) if name_iter is not None else _source_name(src)
                    items.append((index, name, src))
                    if len(items) == chunk:
                        break
                else:
                    exhausted = True
                if items:
                    task = pool.submit(self._load_chunk, [(src, name) for _, name, src in items])
                    pending.append(([(index, name) for index, name, _ in items], task))
                    queued += len(items)

        fill()
        # The first window is one batch, so the model starts as soon as it is read instead of
        # after a whole window; results do not depend on how crops are grouped (see _batches).
        size = min(window, FIRST_WINDOW_BATCHES * self.batch_size)
        while pending:
            take: list[tuple[int, str]] = []
            loaded: list[tuple[list[tuple[np.ndarray, int]], str | None] | Exception] = []
            while pending and len(take) < size:
                entries, task = pending.popleft()
                take += entries
                loaded += task.result()
                queued -= len(entries)
            size = window
            fill()  # keep the loaders busy on the next window while this one runs
            results: dict[int, Result] = {}
            ready: list[tuple[tuple[int, int], tuple[np.ndarray, int]]] = []  # ((index, reading), crop)
            readings: dict[int, list[Decoded | None]] = {}
            notices: dict[int, str] = {}
            for (index, name), outcome in zip(take, loaded):
                if isinstance(outcome, CrnnError):
                    results[index] = Result(index, name, error=str(outcome))
                elif isinstance(outcome, Exception):  # a decoder bug must not end a run of thousands
                    results[index] = Result(index, name, error=f"{name}: {type(outcome).__name__}: {outcome}")
                else:
                    variants, notice = outcome
                    if notice is not None:
                        notices[index] = notice
                    readings[index] = [None] * len(variants)
                    ready += [((index, k), v) for k, v in enumerate(variants)]
            names_by_index = dict(take)
            order: deque[tuple[list[tuple[int, int]], np.ndarray | None]] = deque()

            def feed(
                ready: list[tuple[tuple[int, int], tuple[np.ndarray, int]]] = ready,
                order: deque[tuple[list[tuple[int, int]], np.ndarray | None]] = order,
            ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
                for keys, (batch, widths) in self._batches(ready):
                    order.append((keys, widths))
                    yield batch, widths

            for probs in self._run_ahead(feed()):
                keys, widths = order.popleft()
                for (i, k), d in zip(keys, self._decode(self._own_frames(probs, widths)[0])):
                    readings[i][k] = d
            for i, found in readings.items():
                d = self._choose([(r,) for r in found])[0]
                results[i] = Result(
                    i, names_by_index[i], d.text, d.confidence, d.char_confidences, notice=notices.get(i)
                )
            for index, _ in take:
                yield results[index]

    def recognize_one(self, source: ImageSource, name: str | None = None) -> Result:
        return next(self.recognize([source], names=[name or _source_name(source)]))


# A crop whose shorter side is at least this many pixels, and that is not at least PAGE_RATIO times
# wider than tall, looks like a page, a screenshot or a photo rather than a line of text. Real word
# crops reach 2576 x 772 (IIIT5K test): wide; a vertical text line is narrow.
PAGE_MIN_SIDE = 300
PAGE_RATIO = 2.5


def crop_notice(h: int, w: int) -> str | None:
    """A warning for an input that does not look like a cropped text line (None when it does)."""
    if min(h, w) < PAGE_MIN_SIDE or w >= PAGE_RATIO * h:
        return None
    return (
        f"{w} x {h} px does not look like a cropped line of text (a page or a photo?): crnn reads one "
        "line per image, so crop the text lines first (with a text detector, e.g. PaddleOCR's det model)"
    )


def _source_name(src: ImageSource) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fsdecode(src)
    if isinstance(src, np.ndarray):
        return "<array>"
    return "<bytes>"


__all__ = [
    "Recognizer",
    "Result",
    "default_model_path",
    "parse_image_shape",
    "resolve_metadata",
    "ImageError",
    "MetadataError",
]
