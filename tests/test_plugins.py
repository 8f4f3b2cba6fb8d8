"""Backend plugins through the ``crnn.backends`` entry points: a third party's, a broken one, the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent(
    """\
    from crnn_cli.core.backend import Availability, Backend

    class EchoBackend(Backend):
        name = "echo"
        capabilities = frozenset({"infer"})
        suffixes = (".echo",)

        def availability(self):
            return Availability(False, reason="needs the echo runtime", hint="pip install echo-runtime")

        def open(self, model, options):
            raise NotImplementedError
    """
)


def _dist(site: Path, name: str, entry: str) -> None:
    """A distribution as pip leaves it: NAME.dist-info with METADATA and entry_points.txt."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"  # pip writes the name with underscores
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[crnn.backends]\n{entry}\n")


def _backends(site: Path, cache: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(site), XDG_CACHE_HOME=str(cache))
    env.pop("CRNN_NO_PLUGIN_CACHE", None)
    cmd = [sys.executable, "-m", "crnn_cli", "backends", "--format", "json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_third_party_and_broken_plugins_are_listed_and_the_cache_sees_new_ones(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    (site / "crnn_echo.py").write_text(PLUGIN)
    _dist(site, "crnn-echo", "echo = crnn_echo:EchoBackend")
    rows = {r["name"]: r for r in _backends(site, cache)}
    assert {"onnxruntime", "echo"} <= set(rows), rows
    assert rows["echo"]["distribution"] == "crnn-echo"
    assert "pip install echo-runtime" in json.dumps(rows["echo"])  # its own install hint
    assert list(cache.glob("crnn/plugins-*.json"))  # the scan was cached

    # A distribution installed afterwards (its folder's time changes) is seen, and a broken one is
    # reported by name and distribution while the others still work.
    _dist(site, "crnn-broken", "broken = crnn_missing_module:Nothing")
    os.utime(site, ns=(os.stat(site).st_atime_ns, os.stat(site).st_mtime_ns + 10**9))
    rows = {r["name"]: r for r in _backends(site, cache)}
    assert {"onnxruntime", "echo", "broken"} <= set(rows), rows
    text = json.dumps(rows["broken"])
    assert "crnn-broken" in text and "crnn_missing_module" in text
    assert rows["onnxruntime"]["available"] is True


def test_distribution_version_reads_pip_dist_info_folders(tmp_path: Path, monkeypatch) -> None:
    from crnn_cli.core import registry

    site = tmp_path / "site"
    _dist(site, "crnn-echo.tools", "echo = crnn_echo:EchoBackend")  # folder crnn_echo.tools-1.0.dist-info
    monkeypatch.syspath_prepend(str(site))
    registry.distribution_version.cache_clear()
    registry._dist_info_versions.cache_clear()
    try:
        assert registry.distribution_version("crnn-echo.tools") == "1.0"
        assert registry.distribution_version("CRNN_Echo-Tools") == "1.0"  # names compare normalised
        assert registry.distribution_version("crnn-echo") is None  # a prefix of another name is not it
        from importlib.metadata import version

        assert registry.distribution_version("onnxruntime") == version("onnxruntime")
    finally:
        registry.distribution_version.cache_clear()
        registry._dist_info_versions.cache_clear()


def test_entry_point_values_load_like_importlib_metadata() -> None:
    from crnn_onnxruntime import OnnxRuntimeBackend

    from crnn_cli.core import registry

    assert registry._load_object("crnn_onnxruntime:OnnxRuntimeBackend") is OnnxRuntimeBackend
    assert (
        registry._load_object("crnn_onnxruntime : OnnxRuntimeBackend.open [gpu]") is OnnxRuntimeBackend.open
    )
    assert registry._load_object("crnn_onnxruntime").__name__ == "crnn_onnxruntime"
    for bad in ("crnn_onnxruntime:", "not a value", ""):
        try:
            registry._load_object(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} loaded")


def test_a_recognize_with_a_remembered_choice_imports_no_package_metadata(tmp_path: Path) -> None:
    """Cold start: importlib.metadata brings email, zipfile and csv (40 ms), subprocess more. The CLI's
    everyday path, a bundled-model run whose backend choice is remembered, needs neither."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("CRNN_NO_AUTOSELECT", None)
    sample = Path(__file__).resolve().parents[1] / "crnn_cli" / "samples" / "code.png"
    cmd = [sys.executable, "-X", "importtime", "-m", "crnn_cli", "recognize", str(sample)]
    for run in range(2):  # the first run measures the backends (in children) and remembers the choice
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "KPL-4172" in proc.stdout
        if run == 0:  # whichever won on this busy machine, the next run is to use ONNX Runtime
            choices = tmp_path / "cache" / "crnn" / "backend-choice.json"
            stored = json.loads(choices.read_text())
            assert len(stored) == 1
            for entry in stored.values():
                entry.update(backend="onnxruntime", hint=None)
            choices.write_text(json.dumps(stored))
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "crnn_cli.core.registry" in imported  # importtime did report the run
    assert not {"importlib.metadata", "subprocess", "openvino", "torch"} & imported
