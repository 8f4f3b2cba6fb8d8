"""The parts of scripts/bench.py, one concern a module (bench.py itself keeps the flags and the run order).

Imported only by scripts/bench.py, which finds this folder next to it on sys.path; never by crnn.
"""

from __future__ import annotations

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1]  # bench_paddle.py, the worker, lives here
ROOT = SCRIPTS.parent  # the checkout: its commit goes in the caption; timed commands run in it
