"""Helpers for the training tests: an easy synthetic task (digits, two fonts, no distortion) as a config.

The task is small enough for a tiny CRNN to learn in a few hundred CPU steps, so accuracy well above
chance is a real signal that the training loop works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DIGITS = "0123456789"
FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf")


def font_dir(root: Path) -> Path:
    """A folder with two of matplotlib's DejaVu fonts (links), so the renderer uses exactly those."""
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    out = root / "fonts"
    out.mkdir(exist_ok=True)
    for name in FONTS:
        if not (out / name).exists():
            os.symlink(src / name, out / name)
    return out


def synth_options(fonts: Path) -> dict[str, Any]:
    """Clean, black-on-plain digits 1..4 long: every distortion probability at 0."""
    from crnn_cli.synth import SynthConfig

    options: dict[str, Any] = {
        name: 0.0 for name in SynthConfig.__dataclass_fields__ if name.startswith("p_")
    }
    options.update(
        height_range=[32, 32],
        font_size_range=[26, 30],
        min_text_length=1,
        max_text_length=4,
        text_weights=[["random", 1.0]],
        font_dirs=[str(fonts)],
        matplotlib_fonts=False,
        system_fonts=False,
        package_fonts=False,
    )
    return options


def tiny_config(
    root: Path,
    *,
    steps: int = 20,
    batch: int = 32,
    hidden: int = 64,
    eval_size: int = 64,
    workers: int = 0,
    lr: float = 0.001,
    schedule: str = "Const",
    eval_every: int | None = None,
) -> dict[str, Any]:
    """A whole training config (as a dict) for the easy digit task; files go under ``root``.

    Crops are 16 x 48 (the compact CNN takes any height >= 16): a quarter of the 32 x 100 cost, and
    digits stay legible. With the defaults a 64-unit BiLSTM reads most of them after ~300 steps.
    """
    root.mkdir(parents=True, exist_ok=True)
    dictionary = root / "digits.txt"
    dictionary.write_text("\n".join(DIGITS) + "\n", encoding="utf-8")
    synth = synth_options(font_dir(root))
    resize = [{"RecResizeImg": {"image_shape": [3, 16, 48]}}]
    return {
        "Global": {
            "epoch_num": 1,
            "max_steps": steps,
            "print_batch_step": 10,
            "save_model_dir": str(root / "out"),
            "eval_batch_step": [0, eval_every or steps],
            "character_dict_path": str(dictionary),
            "max_text_length": 4,
            "seed": 7,
            "use_gpu": False,
            "grad_clip": 1.0,  # the per-sample CTC sums are large early on; a tight clip escapes the blank plateau reliably
        },
        "Optimizer": {
            "name": "Adam",
            "lr": {"name": schedule, "learning_rate": lr, "warmup_steps": 0 if schedule == "Const" else 5},
        },
        "Architecture": {"Backbone": {"name": "CompactCNN"}, "Neck": {"hidden_size": hidden}},
        "Train": {
            "dataset": {"name": "SynthDataSet", "size": 100_000, "synth": synth, "transforms": resize},
            "loader": {
                "batch_size_per_card": batch,
                "num_workers": workers,
                "shuffle": True,
                "drop_last": True,
            },
        },
        "Eval": {
            "dataset": {"name": "SynthDataSet", "size": eval_size, "synth": synth, "transforms": resize},
            "loader": {"batch_size_per_card": 64, "num_workers": 0, "shuffle": False, "drop_last": False},
        },
    }


def write_config(root: Path, config: dict[str, Any], name: str = "config.yml") -> Path:
    path = root / name
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def iiit5k_config(
    root: Path, data_dir: Path, *, n: int, hidden: int, batch: int, seed: int, out: str = "out"
) -> dict[str, Any]:
    """A config (as a dict) training a CompactCNN CRNN on the first ``n`` real IIIT5K train crops at
    32 px high, dynamic width, over the ``en`` dictionary; its label file is written under ``root``."""
    rows = (data_dir / "iiit5k_train" / "labels.tsv").read_text(encoding="utf-8").splitlines()[:n]
    labels = root / "iiit5k.tsv"
    labels.write_text("\n".join(f"iiit5k_train/{r}" for r in rows) + "\n", encoding="utf-8")
    resize = {"RecResizeImg": {"image_shape": [3, 32, 100], "dynamic_width": True, "width_step": 32}}
    dataset = {"name": "SimpleDataSet", "data_dir": str(data_dir), "label_file_list": [str(labels)]}
    return {
        "Global": {
            "max_steps": 3, "save_model_dir": str(root / out), "character_dict_path": "en",
            "use_space_char": True, "seed": seed, "use_gpu": False, "eval_batch_step": [0, 100],
        },
        "Optimizer": {"name": "Adam", "lr": {"name": "Const", "learning_rate": 0.0005}},
        "Architecture": {"Backbone": {"name": "CompactCNN"}, "Neck": {"hidden_size": hidden}},
        "Train": {
            "dataset": {**dataset, "transforms": [{"RecAug": {"tia_prob": 0.5}}, resize]},
            "loader": {"batch_size_per_card": batch, "num_workers": 0, "bucket_batches": 1},
        },
    }  # fmt: skip
