"""How runs are timed and judged: variants interleaved over repeats, medians, verdicts on a target."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

GAP = 0.15  # seconds of rest between timed runs: lets idle runtime threads stop spinning


def at_least(ratio: float, target: float) -> tuple[bool, str]:
    if ratio >= target:
        return True, f"met (>= {target:g})"
    return False, f"MISSED by {100 * (target - ratio) / target:.0f} % ({ratio:.2f} < {target:g})"


def at_most(ratio: float, target: float) -> tuple[bool, str]:
    if ratio <= target:
        return True, f"met (<= {target:g})"
    return False, f"MISSED by {100 * (ratio - target) / target:.0f} % ({ratio:.2f} > {target:g})"


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))


def interleave(
    variants: dict[str, Callable[[], float]], repeats: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Seconds per run of each variant, ``repeats`` runs each, interleaved; one untimed warm-up each."""
    if warmup:
        for fn in variants.values():
            fn()
            time.sleep(GAP)
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(variants[name]())
            time.sleep(GAP)
    return times
