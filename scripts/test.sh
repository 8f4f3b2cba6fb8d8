#!/usr/bin/env bash
# Install crnn with every backend and the test tools into .venv, lint, then run the whole test suite.
# This is the README's test command and what CI runs (.ci/run). CPU-only machines get the CPU torch
# wheel through constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
# The page of `crnn serve` is tested in a real headless browser: Debian's chromium (Playwright's own
# browser download does not work offline). Installed here when running as root and missing.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt '.[test]'
.venv/bin/ruff check .
# pytest (not python -m pytest): the installed package is tested, not the source tree on sys.path.
.venv/bin/pytest -q "$@"
