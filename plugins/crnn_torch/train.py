"""`crnn train`: train a CRNN from a PaddleOCR-style config, resumable, single process or DDP.

Read top to bottom: ``train()`` loads the config and runs a ``TorchTrainer``. The trainer builds the
model (config.resolve_arch -> models.build_model), the data (data.py), the optimiser and schedule
(optim.py), then ``fit()`` loops: a step is forward (autocast when AMP is on), CTC loss in float32,
a skip if the loss or gradients are not finite, gradient clipping, optimiser and EMA update. Every
``eval_batch_step`` it evaluates (PaddleOCR RecMetric) and saves ``latest.pt`` and, when the main
indicator improves, ``best_accuracy.pt``; metrics go to ``metrics.jsonl`` and ``curves.png``.

SIGINT / SIGTERM finish the current step, save ``latest.pt`` and return; ``--resume`` continues the
same run (weights, optimiser, schedule, RNG and data position restored). Under torchrun (RANK and
WORLD_SIZE set) the model runs as DistributedDataParallel; only rank 0 writes files.

This module is the loop and what ties it together; each concern it calls on has its own module:
distributed.py (torchrun, collectives), amp.py (autocast dtype), optim.py (optimiser, schedule, EMA),
evaluation.py (scoring on Eval), run_state.py (what a checkpoint holds, resume), checkpoint.py (the
file), run_dir.py (the run folder, metrics.jsonl, curves) and progress.py (stderr).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn_cli.core.charset import Charset, load_charset
from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.errors import ConfigError, DatasetError
from crnn_cli.core.metrics import Accumulator
from crnn_torch import amp, evaluation, run_state
from crnn_torch import checkpoint as ckpt_io
from crnn_torch.config import load_config, resolve_arch
from crnn_torch.config_schema import TrainConfig
from crnn_torch.data import build_leaves, make_loader, preprocess_config, stats_dict, stats_lines
from crnn_torch.distill import OnlineTeacher, TargetTable, build_table, kl_loss
from crnn_torch.distributed import any_rank, init_distributed
from crnn_torch.optim import Ema, LrSchedule, all_finite, build_optimizer
from crnn_torch.progress import Reporter
from crnn_torch.run_dir import RunDir, claim_save_dir


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TorchTrainer:
    """Everything a training run holds. ``fit()`` runs it; ``train_step``/``evaluate`` are usable alone
    (a benchmark can time ``train_step`` on batches from ``self.train_loader``)."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: str | Path | None = None,
        device: str | None = None,
        quiet: bool = False,
        config_source: str | None = None,
    ) -> None:
        if config.Train is None:
            raise ConfigError(f"{config_source or 'the config'}: no Train section: nothing to train on")
        self.config = config
        self.train_split = config.Train  # not None, checked above
        g = config.Global
        self.config_source = config_source
        want = device or g.device
        if want == "auto":
            want = "cuda" if g.use_gpu and torch.cuda.is_available() else "cpu"
        self.dist = init_distributed(want.startswith("cuda"))
        if want == "cuda":
            want = f"cuda:{self.dist.local_rank}"
        self.device = torch.device(want)
        self.report = Reporter(quiet, self.dist.main)
        if g.threads:
            torch.set_num_threads(g.threads)
        if g.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(g.seed)

        self._build_model()
        self._build_data()
        self._build_optimisation()

        # Progress state (restored by resume).
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.last_eval: dict[str, Any] | None = None
        self.skipped_steps = 0
        # The smoothed loss's window; saved in checkpoints so that a resumed run's curve goes on smoothly.
        self.losses: deque[float] = deque(maxlen=g.log_smooth_window)
        self.distill_losses: deque[float] = deque(maxlen=g.log_smooth_window)  # its KL term, when distilling
        self._saved_step: int | None = None
        self._stop_signal: str | None = None
        self._stop_flag = False
        self.save_dir = Path(g.save_model_dir)
        self.run_dir = RunDir(self.save_dir, self.dist.main)

        resume = resume or g.checkpoints
        if resume:
            run_state.restore(self, resume)
            self.run_dir.load_records(self.step)
        elif g.pretrained_model:
            report = ckpt_io.load_pretrained(self.model, g.pretrained_model)
            self.report.info(f"pretrained: {report.summary()}")
            if self.ema is not None:
                self.ema = Ema(self.model, g.ema_decay)

    def _build_model(self) -> None:
        """Dictionary, preprocessing and network (seeded: the same config builds the same weights)."""
        config, g = self.config, self.config.Global
        self.charset: Charset = load_charset(g.character_dict_path, use_space_char=g.use_space_char)
        self.preprocess = preprocess_config(self.train_split.dataset)
        from crnn_torch.models import build_model, canonical_arch

        arch, kwargs = resolve_arch(config.Architecture)
        self.arch = canonical_arch(arch)
        self.model: nn.Module = build_model(
            self.arch, self.charset.num_classes, in_channels=self.preprocess.channels, **kwargs
        ).to(self.device)
        built = dict(getattr(self.model, "config", {}))
        self.arch_kwargs = {k: v for k, v in built.items() if k not in ("arch", "num_classes")} or {
            "in_channels": self.preprocess.channels,
            **kwargs,
        }

    def _build_data(self) -> None:
        """Sources, epoch plans and loaders; labels are read and filtered before any worker starts."""
        config, g = self.config, self.config.Global
        self.train_leaves = build_leaves(
            self.train_split.dataset, self.charset, g.max_text_length, g.seed, "Train.dataset"
        )
        pin = self.device.type == "cuda"
        targets = self._distillation_targets()
        self.train_loader, self.train_sampler = make_loader(
            self.train_leaves, self.preprocess, self.charset, self.train_split.loader, g.seed,
            train=True, rank=self.dist.rank, world=self.dist.world, pin_memory=pin, targets=targets,
        )  # fmt: skip
        self.steps_per_epoch = len(self.train_sampler)
        if self.steps_per_epoch == 0:
            raise DatasetError(
                f"Train.dataset: {self.train_sampler.plan.size} samples per epoch make no full batch of "
                f"{self.train_split.loader.batch_size_per_card} x {self.dist.world} processes; lower "
                "Train.loader.batch_size_per_card or add data"
            )
        self.eval_loader = None
        self.eval_leaves: list[Any] = []
        self.eval_preprocess = self.preprocess
        if config.Eval is not None:
            self.eval_leaves = build_leaves(
                config.Eval.dataset, self.charset, g.max_text_length, g.seed, "Eval.dataset", for_eval=True
            )
            eval_pre = self.eval_preprocess = preprocess_config(config.Eval.dataset, fallback=self.preprocess)
            self.eval_loader, self.eval_sampler = make_loader(
                self.eval_leaves, eval_pre, self.charset, config.Eval.loader, g.seed,
                train=False, rank=self.dist.rank, world=self.dist.world, pin_memory=pin,
            )  # fmt: skip

    def _distillation_targets(self) -> TargetTable | None:
        """The teacher's soft targets for the leaves that Distillation names (built once, cached)."""
        spec = self.config.Distillation
        if spec is None or spec.online:
            return None
        wanted = {str(Path(f).resolve()): f for f in spec.label_files}
        chosen = [
            leaf for leaf in self.train_leaves
            if leaf.label_file is not None and str(Path(leaf.label_file).resolve()) in wanted
        ]  # fmt: skip
        found = {str(Path(leaf.label_file).resolve()) for leaf in chosen if leaf.label_file}
        missing = [f for key, f in wanted.items() if key not in found]
        if missing:
            raise ConfigError(
                f"Distillation.label_files: {', '.join(missing)} is not a label file of Train.dataset "
                "(name the files as the SimpleDataSet entries do)"
            )
        cache = Path(self.config.Global.save_model_dir) / "distill"
        if self.dist.enabled and not self.dist.main:  # rank 0 runs the teacher, the others read its cache
            torch.distributed.barrier()
        table = build_table(spec, chosen, self.charset, cache, self.report)
        if self.dist.enabled and self.dist.main:
            torch.distributed.barrier()
        for leaf in chosen:
            leaf.distill = True
        return table

    def _build_optimisation(self) -> None:
        """Optimiser, schedule, AMP, EMA, clipping, CTC loss and the DDP wrapper."""
        config, g = self.config, self.config.Global
        self.total_steps = g.max_steps or g.epoch_num * self.steps_per_epoch
        self.optimizer = build_optimizer(self.model, config.Optimizer, config.Architecture.Head.fc_decay)
        self.schedule = LrSchedule(config.Optimizer.lr, self.steps_per_epoch, self.total_steps)
        self.amp_dtype, need_scaler = amp.autocast_dtype(g.amp_mode, self.device)
        if g.amp_mode == "bf16" and self.device.type == "cpu" and not amp.cpu_has_native_bf16():
            self.report.info(f"warning: {amp.SLOW_BF16}")
        self.scaler = torch.amp.GradScaler(self.device.type) if need_scaler else None
        self.ema = Ema(self.model, g.ema_decay) if g.ema else None
        self.clip = g.grad_clip or (config.Optimizer.clip_norm or 0.0)
        self.ctc = nn.CTCLoss(blank=0, reduction="none", zero_infinity=True)
        spec = config.Distillation
        self.teacher = (
            OnlineTeacher(spec, self.charset, self.preprocess.height, self.preprocess.channels, self.device)
            if spec is not None and spec.online and spec.weight > 0
            else None
        )
        if self.teacher is not None:
            self.report.info(f"distillation: online, {self.teacher.path} reads every batch")
        self.net: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # -- checkpoints -----------------------------------------------------------------------------------

    def save(self, *names: str) -> Path | None:
        """Write the checkpoint under each name (latest, best_accuracy, iter_epoch_N); rank 0 writes."""
        payload = run_state.payload(self)  # every rank: the RNG gather is collective
        if "latest" in names:
            self._saved_step = self.step  # on every rank, so that all take the same decisions
        if not self.dist.main:
            return None
        path = None
        for name in names:
            path = ckpt_io.save_checkpoint(payload, self.save_dir / f"{name}{ckpt_io.SUFFIX}")
        return path

    # -- one step ------------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        return amp.autocast(self.device, self.amp_dtype)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
        """Mean per-sample CTC loss, in float32 whatever the autocast dtype. logits: N, T, C."""
        with torch.autocast(self.device.type, enabled=False):
            log_probs = logits.float().log_softmax(2).transpose(0, 1)  # T, N, C
            t, n = log_probs.shape[:2]
            lengths = torch.full((n,), t, dtype=torch.long, device=log_probs.device)
            return self.ctc(log_probs, targets, lengths, target_lengths).mean()

    @torch.no_grad()
    def _restore_buffers(self, saved: list[torch.Tensor]) -> None:
        for buf, old in zip(self.model.buffers(), saved):
            buf.copy_(old)

    def train_step(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One optimiser step on ``batch`` (collate output). Returns loss, lr, and whether it was skipped."""
        self.net.train()
        lr = self.schedule.apply(self.optimizer, self.step)
        images = batch["images"].to(self.device, non_blocking=True)
        targets = batch["targets"].to(self.device, non_blocking=True)
        lengths = batch["target_lengths"].to(self.device, non_blocking=True)
        # The forward pass updates BatchNorm statistics; a batch that turns out bad must not leave NaN
        # there, so keep a copy (a few thousand numbers) to put back.
        buffers = [b.detach().clone() for b in self.model.buffers()]
        with self._autocast():
            logits = self.net(images)
        loss = self.loss(logits, targets, lengths)
        distill = None
        spec = self.config.Distillation
        soft = frames = None
        if self.teacher is not None:  # online: the teacher reads this very batch
            with self._autocast():
                soft, frames = self.teacher.targets(images, batch["widths"])
        elif spec is not None and "soft" in batch and spec.weight > 0:  # the table's targets
            soft = batch["soft"].to(self.device, non_blocking=True)
            frames = batch["soft_frames"].to(self.device, non_blocking=True)
        if soft is not None:
            assert spec is not None and frames is not None
            distill = kl_loss(logits, soft, frames, spec.temperature, spec.frames)
            loss = loss + spec.weight * distill
        bad_loss, self._stop_flag = any_rank(
            self.dist, self.device, not bool(torch.isfinite(loss)), self._stop_signal is not None
        )
        out = {"loss": float(loss.detach()), "lr": lr, "skipped": None, "logits": logits.detach()}
        if distill is not None:
            out["distill"] = float(distill.detach())
        if bad_loss:
            self.optimizer.zero_grad(set_to_none=True)
            self._restore_buffers(buffers)
            out["skipped"] = "non-finite loss"
            return out
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.clip if self.clip > 0 else float("inf"))
        if not torch.isfinite(norm):  # gradients are all-reduced, so every rank sees the same norm
            if self.scaler is not None:
                self.scaler.update()  # lets the scaler lower its scale, as it would have
            self.optimizer.zero_grad(set_to_none=True)
            self._restore_buffers(buffers)
            out["skipped"] = "non-finite gradients"
            return out
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        out["grad_norm"] = float(norm)
        return out

    # -- evaluation ----------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """Word accuracy and normalised edit distance on the Eval set (PaddleOCR RecMetric)."""
        if self.eval_loader is None:
            raise ConfigError("no Eval section in the config: nothing to evaluate on")
        return evaluation.evaluate(
            self.model, self.eval_loader, self.eval_sampler, self.eval_leaves, self.charset,
            self.config.Metric, ema=self.ema, dist=self.dist, device=self.device, amp_dtype=self.amp_dtype,
        )  # fmt: skip

    # -- the loop ------------------------------------------------------------------------------------

    def _eval_and_save(self) -> None:
        result = self.evaluate()
        self.last_eval = {"step": self.step, **result}
        key = self.config.Metric.main_indicator
        value = float(result[key])
        weights = self.ema.shadow.values() if self.ema is not None else self.model.state_dict().values()
        improved = math.isfinite(value) and (self.best is None or value > self.best)
        names = ["latest"]
        if improved and all_finite(weights):
            self.best, self.best_step = value, self.step
            names.append("best_accuracy")
        elif improved:
            self.report.info(f"step {self.step}: weights hold NaN/inf; not saved as best")
        self.run_dir.log(
            {"event": "eval", "step": self.step, "epoch": self.epoch, **result, "best": self.best}
        )
        self.save(*names)
        best = f"{self.best:.4f}" if self.best is not None else "n/a"
        self.report.info(
            f"eval step {self.step}: acc {result['acc']:.4f} norm_edit_dis {result['norm_edit_dis']:.4f} "
            f"({result['count']} samples); best {key} {best}"
        )
        self.run_dir.plot()

    def _eval_due(self) -> bool:
        if self.eval_loader is None:
            return False
        start, interval = self.config.Global.eval_start_interval
        return self.step > start and (self.step - start) % interval == 0

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask the loop to stop after the current step; a second Ctrl-C aborts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name
            self.report.info(f"{self._stop_signal}: finishing this step, then saving a checkpoint")

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def fit(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train until the configured end (or ``stop_at`` steps, saving a resumable checkpoint)."""
        g = self.config.Global
        for line in stats_lines(self.train_leaves):
            self.report.info(f"train data: {line}")
        for line in stats_lines(self.eval_leaves):
            self.report.info(f"eval data: {line}")
        self.report.info(
            f"{self.arch} ({sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M parameters), "
            f"{self.charset.num_classes} classes, input {self.preprocess.channels}x{self.preprocess.height}x"
            f"{'dynamic' if self.preprocess.dynamic_width else self.preprocess.width}, {self.steps_per_epoch} "
            f"steps/epoch x {self.dist.world} process(es), {self.total_steps} steps, device {self.device}"
        )
        self.run_dir.write_config(self.config)
        self.run_dir.drop_stale_metrics()
        self.run_dir.log(
            {"event": "start", "step": self.step, "epoch": self.epoch, "world_size": self.dist.world}
        )
        losses = self.losses
        started, seen, start_step = time.monotonic(), 0, self.step
        finished = self.step >= self.total_steps
        stopped_early = False
        last: tuple[dict[str, Any], dict[str, Any]] | None = None  # the last step's output and batch
        logged_step = None
        with self._signals():
            end = self.total_steps if stop_at is None else min(self.total_steps, stop_at)
            self.report.start(end, self.step)
            try:
                while not finished and not stopped_early:
                    self.train_sampler.set_epoch(self.epoch, self.batch_in_epoch)
                    for batch in self.train_loader:
                        out = self.train_step(batch)
                        self.step += 1
                        self.batch_in_epoch += 1
                        seen += len(batch["texts"]) * self.dist.world
                        if out["skipped"]:
                            self.skipped_steps += 1
                            self.report.info(
                                f"step {self.step}: skipped ({out['skipped']}, loss {out['loss']})"
                            )
                            self.run_dir.log({"event": "skip", "step": self.step, "reason": out["skipped"]})
                        else:
                            losses.append(out["loss"])
                            if "distill" in out:
                                self.distill_losses.append(out["distill"])
                        last = (out, batch)
                        if self.step % g.print_batch_step == 0 and losses:
                            self._log_train(out, batch, losses, seen, started)
                            logged_step = self.step
                        self.report.advance(self.step, f"loss {np.mean(losses):.3f}" if losses else "")
                        if self._eval_due():
                            self._eval_and_save()
                        finished = self.step >= self.total_steps
                        stopped_early = self._stop_flag or (stop_at is not None and self.step >= stop_at)
                        if finished or stopped_early:
                            break
                    else:  # the epoch ran out
                        self.epoch += 1
                        self.batch_in_epoch = 0
                        if g.save_epoch_step and self.epoch % g.save_epoch_step == 0:
                            self.save(f"iter_epoch_{self.epoch}")
            finally:
                self.report.stop()
            if last is not None and losses and logged_step != self.step:
                self._log_train(*last, losses, seen, started)  # the curves reach the last step
            if finished and self.eval_loader is not None and (self.last_eval or {}).get("step") != self.step:
                self._eval_and_save()  # a final number for the summary
            elif self._saved_step != self.step:
                self.save("latest")
            if self.run_dir.plotted != len(self.run_dir.records):
                self.run_dir.plot()  # the last steps too, and a run that stopped before its first evaluation
        elapsed = time.monotonic() - started
        latest = ckpt_io.latest_path(self.save_dir)
        summary: dict[str, Any] = {
            "steps": self.step,
            "epoch": self.epoch,
            "finished": finished,
            "interrupted": self._stop_signal,
            "skipped_steps": self.skipped_steps,
            "loss": float(np.mean(losses)) if losses else None,
            "last_eval": self.last_eval,
            "best": {"metric": self.config.Metric.main_indicator, "value": self.best, "step": self.best_step},
            "latest": str(latest),
            "best_path": str(ckpt_io.best_path(self.save_dir)) if self.best is not None else None,
            "metrics": str(self.run_dir.metrics_path),
            "curves": str(self.run_dir.curves_path) if self.run_dir.curves_path.exists() else None,
            "seconds": elapsed,
            "samples_per_second": seen / elapsed if elapsed > 0 else 0.0,
            "steps_this_run": self.step - start_step,
            "data": {"train": stats_dict(self.train_leaves), "eval": stats_dict(self.eval_leaves)},
        }
        if not finished:
            source = f"-c {self.config_source} " if self.config_source else ""
            summary["resume_command"] = f"crnn train {source}--resume {latest}"
            why = f"{self._stop_signal} received" if self._stop_signal else f"stopped at step {self.step}"
            self.report.info(f"{why}; saved {latest}. Resume with: {summary['resume_command']}")
        else:
            self.report.info(f"done: {self.step} steps; latest {latest}")
        return summary

    def _log_train(
        self, out: dict[str, Any], batch: dict[str, Any], losses: deque, seen: int, t0: float
    ) -> None:
        record = {
            "event": "train",
            "step": self.step,
            "epoch": self.epoch,
            "loss": float(np.mean(losses)),
            "lr": out["lr"],
            "samples_per_s": seen / max(time.monotonic() - t0, 1e-9),
            "skipped": self.skipped_steps,
        }
        if self.distill_losses:
            record["distill"] = float(np.mean(self.distill_losses))
        if self.config.Global.cal_metric_during_train:
            probs = out["logits"].float().softmax(-1).cpu().numpy()
            acc = Accumulator("paddle")
            for d, label in zip(decode_greedy(probs, self.charset), batch["texts"]):
                acc.add(d.text, label)
            record["acc"] = acc.accuracy
        self.run_dir.log(record)
        self.report.info(
            f"epoch {self.epoch + 1} step {self.step}/{self.total_steps} loss {record['loss']:.4f} "
            f"lr {record['lr']:.2e} {record['samples_per_s']:.1f} samples/s"
            + (f" acc {record['acc']:.3f}" if "acc" in record else "")
            + (f" distill {record['distill']:.4f}" if "distill" in record else "")
        )

    def close(self) -> None:
        """Stop data workers and leave the process group."""
        for stream in (self.train_loader, self.eval_loader):
            it = getattr(getattr(stream, "loader", None), "_iterator", None)
            if it is not None and hasattr(it, "_shutdown_workers"):
                it._shutdown_workers()
        if self.dist.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def train(
    config_path: str | Path | None,
    overrides: Sequence[str] = (),
    resume: str | Path | None = None,
    *,
    device: str | None = None,
    quiet: bool = False,
    stop_at: int | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train from a config file (or, with only ``resume``, the config stored in the checkpoint).

    overrides: ``Key.sub=value`` strings, as ``-o`` takes them. stop_at: stop after that many steps and
    save a resumable checkpoint, as an interrupt would. overwrite: a fresh run may replace the run in
    its save_model_dir (refused otherwise, see ``claim_save_dir``). Returns a summary (see
    ``TorchTrainer.fit``) on rank 0, and an empty dict on the other ranks of a torchrun job (so a job
    reports once).
    """
    if config_path is not None:
        config = load_config(config_path, overrides)
        source = str(config_path)
    elif resume is not None:
        from crnn_torch.config import config_from_dict

        stored = ckpt_io.load_checkpoint(resume).get("config")
        if not isinstance(stored, dict):
            raise ConfigError(f"{resume}: the checkpoint holds no config; give one with -c")
        config = config_from_dict(stored, overrides, source=f"{resume} (stored config)")
        source = None
    else:
        raise ConfigError("give a config (-c FILE or a shipped name) or a checkpoint to resume")
    if not (resume or config.Global.checkpoints):
        claim_save_dir(Path(config.Global.save_model_dir), overwrite, int(os.environ.get("RANK", "0")) == 0)
    trainer = TorchTrainer(config, resume=resume, device=device, quiet=quiet, config_source=source)
    try:
        summary = trainer.fit(stop_at=stop_at)
        return summary if trainer.dist.main else {}
    finally:
        trainer.close()
