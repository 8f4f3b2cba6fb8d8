#!/usr/bin/env bash
# Install crnn with every backend and the test tools into .venv, lint, then run the whole test suite.
# This is the README's test command and what CI runs (.ci/run). CPU-only machines get the CPU torch
# wheel through constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt '.[test]'
.venv/bin/ruff check .
# pytest (not python -m pytest): the installed package is tested, not the source tree on sys.path.
.venv/bin/pytest -q "$@"
