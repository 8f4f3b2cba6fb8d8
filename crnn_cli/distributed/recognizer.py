"""RayRecognizer: the core Recognizer's streaming interface, with the work done by a Ray actor pool.

``recognize(inputs, names)`` yields one Result per input, in input order, like Recognizer.recognize, so
`crnn recognize` and `crnn eval` (through evaluation.evaluate_dataset, which scores and counts exactly
as without Ray) only swap the object. Paths travel as paths (each worker reads the file where it lies);
encoded bytes (eval's samples) travel in the rows.

Inputs go to Ray a window at a time (one Ray Data run each, its actors started once), so a stream of a
hundred million paths never sits on the driver. Every result carries its input's index: the driver
puts them back in order and checks that each index came back exactly once.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from crnn_cli.core.errors import CrnnError, UsageError
from crnn_cli.core.recognizer import Result, _source_name
from crnn_cli.distributed.cluster import ClusterError, connect, disconnect, import_ray, quiet_ray_data
from crnn_cli.distributed.dataset import prepare_job
from crnn_cli.distributed.worker import CHAR_CONFIDENCES, CONFIDENCE, ERROR, TEXT, as_text

# One Ray Data run per window: larger windows start the actor pool less often; each row costs the
# driver a path (or an encoded crop) until the window is done.
WINDOW_ROWS = 200_000
WINDOW_BYTES = 256 << 20  # encoded crops (eval) in one window, at most
# Ray restarts a dead actor and retries its batch; when Ray Data gives up on the run anyway (an actor
# killed while it started, seen on a loaded machine), the window's unfinished inputs run again.
WINDOW_RETRIES = 3


class WorkerLostError(ClusterError):
    """A Ray run failed because a worker, an actor or a node went away (not because of our code)."""


class RayRecognizer:
    """Recognise on a Ray cluster. address: ``local``, ``auto`` or a cluster address (cluster.py).

    actors: model sessions in the pool (default: the cluster's CPUs / threads); threads: intra-op
    threads per actor (default 1). init_options go to ray.init when this starts the connection.
    Other arguments are the core Recognizer's; the model is opened here first, to check them.
    """

    def __init__(
        self,
        address: str,
        model: str | os.PathLike[str] | None = None,
        backend: str | None = None,
        *,
        actors: int | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        char_confidences: bool = False,
        window: int = WINDOW_ROWS,
        rows_per_task: int | None = None,
        init_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if window < 1:
            raise UsageError(f"window must be at least 1, got {window}")
        import_ray()  # the missing extra is the first thing to say
        # Checked before Ray starts: a wrong option costs no cluster start-up.
        self.job = prepare_job(
            model,
            backend,
            actors=actors,
            threads=threads or 1,
            batch_size=batch_size,
            rows_per_task=rows_per_task,
            **options,
        )
        self.model_path = self.job.model_path
        self.backend = self.job.backend
        self.selection = self.job.selection
        self.char_confidences = char_confidences
        self.window = window
        self.window_retries = 0  # windows (or their unfinished part) run again after a lost worker
        self._started = connect(address, **(init_options or {}))
        quiet_ray_data()
        from ray.data import DataContext

        self._ctx = DataContext.get_current()
        self._preserve = self._ctx.execution_options.preserve_order
        # Blocks come back in input order, so the driver's reorder buffer stays near empty.
        self._ctx.execution_options.preserve_order = True

    # -- context management --------------------------------------------------------------------------
    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.execution_options.preserve_order = self._preserve
            self._ctx = None
            disconnect(self._started)
            self._started = False

    def __enter__(self) -> RayRecognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- windows of rows -------------------------------------------------------------------------------
    def _windows(
        self, inputs: Iterable[Any], names: Iterable[str] | None
    ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(kind, rows) per window: kind "path" rows carry the path, "image" rows the encoded bytes."""
        name_iter = iter(names) if names is not None else None
        rows: list[dict[str, Any]] = []
        kind = ""
        size = 0
        for index, src in enumerate(inputs):
            name = next(name_iter) if name_iter is not None else _source_name(src)
            if isinstance(src, (str, os.PathLike)):
                row_kind, row = "path", {"index": index, "path": os.fsencode(src)}
            elif isinstance(src, (bytes, bytearray, memoryview)):
                data = bytes(src)
                row_kind, row = "image", {"index": index, "image": data, "path": os.fsencode(name)}
                size += len(data)
            else:
                raise UsageError(
                    f"input {index}: Ray runs take paths or encoded image bytes, not {type(src)}"
                )
            if rows and row_kind != kind:
                yield kind, rows
                rows, size = [], 0
            kind = row_kind
            rows.append(row)
            if len(rows) >= self.window or size >= WINDOW_BYTES:
                yield kind, rows
                rows, size = [], 0
        if rows:
            yield kind, rows

    def _blocks(self, rows: list[dict[str, Any]]) -> int:
        return max(1, -(-len(rows) // self.job.rows_per_task))

    def _run(self, kind: str, rows: list[dict[str, Any]], sink: Any = None) -> Any:
        """One window's output dataset; no more actors than the window has blocks to give them."""
        import ray.data

        blocks = self._blocks(rows)
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        return self.job.apply(
            ds, kind, kind, "path", self.char_confidences, sink=sink, whole_blocks=True, max_actors=blocks
        )

    # -- streaming API ---------------------------------------------------------------------------------
    def recognize(self, inputs: Iterable[Any], names: Iterable[str] | None = None) -> Iterator[Result]:
        """One Result per input, in input order (paths, or encoded image bytes with their names)."""
        for kind, rows in self._windows(inputs, names):
            done = 0
            for attempt in range(WINDOW_RETRIES + 1):
                todo = rows[done:]
                try:
                    for result in _in_order(self._run(kind, todo), todo[0]["index"], len(todo)):
                        done += 1
                        yield result
                    break
                except WorkerLostError:
                    if attempt == WINDOW_RETRIES:
                        raise
                    self.window_retries += 1  # the inputs not yet yielded go round again
                    _settle(attempt)

    def write_output(
        self,
        inputs: Iterable[Any],
        directory: str | os.PathLike[str],
        fmt: str,
        on_batch: Callable[[int, list[str]], None] | None = None,
    ) -> tuple[int, int]:
        """Recognise into shard files under ``directory`` (see shards.py); (inputs, failed).

        on_batch(inputs in the batch, errors) is called as each batch's shard lands.
        """
        from crnn_cli.distributed import shards

        folder = Path(directory)
        token = shards.prepare_output(folder)
        sink = shards.ShardSink(str(folder.resolve()), fmt, self.char_confidences, token)
        done = failed = 0
        names = []
        for kind, rows in self._windows(inputs, None):
            ranges: set[tuple[int, int, int]] = set()
            for attempt in range(WINDOW_RETRIES + 1):
                try:
                    # A window run again rewrites the same shards (same blocks, same names): only
                    # batches not seen before are counted.
                    for batch in batches(self._run(kind, rows, sink)):
                        for k in range(len(batch["first"])):
                            n, errors = int(batch["count"][k]), json.loads(batch["errors"][k])
                            span = (int(batch["first"][k]), int(batch["last"][k]), n)
                            if span in ranges:
                                continue
                            ranges.add(span)
                            names.append(str(batch["shard"][k]))
                            done += n
                            failed += len(errors)
                            if on_batch is not None:
                                on_batch(n, errors)
                    break
                except WorkerLostError:
                    if attempt == WINDOW_RETRIES:
                        raise
                    self.window_retries += 1
                    _settle(attempt)
            shards.check_coverage(sorted(ranges), rows[0]["index"], len(rows))
        summary = {
            "inputs": done,
            "failed": failed,
            "format": fmt,
            "model": str(self.model_path),
            "backend": self.backend.name,
            "shards": sorted(set(names)),
        }
        shards.finish_output(folder, summary)
        return done, failed


def batches(out: Any) -> Iterator[dict[str, Any]]:
    """The output dataset's blocks as numpy batches; a run Ray could not finish becomes ClusterError
    (the worker's own error when it raised one, e.g. a shard folder it cannot see)."""
    import ray.exceptions

    lost = tuple(
        getattr(ray.exceptions, name)
        for name in ("RayActorError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError")
        if hasattr(ray.exceptions, name)
    )
    try:
        yield from out.iter_batches(batch_format="numpy", batch_size=None)
    except ray.exceptions.RayError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, CrnnError):
            raise type(cause)(str(cause)) from None
        if isinstance(exc, lost) or isinstance(cause, lost):
            raise WorkerLostError(f"the Ray run lost a worker: {_first_line(exc)}") from exc
        raise ClusterError(f"the Ray run failed: {_first_line(exc)}") from exc


def _settle(attempt: int) -> None:
    """Wait before running a window again (1, 2, 4... seconds), so the abandoned run's actors can retire
    and free their CPUs first. It does not cure the cancelled replacements seen after local-instance runs
    in the same process (README, Ray: known issue)."""
    time.sleep(2.0**attempt)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def _in_order(out: Any, first: int, count: int) -> Iterator[Result]:
    """Results of a window's output dataset by input index; each index exactly once, or ClusterError."""
    pending: dict[int, Result] = {}
    expected = first
    for batch in batches(out):
        index = batch["index"]
        cc = batch.get(CHAR_CONFIDENCES)
        for k in range(len(index)):
            i = int(index[k])
            if i < expected or i in pending:
                continue  # a batch delivered twice (never seen; Ray Data should not): kept once
            error = batch[ERROR][k]
            pending[i] = Result(
                i,
                as_text(batch["path"][k]),
                text=str(batch[TEXT][k] or ""),
                confidence=float(batch[CONFIDENCE][k]),
                char_confidences=tuple(float(c) for c in cc[k]) if cc is not None else (),
                error=error if isinstance(error, str) and error else None,  # Arrow's null: None or NaN
            )
        while expected in pending:
            yield pending.pop(expected)
            expected += 1
    if expected != first + count:
        raise ClusterError(
            f"Ray returned results for {expected - first} of {count} inputs in this window "
            f"(the first missing is input {expected})"
        )
