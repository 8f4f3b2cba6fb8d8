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
