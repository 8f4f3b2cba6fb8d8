"""The batcher alone: how requests become model calls (sizes, order, never split, queue limit)."""

from __future__ import annotations

import asyncio
import threading
import time

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


def test_instances_run_calls_side_by_side_and_share_the_waiting_crops():
    """Two instances: eight requests waiting together are shared out four and four, and the two
    calls are in the model at the same time (each waits at a barrier for the other)."""
    both_in = threading.Barrier(2, timeout=10)
    calls: list[tuple[int, list[int]]] = []

    def instance(i: int):
        def predict(batch: list[np.ndarray]) -> list[int]:
            both_in.wait()  # BrokenBarrierError (a 500 for its requests) unless the other call runs too
            calls.append((i, [int(c[0, 0]) for c in batch]))
            return [int(c[0, 0]) for c in batch]

        return predict

    async def go():
        b = Batcher([instance(0), instance(1)], max_batch=32, max_wait_s=0.5, max_queue=100)
        assert b.instances == 2

        async def one(k: int) -> list[int]:
            with b.admit(1):
                return await b.submit(crops(1, k))

        b.start()
        answers = await asyncio.gather(*(one(k) for k in range(8)))
        await b.stop()
        return answers

    answers = asyncio.run(go())
    assert answers == [[k] for k in range(8)]
    assert sorted(i for i, _ in calls) == [0, 1]
    assert sorted(len(batch) for _, batch in calls) == [4, 4]


def test_a_lone_request_does_not_wait_when_nothing_else_is_coming():
    """max_wait is for requests still being decoded; with none, a request goes at once."""

    async def go() -> float:
        b = Batcher(lambda batch: [0] * len(batch), max_batch=32, max_wait_s=5.0, max_queue=100)
        b.start()
        t0 = time.perf_counter()
        with b.admit(1):
            await b.submit(crops(1, 0))
        elapsed = time.perf_counter() - t0
        await b.stop()
        return elapsed

    assert asyncio.run(go()) < 2.0  # the old rule waited the whole 5 s for company


def test_a_request_being_decoded_is_waited_for_and_a_long_wait_counts_from_the_queue():
    """A batch waits (up to max_wait) for a request admitted but still decoding. The wait counts from
    when a request was queued: one that waited out max_wait behind a busy model goes at once, alone."""
    calls: list[list[int]] = []
    gate = threading.Event()

    def predict(batch: list[np.ndarray]) -> list[int]:
        if int(batch[0][0, 0]) == 0:
            gate.wait(30)  # the first call holds the model
        calls.append([int(c[0, 0]) for c in batch])
        return [0] * len(batch)

    async def go():
        b = Batcher(predict, max_batch=32, max_wait_s=1.0, max_queue=100)
        b.start()

        async def request(k: int, decode_s: float) -> None:
            with b.admit(1):
                await asyncio.sleep(decode_s)  # "decoding"
                await b.submit(crops(1, k))

        first = asyncio.ensure_future(request(0, 0))
        await asyncio.sleep(0.1)  # call [0] holds the model
        # 1 queues now; 2 is admitted and "decodes" until 0.5 s after the model is free again: within
        # max_wait of the model freeing up, but long past it for 1.
        late = [asyncio.ensure_future(request(1, 0)), asyncio.ensure_future(request(2, 1.7 + 0.5))]
        await asyncio.sleep(1.7)  # 1 has waited past max_wait behind the busy model
        gate.set()
        await asyncio.gather(first, *late)
        # Both decoding at once: the batch waits for the second, well within max_wait.
        pair = [asyncio.ensure_future(request(3, 0)), asyncio.ensure_future(request(4, 0.3))]
        await asyncio.gather(*pair)
        await b.stop()

    asyncio.run(go())
    assert calls == [[0], [1], [2], [3, 4]]


def test_cores_are_split_into_instances_and_threads():
    from crnn_cli.commands.serve import split_cores

    assert split_cores(2, 1, None, None) == (2, 1)  # the defaults: one single-thread call a core
    assert split_cores(8, 2, None, None) == (4, 1)
    assert split_cores(8, 1, None, 4) == (2, 4)  # --threads 4: two calls of four threads
    assert split_cores(8, 1, 2, None) == (2, 4)  # --instances 2: each call gets half the cores
    assert split_cores(2, 4, None, None) == (1, 1)  # more workers than cores: one of each
    assert split_cores(2, 1, 3, 2) == (3, 2)  # what is given is kept


def test_an_accelerator_is_not_split_into_instances():
    from crnn_cli.commands.serve import on_accelerator

    assert not on_accelerator(None, None) and not on_accelerator("cpu", "CPUExecutionProvider")
    assert on_accelerator("GPU", None) and on_accelerator("cuda:0", None)
    assert on_accelerator(None, "CUDAExecutionProvider,CPUExecutionProvider")
