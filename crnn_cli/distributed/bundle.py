"""A model's files as one value for Ray's object store, and their copy on a worker's disk.

The driver reads the model once (the file, its companions such as OpenVINO's .bin, or a whole model
folder) and puts it in the object store; each node fetches it once and every actor there opens the
same on-disk copy, kept under the node's temp folder by content hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from crnn_cli.core.errors import ModelError

# The object store holds the model while the run lasts; a model this big is almost surely a wrong path.
MAX_BUNDLE_BYTES = 4 << 30


@dataclass(frozen=True)
class ModelBundle:
    """Everything a worker needs to open the model, plus a dictionary file when one was given."""

    model_name: str  # the model path's last part: a file name, or a folder name when is_dir
    is_dir: bool
    files: tuple[tuple[str, bytes], ...]  # (path relative to the model's folder, contents)
    dictionary: tuple[str, bytes] | None = None  # (file name, contents) of a --dict file
    digest: str = ""  # sha256 over names and contents: the worker-side cache key


def model_files(path: Path) -> list[Path]:
    """The files that make up the model at ``path``: a folder's files, or the file and its companions
    (same stem: x.xml + x.bin, inference.pdmodel + inference.pdiparams; or x.onnx.data beside x.onnx)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    companions = [
        p
        for p in path.parent.iterdir()
        if p != path and p.is_file() and (p.stem == path.stem or p.name.startswith(path.name + "."))
    ]
    return [path, *sorted(companions)]


def pack(model: Path, dictionary: str | os.PathLike[str] | None = None) -> ModelBundle:
    """Read the model (and a dictionary that is a file) into a bundle; ModelError when too big."""
    model = Path(model)
    root = model if model.is_dir() else model.parent
    found = model_files(model)
    size = sum(p.stat().st_size for p in found)
    if size > MAX_BUNDLE_BYTES:
        raise ModelError(f"{model}: {size / 2**30:.1f} GiB of model files is more than Ray should carry")
    files = tuple((p.relative_to(root).as_posix(), p.read_bytes()) for p in found)
    dict_file = None
    if dictionary is not None and Path(dictionary).is_file():
        dict_file = (Path(dictionary).name, Path(dictionary).read_bytes())
    h = hashlib.sha256()
    for name, data in files + ((dict_file,) if dict_file else ()):
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return ModelBundle(model.name, model.is_dir(), files, dict_file, h.hexdigest())


def unpack(bundle: ModelBundle, cache: Path | None = None) -> tuple[Path, Path | None]:
    """Write the bundle under ``cache`` (once per node) and return (model path, dictionary path)."""
    cache = cache or Path(tempfile.gettempdir()) / "crnn-ray-models"
    folder = cache / bundle.digest
    if not folder.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        # Built aside, then renamed: actors starting together on a node never see half a model.
        tmp = Path(tempfile.mkdtemp(prefix=f".{bundle.digest[:12]}-", dir=cache))
        try:
            for name, data in bundle.files:
                target = tmp / "model" / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            if bundle.dictionary is not None:
                (tmp / "dict").mkdir()
                (tmp / "dict" / bundle.dictionary[0]).write_bytes(bundle.dictionary[1])
            os.rename(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not folder.is_dir():  # another actor's rename won the race: theirs is as good
                raise
    model = folder / "model" if bundle.is_dir else folder / "model" / bundle.model_name
    dictionary = folder / "dict" / bundle.dictionary[0] if bundle.dictionary is not None else None
    return model, dictionary
