"""Shared test fixtures. Tests that need ../shared (Paddle fixtures, real data) skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRNN_SHARED", ROOT.parent / "shared")).resolve()
FIXTURES = SHARED / "fixtures"
DATA = SHARED / "data" / "real"

# Two cores: keep each test process's runtimes from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# `--backend auto` times every installed runtime on a model it has not seen (autoselect.py): tests get
# the file-type default, as before, except those that test the choice itself.
os.environ.setdefault("CRNN_NO_AUTOSELECT", "1")
# crnn caches the plugin list under $XDG_CACHE_HOME; tests (and the subprocesses they start) keep theirs
# out of the user's home.
if "CRNN_TEST_CACHE" not in os.environ:
    import tempfile

    os.environ["CRNN_TEST_CACHE"] = os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="crnn-test-cache-")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared folder with fixtures and data); not present here")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return _need(FIXTURES)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _need(DATA)


@pytest.fixture(scope="session")
def mv3_dir(fixtures_dir: Path) -> Path:
    return _need(fixtures_dir / "paddle_crnn_mv3")


@pytest.fixture(scope="session")
def ppocrv4_dir(fixtures_dir: Path) -> Path:
    return _need(fixtures_dir / "ppocrv4_rec")


@pytest.fixture(scope="session")
def r34_dir(fixtures_dir: Path) -> Path:
    return _need(fixtures_dir / "paddle_crnn_r34")
