"""The contract every crnn backend meets, as a pytest base class its tests subclass.

Usage (a test module per backend)::

    class TestMyBackend(BackendContract):
        backend_name = "mybackend"          # the entry-point name in ``crnn.backends``

        @pytest.fixture(scope="class")
        def model_path(self, tmp_path_factory, expected_props):
            ...  # write the tiny model in the backend's own format, carrying expected_props

The default ``model_path`` is the tiny ONNX model of tests/models_util.py, which any ONNX-reading
backend opens as is. Class attributes pick the model's geometry and the session options. The whole
class skips, with the backend's own reason, when its runtime is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from models_util import make_tiny_onnx, reference_forward, tiny_metadata

from crnn_cli.core.backend import INFER, Backend, Session, SessionOptions
from crnn_cli.core.errors import ModelError
from crnn_cli.core.metadata import ModelMetadata
from crnn_cli.core.registry import load_backend


def _batch(n: int, channels: int, height: int, width: int, seed: int) -> np.ndarray:
    """A normalised-looking float32 batch: N, C, H, W in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, channels, height, width)).astype(np.float32)


def tiny_onnx(
    cls: type[BackendContract], tmp_path_factory: pytest.TempPathFactory, props: dict[str, str]
) -> Path:
    """The tiny ONNX model with a contract class's geometry, in a fresh temporary folder."""
    pytest.importorskip(
        "onnx", reason="building the tiny test model needs onnx: pip install 'crnn[onnxruntime]'"
    )
    folder = tmp_path_factory.mktemp(f"contract_{cls.backend_name}")
    return make_tiny_onnx(folder / "tiny.onnx", cls.num_classes, cls.height, cls.channels, props=props)


def available_backend(name: str) -> Backend:
    """The registered backend, skipping with its own reason when its runtime is missing here."""
    backend = load_backend(name)  # a plugin that fails to import is a failure, not a skip
    avail = backend.availability()
    if not avail.ok:
        pytest.skip(avail.message(name))
    return backend


class BackendContract:
    """Behaviour shared by all backends. Subclasses set ``backend_name`` and may override fixtures."""

    backend_name: ClassVar[str]
    num_classes: ClassVar[int] = 37
    height: ClassVar[int] = 32
    channels: ClassVar[int] = 3
    options: ClassVar[SessionOptions] = SessionOptions(threads=1)
    # Reference (float64 numpy) against the backend; 1e-4 is the tolerance every runtime met on real
    # models, the tiny model lands within 1e-6. Bit-identity is not promised across batch sizes.
    ref_atol: ClassVar[float] = 1e-4
    row_atol: ClassVar[float] = 1e-5

    # -- fixtures a subclass may override ------------------------------------------------------------
    # Class-scoped fixtures are classmethods (pytest deprecates instance-method ones); override them
    # the same way.
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> Backend:
        return available_backend(cls.backend_name)

    @pytest.fixture(scope="class")
    @classmethod
    def expected_props(cls) -> dict[str, str]:
        """The metadata the model file must carry and the backend must report."""
        return tiny_metadata(cls.num_classes, cls.height, cls.channels).to_props()

    @pytest.fixture(scope="class")
    @classmethod
    def model_path(
        cls, backend: Backend, tmp_path_factory: pytest.TempPathFactory, expected_props: dict[str, str]
    ) -> Path:
        """The model file under test, carrying ``expected_props``. Default: the tiny ONNX model."""
        return tiny_onnx(cls, tmp_path_factory, expected_props)

    @pytest.fixture(scope="class")
    @classmethod
    def session(cls, backend: Backend, model_path: Path) -> Iterator[Session]:
        with backend.open(model_path, cls.options) as session:
            yield session

    def reference(self, batch: np.ndarray) -> np.ndarray | None:
        """Expected output for ``batch`` (N, C, H, W -> N, T, classes), or None when there is none."""
        return reference_forward(batch, self.num_classes)

    def batch(self, n: int, width: int = 100, seed: int = 0) -> np.ndarray:
        return _batch(n, self.channels, self.height, width, seed)

    # -- the contract --------------------------------------------------------------------------------
    def test_available(self, backend: Backend) -> None:
        avail = backend.availability()
        assert avail.ok and avail.version, avail
        assert backend.name == self.backend_name
        assert INFER in backend.capabilities

    def test_accepts_its_model(self, backend: Backend, model_path: Path) -> None:
        assert backend.accepts(model_path)

    def test_open_as_context_manager(self, backend: Backend, model_path: Path) -> None:
        with backend.open(model_path, self.options) as session:
            assert isinstance(session, Session)
            assert session.info.input_shape[1:3] == (self.channels, self.height)
            assert session.info.output_shape[-1] == self.num_classes
            assert session.run(self.batch(1)).shape[0] == 1

    def test_dynamic_dims_are_none(self, session: Session) -> None:
        # The tiny model has a dynamic batch and width: they must read as None, not -1 or a name.
        assert session.info.input_shape == (None, self.channels, self.height, None)
        assert session.info.output_shape[0] is None

    def test_run_returns_n_t_c_float32_probabilities(self, session: Session) -> None:
        batch = self.batch(3, width=100)
        out = session.run(batch)
        assert out.dtype == np.float32
        assert out.ndim == 3 and out.shape[0] == 3 and out.shape[2] == self.num_classes
        np.testing.assert_allclose(out.sum(axis=2), 1.0, atol=1e-4)
        ref = self.reference(batch)
        if ref is not None:
            assert out.shape == ref.shape
            np.testing.assert_allclose(out, ref, atol=self.ref_atol, rtol=0)

    def test_row_does_not_depend_on_batch(self, session: Session) -> None:
        batch = self.batch(5, width=128, seed=1)
        full = session.run(batch)
        for i in range(len(batch)):
            alone = session.run(batch[i : i + 1])
            np.testing.assert_allclose(alone[0], full[i], atol=self.row_atol, rtol=0, err_msg=f"row {i}")

    def test_empty_batch(self, session: Session) -> None:
        # An empty batch (every crop of a page failed to decode) is not an error; T is unspecified.
        out = session.run(self.batch(0))
        assert out.dtype == np.float32 and out.ndim == 3
        assert out.shape[0] == 0 and out.shape[2] == self.num_classes
        outs = list(session.run_many([self.batch(1), self.batch(0), self.batch(2)]))
        assert [o.shape[0] for o in outs] == [1, 0, 2]
        assert session.run(self.batch(1)).shape[0] == 1

    @pytest.mark.parametrize("dtype", [np.float64, np.uint8, np.float16])
    def test_wrong_dtype_raises_model_error(self, session: Session, dtype: type) -> None:
        with pytest.raises(ModelError, match="float32"):
            session.run(self.batch(2).astype(dtype))

    @pytest.mark.parametrize("what", ["rank3", "channels", "height"])
    def test_wrong_shape_raises_model_error(self, session: Session, what: str) -> None:
        c, h = self.channels, self.height
        shape = {"rank3": (c, h, 100), "channels": (2, c + 1, h, 100), "height": (2, c, h + 8, 100)}[what]
        with pytest.raises(ModelError):
            session.run(np.zeros(shape, np.float32))

    def test_metadata_round_trips(self, session: Session, expected_props: dict[str, str]) -> None:
        props = dict(session.info.props)
        for key, value in expected_props.items():
            assert props.get(key) == value, f"metadata key {key!r} lost or changed"
        meta = ModelMetadata.from_props(props)
        assert meta == ModelMetadata.from_props(expected_props)
        assert meta is not None and meta.charset() is not None
        assert meta.charset().num_classes == self.num_classes

    @pytest.mark.parametrize("damage", ["truncated", "not_a_model", "missing"])
    def test_bad_file_raises_model_error_naming_it(
        self, backend: Backend, model_path: Path, tmp_path: Path, damage: str
    ) -> None:
        bad = tmp_path / f"{damage}{model_path.suffix}"
        data = model_path.read_bytes()
        if damage == "truncated":  # a download that died half-way
            bad.write_bytes(data[: len(data) // 3])
        elif damage == "not_a_model":
            bad.write_text("this is a text file, not a model\n")
        with pytest.raises(ModelError) as info:
            backend.open(bad, self.options)
        assert bad.name in str(info.value)

    def test_run_many_yields_in_order_equal_to_run(self, session: Session) -> None:
        # Different sizes and widths, so outputs that overtake each other would be noticed.
        specs = [(4, 160), (1, 64), (3, 100), (2, 320), (5, 48), (1, 100), (2, 64)]
        batches = [self.batch(n, w, seed=10 + i) for i, (n, w) in enumerate(specs)]
        outs = list(session.run_many(iter(batches)))  # an iterator: a backend must not need len()
        assert len(outs) == len(batches)
        for i, (batch, out) in enumerate(zip(batches, outs)):
            np.testing.assert_allclose(
                out, session.run(batch), atol=self.row_atol, rtol=0, err_msg=f"batch {i}"
            )

    def test_run_many_empty_and_early_stop(self, session: Session) -> None:
        assert list(session.run_many([])) == []
        batches = [self.batch(2, 64, seed=s) for s in range(6)]
        gen = session.run_many(batches)
        first = next(gen)
        gen.close()  # a consumer that stops early leaves the session usable
        np.testing.assert_allclose(first, session.run(batches[0]), atol=self.row_atol, rtol=0)

    def test_run_many_rejects_bad_batch(self, session: Session) -> None:
        with pytest.raises(ModelError):
            list(session.run_many([self.batch(2), self.batch(2).astype(np.float64)]))
        assert session.run(self.batch(1)).shape[0] == 1  # and still works afterwards


# -- conversion: readers and writers ---------------------------------------------------------------------


class ConversionContract:
    """What a plugin's readers and writers promise `crnn convert` (core/conversion.py).

    Usage::

        class TestMyConversion(ConversionContract):
            backend_name = "mybackend"
            source_kind = "mykind"           # what its reader calls a source; None: it has no reader

            @pytest.fixture(scope="class")
            @classmethod
            def source(cls, tmp_path_factory):  # a file its reader reads (only with a reader)
                ...

    Writers that take ONNX write the tiny ONNX model (tests/models_util.py); the output must run on the
    writer's ``runner`` backend, match the numpy reference, carry the metadata, and be refused (OUT left
    alone) when it disagrees with the reference. A reader must make an ONNX graph that computes what its
    reference does, with a dictionary in its metadata.
    """

    backend_name: ClassVar[str]
    source_kind: ClassVar[str | None] = None
    num_classes: ClassVar[int] = 37
    height: ClassVar[int] = 32
    channels: ClassVar[int] = 3

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> Backend:
        return available_backend(cls.backend_name)

    @pytest.fixture(scope="class")
    @classmethod
    def tiny(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tiny_onnx(cls, tmp_path_factory, tiny_metadata(cls.num_classes, cls.height).to_props())  # type: ignore[arg-type]

    @pytest.fixture(scope="class")
    @classmethod
    def source(cls) -> Path:
        pytest.skip(f"{cls.backend_name}: no reader under test (source_kind is None)")

    def _onnx_writers(self, backend: Backend) -> list:  # type: ignore[type-arg]
        from crnn_cli.core.conversion import ONNX

        writers = [w for w in backend.writers() if ONNX in w.formats]
        if not writers:
            pytest.skip(f"{self.backend_name} has no writer that takes ONNX")
        return writers

    def _model(self, tiny: Path, shift: float = 0.0):  # type: ignore[no-untyped-def]
        from crnn_cli.core.conversion import ONNX, SourceModel

        meta = tiny_metadata(self.num_classes, self.height)
        return SourceModel(
            "onnx",
            tiny,
            ONNX,
            meta,
            lambda b: reference_forward(b, self.num_classes).astype(np.float32) + shift,
        )

    def _write(self, writer, model, out: Path, **options):  # type: ignore[no-untyped-def]
        import tempfile

        from crnn_cli.convert import ConvertOptions, ConvertSummary, write_verified

        opts = ConvertOptions(target=writer.target, out=out, **options)
        writer.check(opts)
        summary = ConvertSummary("tiny", "onnx", writer.target, out, model.metadata)
        with tempfile.TemporaryDirectory() as work:
            write_verified(writer, model, opts, summary, Path(work))
        return summary

    def test_writer_output_runs_on_its_runner_matches_and_describes_itself(
        self, backend: Backend, tiny: Path, tmp_path: Path
    ) -> None:
        for writer in self._onnx_writers(backend):
            out = tmp_path / f"model{writer.suffix}"
            summary = self._write(writer, self._model(tiny), out)
            assert summary.verify is not None and summary.verify.ok, summary.checks
            assert writer.runner is not None
            batch = _batch(3, self.channels, self.height, 96, seed=5)
            with load_backend(writer.runner).open(out, SessionOptions(threads=1)) as session:
                assert ModelMetadata.from_props(dict(session.info.props)) == tiny_metadata(
                    self.num_classes, self.height
                )
                np.testing.assert_allclose(
                    session.run(batch), reference_forward(batch, self.num_classes), atol=1e-4, rtol=0
                )

    def test_writer_output_that_disagrees_is_refused_and_out_left_alone(
        self, backend: Backend, tiny: Path, tmp_path: Path
    ) -> None:
        for writer in self._onnx_writers(backend):
            out = tmp_path / f"model{writer.suffix}"
            out.write_bytes(b"the previous model")
            with pytest.raises(ModelError, match=r"FAILED.*was not written"):
                self._write(writer, self._model(tiny, shift=1e-3), out)
            assert out.read_bytes() == b"the previous model"
            assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
            out.unlink()

    def test_writer_static_width(self, backend: Backend, tiny: Path, tmp_path: Path) -> None:
        for writer in self._onnx_writers(backend):
            if not writer.static_width:
                continue
            out = tmp_path / f"static{writer.suffix}"
            model = self._model(tiny)
            from dataclasses import replace

            model.metadata = replace(model.metadata, width=160, dynamic_width=False)
            summary = self._write(writer, model, out, static_width=160)
            assert summary.verify is not None and summary.verify.widths == [160]
            with load_backend(writer.runner).open(out, SessionOptions(threads=1)) as session:
                assert session.info.input_shape == (None, self.channels, self.height, 160)

    def test_reader_probes_its_source_and_nothing_else(
        self, backend: Backend, source: Path, tmp_path: Path
    ) -> None:
        assert self.source_kind is not None
        assert [r.probe(source) for r in backend.readers()].count(self.source_kind) == 1
        other = tmp_path / "notes.txt"
        other.write_text("not a model")
        assert all(r.probe(other) is None for r in backend.readers())

    def test_reader_makes_an_onnx_graph_computing_its_reference(
        self, backend: Backend, source: Path, tmp_path: Path
    ) -> None:
        import onnxruntime as ort

        from crnn_cli.convert import ConvertOptions
        from crnn_cli.core.verify import verification_batches

        reader = next(r for r in backend.readers() if r.probe(source) == self.source_kind)
        opts = ConvertOptions(target="onnx", out=tmp_path / "x.onnx")
        model = reader.read(source, self.source_kind, opts, ["onnx"], tmp_path)  # type: ignore[arg-type]
        assert model.graph_format == "onnx" and model.reference is not None
        assert model.metadata.charset() is not None and model.metadata.height
        sess = ort.InferenceSession(str(model.graph), providers=["CPUExecutionProvider"])
        for batch in verification_batches(model.metadata.preprocess()):
            want = model.reference(batch)
            got = sess.run(None, {sess.get_inputs()[0].name: batch})[0]
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=3e-3)
