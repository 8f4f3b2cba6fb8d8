"""``--backend auto`` (the default): of the installed backends that open a model, the fastest here.

Which runtime is faster depends on the model and the machine: on this project's 2-core machine
OpenVINO ran the PaddleOCR CRNN-mv3 and PP-OCRv4 faster than ONNX Runtime, and ONNX Runtime ran the
bundled compact model faster. So the first time a model is opened with more than one candidate, each
candidate runs a few batches of the model's nominal input size, the way the Recognizer feeds them
(``run_many``), and the fastest wins; ties (within ``TIE``) go to the backend with the better
priority (ONNX Runtime for .onnx), which also starts sooner. A backend with performance hints
(OpenVINO: LATENCY, THROUGHPUT with its async queue) runs once per hint unless the user gave one, and
the winning hint is used. Each candidate is timed in a child process of its own, so the runtimes that
lose (and OpenVINO's compiled models and thread pools) never take memory in the process that goes on
to read the images: the first run on a model peaks no higher than the runs after it. The choice is
remembered per model file
(path, size and modification time), session options, batch size and runtime versions in
``backend-choice.json`` of crnn's cache (cache.py), so later runs pay nothing.

With one candidate nothing is measured. ``CRNN_NO_AUTOSELECT=1`` skips measuring: the backend with
the better priority is used, as ``registry.backend_for_model`` picks it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from crnn_cli.core import cache, registry
from crnn_cli.core.backend import INFER, OPTION_FLAGS, Backend, SessionOptions, options_given
from crnn_cli.core.errors import BackendError, CrnnError, UsageError
from crnn_cli.core.metadata import default_width

CACHE_FILE = "backend-choice.json"
# A candidate must be this much faster than the preferred one to replace it. The choice sticks, and a
# 2-core machine's timings move by 5-10 % with its load: at 1.05 a run measured beside a test suite
# took OpenVINO THROUGHPUT for the bundled model (305 against 290 img/s; idle, ONNX Runtime leads 507
# to 489) and every later `crnn recognize` paid OpenVINO's 0.2 s import. Real wins are larger (mv3 on
# OpenVINO THROUGHPUT: 1.39x).
TIE = 1.15
ROUNDS = 2  # timed rounds per candidate (the best counts); each runs RUNS batches
RUNS = 3
MAX_ENTRIES = 64  # remembered choices; the oldest are dropped


@dataclass
class Selection:
    """The outcome of an automatic choice: which backend (and hint), and the images/s of each candidate."""

    backend: str
    hint: str | None = None  # the performance hint to open it with (None: the user's, or the default)
    rates: dict[str, float] = field(default_factory=dict)  # "name" or "name HINT" -> images/s
    measured: bool = False  # measured now (False: one candidate, remembered, or turned off)

    @property
    def label(self) -> str:
        return f"{self.backend} {self.hint}" if self.hint else self.backend


def installed_version(backend: Backend) -> str | None:
    """The runtime's version from package metadata, without importing it; None if it cannot tell."""
    return _first_installed(backend.distributions)


def _first_installed(distributions: tuple[str, ...]) -> str | None:
    for dist in distributions:
        v = registry.distribution_version(dist)
        if v is not None:
            return v
    return None


@functools.lru_cache(maxsize=1)
def _cpu() -> str:
    """This machine's CPU as the choice's key sees it: architecture and model name (platform.processor()
    runs `uname -p` in a child process on Linux, and says less)."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
        model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    return f"{os.uname().machine} {model}".strip() if hasattr(os, "uname") else sys.platform


def _version(backend: Backend) -> str | None:
    """Cheap version where metadata has one, else availability() (which may import the runtime).
    None: not available here."""
    v = installed_version(backend)
    if v is not None:
        return v
    avail = backend.availability()
    return avail.version if avail.ok else None


def candidates(model: Path, cheap: bool = False) -> list[Backend]:
    """Available backends that can run ``model`` (by file type), best priority first.

    cheap: a backend whose runtime's distribution is installed counts as available without importing
    it (a broken install then shows when it is opened, or measures 0 and does not win).
    """
    found: list[tuple[int, str, Backend]] = []
    for name in registry.backend_names():
        try:
            backend = registry.load_backend(name)
        except BackendError:
            continue
        if INFER not in backend.capabilities or not backend.accepts(model):
            continue
        ok = _version(backend) is not None if cheap else backend.availability().ok
        if ok:
            found.append((backend.priority, name, backend))
    if any(not b.auto_fallback for _, _, b in found):  # e.g. Paddle, when OpenVINO reads the .pdmodel too
        found = [c for c in found if not c[2].auto_fallback]
    return [b for _, _, b in sorted(found, key=lambda c: (c[0], c[1]))]


def _key(model: Path, options: SessionOptions, batch_size: int, found: list[Backend]) -> str:
    st = model.stat()
    versions = [(b.name, _version(b)) for b in found]
    parts = (
        str(model.resolve()), st.st_size, st.st_mtime_ns, options.threads, options.device, options.providers,
        options.performance_hint, options.num_requests, sorted(options.extra.items()), batch_size,
        os.cpu_count(), _cpu(), versions,
    )  # fmt: skip
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


MEASURE_TIMEOUT = 300.0  # seconds for one candidate's child process


def measure(backend: Backend, model: Path, options: SessionOptions, batch_size: int) -> float:
    """Images per second of ``backend`` on ``model``, timed in a child process (0.0 when it fails).

    Where the options cannot travel as JSON (an ``extra`` value of a third-party backend), or no child
    can be started, the timing runs here instead."""
    job = {"backend": backend.name, "model": str(model), "options": asdict(options), "batch_size": batch_size}
    try:
        payload = json.dumps(job)
    except (TypeError, ValueError):
        return measure_here(backend, model, options, batch_size)
    import subprocess  # only here: a remembered choice never starts a child

    try:
        done = subprocess.run(
            [sys.executable, "-m", "crnn_cli.core.autoselect"],
            input=payload, capture_output=True, text=True, timeout=MEASURE_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return 0.0  # far too slow to win
    except OSError:
        return measure_here(backend, model, options, batch_size)
    try:
        return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0.0  # the child failed: the runtime crashed or refused the model, so it does not win


def _child() -> None:
    """``python -m crnn_cli.core.autoselect``: one job as JSON on stdin, ``{"rate": images/s}`` on stdout."""
    job = json.loads(sys.stdin.read())
    raw = job["options"]
    options = SessionOptions(
        **{**raw, "providers": tuple(raw["providers"]) if raw.get("providers") else None}
    )
    rate = 0.0
    try:
        backend = registry.load_backend(job["backend"])
        rate = measure_here(backend, Path(job["model"]), options, int(job["batch_size"]))
    except CrnnError:
        pass
    print(json.dumps({"rate": rate}), flush=True)


def measure_here(backend: Backend, model: Path, options: SessionOptions, batch_size: int) -> float:
    """Images per second of ``backend`` on batches of the model's nominal input, in this process
    (0.0 when it fails)."""
    try:
        with backend.open(model, options) as session:
            _, c, h, w = session.info.input_shape
            c, h = c or 3, h or 32
            batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, c, h, w or default_width(h)))
            batch = batch.astype(np.float32)
            for _ in session.run_many([batch]):  # warm-up: kernels, allocator, requests
                pass
            best = float("inf")
            for _ in range(ROUNDS):
                start = time.perf_counter()
                for _ in session.run_many([batch] * RUNS):
                    pass
                best = min(best, time.perf_counter() - start)
            return RUNS * batch_size / best
    except CrnnError:
        return 0.0
    except Exception:  # a runtime's own error on this model: it simply does not win
        return 0.0


def unsupported_message(options: SessionOptions, backends: list[Backend], model: Path) -> str:
    """Why none of ``backends`` (those that open ``model``) takes every option given, and what to do."""
    given = options_given(options)
    flags = " and ".join(OPTION_FLAGS[o] for o in given)
    per_option = "; ".join(
        f"{OPTION_FLAGS[o]} is for {' or '.join(backends_taking([o])) or 'no installed backend'}"
        for o in given
    )
    return (
        f"no installed backend that opens {model.name} ({', '.join(b.name for b in backends)}) takes "
        f"{flags}{' together' if len(given) > 1 else ''} ({per_option}); drop what does not apply"
    )


def backends_taking(given: list[str]) -> list[str]:
    """Names of the registered backends that declare every option in ``given``."""
    out = []
    for name in registry.backend_names():
        try:
            backend = registry.load_backend(name)
        except BackendError:
            continue
        if backend.session_options is not None and not backend.unsupported_names(given):
            out.append(name)
    return sorted(out)


def decide(rates: dict[str, float], preferred: str) -> str:
    """The fastest candidate, unless it beats ``preferred`` by less than TIE."""
    fastest = max(rates, key=lambda n: rates[n])
    if rates.get(preferred, 0.0) > 0 and rates[fastest] < TIE * rates[preferred]:
        return preferred
    return fastest


def select_backend(model: Path, options: SessionOptions, batch_size: int = 32) -> tuple[Backend, Selection]:
    """The backend ``--backend auto`` runs ``model`` on, and how it was chosen."""
    opening = candidates(model, cheap=True)
    # Only backends that honour every option the user set: --providers means ONNX Runtime, --hint
    # OpenVINO; one that would ignore them must not win on speed.
    found = [b for b in opening if not b.unsupported(options)]
    if opening and not found:
        raise UsageError(unsupported_message(options, opening, model))
    if not found:
        backend = registry.backend_for_model(model)  # raises the right error (what to install)
        if backend.unsupported(options):
            raise UsageError(unsupported_message(options, [backend], model))
        return backend, Selection(backend.name)
    variants: list[tuple[Backend, str | None]] = []
    for b in found:
        hints = b.hints if options.performance_hint is None else ()
        variants += [(b, h) for h in hints] or [(b, None)]
    if len(variants) == 1 or os.environ.get("CRNN_NO_AUTOSELECT"):
        return found[0], Selection(found[0].name)
    by_label = {Selection(b.name, h).label: (b, h) for b, h in variants}
    key = _key(model, options, batch_size, found)
    stored = cache.read_json(CACHE_FILE)
    choices = stored if isinstance(stored, dict) else {}
    hit = choices.get(key)
    if isinstance(hit, dict) and Selection(str(hit.get("backend")), hit.get("hint")).label in by_label:
        b, h = by_label[Selection(str(hit["backend"]), hit.get("hint")).label]
        if b.availability().ok:  # only the remembered backend's runtime is imported
            return b, Selection(b.name, h, dict(hit.get("rates") or {}))
    rates = {
        label: measure(b, model, options if h is None else replace(options, performance_hint=h), batch_size)
        for label, (b, h) in by_label.items()
    }
    if not any(rates.values()):
        return found[0], Selection(found[0].name, rates=rates, measured=True)
    chosen, hint = by_label[decide(rates, next(iter(by_label)))]
    selection = Selection(chosen.name, hint, rates, measured=True)
    choices[key] = asdict(selection) | {"model": str(model), "when": time.time()}
    if len(choices) > MAX_ENTRIES:
        oldest = sorted(choices, key=lambda k: float(choices[k].get("when", 0)))
        for k in oldest[: len(choices) - MAX_ENTRIES]:
            del choices[k]
    cache.write_json(CACHE_FILE, choices)
    return chosen, selection


if __name__ == "__main__":
    _child()
