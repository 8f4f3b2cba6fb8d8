"""Discovery of backends through the ``crnn.backends`` entry-point group.

Built-in backends register exactly as a third party would. A plugin that fails to import is reported
with its entry point and distribution, and never takes the CLI down with it.

Reading the entry points means reading the metadata of every installed distribution, which costs a
cold `crnn recognize` tens of milliseconds in a large environment. The result is cached (cache.py)
under a key made of the interpreter, ``sys.path`` and the modification time of every folder on it:
installing or removing a distribution changes its folder's time, so a new plugin is seen at once.
``CRNN_NO_PLUGIN_CACHE=1`` (or ``CRNN_NO_CACHE=1``) turns the cache off.

importlib.metadata is imported only to scan: importing it brings email, zipfile and csv (40 ms of a
cold start on a 2-core machine). A cached plugin is imported from its "module:attr" directly, and
``distribution_version`` reads a version from the ``NAME-VERSION.dist-info`` folder name.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import sys
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crnn_cli.core import cache
from crnn_cli.core.backend import Backend
from crnn_cli.core.errors import BackendError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

GROUP = "crnn.backends"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class PluginInfo:
    name: str
    value: str  # "module:attr"
    distribution: str
    dist_version: str


def _info(ep: EntryPoint) -> PluginInfo:
    dist = getattr(ep, "dist", None)
    return PluginInfo(
        name=ep.name,
        value=ep.value,
        distribution=getattr(dist, "name", "") or "?",
        dist_version=getattr(dist, "version", "") or "",
    )


def _cache_name() -> str | None:
    """The plugin cache's file name for this interpreter, sys.path and their folders' times."""
    if os.environ.get("CRNN_NO_PLUGIN_CACHE"):
        return None
    stamps = []
    for entry in sys.path:
        try:
            stamps.append(os.stat(entry or ".").st_mtime_ns)
        except OSError:
            stamps.append(None)
    key = repr((CACHE_FORMAT, sys.executable, sys.version, sys.path, stamps))
    return f"plugins-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _scan() -> list[PluginInfo]:
    from importlib.metadata import entry_points

    found: dict[str, PluginInfo] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, _info(ep))  # first registration of a name wins, as with console scripts
    return list(found.values())


@lru_cache(maxsize=1)
def _plugins() -> dict[str, PluginInfo]:
    """Registered plugins by name: from the cache when the environment is unchanged, else scanned."""
    name = _cache_name()
    rows = cache.read_json(name) if name else None
    if isinstance(rows, list):
        with contextlib.suppress(TypeError):
            return {r[0]: PluginInfo(*r) for r in rows if isinstance(r, list) and len(r) == 4}
    infos = _scan()
    if name:
        cache.write_json(name, [[i.name, i.value, i.distribution, i.dist_version] for i in infos])
    return {i.name: i for i in infos}


# An entry point's value, as the packaging spec writes it: "module.path:attr.path [extras]"
_VALUE = re.compile(r"^(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?(\[.*\]\s*)?$")


def _load_object(value: str) -> Any:
    """What an entry point of ``value`` loads: the module, or an attribute path inside it."""
    match = _VALUE.match(value)
    if match is None:
        raise ValueError(f"malformed entry point value {value!r}")
    obj: Any = importlib.import_module(match.group("module"))
    for part in match.group("attr").split(".") if match.group("attr") else ():
        obj = getattr(obj, part)
    return obj


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@lru_cache(maxsize=1)
def _dist_info_versions() -> dict[str, str]:
    """Normalised distribution name -> version, from the ``NAME-VERSION.dist-info`` folders that pip
    writes on sys.path (the first folder on the path wins, as with importlib.metadata)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info") and "-" in folder:
                name, version = folder[: -len(".dist-info")].split("-", 1)
                if version:
                    found.setdefault(_normalize(name), version)
    return found


@lru_cache(maxsize=32)
def distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed.

    Read from the dist-info folder names on sys.path, listed once per process; importlib.metadata
    answers only for a distribution without such a folder (an egg-info or other layout)."""
    version = _dist_info_versions().get(_normalize(name))
    if version is not None:
        return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as metadata_version

    try:
        return metadata_version(name)
    except PackageNotFoundError:
        return None


def _entry_points() -> dict[str, str]:
    """Registered plugins' "module:attr" values by name."""
    return {name: i.value for name, i in _plugins().items()}


def plugin_infos() -> list[PluginInfo]:
    return list(_plugins().values())


def backend_names() -> list[str]:
    return sorted(_entry_points())


_loaded: dict[str, Backend] = {}
_errors: dict[str, tuple[str, str]] = {}  # name -> (one-line message, traceback)


def load_backend(name: str) -> Backend:
    """The backend registered under ``name``; BackendError (one line, naming it) when it can't load."""
    if name in _loaded:
        return _loaded[name]
    eps = _entry_points()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise BackendError(f"unknown backend '{name}' (installed: {known}); see `crnn backends`")
    if name in _errors:
        raise BackendError(_errors[name][0])
    info = _plugins()[name]
    try:
        factory = _load_object(eps[name])
        backend = factory()
        if not isinstance(backend, Backend):
            raise TypeError(f"{info.value} returned {type(backend).__name__}, not a crnn Backend")
    except Exception as exc:  # a broken plugin must not take the CLI down
        msg = (
            f"backend plugin '{name}' ({info.value}, from {info.distribution} {info.dist_version}) "
            f"failed to load: {type(exc).__name__}: {exc}; reinstall or remove that distribution "
            "(--debug shows the traceback)"
        )
        _errors[name] = (msg, traceback.format_exc())
        raise BackendError(msg) from exc
    _loaded[name] = backend
    return backend


def load_error_traceback(name: str) -> str | None:
    return _errors.get(name, (None, None))[1]


def require_available(name: str) -> Backend:
    backend = load_backend(name)
    avail = backend.availability()
    if not avail.ok:
        raise BackendError(avail.message(name))
    return backend


def backend_for_model(model: Path, capability: str = "infer") -> Backend:
    """Pick the backend that opens ``model`` by its file type: the first available one by priority.

    Availability is checked in priority order and the search stops at the first hit, so a run on an
    ONNX file never pays for importing a runtime it does not use.
    """
    accepting: list[tuple[int, str, Backend]] = []
    for name in backend_names():
        try:
            backend = load_backend(name)
        except BackendError:
            continue
        if capability in backend.capabilities and backend.accepts(model):
            accepting.append((backend.priority, name, backend))
    unavailable: list[str] = []
    for _, name, backend in sorted(accepting, key=lambda c: (c[0], c[1])):
        avail = backend.availability()
        if avail.ok:
            return backend
        unavailable.append(avail.message(name))
    if unavailable:
        raise BackendError(unavailable[0] + _conversion_hint(model))
    raise BackendError(
        f"no installed backend opens '{model}' (by its file type); pass --backend NAME, "
        "see `crnn backends` for what is installed" + _conversion_hint(model)
    )


def _conversion_hint(model: Path) -> str:
    """'; or convert it ...' when an installed plugin reads ``model`` for `crnn convert` and the ONNX
    it would write runs here (a PaddleOCR 3.x inference.json without Paddle Inference, say)."""
    readable = False
    runner = None
    for name in backend_names():
        try:
            backend = load_backend(name)
            readable = readable or any(r.probe(model) for r in backend.readers())
            runner = runner or next((w.runner for w in backend.writers() if w.target == "onnx"), None)
        except Exception:  # a hint is not worth an error of its own
            continue
    if not readable or runner is None:
        return ""
    try:
        if not load_backend(runner).availability().ok:
            return ""
    except BackendError:
        return ""
    out = (model.name if model.is_dir() else model.stem) + ".onnx"
    return f"; or convert it once and run the ONNX on {runner}: crnn convert {model} --to onnx -o {out}"


def clear_cache() -> None:
    """Forget discovered and loaded plugins (tests that install plugins at run time use this)."""
    _plugins.cache_clear()
    _loaded.clear()
    _errors.clear()
