"""The batcher alone: how requests become model calls (sizes, order, never split, queue limit)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from crnn_cli.serving.batcher import Batcher, QueueFullError


def crops(n: int, start: int) -> list[np.ndarray]:
    """n tiny arrays whose single pixel holds their global number, so answers can be traced."""
    return [np.full((1, 1), start + i) for i in range(n)]


async def run_requests(
    sizes: list[int], max_batch: int, max_wait_s: float, gate: threading.Event | None = None
):
    calls: list[list[int]] = []

    def predict(batch: list[np.ndarray]) -> list[int]:
        if gate is not None:
            gate.wait(30)
        calls.append([int(c[0, 0]) for c in batch])
        return [int(c[0, 0]) * 10 for c in batch]

    b = Batcher(predict, max_batch, max_wait_s, max_queue=1000)
    b.start()
    starts = np.cumsum([0, *sizes[:-1]])

    async def one(n: int, start: int) -> list[int]:
        with b.admit(n):
            return await b.submit(crops(n, int(start)))

    answers = await asyncio.gather(*(one(n, s) for n, s in zip(sizes, starts)))
    await b.stop()
    return calls, answers


def test_requests_arriving_together_share_one_call_in_order():
    calls, answers = asyncio.run(run_requests([1, 1, 1, 1], max_batch=8, max_wait_s=0.5))
    assert calls == [[0, 1, 2, 3]]
    assert answers == [[0], [10], [20], [30]]


def test_a_batch_closes_at_max_batch_and_never_splits_a_request():
    calls, answers = asyncio.run(run_requests([3, 3, 2, 5], max_batch=4, max_wait_s=0.5))
    assert calls == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9, 10, 11, 12]]  # 3+3 > 4: the second waits
    assert answers == [[0, 10, 20], [30, 40, 50], [60, 70], [80, 90, 100, 110, 120]]


def test_without_wait_each_request_goes_alone_when_the_model_is_idle():
    calls, _ = asyncio.run(run_requests([1, 1], max_batch=8, max_wait_s=0.0))
    assert sorted(map(len, calls)) in ([1, 1], [2])  # both may already be queued when the first call starts
    assert [c for call in calls for c in call] == [0, 1]


def test_admission_is_refused_past_the_queue_limit():
    b = Batcher(lambda batch: batch, max_batch=4, max_wait_s=0, max_queue=5)
    with b.admit(3):
        assert b.admitted == 3
        with pytest.raises(QueueFullError, match="limit 5"), b.admit(3):
            pass
        with b.admit(2):
            assert b.admitted == 5
    assert b.admitted == 0


def test_a_failing_model_fails_its_batch_and_the_next_batch_still_runs():
    state = {"n": 0}

    def predict(batch):
        state["n"] += 1
        if state["n"] == 1:
            raise RuntimeError("model broke")
        return [0] * len(batch)

    async def go():
        b = Batcher(predict, 4, 0.0, 100)
        b.start()
        with pytest.raises(RuntimeError, match="model broke"):
            await b.submit(crops(1, 0))
        assert await b.submit(crops(2, 0)) == [0, 0]
        await b.stop()

    asyncio.run(go())
