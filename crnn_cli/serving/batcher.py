"""Dynamic batching: crops from requests that arrive together go to the model in one call.

Each request hands its decoded crops to ``Batcher.submit``. A worker holds one or more model
instances (sessions), each on a thread of its own; a background task hands the waiting requests to an
idle instance as one batch, so the event loop never waits on the model. A batch closes when:

- it holds ``max_batch`` crops (a request's crops stay together; a larger request is a batch alone);
- its oldest request has waited ``max_wait_s`` since it was queued (time spent waiting for a busy
  model counts, so work that piled up during a call goes at once);
- nothing more is on its way: no admitted request is still being decoded. Light traffic then pays no
  wait at all, and under load the model is never left idle while answers go out.

With several idle instances, the waiting crops are shared out evenly (a batch takes at most its share)
instead of the first instance taking everything while the others idle: with 16 clients and two
instances, two calls of 8 run side by side. The recognizer groups crops by padded width, so a crop's
text and confidence do not depend on which requests it shared a batch with (see core/recognizer.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

Predict = Callable[[list[np.ndarray]], Sequence[Any]]  # BGR crops -> one result per crop, in order
BatchHook = Callable[[int, float], None]  # (crops in the batch, seconds in the model)
Entry = tuple[list[np.ndarray], asyncio.Future, float]  # crops, their answer, when they were queued


class QueueFullError(Exception):
    """More crops are waiting than the queue admits; the caller should retry later (503)."""


class Batcher:
    """Gathers crops from concurrent requests into batches for the worker's model instances."""

    def __init__(
        self,
        predict: Predict | Sequence[Predict],
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: BatchHook | None = None,
    ) -> None:
        """predict: one function per model instance (a call runs on that instance's thread)."""
        self._predicts = [predict] if callable(predict) else list(predict)
        if not self._predicts:
            raise ValueError("a Batcher needs at least one model instance")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._on_batch = on_batch
        self.admitted = 0  # crops accepted and not yet answered (being decoded, queued or in the model)
        self.submitted = 0  # of those, the decoded ones (queued or in the model)
        self.in_model = 0  # of those, the ones in a model call now
        self._queue: asyncio.Queue[Entry] = asyncio.Queue()
        self._carry: Entry | None = None  # did not fit the last batch
        self._idle: asyncio.Queue[int] = asyncio.Queue()  # instances free for a call
        for instance in range(len(self._predicts)):
            self._idle.put_nowait(instance)
        # One thread an instance: one call at a time on each session.
        self._threads = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"crnn-model-{i}")
            for i in range(len(self._predicts))
        ]
        self._task: asyncio.Task | None = None
        self._calls: set[asyncio.Task] = set()

    @property
    def instances(self) -> int:
        return len(self._predicts)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="crnn-batcher")

    async def stop(self) -> None:
        """Stop; calls still running and requests still queued are failed (a drained server has none)."""
        for task in [self._task, *self._calls]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for thread in self._threads:
            thread.shutdown(wait=True)
        leftovers = [self._carry] if self._carry else []
        while not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for _, fut, _ in leftovers:
            if not fut.done():
                fut.set_exception(RuntimeError("the server is shutting down"))

    @contextlib.contextmanager
    def admit(self, n: int) -> Iterator[None]:
        """Hold room for ``n`` crops while a request is decoded and read; QueueFullError when full.

        Admission comes before decoding, so an overloaded worker refuses work before spending on it,
        and the batcher knows which requests are still on their way (being decoded).
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
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._queue.put_nowait((crops, fut, loop.time()))
        self.submitted += len(crops)
        try:
            return await fut
        finally:
            self.submitted -= len(crops)

    async def _next_batch(self) -> list[Entry]:
        loop = asyncio.get_running_loop()
        first = self._carry if self._carry is not None else await self._queue.get()
        self._carry = None
        batch = [first]
        size = len(first[0])
        limit = self.max_batch
        free = self._idle.qsize() + 1  # this batch's instance and the others idle now
        if free > 1:  # share what is waiting (or being decoded) among the idle instances
            limit = min(limit, max(1, math.ceil((self.admitted - self.in_model) / free)))
        deadline = first[2] + self.max_wait_s
        while size < limit:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0 or self.admitted == self.submitted:
                    break  # waited long enough, or no request is being decoded: nothing is coming
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if size + len(item[0]) > limit:
                self._carry = item  # starts the next batch: a request's crops are never split
                break
            batch.append(item)
            size += len(item[0])
        return batch

    async def _run(self) -> None:
        while True:
            instance = await self._idle.get()
            batch = await self._next_batch()
            live = [(crops, fut) for crops, fut, _ in batch if not fut.done()]  # skip requests gone away
            if not live:
                self._idle.put_nowait(instance)
                continue
            task = asyncio.get_running_loop().create_task(self._call(instance, live))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _call(self, instance: int, live: list[tuple[list[np.ndarray], asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        crops = [c for cs, _ in live for c in cs]
        start = loop.time()
        self.in_model += len(crops)
        try:
            results = await loop.run_in_executor(self._threads[instance], self._predicts[instance], crops)
        except asyncio.CancelledError:  # stop() while the model ran: nobody is left to answer
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(RuntimeError("the server is shutting down"))
            raise
        except Exception as exc:  # the model failed on this batch: its requests get a 500, we go on
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(exc)
            return
        finally:
            self.in_model -= len(crops)
            self._idle.put_nowait(instance)
        if self._on_batch is not None:
            self._on_batch(len(crops), loop.time() - start)
        at = 0
        for cs, fut in live:
            if not fut.done():
                fut.set_result(list(results[at : at + len(cs)]))
            at += len(cs)
