"""Read PaddleOCR ``.pdparams`` training checkpoints with numpy alone, without running their pickle code.

A ``.pdparams`` file is a pickle (protocol 4 as PaddleOCR writes it) of a dict ``name -> float32 ndarray``
plus one bookkeeping entry, ``StructuredToParameterName@@`` (name -> Paddle's internal name). Rebuilding
an array needs only a few numpy globals. Any other global in the stream (``os.system``,
``builtins.exec``, ...) would mean the file runs code when loaded, so the loader refuses it with
``UnsafeFileError`` before anything is called.
"""

from __future__ import annotations

import importlib
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crnn_cli.core.errors import ModelError, UnsafeFileError

SUFFIX = ".pdparams"
DEFAULT_NAME = "best_accuracy" + SUFFIX
NAME_MAP_KEY = "StructuredToParameterName@@"  # Paddle's name bookkeeping, not a tensor
NUMERIC_KINDS = "biufc"  # bool, ints, floats, complex: what a weight can be; never objects


def _numpy_attr(submodule: str, name: str) -> Callable[[], Any]:
    """Resolver for a numpy internal under either its numpy 2 (_core) or numpy 1 (core) home.

    The numpy 2 name is tried first so that numpy 2 never touches its deprecated ``numpy.core`` shim,
    and numpy 1.x (which may lack ``numpy._core``) still finds the object.
    """

    def resolve() -> Any:
        for package in ("numpy._core", "numpy.core"):
            try:
                return getattr(importlib.import_module(f"{package}.{submodule}"), name)
            except (ImportError, AttributeError):
                continue
        raise ModelError(f"this numpy ({np.__version__}) has no {submodule}.{name} to rebuild arrays with")

    return resolve


# Every global a numpy-array pickle can reference, and nothing that can run code or touch the system.
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {}
for _pkg in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_pkg}.multiarray", "_reconstruct")] = _numpy_attr("multiarray", "_reconstruct")
    _ALLOWED[(f"{_pkg}.multiarray", "scalar")] = _numpy_attr("multiarray", "scalar")  # 0-d numpy values
    _ALLOWED[(f"{_pkg}.numeric", "_frombuffer")] = _numpy_attr("numeric", "_frombuffer")  # protocol 5
_ALLOWED[("numpy", "ndarray")] = lambda: np.ndarray
_ALLOWED[("numpy", "dtype")] = lambda: np.dtype
# Protocol 2 pickles spell bytes as _codecs.encode(str, "latin1"); paddle.save(protocol=2) writes those.
_ALLOWED[("_codecs", "encode")] = lambda: importlib.import_module("codecs").encode
# Older Paddle versions may keep the state dict ordered; constructing one only builds a dict.
_ALLOWED[("collections", "OrderedDict")] = lambda: importlib.import_module("collections").OrderedDict

ALLOWED_GLOBALS: frozenset[str] = frozenset(f"{m}.{n}" for m, n in _ALLOWED)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the numpy globals in ``_ALLOWED``; anything else is refused."""

    def __init__(self, data: bytes, source: Path) -> None:
        super().__init__(io.BytesIO(data))
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        resolve = _ALLOWED.get((module, name))
        if resolve is None:
            raise UnsafeFileError(
                f"{self._source}: refused to load: the pickle references '{module}.{name}', which a "
                "Paddle checkpoint never does (it holds numpy arrays only), and loading it could run "
                "code. Do not open this file with pickle, paddle.load or torch.load."
            )
        return resolve()

    def persistent_load(self, pid: Any) -> Any:
        # torch.save files use persistent ids for their storages; a .pdparams never does.
        raise ModelError(
            f"{self._source}: not a Paddle checkpoint (the pickle uses persistent ids, as PyTorch "
            "checkpoints do)"
        )


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
    return _validate(obj, file)


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
