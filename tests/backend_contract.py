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
        backend = load_backend(cls.backend_name)  # a plugin that fails to import is a failure, not a skip
        avail = backend.availability()
        if not avail.ok:
            pytest.skip(avail.message(cls.backend_name))
        return backend

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
