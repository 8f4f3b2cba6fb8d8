"""Distillation: a teacher recognizer's per-frame probabilities as soft targets for the student.

The teacher is any model crnn reads (a converted PP-OCRv4 recognizer, say). It reads each crop of the
chosen real label files once, before training, and the table of its outputs is cached beside the
checkpoints: on the fly it would cost a step more than the step itself (PP-OCRv4 pads every crop to
320 x 48 and takes about 30 ms a crop on one core here, against 64 crops a step in about 0.5 s). Its
output is brought onto the student's terms:

- classes: each student symbol takes the probability of the same teacher symbol, the blank the blank's;
  what the teacher puts on symbols the student lacks (CJK, full-width forms) is dropped and each frame
  renormalised;
- frames: the teacher's frames over the text (not its padding) span the same pixels as the student's,
  only at another rate (PP-OCRv4: 8 px at 48 high; a CRNN: 4 px at 32 high, 1.33 student frames a
  teacher frame). Student frame i takes the teacher frame at the same relative position (nearest), so
  every teacher frame lands on one or more student frames and the greedy reading stays the teacher's.

The target is used only when the crop reaches the student without a horizontal warp (RecAug's TIA
moves glyphs along the line; its row crops, blur, noise and colour changes do not). With
``agree_only`` a crop whose teacher reading differs from its label gets no target: the CTC loss alone
teaches it. The loss is KL(teacher || student) summed over the student frames that cover the text,
averaged over the batch like the CTC loss (a sum over a crop's frames too), times ``weight``, added.
With ``frames: agree`` the KL is taken only at the frames where both models emit the same symbol, over
the symbols alone: the student is taught the teacher's doubts between symbols but keeps its own
alignment (on every frame, a CRNN moved its spikes to the teacher's frames and read worse).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crnn_cli.core.charset import Charset
from crnn_cli.core.errors import ConfigError
from crnn_cli.core.fileio import atomic_path
from crnn_torch.config_schema import DistillationConfig

# Student frames: pixels of input width per CTC frame (every CRNN backbone here pools the width by 4).
STUDENT_FRAME_PX = 4


@dataclass(frozen=True)
class SoftTarget:
    """A crop's soft target: frames x student classes (float16), covering the first ``frames`` frames."""

    probs: np.ndarray
    frames: int


def class_map(teacher: Charset, student: Charset) -> np.ndarray:
    """For each student class (blank first), the teacher class with the same symbol, or -1."""
    index = {s: i + 1 for i, s in reversed(list(enumerate(teacher.symbols)))}  # first occurrence wins
    return np.asarray([0] + [index.get(s, -1) for s in student.symbols], dtype=np.int64)


def map_classes(probs: np.ndarray, classes: np.ndarray) -> np.ndarray | None:
    """Teacher probabilities (frames x teacher classes) -> frames x student classes, renormalised; None
    when a frame holds (almost) no mass on the student's classes or there are no frames."""
    if len(probs) == 0:
        return None
    mapped = np.where(classes >= 0, probs[:, np.maximum(classes, 0)], 0.0).astype(np.float32)
    total = mapped.sum(axis=1, keepdims=True)
    if not np.all(total > 1e-3):
        return None
    return mapped / total


def nearest(source: int, target: int) -> np.ndarray:
    """For each of ``target`` evenly spaced frames, the index of the source frame at the same position."""
    at = ((np.arange(target) + 0.5) * source / target).astype(np.int64)
    return np.minimum(at, source - 1)


def greedy_text(probs: np.ndarray, charset: Charset) -> str:
    """The greedy CTC reading of frames x classes probabilities."""
    best = probs.argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return charset.decode([int(i) for i in best[keep] if i > 0])


def _digest(config: DistillationConfig, leaves: list[Any], student: Charset) -> str:
    """What the table depends on: the teacher file, the crops and labels, the student's classes."""
    h = hashlib.sha256()
    teacher = Path(config.teacher)
    if not teacher.exists():
        raise ConfigError(f"Distillation.teacher: {teacher}: no such model file or folder")
    # The model and the files beside it that belong to it (an IR's .bin; a Paddle model's folder).
    files = (
        sorted(teacher.iterdir()) if teacher.is_dir() else sorted(teacher.parent.glob(teacher.stem + ".*"))
    )
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    h.update(json.dumps([config.agree_only, config.dictionary, config.use_space_char]).encode())
    h.update(json.dumps(list(student.symbols)).encode())
    for leaf in leaves:
        h.update(f"{leaf.label_file};{len(leaf.source)};".encode())
        for key, label in zip(leaf.source.keys, leaf.source.labels):
            h.update(f"{key}\t{label}\n".encode())
    return h.hexdigest()[:16]


class TargetTable:
    """The teacher's mapped frames of each distilled crop, by sample key: read by the data workers."""

    def __init__(self, keys: list[str], offsets: np.ndarray, probs: np.ndarray) -> None:
        self.index = {k: i for i, k in enumerate(keys)}
        self.offsets, self.probs = offsets, probs

    def __len__(self) -> int:
        return len(self.index)

    def target(self, key: str, student_resized: int, student_padded: int) -> SoftTarget | None:
        """The soft target of crop ``key`` at the student's frames, or None if it has none."""
        i = self.index.get(key)
        if i is None:
            return None
        frames = self.probs[self.offsets[i] : self.offsets[i + 1]]
        padded = student_padded // STUDENT_FRAME_PX
        covered = min(math.ceil(student_resized / STUDENT_FRAME_PX), padded)
        out = np.zeros((padded, frames.shape[1]), np.float16)
        out[:covered] = frames[nearest(len(frames), covered)]
        return SoftTarget(out, covered)

    def save(self, path: Path) -> None:
        keys = sorted(self.index, key=self.index.__getitem__)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.asarray(keys, dtype=str), offsets=self.offsets, probs=self.probs)

    @classmethod
    def load(cls, path: Path) -> TargetTable:
        with np.load(path, allow_pickle=False) as z:
            return cls([str(k) for k in z["keys"]], z["offsets"], z["probs"])


def build_table(
    config: DistillationConfig, leaves: list[Any], student: Charset, cache_dir: Path, report: Any
) -> TargetTable:
    """Run the teacher over every crop of ``leaves`` (real sources), or load the table a previous run
    of the same teacher, crops and dictionary left in ``cache_dir``."""
    cache = cache_dir / f"teacher-{_digest(config, leaves, student)}.npz"
    if cache.is_file():
        table = TargetTable.load(cache)
        report.info(f"distillation: {len(table)} soft targets from {cache}")
        return table
    from crnn_cli.core.recognizer import Recognizer

    total = sum(len(leaf.source) for leaf in leaves)
    keys: list[str] = []
    chunks: list[np.ndarray] = []
    offsets = [0]
    disagree = 0
    started = time.perf_counter()
    opened = Recognizer(
        config.teacher,
        backend=config.backend,
        dictionary=config.dictionary,
        use_space_char=config.use_space_char,
        batch_size=32,
        rotate_vertical="never",
    )
    with opened as rec:
        classes = class_map(rec.charset, student)
        if int((classes[1:] >= 0).sum()) == 0:
            raise ConfigError(f"Distillation.teacher: {config.teacher} shares no symbol with the student")
        report.info(f"distillation: the teacher reads {total} crops once (its soft targets are cached)")
        report.start(total, 0)
        done = 0
        for leaf in leaves:
            source = leaf.source
            for lo in range(0, len(source), 64):
                samples = [source[i] for i in range(lo, min(lo + 64, len(source)))]
                images = [s.image for s in samples]
                for sample, img, probs in zip(samples, images, rec.probabilities(images)):
                    if rec.metadata.output == "logits":
                        z = np.exp(probs - probs.max(axis=1, keepdims=True))
                        probs = z / z.sum(axis=1, keepdims=True)
                    resized, padded = rec.preprocess_config.sizes(*img.shape[:2])
                    frames = min(len(probs), math.ceil(resized * len(probs) / padded))
                    mapped = map_classes(probs[:frames], classes)
                    label = student.normalize(sample.label)
                    if mapped is None or (config.agree_only and greedy_text(mapped, student) != label):
                        disagree += 1
                        continue
                    keys.append(sample.key)
                    chunks.append(mapped.astype(np.float16))
                    offsets.append(offsets[-1] + len(mapped))
                done += len(samples)
                report.advance(done, f"{disagree} read otherwise")
        report.stop()
    probs = np.concatenate(chunks) if chunks else np.zeros((0, student.num_classes), np.float16)
    table = TargetTable(keys, np.asarray(offsets, np.int64), probs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    table.save(cache)
    report.info(
        f"distillation: {len(table)} of {total} crops get soft targets ({disagree} read otherwise by the "
        f"teacher), {time.perf_counter() - started:.0f} s -> {cache}"
    )
    return table


def collate_soft(targets: list[SoftTarget | None], frames: int) -> dict[str, torch.Tensor] | None:
    """Batch the soft targets of a batch padded to ``frames`` student frames; None if it has none."""
    if all(t is None for t in targets):
        return None
    classes = next(t for t in targets if t is not None).probs.shape[1]
    soft = np.zeros((len(targets), frames, classes), np.float32)
    counts = np.zeros(len(targets), np.int64)
    for i, t in enumerate(targets):
        if t is not None:
            n = min(t.frames, frames)
            soft[i, :n] = t.probs[:n]
            counts[i] = n
    return {"soft": torch.from_numpy(soft), "soft_frames": torch.from_numpy(counts)}


def kl_loss(
    logits: torch.Tensor,
    soft: torch.Tensor,
    soft_frames: torch.Tensor,
    temperature: float,
    frames: str = "all",
) -> torch.Tensor:
    """KL(soft || softmax(logits / T)) x T^2 summed over each crop's covered frames, averaged over the
    batch (crops without a target add 0): per crop on the scale of its CTC loss, which is a sum over
    its frames too. float32. logits: N, T, C; soft: N, T, C; soft_frames: N.

    ``frames="agree"`` keeps only the frames where the teacher and the student both emit the same
    symbol (not the blank), and compares there the two distributions over the symbols alone (the
    blank left out, the rest renormalised): which symbol, not where. The student keeps its own
    alignment and learns the teacher's doubts (an l that might be a 1), nothing else."""
    with torch.autocast(logits.device.type, enabled=False):
        n, t = logits.shape[:2]
        if soft.shape[1] != t:
            raise ConfigError(
                f"Distillation: the student gives {t} frames for a batch whose soft targets have "
                f"{soft.shape[1]}; distillation needs a model with one frame per {STUDENT_FRAME_PX} px"
            )
        logits = logits.float()
        mask = torch.arange(t, device=logits.device)[None, :] < soft_frames[:, None]
        if frames == "agree":
            symbol = soft.argmax(2)
            mask = mask & (symbol != 0) & (logits.argmax(2) == symbol)
            logits, soft = logits[..., 1:], soft[..., 1:]
            soft = soft / soft.sum(2, keepdim=True).clamp_min(1e-12)
        logp = (logits / temperature).log_softmax(2)
        if temperature != 1.0:
            soft = (soft.clamp_min(1e-12).log() / temperature).softmax(2)
        per_frame = (soft * (soft.clamp_min(1e-12).log() - logp)).sum(2)
        return (per_frame * mask).sum() / n * temperature**2


class OnlineTeacher:
    """``Distillation.online``: a crnn checkpoint that reads each training batch beside the student.

    The batch the student sees (rendered crops, RecAug's warps and all) goes through the teacher too,
    so every crop gets a target, and the frames are the student's own: the teacher must read the same
    input (height, channels) with the same dictionary and one frame per 4 px, which a wider or deeper
    CRNN of the same family does. The use this was built for: a narrower student (a cheaper BiLSTM)
    taught by the model it replaces. The teacher runs without gradients, in eval mode, in float32
    unless the student's autocast says otherwise; it costs about one student forward pass a step.
    """

    def __init__(self, config: DistillationConfig, student: Charset, height: int, channels: int,
                 device: torch.device) -> None:  # fmt: skip
        from crnn_torch.checkpoint import load_checkpoint, model_from_checkpoint

        path = Path(config.teacher)
        if not path.is_file():
            raise ConfigError(
                f"Distillation.teacher: {path}: no such file; online distillation takes a crnn checkpoint "
                "(.pt: `crnn train` writes them, `crnn convert --to torch` makes one)"
            )
        model, meta = model_from_checkpoint(load_checkpoint(path))
        charset = meta.charset()
        if charset is None or tuple(charset.symbols) != tuple(student.symbols):
            raise ConfigError(
                f"Distillation.teacher: {path} has another dictionary than the student "
                f"({len(charset.symbols) if charset else 0} against {len(student.symbols)} symbols); "
                "online distillation compares the two class by class"
            )
        if meta.channels != channels or (meta.height is not None and meta.height != height):
            raise ConfigError(
                f"Distillation.teacher: {path} reads {meta.channels} x {meta.height} px crops, the student "
                f"{channels} x {height}: online distillation feeds both the same batch"
            )
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.path = path

    @torch.no_grad()
    def targets(self, images: torch.Tensor, widths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(soft N x T x C float32, frames N): the teacher's probabilities on ``images`` and how many
        frames each crop's own width covers (the rest is the batch's padding)."""
        logits = self.model(images).float()
        frames = torch.clamp(widths.to(logits.device) // STUDENT_FRAME_PX, max=logits.shape[1])
        return logits.softmax(2), frames
