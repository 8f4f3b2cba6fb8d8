"""Conversions assembled from plugins: the contract of every reader and writer, a third-party target
format (tests/toy_plugin, installed as its own distribution), and a core that imports no plugin."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from backend_contract import BackendContract, ConversionContract
from models_util import make_tiny_onnx, reference_forward, tiny_metadata

from crnn_cli.core import registry
from crnn_cli.core.backend import Backend
from crnn_cli.core.registry import load_backend

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).resolve().parent / "toy_plugin" / "crnn_toy.py"

pytest.importorskip("onnx")


def install_toy(site: Path) -> Path:
    """crnn-toy as pip leaves a distribution: its module and a dist-info with the entry point."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(TOY, site / "crnn_toy.py")
    info = site / "crnn_toy-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crnn-toy\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[crnn.backends]\ntoy = crnn_toy:ToyBackend\n")
    return site


def _forget_plugins() -> None:
    registry.clear_cache()
    registry._dist_info_versions.cache_clear()
    registry.distribution_version.cache_clear()


@pytest.fixture(scope="class")
def toy_installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """crnn-toy on sys.path for this process, seen by the registry; gone afterwards."""
    site = install_toy(tmp_path_factory.mktemp("toy_site"))
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(site))
    mp.setenv("CRNN_NO_PLUGIN_CACHE", "1")
    _forget_plugins()
    try:
        yield site
    finally:
        mp.undo()
        sys.modules.pop("crnn_toy", None)
        _forget_plugins()


# -- every plugin's readers and writers --------------------------------------------------------------------


class TestOnnxRuntimeConversion(ConversionContract):
    backend_name = "onnxruntime"
    source_kind = "onnx"

    @pytest.fixture(scope="class")
    @classmethod
    def source(cls, tiny: Path) -> Path:
        return tiny


class TestOpenVinoConversion(ConversionContract):
    backend_name = "openvino"


@pytest.mark.shared
class TestTorchConversion(ConversionContract):
    backend_name = "torch"
    source_kind = "pdparams"

    @pytest.fixture(scope="class")
    @classmethod
    def source(cls, mv3_dir: Path) -> Path:
        return mv3_dir / "best_accuracy.pdparams"


@pytest.mark.shared
class TestPaddleConversion(ConversionContract):
    backend_name = "paddle"
    source_kind = "paddle"

    @pytest.fixture(scope="class")
    @classmethod
    def source(cls, mv3_dir: Path) -> Path:
        from crnn_paddle import paddle_inference as pi

        avail = pi.paddle2onnx_available()
        if not avail.ok:
            pytest.skip(f"{avail.reason}; install with {avail.hint}")
        return mv3_dir / "inference_pir"


# -- a third party's plugin, through the same contract -------------------------------------------------------


def _write_toy(path: Path, props: dict[str, str]) -> Path:
    onnx_path = make_tiny_onnx(path.with_suffix(".onnx"), props={})
    path.write_bytes(b"TOY1\n" + json.dumps(props).encode() + b"\n" + onnx_path.read_bytes())
    return path


class TestToyBackend(BackendContract):
    backend_name = "toy"

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, toy_installed: Path) -> Backend:
        return load_backend(cls.backend_name)

    @pytest.fixture(scope="class")
    @classmethod
    def model_path(
        cls, backend: Backend, tmp_path_factory: pytest.TempPathFactory, expected_props: dict[str, str]
    ) -> Path:
        return _write_toy(tmp_path_factory.mktemp("toy") / "tiny.toy", expected_props)


class TestToyConversion(ConversionContract):
    backend_name = "toy"

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, toy_installed: Path) -> Backend:
        return load_backend(cls.backend_name)


def _crnn(args: list[object], site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ, PYTHONPATH=str(site), CRNN_NO_PLUGIN_CACHE="1", **env)
    cmd = [sys.executable, "-m", "crnn_cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=300)


def test_a_third_party_target_format_works_end_to_end(tmp_path: Path) -> None:
    """`crnn convert ... --to toy` with crnn-toy installed as its own distribution: listed, written,
    verified on the toy runtime, read back by `crnn recognize`; a toy runtime that disagrees is caught."""
    site = install_toy(tmp_path / "site")
    tiny = make_tiny_onnx(tmp_path / "tiny.onnx")
    rows = {r["name"]: r for r in json.loads(_crnn(["backends", "--format", "json"], site).stdout)}
    assert rows["toy"]["write"] == ["toy"] and rows["toy"]["distribution"] == "crnn-toy"

    out = tmp_path / "tiny.toy"
    run = _crnn(["convert", tiny, "--to", "toy", "-o", out, "--format", "json"], site)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["target"] == "toy" and summary["verify"]["ok"]
    assert "toy file written" in summary["checks"]
    assert any(c.startswith("toy vs source: OK:") for c in summary["checks"]), summary["checks"]
    assert out.read_bytes().startswith(b"TOY1\n")

    sample = ROOT / "crnn_cli" / "samples"
    images = sorted(sample.glob("*.png"))[:3]
    by_toy = _crnn(["recognize", "--model", out, "--format", "jsonl", *images], site)
    by_onnx = _crnn(["recognize", "--model", tiny, "--format", "jsonl", *images], site)
    assert by_toy.returncode == 0, by_toy.stderr
    assert [json.loads(x)["text"] for x in by_toy.stdout.splitlines()] == [
        json.loads(x)["text"] for x in by_onnx.stdout.splitlines()
    ]

    # The toy runtime drifting by 1e-3 fails crnn's verification: exit 1, the old output kept.
    out.write_bytes(b"old")
    run = _crnn(["convert", tiny, "--to", "toy", "-o", out], site, CRNN_TOY_SKEW="0.001")
    assert run.returncode == 1 and "toy vs source: FAILED" in run.stderr and "not written" in run.stderr
    assert out.read_bytes() == b"old"
    # Its own option check, and a target no plugin writes
    run = _crnn(["convert", tiny, "--to", "toy", "-o", tmp_path / "x.onnx"], site)
    assert run.returncode == 2 and "toy output must end in .toy" in run.stderr
    run = _crnn(["convert", tiny, "--to", "nothing", "-o", tmp_path / "x.onnx"], site)
    assert run.returncode == 2
    assert "--to must be one of onnx, openvino, torch, toy, got 'nothing'" in run.stderr


def test_toy_reads_what_it_wrote(toy_installed: Path, tmp_path: Path) -> None:
    from crnn_cli.convert import ConvertOptions, convert

    tiny = make_tiny_onnx(tmp_path / "tiny.onnx")
    summary = convert(tiny, ConvertOptions(target="toy", out=tmp_path / "m.toy", static_width=96))
    assert summary.verify is not None and summary.verify.widths == [96]
    with load_backend("toy").open(tmp_path / "m.toy", BackendContract.options) as session:
        x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 96)).astype(np.float32)
        np.testing.assert_allclose(session.run(x), reference_forward(x), atol=1e-4)
        from crnn_cli.core.metadata import ModelMetadata

        meta = ModelMetadata.from_props(dict(session.info.props))
        assert meta is not None and (meta.width, meta.dynamic_width) == (96, False)
        assert (meta.characters, meta.architecture) == (tiny_metadata().characters, "tiny_test")
        assert meta.producer == "crnn 0.1.0 (converted from tiny.onnx)"


# -- the core names no plugin --------------------------------------------------------------------------------


def _plugin_packages() -> set[str]:
    return {
        info.value.split(":")[0].split(".")[0]
        for info in registry.plugin_infos()
        if not info.value.startswith("crnn_cli")
    }


def test_the_core_imports_no_plugin_module() -> None:
    plugins = _plugin_packages()
    assert {"crnn_torch", "crnn_openvino", "crnn_onnxruntime", "crnn_paddle"} <= plugins
    offenders = []
    for path in sorted((ROOT / "crnn_cli").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value]  # importlib.import_module("crnn_torch...") or a "module:attr" value
            for name in names:
                if name.split(".")[0].split(":")[0] in plugins:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not offenders, offenders


BLOCKER = """
import importlib.abc, pkgutil, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked by the test")
sys.meta_path.insert(0, Block())
import crnn_cli
for mod in pkgutil.walk_packages(crnn_cli.__path__, "crnn_cli."):
    if mod.name != "crnn_cli.__main__":
        __import__(mod.name)
from crnn_cli.cli import main
main(sys.argv[2:])
"""


def test_the_cli_works_with_every_plugin_blocked(tmp_path: Path) -> None:
    """Every core module imports, `crnn --help` and `crnn backends` work, and a conversion says that
    nothing writes its target, with no plugin importable at all."""
    blocked = ",".join(sorted(_plugin_packages()))
    env = dict(os.environ, CRNN_NO_PLUGIN_CACHE="1")

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-c", BLOCKER, blocked, *map(str, args)]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)

    assert run("--help").returncode == 0
    listing = run("backends", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    rows = {r["name"]: r for r in json.loads(listing.stdout)}
    assert "blocked by the test" in rows["torch"]["reason"] and not rows["torch"]["available"]
    tiny = make_tiny_onnx(tmp_path / "tiny.onnx")
    conversion = run("convert", tiny, "--to", "onnx", "-o", tmp_path / "out.onnx")
    assert conversion.returncode == 2
    assert "no installed plugin writes 'onnx'" in conversion.stderr, conversion.stderr


def test_backends_lists_what_each_plugin_infers_reads_writes_quantizes_and_trains() -> None:
    from click.testing import CliRunner

    from crnn_cli.commands.backends import backends

    result = CliRunner().invoke(backends, ["--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert (rows["onnxruntime"]["read"], rows["onnxruntime"]["write"]) == (["onnx"], ["onnx"])
    assert rows["onnxruntime"]["quantize"] == ["onnx"] and rows["onnxruntime"]["infer"] == [".onnx"]
    assert (rows["openvino"]["write"], rows["openvino"]["quantize"]) == (["openvino"], ["openvino"])
    assert rows["torch"]["read"] == ["checkpoint", "pdparams"] and rows["torch"]["write"] == ["torch"]
    assert rows["torch"]["train"] and not rows["openvino"]["train"]
    assert rows["paddle"]["read"] == ["paddle"] and ".pdmodel" in rows["paddle"]["infer"]
    table = CliRunner().invoke(backends, [])
    assert all(col in table.output for col in ("infer", "read / write", "quantize", "train"))
