"""Training throughput of `crnn train`'s loop next to a bare PyTorch loop (issue "crnn train" target).

    python scripts/bench_train.py                 # shipped crnn_default config (synthetic + real data)
    python scripts/bench_train.py --quick         # a smoke run
    python scripts/bench_train.py -c scripts/default_model/crnn_default.yml --json train.json

Three ways of running the same optimiser steps, interleaved, each timed over --steps steps:

  ours        TorchTrainer as `crnn train` runs it: batches from its DataLoader (worker processes
              render, augment, decode and resize; collate pads and normalises), then train_step
              (LR schedule, forward, float32 CTC loss, finiteness checks, clipping, Adam, EMA).
  ours, step  the same train_step on pre-made batches: the loop without its data pipeline.
  bare        a plain loop on the same pre-made batches: same network (same seed), same optimiser
              (crnn_torch.optim.build_optimizer on the config), forward, CTC loss, backward, step.

Target: ours >= 0.9 x bare (samples/s). The profile section says where the difference goes: the cost
of one sample in a data worker per source, collate, and the parts of train_step that bare lacks.
The "ours" runs time steps after the loader's read-ahead is used up (--skip), so batches prepared
while another variant ran do not flatter it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET = 0.9


def load_config(
    spec: str, shared: Path, save_dir: Path, workers: int | None, batch: int, real_only: bool = False
) -> Any:
    """The config as `crnn train -c SPEC` reads it, minus evaluation, saving into ``save_dir``.

    real_only: a MixDataSet keeps only its real children (synthetic crops rendered on the fly cost a
    data worker about 2 ms each, real ones 0.3-0.6 ms), with the mix's transforms.
    """
    import yaml
    from crnn_torch.config import config_from_dict, resolve_config_path

    path = resolve_config_path(spec)
    raw = yaml.safe_load(path.read_text("utf-8"))
    raw.pop("Eval", None)
    mix = raw["Train"]["dataset"]
    if real_only and mix.get("name") == "MixDataSet":
        real = [c for c in mix["datasets"] if c.get("name") != "SynthDataSet"]
        if not real:
            raise SystemExit(f"{spec}: --real-only, but the mix has no real dataset")
        mix["datasets"], mix["ratio_list"] = real, [1.0] * len(real)
    g = raw.setdefault("Global", {})
    g["save_model_dir"] = str(save_dir)
    g["device"] = "cpu"
    raw["Train"]["loader"]["batch_size_per_card"] = batch
    if workers is not None:
        raw["Train"]["loader"]["num_workers"] = workers
    shared_real = str(shared / "data" / "real")

    def fix(node: Any) -> None:  # label files written as ../shared/... resolve against --shared
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("label_file_list", "text_files") and isinstance(value, list):
                    node[key] = [v.replace("../shared/data/real", shared_real) for v in value]
                elif key == "data_dir" and isinstance(value, str):
                    node[key] = value.replace("../shared/data/real", shared_real)
                else:
                    fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    fix(raw)
    return config_from_dict(raw, source=str(path))


def bare_loop(trainer: Any, batches: list[dict[str, Any]]) -> Any:
    """A plain PyTorch training loop over ``batches``; returns run() -> seconds for one pass."""
    import torch
    from crnn_torch.models import build_model
    from crnn_torch.optim import build_optimizer

    torch.manual_seed(trainer.config.Global.seed)
    model = build_model(trainer.arch, trainer.charset.num_classes, **trainer.arch_kwargs).train()
    opt = build_optimizer(model, trainer.config.Optimizer, trainer.config.Architecture.Head.fc_decay)
    ctc = torch.nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)
    # The same precision as the trainer (Global.amp): a bf16 run against a float32 loop would
    # compare number formats, not loops.
    dtype = trainer.amp_dtype

    def run() -> float:
        t = time.perf_counter()
        for b in batches:
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                logits = model(b["images"])
            logp = logits.float().log_softmax(2).transpose(0, 1)  # T, N, C
            lengths = torch.full((logp.shape[1],), logp.shape[0], dtype=torch.long)
            ctc(logp, b["targets"], lengths, b["target_lengths"]).backward()
            opt.step()
        return time.perf_counter() - t

    return run


def step_only(trainer: Any, batches: list[dict[str, Any]]) -> Any:
    """train_step alone on the (list, refilled by the caller) ``batches``."""

    def run() -> float:
        t = time.perf_counter()
        for b in batches:
            trainer.train_step(b)
            trainer.step += 1
        return time.perf_counter() - t

    return run


class LoaderRun:
    """TorchTrainer's loader + train_step, as fit() runs them; seconds for ``steps`` steps after ``skip``."""

    def __init__(self, trainer: Any, steps: int, skip: int) -> None:
        self.trainer, self.steps, self.skip = trainer, steps, skip
        self.epoch = 0
        self.it: Any = None
        self.last: list[dict[str, Any]] = []  # the timed batches of the last run, for the replays

    def _next(self) -> Any:
        while True:
            if self.it is None:
                self.trainer.train_sampler.set_epoch(self.epoch)
                self.it = iter(self.trainer.train_loader)
            try:
                return next(self.it)
            except StopIteration:
                self.epoch += 1
                self.it = None

    def __call__(self) -> float:
        tr = self.trainer
        stamps = []
        self.last = []
        for i in range(self.skip + self.steps):
            if i >= self.skip and not stamps:
                stamps.append(time.perf_counter())
            batch = self._next()
            tr.train_step(batch)
            tr.step += 1
            if stamps:
                self.last.append(batch)
        stamps.append(time.perf_counter())
        return stamps[-1] - stamps[0]


def profile(trainer: Any, batches: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Where the time goes: per-sample worker cost by source, collate, the loader alone, step parts."""
    import numpy as np
    import torch
    from crnn_torch.data import Collate, SampleSet

    out: dict[str, Any] = {}
    leaves = trainer.train_leaves
    ds = SampleSet(leaves, trainer.preprocess, trainer.charset, trainer.config.Global.seed)
    plan = trainer.train_sampler.plan.epoch(0)
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker
    from crnn_cli.core.images import cv2

    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        per_leaf: dict[str, list[float]] = {}
        items = []
        for number, leaf in enumerate(leaves):
            keys = [(int(a), int(b)) for a, b in plan[plan[:, 0] == number][:n]]
            times = []
            for slot, (lf, index) in enumerate(keys):
                t = time.perf_counter()
                items.append(ds[(lf, index, 0, slot)])
                times.append(time.perf_counter() - t)
            if times:
                per_leaf[leaf.name] = times
        out["sample_ms"] = {k: 1000 * statistics.median(v) for k, v in per_leaf.items()}
        share = {leaf.name: leaf.quota for leaf in leaves}
        total = sum(share.values())
        out["sample_ms_mix"] = sum(out["sample_ms"][k] * share[k] / total for k in out["sample_ms"])
        collate = Collate(trainer.preprocess)
        b = trainer.config.Train.loader.batch_size_per_card
        chunks = [items[i : i + b] for i in range(0, len(items) - b + 1, b)] or [items]
        t = time.perf_counter()
        for c in chunks:
            collate(c)
        out["collate_ms_per_sample"] = 1000 * (time.perf_counter() - t) / sum(len(c) for c in chunks)
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)

    # train_step in parts (the extras bare lacks), on the pre-made batches
    model, tr = trainer.model, trainer
    parts: dict[str, list[float]] = {}

    def tick(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        parts.setdefault(name, []).append(t1 - t0)
        return t1

    for batch in batches[: max(3, min(len(batches), 6))]:
        t = time.perf_counter()
        tr.schedule.apply(tr.optimizer, tr.step)
        buffers = [x.detach().clone() for x in model.buffers()]
        t = tick("schedule + BN buffer copy", t)
        logits = tr.net(batch["images"])
        t = tick("forward", t)
        loss = tr.loss(logits, batch["targets"], batch["target_lengths"])
        bool(torch.isfinite(loss))
        float(loss.detach())
        t = tick("CTC loss + finiteness check", t)
        loss.backward()
        t = tick("backward", t)
        params = [p for p in model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, tr.clip if tr.clip > 0 else float("inf"))
        bool(torch.isfinite(norm))
        t = tick("gradient clipping + check", t)
        tr.optimizer.step()
        tr.optimizer.zero_grad(set_to_none=True)
        t = tick("optimizer", t)
        if tr.ema is not None:
            tr.ema.update(model)
        t = tick("EMA update", t)
        del buffers
    out["step_ms"] = {k: 1000 * statistics.median(v) for k, v in parts.items()}
    out["step_samples"] = int(np.mean([len(b["texts"]) for b in batches]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--config", default="crnn_default", help="config file or shipped name")
    p.add_argument("--shared", type=Path, default=Path(os.environ.get("CRNN_SHARED", ROOT.parent / "shared")))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=None, help="override Train.loader.num_workers")
    p.add_argument(
        "--compare-workers", type=int, default=0, help="also time the loop with this many workers (-1: no)"
    )
    p.add_argument("--steps", type=int, default=None, help="timed steps per run (default 32; --quick 3)")
    p.add_argument(
        "--skip",
        type=int,
        default=None,
        help="untimed steps before each ours run (default: the loader's read-ahead)",
    )
    p.add_argument("--repeats", type=int, default=None, help="runs per variant (default 3; --quick 1)")
    p.add_argument("--quick", action="store_true")
    p.add_argument(
        "--real-only", action="store_true", help="train on the config's real data only (no synthetic)"
    )
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--width", type=int, default=160)
    args = p.parse_args(argv)
    if args.compare_workers is not None and args.compare_workers < 0:
        args.compare_workers = None
    steps = args.steps or (3 if args.quick else 32)
    skip_arg = args.skip
    repeats = args.repeats or (1 if args.quick else 3)
    os.chdir(ROOT)  # configs name their files relative to the repository root

    from crnn_torch.openmp import limit_spinning

    limit_spinning()  # as `crnn train` does, for all three loops (GOMP_SPINCOUNT=300000 for the old spin)
    import torch
    from crnn_torch.train import TorchTrainer

    started = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="crnn-bench-train-") as tmp:
        config = load_config(
            args.config, args.shared, Path(tmp) / "model", args.workers, args.batch, args.real_only
        )
        trainer = TorchTrainer(config, quiet=True, device="cpu", config_source=args.config)
        workers = config.Train.loader.num_workers
        # Batches the loader holds ready (workers x prefetch_factor tasks, a task being a chunk of
        # bucket_batches batches at dynamic width): the timed steps start after these are used up, or
        # a run would train on batches made while the workers had the cores to themselves.
        loader_cfg = config.Train.loader
        group = loader_cfg.bucket_batches if trainer.preprocess.dynamic_width else 1
        readahead = workers * loader_cfg.prefetch_factor * group
        skip = skip_arg if skip_arg is not None else max(2 if args.quick else 6, readahead)
        # The same run with the loader in the training process: same seed, so the very same batches.
        alt = None
        if args.compare_workers is not None and args.compare_workers != workers:
            alt_config = load_config(
                args.config, args.shared, Path(tmp) / "alt", args.compare_workers, args.batch, args.real_only
            )
            alt = TorchTrainer(alt_config, quiet=True, device="cpu", config_source=args.config)
        try:
            log(
                f"{trainer.arch}, batch {args.batch}, {workers} workers, torch threads {torch.get_num_threads()}"
            )
            run_ours = LoaderRun(trainer, steps, skip)
            replay: list[dict[str, Any]] = []  # refilled with the batches "ours" just trained on
            variants: dict[str, Any] = {"ours": run_ours}
            if alt is not None:
                variants[f"ours, {args.compare_workers} workers"] = LoaderRun(alt, steps, skip)
            variants["ours, step"] = step_only(trainer, replay)
            variants["bare"] = bare_loop(trainer, replay)
            shapes: list[list[int]] = []
            times: dict[str, list[float]] = {k: [] for k in variants}
            for r in range(repeats + 1):  # the first round warms up: workers, allocator, oneDNN kernels
                # "ours" first, then the replays of its batches (the other runs alternate their order)
                others = [k for k in variants if k != "ours"]
                for name in ["ours"] + (others if r % 2 == 0 else others[::-1]):
                    seconds = variants[name]()
                    if name == "ours":
                        replay[:] = run_ours.last
                        shapes += [list(b["images"].shape) for b in replay]
                    if r:
                        times[name].append(seconds)
                    time.sleep(0.2)
                if r:
                    rates = ", ".join(f"{k} {args.batch * steps / v[-1]:.1f}/s" for k, v in times.items())
                    log(f"repeat {r}: {rates}")
                else:
                    log("warm-up done")
            # the loader alone: how fast the workers fill batches with the cores to themselves
            for _ in range(skip):  # the read-ahead filled while the last variant ran
                run_ours._next()
            count = max(steps, 2 * readahead)  # whole chunks, several of them
            t = time.perf_counter()
            for _ in range(count):
                run_ours._next()
            loader_only = args.batch * count / (time.perf_counter() - t)
            sps = {k: args.batch * steps / statistics.median(v) for k, v in times.items()}
            prof = None if args.no_profile else profile(trainer, replay, 8 if args.quick else 24)
        finally:
            trainer.close()
            if alt is not None:
                alt.close()
    args.repeats_done, args.steps_done = repeats, steps
    render(args, sps, loader_only, prof, shapes, config, torch.get_num_threads(), time.monotonic() - started)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": args.config,
                    "real_only": args.real_only,
                    "batch": args.batch,
                    "steps": steps,
                    "repeats": repeats,
                    "seconds": times,
                    "samples_per_s": sps,
                    "loader_only_samples_per_s": loader_only,
                    "batch_shapes": shapes,
                    "profile": prof,
                    "cpu_count": os.cpu_count(),
                    "torch": torch.__version__,
                },
                indent=1,
            )
        )
    return 0


def render(
    args: argparse.Namespace, sps: dict[str, float], loader_only: float, prof: dict[str, Any] | None,
    shapes: list[list[int]], config: Any, threads: int, elapsed: float,
) -> None:  # fmt: skip
    import torch
    from rich.console import Console
    from rich.table import Table

    bare = sps["bare"]
    widths = sorted(s[3] for s in shapes)
    table = Table(
        title=f"crnn train throughput: {args.config}{' (real data only)' if args.real_only else ''}, batch {args.batch}, {os.cpu_count()} CPUs, torch {torch.__version__} ({threads} threads)",
        caption=f"timed batches' widths {widths[0]}..{widths[-1]} px (median {widths[len(widths) // 2]}); "
        f"median of {args.repeats_done} runs of {args.steps_done} steps; {elapsed:.0f} s; "
        f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'unset')}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}",
        caption_justify="left",
    )
    for col in ("measure", "samples/s", "vs bare", "target"):
        table.add_column(col, justify="right" if col != "measure" else "left")
    ratio = sps["ours"] / bare
    verdict = "met" if ratio >= TARGET else f"MISSED by {100 * (TARGET - ratio) / TARGET:.0f} %"
    table.add_row("bare PyTorch loop (the batches ours trained on)", f"{bare:.1f}", "1.00", "")
    table.add_row(
        "ours: train_step on those batches (no DataLoader)",
        f"{sps['ours, step']:.1f}",
        f"{sps['ours, step'] / bare:.2f}",
        "",
    )
    workers = config.Train.loader.num_workers
    table.add_row(f"ours: DataLoader ({workers} workers) + train_step (crnn train)", f"{sps['ours']:.1f}",
                  f"{ratio:.2f}", f">= {TARGET}: {verdict}", style="green" if ratio >= TARGET else "red")  # fmt: skip
    for name, value in sps.items():
        if name.startswith("ours, ") and name.endswith("workers"):
            n = name.split()[1]
            table.add_row(
                f"ours: same batches, DataLoader with {n} workers", f"{value:.1f}", f"{value / bare:.2f}", ""
            )
    table.add_row("DataLoader alone (no training)", f"{loader_only:.1f}", f"{loader_only / bare:.2f}", "")
    if prof is not None:
        for name, ms in prof["sample_ms"].items():
            table.add_row(f"profile: one sample in a worker, {name}", f"{1000 / ms:.0f}", "", f"{ms:.2f} ms")
        table.add_row("profile: one sample, mix-weighted", f"{1000 / prof['sample_ms_mix']:.0f}", "",
                      f"{prof['sample_ms_mix']:.2f} ms")  # fmt: skip
        table.add_row("profile: collate, per sample", "", "", f"{prof['collate_ms_per_sample']:.3f} ms")
        for name, ms in prof["step_ms"].items():
            table.add_row(f"profile: train_step part, {name}", "", "", f"{ms:.1f} ms / batch")
    Console(width=args.width).print(table)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
