#!/usr/bin/env python
"""Time-boxed mutation fuzzing of crnn's two parsers of untrusted bytes: image decoding and .pdparams.

    nice -n 10 python scripts/fuzz.py --seconds 180 --out /tmp/crnn-fuzz

Seeds are generated here (small PNG, JPEG, GIF, WebP, TIFF and BMP images; .pdparams pickles of several
protocols, plus one that calls exec()). Each input is a seed mutated a few times: bit flips, special
bytes, big 16/32-bit integers (header sizes), chunks deleted, repeated or spliced from another seed,
truncation. The contract checked:

  images    load_image(bytes) returns an H x W x 3 uint8 array or raises ImageError
  pdparams  load_pdparams(file) returns {name: numeric ndarray} or raises ModelError / UnsafeFileError,
            and no input ever runs code (a marker file that the exec() seed would write never appears)

Anything else is a crash: a Python exception of another type (saved with its traceback), a worker
killed by a signal (a native crash), or an input that takes longer than --hang seconds. Workers run in
child processes under a memory limit, so a native crash or runaway allocation costs one input, which
is saved to OUT/crashes/ for a regression test. Prints the counts; exit status 1 when something crashed.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

TARGETS = ("images", "pdparams")
MEMORY_LIMIT = 3 << 30  # bytes of address space per worker: a runaway allocation fails instead of swapping
INTERESTING_8 = (0x00, 0x01, 0x7F, 0x80, 0xFF)
INTERESTING_32 = (0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


# -- seeds -------------------------------------------------------------------------------------------


def image_seeds() -> list[bytes]:
    """Small valid images in every layout the decoder distinguishes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    base = Image.fromarray(rgb)

    def save(img: Image.Image, fmt: str, **options: object) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt, **options)
        return buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6
    frames = [Image.fromarray(np.roll(rgb, k, axis=1)).convert("P") for k in range(3)]
    animated = io.BytesIO()
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return [
        save(base, "PNG"),
        save(base.convert("L"), "PNG"),
        save(base.convert("RGBA"), "PNG"),
        save(base.convert("LA"), "PNG"),
        save(base.convert("P"), "PNG"),
        save(Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257), "PNG"),
        save(base, "JPEG", quality=80),
        save(base, "JPEG", quality=80, progressive=True),
        save(base.convert("CMYK"), "JPEG"),
        save(base, "JPEG", exif=exif.tobytes()),
        save(base.convert("P"), "GIF"),
        animated.getvalue(),
        save(base, "WEBP", lossless=True),
        save(base, "WEBP", quality=70),
        save(base, "TIFF"),
        save(base, "BMP"),
    ]


class _Exec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, ...]:
        return (exec, (self.code,))


def pdparams_seeds(marker: Path) -> list[bytes]:
    """Checkpoint-like pickles (protocols 2-5, plain and ordered dicts) and one that calls exec()."""
    from collections import OrderedDict

    state = {
        "conv.weight": np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2),
        "fc.bias": np.array([0.5, -1.0], dtype=np.float32),
        "bn._mean": np.zeros(3, np.float64),
        "step": np.array(7, np.int64),
        "StructuredToParameterName@@": {"conv.weight": "conv2d_0.w_0"},
    }
    seeds = [pickle.dumps(state, protocol=p) for p in (2, 3, 4, 5)]
    seeds.append(pickle.dumps(OrderedDict(state), protocol=2))
    code = f"open({str(marker)!r}, 'w').write('code ran')"
    seeds.append(pickle.dumps({"conv.weight": state["conv.weight"], "x": _Exec(code)}, protocol=4))
    return seeds


# -- mutation ----------------------------------------------------------------------------------------


def mutate(data: bytes, seeds: list[bytes], rng: random.Random) -> bytes:
    """One to four random edits of ``data``; never returns the empty string for a non-empty seed."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            buf = bytearray(rng.choice(seeds))
        op = rng.randrange(8)
        i = rng.randrange(len(buf))
        if op == 0:  # flip a bit
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # a boundary byte
            buf[i] = rng.choice(INTERESTING_8)
        elif op == 2:  # a boundary 16/32-bit integer, either byte order (sizes, lengths, offsets)
            width = rng.choice((2, 4))
            value = rng.choice(INTERESTING_32) & ((1 << (8 * width)) - 1)
            buf[i : i + width] = value.to_bytes(width, rng.choice(("big", "little")))
        elif op == 3:  # delete a chunk
            del buf[i : i + rng.randint(1, 64)]
        elif op == 4:  # repeat a chunk
            chunk = buf[i : i + rng.randint(1, 64)]
            buf[i:i] = chunk * rng.randint(1, 8)
        elif op == 5:  # splice in bytes from another seed
            other = rng.choice(seeds)
            j = rng.randrange(len(other))
            buf[i : i + rng.randint(1, 64)] = other[j : j + rng.randint(1, 64)]
        elif op == 6:  # truncate
            del buf[max(1, i) :]
        else:  # random bytes
            buf[i : i + 8] = rng.randbytes(rng.randint(1, 8))
    return bytes(buf)


# -- one worker --------------------------------------------------------------------------------------


def check_image(data: bytes) -> str:
    """'ok' or 'ImageError'; raises AssertionError (or whatever escaped) when the contract breaks."""
    from crnn_cli.core.errors import ImageError
    from crnn_cli.core.images import load_image

    try:
        img = load_image(data, name="fuzz")
    except ImageError as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc), f"bad message: {exc!r}"
        return "ImageError"
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8, (
        f"got {type(img)} {getattr(img, 'dtype', '')}"
    )
    assert img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 0 and img.shape[1] > 0, img.shape
    return "ok"


def check_pdparams(data: bytes, scratch: Path, marker: Path) -> str:
    from crnn_cli.core.errors import ModelError, UnsafeFileError
    from crnn_cli.core.pdparams import NUMERIC_KINDS, load_pdparams

    scratch.write_bytes(data)
    try:
        state = load_pdparams(scratch)
        outcome = "ok"
        assert isinstance(state, dict) and state, "not a non-empty dict"
        for key, value in state.items():
            assert isinstance(key, str) and isinstance(value, np.ndarray), (key, type(value))
            assert value.dtype.kind in NUMERIC_KINDS, value.dtype
    except (UnsafeFileError, ModelError) as exc:
        outcome = type(exc).__name__
    assert not marker.exists(), "a mutated pickle ran code"
    return outcome


def worker(target: str, seed: int, deadline: float, state: Path) -> int:
    """Fuzz until ``deadline``; print one JSON line of counts. The parent watches ``current.bin``."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from crnn_cli.core.images import cv2

    cv2.setNumThreads(1)
    rng = random.Random(seed)
    marker = state / "MARKER"
    seeds = image_seeds() if target == "images" else pdparams_seeds(marker)
    current = state / "current.bin"
    scratch = state / "scratch.pdparams"
    counts: Counter[str] = Counter()
    crashes = state / "crashes"
    crashes.mkdir(exist_ok=True)
    while time.monotonic() < deadline:
        data = mutate(rng.choice(seeds), seeds, rng)
        current.write_bytes(data)  # survives us if the decoder takes the process down
        try:
            outcome = check_image(data) if target == "images" else check_pdparams(data, scratch, marker)
        except Exception as exc:  # the contract broke: keep the input and the traceback
            outcome = f"crash {type(exc).__name__}"
            n = sum(1 for _ in crashes.iterdir()) // 2
            (crashes / f"{target}-{seed}-{n}.bin").write_bytes(data)
            (crashes / f"{target}-{seed}-{n}.txt").write_text(traceback.format_exc())
            marker.unlink(missing_ok=True)
        counts[outcome] += 1
        if sum(counts.values()) % 200 == 0:  # running totals: a worker killed later keeps its count
            print(json.dumps(dict(counts)), flush=True)
    current.unlink(missing_ok=True)
    print(json.dumps(dict(counts)), flush=True)
    return 0


# -- the parent: time box, watchdog, report ----------------------------------------------------------


def run_target(target: str, seconds: float, out: Path, hang: float, seed: int) -> dict[str, object]:
    """Run workers for ``target`` until ``seconds`` are spent, restarting after native crashes."""
    state = out / f"state-{target}"
    state.mkdir(parents=True, exist_ok=True)
    (out / "crashes").mkdir(exist_ok=True)
    end = time.monotonic() + seconds
    counts: Counter[str] = Counter()
    restarts = 0
    while time.monotonic() < end - 1:
        worker_seed = seed + restarts
        deadline_in = end - time.monotonic()
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            target,
            "--seed",
            str(worker_seed),
            "--budget",
            f"{deadline_in:.1f}",
            "--out",
            str(state),
        ]
        # Output goes to files: decoders chatter on stderr, and a full pipe would stall the worker.
        log_out, log_err = state / "worker.out", state / "worker.err"
        with open(log_out, "w") as fo, open(log_err, "w") as fe:
            proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True)
            current = state / "current.bin"
            killed_for_hang = False
            while proc.poll() is None:
                time.sleep(0.5)
                if current.exists() and time.time() - current.stat().st_mtime > hang:
                    proc.kill()
                    proc.wait()
                    killed_for_hang = True
        totals = [line for line in log_out.read_text().splitlines() if line.startswith("{")]
        if totals:
            counts.update(json.loads(totals[-1]))
        if proc.returncode == 0:
            continue
        # A native crash, a hang or a worker that died: keep the input it was on, then go on.
        kind = "hang" if killed_for_hang else f"signal {-proc.returncode}" if proc.returncode < 0 else "exit"
        counts[f"crash {kind}"] += 1
        restarts += 1
        if current.exists():
            current.rename(out / "crashes" / f"{target}-{worker_seed}-{kind.replace(' ', '')}.bin")
        (out / "crashes" / f"{target}-{worker_seed}-{kind.replace(' ', '')}.txt").write_text(
            log_err.read_text(errors="replace")[-4000:]
        )
    for f in (state / "crashes").glob("*") if (state / "crashes").is_dir() else []:
        f.rename(out / "crashes" / f.name)
    tried = sum(counts.values())
    crashed = sum(v for k, v in counts.items() if k.startswith("crash"))
    return {
        "target": target,
        "seconds": seconds,
        "tried": tried,
        "crashes": crashed,
        "outcomes": dict(counts),
        "worker_restarts": restarts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="total time, split between targets")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated: {','.join(TARGETS)}")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "crnn-fuzz",
        help="folder for crashes and summary",
    )
    parser.add_argument("--hang", type=float, default=20.0, help="seconds one input may take")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--worker", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.seed, time.monotonic() + args.budget, args.out)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = [run_target(t, args.seconds / len(targets), args.out, args.hang, args.seed) for t in targets]
    for r in results:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))  # type: ignore[union-attr]
        print(
            f"{r['target']}: {r['tried']} inputs in {r['seconds']:.0f} s, {r['crashes']} crashes ({outcomes})"
        )
    (args.out / "summary.json").write_text(json.dumps(results, indent=1) + "\n")
    crashed = sum(int(r["crashes"]) for r in results)  # type: ignore[call-overload]
    if crashed:
        print(f"crashing inputs and tracebacks are in {args.out / 'crashes'}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
