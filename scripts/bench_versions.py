"""Two installs of crnn side by side: is this tree's cold start and throughput no worse than a base commit's?

    git worktree add /tmp/crnn-base BASE && python3 -m venv /tmp/crnn-base/.venv \\
        && /tmp/crnn-base/.venv/bin/pip install -c constraints.txt -e '/tmp/crnn-base[all]'
    python scripts/bench_versions.py --before /tmp/crnn-base/.venv/bin/crnn --after .venv/bin/crnn \\
        --model m.onnx --repeats 5

Each measure runs the `crnn` executable of each install as a user would, in a fresh process, on the same
model file and the same crops, the two installs interleaved (their order swapped every other repeat) so a
drift in machine speed hits both alike. The table gives medians and after/before ratios (wall time: lower
is better; crops per second: higher is better). Measures:

  help          `crnn --help` (imports and plugin discovery only)
  cold start    `crnn recognize one.png --model M`
  ort / ov      `crnn recognize -q --backend onnxruntime|openvino --model M -` with N real crop paths on
                stdin (IIIT5K and IC15 train crops from ../shared/data/real): N / wall seconds
  convert       `crnn convert best_accuracy.pdparams --to onnx` (a PaddleOCR CRNN-mv3 checkpoint, read
                without Paddle, exported and verified against its source)

Give a model without padding keys in its metadata (e.g. a PaddleOCR conversion) when the base predates
them, or the two installs batch the crops differently and the throughput rows compare padding, not code.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "real"
FIXTURE = ROOT.parent / "shared" / "fixtures" / "paddle_crnn_mv3" / "best_accuracy.pdparams"
GAP = 0.15  # seconds between timed runs, so idle runtime threads of the last one stop spinning


def crops(n: int, seed: int) -> list[str]:
    """``n`` crop paths drawn from the IIIT5K and IC15 train labels (tab-separated path, label)."""
    paths: list[str] = []
    for name in ("iiit5k_train", "ic15_train"):
        root = DATA / name
        for line in (root / "labels.tsv").read_text(encoding="utf-8").splitlines():
            rel = line.split("\t", 1)[0]
            if rel and (root / rel).is_file():
                paths.append(str(root / rel))
    random.Random(seed).shuffle(paths)
    if len(paths) < n:
        raise SystemExit(f"bench_versions: {len(paths)} crops under {DATA}, {n} asked (--crops)")
    return paths[:n]


def timed(cmd: list[str], stdin: Path | None = None) -> float:
    with open(stdin or "/dev/null", "rb") as inp:
        t = time.perf_counter()
        p = subprocess.run(cmd, stdin=inp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        seconds = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(
            f"bench_versions: {' '.join(cmd)} exited {p.returncode}:\n{p.stderr.decode()[-600:]}"
        )
    return seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="the base install's crnn executable")
    ap.add_argument(
        "--after", default=str(Path(sys.executable).with_name("crnn")), help="this install's crnn"
    )
    ap.add_argument("--model", required=True, help="the .onnx both installs read")
    ap.add_argument("--crops", type=int, default=1000, help="crops per throughput run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument(
        "--skip", default="", help="comma-separated measures to leave out (help,cold,ort,ov,convert)"
    )
    ap.add_argument("--json", type=Path, help="write every timing here too")
    args = ap.parse_args(argv)

    skip = {s for s in args.skip.split(",") if s}
    installs = {"before": args.before, "after": args.after}
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "paths.txt"
        paths = crops(args.crops, args.seed)
        listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
        one = paths[0]
        measures: dict[str, tuple[str, object]] = {
            "help": ("s", lambda c: timed([c, "--help"])),
            "cold": ("s", lambda c: timed([c, "recognize", one, "--model", args.model])),
            "ort": ("crops/s", lambda c: args.crops / timed(
                [c, "recognize", "-q", "--backend", "onnxruntime", "--model", args.model, "-"], listing)),
            "ov": ("crops/s", lambda c: args.crops / timed(
                [c, "recognize", "-q", "--backend", "openvino", "--model", args.model, "-"], listing)),
            "convert": ("s", lambda c: timed(
                [c, "convert", str(FIXTURE), "--to", "onnx", "-o", str(Path(tmp) / f"{Path(c).parent.parent.name}.onnx")])),
        }  # fmt: skip
        measures = {k: v for k, v in measures.items() if k not in skip}
        for _unit, run in measures.values():  # warm the file cache and both installs' bytecode
            for exe in installs.values():
                run(exe)
        times: dict[str, dict[str, list[float]]] = {m: {"before": [], "after": []} for m in measures}
        for r in range(args.repeats):
            for name, (_, run) in measures.items():
                order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
                for side in order:
                    times[name][side].append(run(installs[side]))
                    time.sleep(GAP)
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    titles = {"help": "crnn --help", "cold": "cold start: recognize one.png", "ort": f"ORT: {args.crops} crops",
              "ov": f"OpenVINO: {args.crops} crops", "convert": "convert .pdparams -> onnx (verified)"}  # fmt: skip
    print(f"{'measure':<38} {'unit':>8} {'before':>9} {'after':>9} {'after/before':>13}")
    for name, (unit, _) in measures.items():
        b, a = statistics.median(times[name]["before"]), statistics.median(times[name]["after"])
        print(f"{titles[name]:<38} {unit:>8} {b:>9.2f} {a:>9.2f} {a / b:>13.2f}")
    print(
        f"medians of {args.repeats} interleaved repeats; wall s: lower is better, crops/s: higher is better"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"installs": installs, "model": args.model, "times": times}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
