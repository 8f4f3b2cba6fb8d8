"""INT8 accuracy of a model on a dev split, over several calibration draws (issue "Performance", target 6).

    python scripts/int8_accuracy.py                        # bundled model, runs/default/split, 3 draws
    python scripts/int8_accuracy.py --model m.onnx --split DIR --seeds 0,1,2,3,4 --json int8.json

What one INT8 model scores depends on which crops calibrated it (MinMax ranges), by a point or so on a
dev split of a thousand crops; one draw says little. For each seed the script copies --crops crops drawn
from the split's train-side label files (train_*.tsv) into a calibration folder, quantizes with the
documented command

    crnn convert MODEL --to onnx --int8 --calibration FOLDER -o int8.onnx

(calibration on its default share, the rest held out for convert's own before/after report), then scores
FP32 and every INT8 model with `crnn eval --protocol benchmark` on the dev side (dev_*.tsv), and prints
one table: per source, the mean over sources and the sample-weighted mean, with the loss of each draw and
of their mean. Target: mean loss <= 1 point.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_LOSS = 1.0


def crnn_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("crnn")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "crnn_cli"]


def calibration_folder(split: Path, data_dir: Path, out: Path, crops: int, seed: int) -> int:
    """Copy ``crops`` train-side crops (seeded draw) into ``out`` with a labels.tsv of relative paths."""
    rows: list[tuple[str, str]] = []
    for tsv in sorted(split.glob("train_*.tsv")):
        if ".cased" in tsv.name:  # the same crops as their un-cased file
            continue
        for line in tsv.read_text("utf-8").splitlines():
            path, sep, label = line.partition("\t")
            if sep and path.strip():
                rows.append((path, label))
    if not rows:
        raise SystemExit(f"{split}: no train_*.tsv label files")
    random.Random(seed).shuffle(rows)
    (out / "images").mkdir(parents=True)
    lines = []
    for i, (path, label) in enumerate(rows[:crops]):
        src = data_dir / path
        dst = Path("images") / f"{i:05d}{src.suffix}"
        shutil.copyfile(src, out / dst)  # copies, not links: the dataset reader keeps paths inside
        lines.append(f"{dst.as_posix()}\t{label}")
    (out / "labels.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return len(lines)


def evaluate(model: Path, split: Path, data_dir: Path, out: Path) -> dict[str, Any]:
    sets = [f"{p.stem[4:].removesuffix('_train')}={p}" for p in sorted(split.glob("dev_*.tsv"))]
    if not sets:
        raise SystemExit(f"{split}: no dev_*.tsv label files")
    cmd = [*crnn_cmd(), "eval", "--backend", "onnxruntime", "--model", str(model), "--data-dir",
           str(data_dir), "--protocol", "benchmark", "--format", "json", "--output", str(out), *sets]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text("utf-8"))
    per = {d["name"]: (d["correct"], d["count"]) for d in result["datasets"]}
    acc = {k: 100 * c / n for k, (c, n) in per.items() if n}
    acc["mean"] = statistics.fmean(acc[k] for k in per if per[k][1])
    acc["weighted"] = 100 * sum(c for c, _ in per.values()) / max(sum(n for _, n in per.values()), 1)
    return acc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "crnn_cli" / "models" / "default.onnx")
    p.add_argument("--split", type=Path, default=ROOT / "runs" / "default" / "split")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    p.add_argument("--seeds", default="0,1,2", help="calibration draws (comma list)")
    p.add_argument("--crops", type=int, default=320, help="crops per draw (convert calibrates on 80 %%)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="crnn-int8-acc-") as tmp:
        work = Path(tmp)
        print(f"FP32 {args.model} on {args.split}/dev_*.tsv", file=sys.stderr, flush=True)
        rows["fp32"] = evaluate(args.model, args.split, args.data_dir, work / "fp32.json")
        for seed in seeds:
            folder = work / f"calib{seed}"
            n = calibration_folder(args.split, args.data_dir, folder, args.crops, seed)
            int8 = work / f"int8_{seed}.onnx"
            print(f"seed {seed}: {n} crops, quantizing", file=sys.stderr, flush=True)
            subprocess.run([*crnn_cmd(), "convert", str(args.model), "--to", "onnx", "--int8", "--calibration",
                            str(folder), "--calibration-samples", str(n), "-o", str(int8)],
                           check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            rows[f"int8 seed {seed}"] = evaluate(int8, args.split, args.data_dir, work / f"int8_{seed}.json")
    fp32 = rows["fp32"]
    draws = [v for k, v in rows.items() if k != "fp32"]
    columns = [k for k in fp32 if k not in ("mean", "weighted")] + ["mean", "weighted"]
    rows["int8 mean of draws"] = {c: statistics.fmean(d[c] for d in draws) for c in columns}
    print("| model | " + " | ".join(columns) + " | change (mean) |")
    print("| --- |" + " --- |" * (len(columns) + 1))
    for name, acc in rows.items():
        change = "" if name == "fp32" else f"{acc['mean'] - fp32['mean']:+.2f}"
        print(f"| {name} | " + " | ".join(f"{acc[c]:.1f}" for c in columns) + f" | {change} |")
    mean_loss = fp32["mean"] - rows["int8 mean of draws"]["mean"]
    met = mean_loss <= TARGET_LOSS
    print(f"\nmean loss over {len(draws)} draws: {mean_loss:.2f} points (target <= {TARGET_LOSS}): "
          f"{'met' if met else 'MISSED'}; spread of the draws' means "
          f"{min(d['mean'] for d in draws):.2f}..{max(d['mean'] for d in draws):.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "mean_loss": mean_loss, "met": met}, indent=1))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
