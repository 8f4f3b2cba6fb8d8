"""Dynamic batching: crops from requests that arrive together go to the model in one call.

Each request hands its decoded crops to ``Batcher.submit``; one background task gathers requests until
a batch holds ``max_batch`` crops or the first of them has waited ``max_wait_s``, then runs the whole
batch on a single model thread, so the event loop never waits on the model. While the model runs,
new requests queue up and form the next batch at once, so under load batches fill without waiting.

A request's crops stay together in one call (a request larger than ``max_batch`` is a batch of its
own). The recognizer groups crops by padded width, so a crop's text and confidence do not depend on
which requests it shared a batch with (see core/recognizer.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Predict = Callable[[list[np.ndarray]], Sequence[Any]]  # BGR crops -> one result per crop, in order
BatchHook = Callable[[int, float], None]  # (crops in the batch, seconds in the model)


class QueueFullError(Exception):
    """More crops are waiting than the queue admits; the caller should retry later (503)."""


class Batcher:
    """Gathers crops from concurrent requests into batches for one model session."""

    def __init__(
        self,
        predict: Predict,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: BatchHook | None = None,
    ) -> None:
        self._predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
        self.admitted = 0  # crops accepted and not yet answered (waiting or in the model)
        self._queue: asyncio.Queue[tuple[list[np.ndarray], asyncio.Future]] = asyncio.Queue()
        self._carry: tuple[list[np.ndarray], asyncio.Future] | None = None  # did not fit the last batch
        # One thread: one model call at a time on the one session this worker holds.
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crnn-model")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crnn-batcher")

    async def stop(self) -> None:
        """Stop after the current batch; requests still queued are failed (a drained server has none)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._model_thread.shutdown(wait=True)
        leftovers = [self._carry] if self._carry else []
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for _, fut in leftovers:
            if not fut.done():
                fut.set_exception(RuntimeError("the server is shutting down"))

    @contextlib.contextmanager
    def admit(self, n: int) -> Iterator[None]:
        """Hold room for ``n`` crops while a request is decoded and read; QueueFullError when full.

        Admission comes before decoding, so an overloaded worker refuses work before spending on it.
        """
        if self.admitted + n > self.max_queue:
            raise QueueFullError(f"{self.admitted} crops are queued (limit {self.max_queue})")
        self.admitted += n
        try:
            yield
        finally:
            self.admitted -= n

    async def submit(self, crops: list[np.ndarray]) -> list[Any]:
        """Results for ``crops`` (one per crop, in order) once the batch they join has run.
        The caller holds ``admit(len(crops))``."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((crops, fut))
        return await fut

    async def _next_batch(self) -> list[tuple[list[np.ndarray], asyncio.Future]]:
        loop = asyncio.get_running_loop()
        first = self._carry if self._carry is not None else await self._queue.get()
        self._carry = None
        batch = [first]
        size = len(first[0])
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if size + len(item[0]) > self.max_batch:
                self._carry = item  # starts the next batch: a request's crops are never split
                break
            batch.append(item)
            size += len(item[0])
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            live = [(crops, fut) for crops, fut in batch if not fut.done()]  # skip requests gone away
            if not live:
                continue
            crops = [c for cs, _ in live for c in cs]
            start = loop.time()
            try:
                results = await loop.run_in_executor(self._model_thread, self._predict, crops)
            except asyncio.CancelledError:  # stop() while the model ran: nobody is left to answer
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(RuntimeError("the server is shutting down"))
                raise
            except Exception as exc:  # the model failed on this batch: its requests get a 500, we go on
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(crops), loop.time() - start)
            at = 0
            for cs, fut in live:
                if not fut.done():
                    fut.set_result(list(results[at : at + len(cs)]))
                at += len(cs)
