#!/usr/bin/env python3
"""Split ../shared/data/real into train and dev label files (deterministic, by hashed path).

The dev split steers the default model and is never trained on. Output: OUT/train_<source>.tsv and
OUT/dev_<source>.tsv with paths relative to the data folder (PaddleOCR SimpleDataSet format), so a
config uses data_dir: <data folder> and label_file_list: [OUT/train_*.tsv].

    python scripts/split_real_data.py --data ../shared/data/real --out runs/default/split --dev-fraction 0.1
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path


def group_key(source: str, rel_path: str) -> str:
    """Crops from one photo or receipt stay on one side of the split (IIIT5K "1009_2", SROIE "003_017")."""
    stem = Path(rel_path).stem
    if source.startswith(("iiit5k", "sroie")) and "_" in stem:
        return f"{source}/{stem.split('_')[0]}"
    return f"{source}/{rel_path}"


def is_dev(rel_path: str, fraction: float) -> bool:
    # Hash of the path, not a random draw: the split never changes between runs or machines.
    h = int.from_bytes(hashlib.sha256(rel_path.encode("utf-8")).digest()[:8], "big")
    return (h / 2**64) < fraction


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/real"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dev-fraction", type=float, default=0.1)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for labels in sorted(args.data.glob("*/labels.tsv")):
        source = labels.parent.name
        train, dev = [], []
        for line in labels.read_text("utf-8").splitlines():
            if "\t" not in line:
                continue
            rel, label = line.split("\t", 1)
            row = f"{source}/{rel}\t{label}"
            (dev if is_dev(group_key(source, rel), args.dev_fraction) else train).append(row)
        (args.out / f"train_{source}.tsv").write_text("\n".join(train) + "\n", "utf-8")
        (args.out / f"dev_{source}.tsv").write_text("\n".join(dev) + "\n", "utf-8")
        print(f"{source}: {len(train)} train, {len(dev)} dev")


if __name__ == "__main__":
    main()
