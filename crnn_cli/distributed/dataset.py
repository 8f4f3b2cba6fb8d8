"""The Python API: a Ray Dataset of crops in, the same rows with text and confidence out.

The model is opened once on the driver first, so a wrong path, dictionary or option fails here with
the single-machine message, and ``--backend auto`` is settled once for every worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crnn_cli.core.errors import UsageError

# Crops per Ray task: the unit Ray retries when a worker dies, and the grain of load balancing.
DEFAULT_ROWS_PER_TASK = 256
# Columns taken as the crops, in order of preference (ray.data.read_images gives "image",
# read_binary_files "bytes" and, with include_paths, "path").
PAYLOAD_COLUMNS = (("image", "image"), ("bytes", "image"), ("path", "path"))


@dataclass
class RecognizeJob:
    """A model checked on the driver and put in the object store, ready to map datasets with."""

    model_path: Path
    backend: Any  # the core Backend the driver resolved; workers open the same one
    selection: Any  # autoselect's Selection when --backend auto measured, else None
    options: dict[str, Any]  # Recognizer keyword arguments for the workers
    threads: int  # intra-op threads per actor, and the CPUs Ray reserves for it
    actors: int | None  # actor pool size; None: the cluster's CPUs / threads
    rows_per_task: int = DEFAULT_ROWS_PER_TASK
    bundle_ref: Any = field(default=None, repr=False)

    def ship(self) -> None:
        """Put the model's files in Ray's object store (once; every actor reads that copy)."""
        if self.bundle_ref is None:
            import ray

            from crnn_cli.distributed.bundle import pack

            self.bundle_ref = ray.put(pack(self.model_path, self.options.get("dictionary")))

    def pool_size(self) -> int:
        if self.actors is not None:
            return self.actors
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(1, cpus // self.threads)

    def apply(
        self,
        ds: Any,
        column: str,
        kind: str,
        names: str | None,
        char_confidences: bool = False,
        sink: Any = None,
        whole_blocks: bool = False,
        max_actors: int | None = None,
    ) -> Any:
        """``ds.map_batches`` through an actor pool of RecognizeWorkers; ``whole_blocks``: one batch per
        input block (so a batch is a run of consecutive rows, as shards.py needs)."""
        import ray.data

        from crnn_cli.distributed.worker import RecognizeWorker

        self.ship()
        size = self.pool_size() if max_actors is None else min(self.pool_size(), max_actors)
        return ds.map_batches(
            RecognizeWorker,
            fn_constructor_kwargs={
                "bundle": self.bundle_ref,
                "backend": self.backend.name,
                "options": self.options,
                "column": column,
                "kind": kind,
                "names": names,
                "char_confidences": char_confidences,
                "sink": sink,
            },
            batch_size=None if whole_blocks else self.rows_per_task,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=self.threads,
            # Fault tolerance is Ray Data's default for actor pools: an actor that dies is started
            # again (max_restarts=-1) and its batch retried (max_task_retries=-1); the two-node
            # test kills a worker mid-run to hold Ray to it.
        )


def prepare_job(
    model: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    *,
    actors: int | None = None,
    threads: int = 1,
    batch_size: int = 32,
    rows_per_task: int | None = None,
    **options: Any,
) -> RecognizeJob:
    """Open the model here once (checks every option, settles the backend), then close it."""
    from crnn_cli.core.recognizer import Recognizer

    if actors is not None and actors < 1:
        raise UsageError(f"actors must be at least 1, got {actors}")
    if threads < 1:
        raise UsageError(f"threads must be at least 1, got {threads}")
    options = {**options, "batch_size": batch_size, "threads": threads}
    with Recognizer(model, backend, **options) as probe:
        job = RecognizeJob(
            model_path=probe.model_path,
            backend=probe.backend,
            selection=probe.selection,
            options=options,
            threads=threads,
            actors=actors,
            rows_per_task=rows_per_task or max(DEFAULT_ROWS_PER_TASK, batch_size),
        )
    if job.selection is not None and job.selection.hint is not None:
        # autoselect chose an OpenVINO hint too: the workers keep it (see Recognizer.__init__).
        from dataclasses import replace

        from crnn_cli.core.backend import SessionOptions

        so = options.get("session_options") or SessionOptions(threads=threads)
        job.options["session_options"] = replace(so, performance_hint=job.selection.hint)
    return job


def recognize_dataset(
    ds: Any,
    model: str | os.PathLike[str] | None = None,
    *,
    column: str | None = None,
    actors: int | None = None,
    threads: int = 1,
    backend: str | None = None,
    batch_size: int = 32,
    rows_per_task: int | None = None,
    char_confidences: bool = False,
    **options: Any,
) -> Any:
    """Map a Ray Dataset of crops to one with ``text``, ``confidence`` and ``error`` columns.

    column: the crops: ``image`` (encoded bytes, or H x W x 3 RGB arrays from ray.data.read_images),
        ``bytes`` (ray.data.read_binary_files) or ``path`` (files every node can read); default: the
        first of those the dataset has. The other columns pass through; an array or bytes column of
        crops does not (it would double the output's size).
    actors: model sessions (Ray actors) in the pool; default: the cluster's CPUs / threads.
    threads: intra-op threads per actor; Ray reserves that many CPUs for each.
    error: None for a crop that was read, else what went wrong, naming the crop by its ``path`` column
        (or its row); its text is empty and confidence 0.
    Other keyword arguments are those of the core Recognizer (dictionary, rotate_vertical, decoder, ...).
    Lazy, like every Ray Dataset: nothing runs until the result is consumed.
    """
    names_in = ds.schema(fetch_if_missing=True).names
    if column is None:
        column = next((c for c, _ in PAYLOAD_COLUMNS if c in names_in), None)
        if column is None:
            raise UsageError(
                f"the dataset has no image, bytes or path column (it has {', '.join(names_in)}): "
                "name the crops' column with column="
            )
    elif column not in names_in:
        raise UsageError(f"the dataset has no column {column!r} (it has {', '.join(names_in)})")
    kind = dict(PAYLOAD_COLUMNS).get(column, "image")
    names = "path" if "path" in names_in else None
    job = prepare_job(
        model,
        backend,
        actors=actors,
        threads=threads,
        batch_size=batch_size,
        rows_per_task=rows_per_task,
        **options,
    )
    return job.apply(ds, column, kind, names, char_confidences)
