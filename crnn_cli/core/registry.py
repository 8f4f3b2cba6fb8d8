"""Discovery of backends through the ``crnn.backends`` entry-point group.

Built-in backends register exactly as a third party would. A plugin that fails to import is reported
with its entry point and distribution, and never takes the CLI down with it.

Reading the entry points means reading the metadata of every installed distribution, which costs a
cold `crnn recognize` tens of milliseconds in a large environment. The result is cached (cache.py)
under a key made of the interpreter, ``sys.path`` and the modification time of every folder on it:
installing or removing a distribution changes its folder's time, so a new plugin is seen at once.
``CRNN_NO_PLUGIN_CACHE=1`` (or ``CRNN_NO_CACHE=1``) turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import traceback
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from crnn_cli.core import cache
from crnn_cli.core.backend import Backend
from crnn_cli.core.errors import BackendError

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


def _entry_points() -> dict[str, EntryPoint]:
    return {name: EntryPoint(name, i.value, GROUP) for name, i in _plugins().items()}


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
    ep = eps[name]
    info = _plugins()[name]
    try:
        factory = ep.load()
        backend = factory()
        if not isinstance(backend, Backend):
            raise TypeError(f"{ep.value} returned {type(backend).__name__}, not a crnn Backend")
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
        raise BackendError(unavailable[0])
    raise BackendError(
        f"no installed backend opens '{model}' (by its file type); pass --backend NAME, "
        "see `crnn backends` for what is installed"
    )


def clear_cache() -> None:
    """Forget discovered and loaded plugins (tests that install plugins at run time use this)."""
    _plugins.cache_clear()
    _loaded.clear()
    _errors.clear()
