"""Read PaddleOCR ``.pdparams`` training checkpoints with numpy alone, without running their pickle code.

A ``.pdparams`` file is a pickle (protocol 4 as PaddleOCR writes it) of a dict ``name -> float32 ndarray``
plus one bookkeeping entry, ``StructuredToParameterName@@`` (name -> Paddle's internal name). Rebuilding
an array needs only a few numpy globals. Any other global in the stream (``os.system``,
``builtins.exec``, ...) would mean the file runs code when loaded, so the loader refuses it with
``UnsafeFileError`` before anything is called.

Even the numpy globals never see the file's values directly: numpy's own dtype and ndarray
``__setstate__`` are not memory-safe against crafted states (a malformed dtype state segfaults numpy 2),
so the allowed names resolve to stand-ins that only record their arguments, and arrays are built with
``np.frombuffer`` once dtype, shape and byte count have been checked.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from crnn_cli.core.errors import ModelError, UnsafeFileError

SUFFIX = ".pdparams"
DEFAULT_NAME = "best_accuracy" + SUFFIX
NAME_MAP_KEY = "StructuredToParameterName@@"  # Paddle's name bookkeeping, not a tensor
NUMERIC_KINDS = "biufc"  # bool, ints, floats, complex: what a weight can be; never objects


class _DtypeSpec:
    """Stand-in for ``numpy.dtype(spec, align, copy)`` while unpickling; ``__setstate__`` only records.

    numpy's own dtype and ndarray ``__setstate__`` are not memory-safe against crafted states (a
    malformed 6-item dtype state segfaults numpy 2.x), so no numpy code sees file data until the
    recorded values have been checked (see ``_array``).
    """

    def __init__(self, spec: Any, align: Any = False, copy: Any = False) -> None:
        self.spec, self.state = spec, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def build(self, where: str) -> np.dtype:
        spec = self.spec
        if not isinstance(spec, str) or spec not in _NUMERIC_SPECS:
            try:
                name = np.dtype(spec).name if isinstance(spec, str) else repr(spec)  # parses text only
            except TypeError:
                name = repr(spec)
            raise ModelError(f"{where}: dtype {name} is not a numeric weight type")
        state = self.state
        if state is not None and (
            not isinstance(state, tuple) or len(state) != 8 or any(v is not None for v in state[2:5])
        ):
            raise ModelError(
                f"{where}: dtype {spec} has a state this loader does not read: {str(state)[:80]}"
            )
        endian = state[1] if state is not None else "="
        if endian not in ("<", ">", "|", "="):
            raise ModelError(f"{where}: dtype {spec} has byte order {endian!r}")
        dtype = np.dtype(spec)
        return dtype.newbyteorder(endian) if endian in "<>" else dtype


class _ArrayState:
    """Stand-in for the empty ndarray ``_reconstruct`` makes; BUILD records (version, shape, dtype, F, data)."""

    def __init__(self) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _NdarrayType:
    """What the pickle's reference to ``numpy.ndarray`` resolves to (only ever an argument here)."""


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> _ArrayState:
    if cls is not _NdarrayType:
        raise ModelError("numpy _reconstruct of something that is not an ndarray")
    return _ArrayState()


def _array(raw: Any, dtype: Any, shape: Any, fortran: Any, where: str) -> np.ndarray:
    """An ndarray from recorded pickle values, every one checked before numpy sees it."""
    if not isinstance(dtype, _DtypeSpec):
        raise ModelError(f"{where}: array dtype is a {type(dtype).__name__}")
    dt = dtype.build(where)
    if not isinstance(shape, tuple) or not all(type(d) is int and 0 <= d < 2**40 for d in shape):
        raise ModelError(f"{where}: array shape {shape!r} is not a tuple of sizes")
    if not isinstance(raw, (bytes, bytearray)):
        raise ModelError(f"{where}: array data is a {type(raw).__name__}, not bytes")
    count = math.prod(shape)
    if count * dt.itemsize != len(raw):
        raise ModelError(f"{where}: array {shape} of {dt} needs {count * dt.itemsize} bytes, has {len(raw)}")
    return np.frombuffer(bytes(raw), dtype=dt).reshape(shape, order="F" if fortran is True else "C").copy()


def _frombuffer(raw: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:  # protocol 5 arrays
    return _array(raw, dtype, shape, order == "F", "array")


def _scalar(dtype: Any, raw: Any) -> Any:  # 0-d numpy values
    return _array(raw, dtype, (), False, "scalar")[()]


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    # Protocol 2 spells bytes as _codecs.encode(str, "latin1"); nothing else is needed from codecs.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ModelError("_codecs.encode used for something other than latin-1 bytes")
    return text.encode("latin1")


# The dtype codes numpy pickles for numeric arrays (bool, ints, floats, complex): what a weight can be.
_NUMERIC_SPECS = frozenset(
    {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16"}
)

# Every global a numpy-array pickle references, each mapped to a stand-in that records or checks.
_ALLOWED: dict[tuple[str, str], Any] = {}
for _pkg in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_pkg}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_pkg}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_pkg}.numeric", "_frombuffer")] = _frombuffer
_ALLOWED[("numpy", "ndarray")] = _NdarrayType
_ALLOWED[("numpy", "dtype")] = _DtypeSpec
_ALLOWED[("_codecs", "encode")] = _latin1
_ALLOWED[("collections", "OrderedDict")] = dict

ALLOWED_GLOBALS: frozenset[str] = frozenset(f"{m}.{n}" for m, n in _ALLOWED)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose only globals are the stand-ins in ``_ALLOWED``; anything else is refused."""

    def __init__(self, data: bytes, source: Path) -> None:
        super().__init__(io.BytesIO(data))
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise UnsafeFileError(
                f"{self._source}: refused to load: the pickle references '{module}.{name}', which a "
                "Paddle checkpoint never does (it holds numpy arrays only), and loading it could run "
                "code. Do not open this file with pickle, paddle.load or torch.load."
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        # torch.save files use persistent ids for their storages; a .pdparams never does.
        raise ModelError(
            f"{self._source}: not a Paddle checkpoint (the pickle uses persistent ids, as PyTorch "
            "checkpoints do)"
        )


def _materialize(obj: Any, where: str) -> Any:
    """Recorded arrays (recursively inside dicts, lists and tuples) built into real ndarrays."""
    if isinstance(obj, _ArrayState):
        state = obj.state
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise ModelError(f"{where}: array state {str(state)[:80]} is not numpy's (version 1)")
        _, shape, dtype, fortran, raw = state
        return _array(raw, dtype, shape, fortran, where)
    if isinstance(obj, dict):
        return {k: _materialize(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v, where) for v in obj)
    if isinstance(obj, (_DtypeSpec, _NdarrayType)) or obj is _NdarrayType:
        raise ModelError(f"{where}: a bare numpy type where data was expected")
    return obj


def resolve_pdparams_path(path: str | Path) -> Path:
    """The .pdparams file meant by ``path``: the file, its prefix without suffix, or a directory.

    A directory must hold ``best_accuracy.pdparams`` or exactly one ``*.pdparams``.
    """
    p = Path(path)
    if p.is_dir():
        best = p / DEFAULT_NAME
        if best.is_file():
            return best
        found = sorted(q for q in p.glob(f"*{SUFFIX}") if q.is_file())
        if len(found) == 1:
            return found[0]
        if not found:
            raise ModelError(f"{p}: no {DEFAULT_NAME} (or any *{SUFFIX} file) in this directory")
        names = ", ".join(q.name for q in found)
        raise ModelError(f"{p}: several checkpoints ({names}) and no {DEFAULT_NAME}; name the file to load")
    if p.is_file():
        return p
    with_suffix = p.with_name(p.name + SUFFIX)
    if with_suffix.is_file():
        return with_suffix
    raise ModelError(f"{p}: no such checkpoint (looked for {p} and {with_suffix})")


def load_pdparams(path: str | Path) -> dict[str, np.ndarray]:
    """Load a PaddleOCR training checkpoint as ``{name: ndarray}`` without executing pickle code.

    path: a ``.pdparams`` file, its prefix (``output/rec/best_accuracy``) or a checkpoint directory.
    The ``StructuredToParameterName@@`` entry is dropped; arrays keep their stored dtype and shape.
    Raises UnsafeFileError for a pickle that references anything but numpy array builders, and
    ModelError for a file that is not a readable checkpoint.
    """
    file = resolve_pdparams_path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ModelError(f"{file}: cannot read checkpoint: {exc.strerror or exc}") from None
    hint = ""
    if file.suffix == ".pdiparams":
        hint = " (.pdiparams is an inference model's raw weights, not a training checkpoint)"
    if len(data) < 2 or data[0] != pickle.PROTO[0]:
        raise ModelError(f"{file}: not a Paddle .pdparams checkpoint: it is not a pickle{hint}")
    try:
        obj = _NumpyOnlyUnpickler(data, file).load()
    except (UnsafeFileError, ModelError):
        raise
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ModelError(
            f"{file}: checkpoint is truncated or corrupt ({exc or 'unexpected end'}){hint}"
        ) from None
    except Exception as exc:  # a damaged stream fails in many ways: TypeError, ValueError, IndexError...
        raise ModelError(f"{file}: checkpoint is corrupt ({type(exc).__name__}: {exc}){hint}") from None
    return _validate(_materialize(obj, str(file)), file)


def _validate(obj: Any, file: Path) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise ModelError(f"{file}: expected a dict of arrays, the pickle holds a {type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if key == NAME_MAP_KEY:
            continue
        if not isinstance(key, str):
            raise ModelError(f"{file}: parameter names must be strings, found {key!r}")
        if not isinstance(value, np.ndarray):
            raise ModelError(f"{file}: entry '{key}' is a {type(value).__name__}, not an array")
        if value.dtype.kind not in NUMERIC_KINDS:
            raise ModelError(f"{file}: entry '{key}' has dtype {value.dtype}, not a numeric weight")
        out[key] = value
    if not out:
        raise ModelError(f"{file}: the checkpoint holds no parameters")
    return out
