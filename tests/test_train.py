"""`crnn train` end to end on an easy synthetic task: learning, resume, signals, DDP, NaN handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from crnn_torch import checkpoint as ck
from crnn_torch.config import config_from_dict
from crnn_torch.data import EVAL_SEED_OFFSET
from crnn_torch.train import TorchTrainer, train
from train_util import tiny_config, write_config

from crnn_cli.core.ctc import decode_greedy
from crnn_cli.core.preprocess import Preprocessor

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "tests"))
    return env


@pytest.mark.slow
def test_learns_easy_synthetic_task(tmp_path: Path) -> None:
    """300 steps on clean 1-4 digit crops: accuracy on held-apart images goes from 0 to well above chance."""
    config = config_from_dict(tiny_config(tmp_path, steps=300, eval_size=200, eval_every=150))
    trainer = TorchTrainer(config, quiet=True)
    try:
        before = trainer.evaluate()
        summary = trainer.fit()
    finally:
        trainer.close()
    assert before["acc"] < 0.05  # chance for 1-4 random digits is about 0.03 (one digit guessed right)
    assert summary["finished"] and summary["steps"] == 300 and summary["skipped_steps"] == 0
    assert summary["last_eval"]["acc"] > 0.5, summary["last_eval"]  # 0.75-0.98 over seeds 1-7
    assert summary["last_eval"]["norm_edit_dis"] > 0.6
    out = tmp_path / "out"
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [150, 300]
    losses = [r["loss"] for r in records if r["event"] == "train"]
    assert losses[-1] < 0.5 * losses[0]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["best"]["value"] == max(r["acc"] for r in evals)

    # The best checkpoint is self-describing: rebuilt from it alone (model, dictionary, preprocessing),
    # it reads the held-apart images exactly as the evaluation did.
    model, meta = ck.model_from_checkpoint(out / "best_accuracy.pt")
    from crnn_torch.config import synth_config

    from crnn_cli.synth import SynthRenderer

    assert config.Eval is not None
    renderer = SynthRenderer(synth_config(config.Eval.dataset), meta.charset(), 7 + EVAL_SEED_OFFSET)
    samples = [renderer.sample(i) for i in range(200)]
    batch = Preprocessor(meta.preprocess(rotate_vertical=False)).batch([img for img, _ in samples])
    with torch.no_grad():
        probs = model(torch.from_numpy(batch)).softmax(-1).numpy()
    texts = [d.text for d in decode_greedy(probs, meta.charset())]
    acc = float(np.mean([t == label for t, (_, label) in zip(texts, samples)]))
    best_step = summary["best"]["step"]
    assert acc == pytest.approx(next(r["acc"] for r in evals if r["step"] == best_step))


def _weights(path: Path, key: str = "model") -> dict[str, torch.Tensor]:
    return ck.load_checkpoint(path)[key]


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed-width", "width-buckets"])
def test_resume_continues_the_same_run(tmp_path: Path, dynamic: bool) -> None:
    """k steps, stop, resume to n == n steps straight through (weights, EMA, optimiser, schedule).

    With dynamic widths the stop falls inside a chunk of 4 width-sorted batches (see data.ChunkSampler).
    """

    def config(root: Path) -> Path:
        cfg = tiny_config(root, steps=12, batch=8, hidden=16, schedule="Cosine", eval_every=6, eval_size=16)
        if dynamic:
            cfg = _dynamic_config(root, 4) | {"Global": cfg["Global"], "Optimizer": cfg["Optimizer"]}
            cfg["Global"]["max_text_length"] = 12
            cfg["Architecture"]["Neck"]["hidden_size"] = 16
            cfg["Eval"]["dataset"]["size"] = 16
        cfg["Train"]["dataset"]["size"] = 40  # 5 steps per epoch: the stop falls mid-epoch 2
        cfg["Global"].update(ema=True, ema_decay=0.9, deterministic=True)
        return write_config(root, cfg)

    straight = train(config(tmp_path / "a"), quiet=True)
    assert straight["steps"] == 12 and straight["epoch"] == 2

    cfg_b = config(tmp_path / "b")
    first = train(cfg_b, quiet=True, stop_at=7)
    assert not first["finished"] and first["steps"] == 7
    assert "--resume" in first["resume_command"]
    latest = tmp_path / "b" / "out" / "latest.pt"
    state = ck.load_checkpoint(latest)
    assert (state["step"], state["epoch"], state["data"]["batch"]) == (7, 1, 2)
    resumed = train(cfg_b, resume=latest, quiet=True)
    assert resumed["finished"] and resumed["steps"] == 12 and resumed["steps_this_run"] == 5

    a, b = tmp_path / "a" / "out" / "latest.pt", latest
    for key in ("model", "raw_model"):  # EMA weights and trained weights
        wa, wb = _weights(a, key), _weights(b, key)
        assert wa.keys() == wb.keys()
        worst = max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)
        assert worst <= 1e-5, (key, worst)
    oa, ob = ck.load_checkpoint(a)["optimizer"]["state"], ck.load_checkpoint(b)["optimizer"]["state"]
    assert all(torch.allclose(oa[i]["exp_avg"], ob[i]["exp_avg"], atol=1e-6) for i in oa)
    assert straight["last_eval"]["acc"] == resumed["last_eval"]["acc"]
    # The smoothed loss goes on across the resume (no cliff in the curves) and reaches the last step.
    logged = [_train_losses(tmp_path / d / "out") for d in ("a", "b")]
    assert set(logged[0]) == {10, 12} and set(logged[1]) == {7, 10, 12}
    assert logged[1][10] == pytest.approx(logged[0][10], rel=1e-4)
    assert logged[1][12] == pytest.approx(logged[0][12], rel=1e-4)
    # a different run really is different: the check above can fail
    other = train(config(tmp_path / "c"), ["Global.seed=8"], quiet=True)
    wc = _weights(Path(other["latest"]))
    assert max(float((wc[k] - _weights(a)[k]).abs().max()) for k in wc if wc[k].is_floating_point()) > 1e-3


def _train_losses(out: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["event"] == "train"}


def test_run_stopped_before_any_evaluation_gets_curves(tmp_path: Path) -> None:
    """--max-steps before the first evaluation: the bar counts to the stop, the curves still appear."""
    cfg = tiny_config(tmp_path, steps=40, batch=4, hidden=8, eval_size=8, eval_every=20)
    trainer = TorchTrainer(config_from_dict(cfg), quiet=True)
    totals: list[int] = []
    trainer.report.start = lambda total, done: totals.append(total)  # type: ignore[method-assign]
    try:
        summary = trainer.fit(stop_at=3)
    finally:
        trainer.close()
    assert totals == [3]  # not the 40 steps of the schedule
    assert summary["last_eval"] is None and summary["curves"] == str(tmp_path / "out" / "curves.png")
    assert (tmp_path / "out" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(_train_losses(tmp_path / "out")) == [3]  # print_batch_step is 10: the last step is logged


def test_resume_from_checkpoint_alone(tmp_path: Path) -> None:
    """`--resume` without a config uses the config stored in the checkpoint; -o still applies."""
    cfg = write_config(tmp_path, tiny_config(tmp_path, steps=4, batch=4, hidden=8, eval_size=8))
    first = train(cfg, quiet=True, stop_at=2)
    resumed = train(None, ["Global.max_steps=5"], resume=first["latest"], quiet=True)
    assert resumed["steps"] == 5 and resumed["finished"]


SIGNAL_SCRIPT = textwrap.dedent(
    """\
    import json, sys, torch
    from crnn_torch.train import train

    # Data workers start through forkserver, which imports this file again: guard the entry point.
    if __name__ == "__main__":
        torch.set_num_threads(1)
        summary = train(sys.argv[1], ["Global.max_steps=100000", "Global.print_batch_step=1"])
        print(json.dumps({k: summary[k] for k in ("steps", "interrupted", "finished", "latest")}))
    """
)


def _interrupt(command: list[str], folder: Path, when: str, signum: int) -> tuple[int, str, str]:
    """Run ``command``, send ``signum`` once its stderr shows ``when``: (exit status, stdout, stderr)."""
    log = folder / "stderr.txt"
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=_env())
        # Generous limits: on a loaded machine (a training run beside the suite) starting torch and
        # finishing the step after the signal took over a minute; they only bound a hung run.
        deadline = time.monotonic() + 240
        while when not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=240)
    return proc.returncode, out, log.read_text()


def test_sigterm_saves_a_resumable_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=10, batch=4, hidden=8, eval_size=8, workers=1)
    path = write_config(tmp_path, cfg)
    script = tmp_path / "run.py"
    script.write_text(SIGNAL_SCRIPT, encoding="utf-8")
    code, out, stderr = _interrupt(
        [sys.executable, str(script), str(path)], tmp_path, "step 3/", signal.SIGTERM
    )
    assert code == 0, stderr  # the library returns; the command's exit status is tested below
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] == "SIGTERM" and not summary["finished"]
    assert "SIGTERM received" in stderr and "Resume with: crnn train -c" in stderr
    state = ck.load_checkpoint(summary["latest"])
    assert state["step"] == summary["steps"] >= 3
    resumed = train(path, [f"Global.max_steps={state['step'] + 2}"], resume=summary["latest"], quiet=True)
    assert resumed["steps"] == state["step"] + 2 and resumed["finished"]


def test_ctrl_c_in_crnn_train_saves_then_exits_130(tmp_path: Path) -> None:
    """`crnn train` (the real command) stops on SIGINT after saving, and says so in its exit status."""
    cfg = tiny_config(tmp_path, steps=100000, batch=4, hidden=8, eval_size=8)
    cfg["Global"]["print_batch_step"] = 1
    path = write_config(tmp_path, cfg)
    command = [sys.executable, "-m", "crnn_cli", "train", "-c", str(path)]
    code, out, stderr = _interrupt(command, tmp_path, "step 2/", signal.SIGINT)
    assert code == 130, stderr
    summary = json.loads(out)  # stdout is not a terminal: JSON
    assert summary["interrupted"] == "SIGINT" and not summary["finished"]
    assert ck.load_checkpoint(summary["latest"])["step"] == summary["steps"] >= 2


def test_crnn_train_on_a_terminal_prints_a_readable_summary(tmp_path: Path) -> None:
    """On a terminal the summary is a few labelled lines, not 2 KB of JSON; --json still gives JSON."""
    from terminal_util import run_on_terminal

    outputs = []
    for name, extra in (("text", []), ("json", ["--json"])):  # a folder each: a used one may be refused
        root = tmp_path / name
        cfg = write_config(root, tiny_config(root, steps=3, batch=4, hidden=8, eval_size=8))
        command = [sys.executable, "-m", "crnn_cli", "train", "-c", str(cfg), "-q", *extra]
        code, text, _ = run_on_terminal(command, "stdout", env=_env())
        assert code == 0
        outputs.append(text)
    text, as_json = outputs
    assert text.startswith("finished: step 3; 3 steps in "), text
    assert "eval      step 3: acc" in text and f"latest    {tmp_path / 'text' / 'out' / 'latest.pt'}" in text
    assert all(len(line) < 200 for line in text.splitlines()) and "{" not in text
    assert json.loads(as_json)["steps"] == 3


DDP_SCRIPT = textwrap.dedent(
    """\
    import json, os, sys, torch
    torch.set_num_threads(1)
    from crnn_torch.config import load_config
    from crnn_torch.train import TorchTrainer

    if __name__ == "__main__":
        trainer = TorchTrainer(load_config(sys.argv[1]), quiet=True)
        trainer.train_sampler.set_epoch(0)
        first = next(iter(trainer.train_loader))["texts"]
        summary = trainer.fit()
        rank = trainer.dist.rank
        torch.save(trainer.model.state_dict(), os.path.join(sys.argv[2], f"rank{rank}.pt"))
        with open(os.path.join(sys.argv[2], f"rank{rank}.json"), "w") as f:
            json.dump({"world": trainer.dist.world, "first": first, "steps": summary["steps"],
                       "eval": summary["last_eval"]}, f)
        trainer.close()
    """
)


def test_ddp_two_processes_agree(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=4, batch=4, hidden=8, eval_size=10, eval_every=2)
    path = write_config(tmp_path, cfg)
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, env=_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2 and r0["steps"] == r1["steps"] == 4
    assert r0["first"] != r1["first"]  # each rank reads its own shard
    assert r0["eval"] == r1["eval"] and r0["eval"]["count"] == 10  # metrics all-reduced over the shards
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["best_accuracy.pt", "config.yml", "curves.png", "latest.pt", "metrics.jsonl"]
    )
    start = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert start["world_size"] == 2
    saved = ck.load_checkpoint(out / "latest.pt")
    assert len(saved["rng"]) == 2 and saved["data"]["world_size"] == 2
    assert all(torch.equal(saved["model"][k], w0[k]) for k in w0)


def test_nan_loss_is_skipped(tmp_path: Path) -> None:
    config = config_from_dict(tiny_config(tmp_path, steps=6, batch=4, hidden=8, eval_size=8))
    trainer = TorchTrainer(config, quiet=True)
    trainer.train_sampler.set_epoch(0)
    batch = next(iter(trainer.train_loader))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    poisoned = dict(batch, images=torch.full_like(batch["images"], float("nan")))
    out = trainer.train_step(poisoned)
    assert out["skipped"] == "non-finite loss"
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics included
    assert not trainer.optimizer.state  # Adam took no step (its moments would be NaN now)
    assert all(p.grad is None for p in trainer.model.parameters())
    assert trainer.train_step(batch)["skipped"] is None

    # In the loop: a NaN step is counted, logged and skipped; the run goes on.
    real_loss = trainer.loss
    calls = {"n": 0}

    def flaky_loss(*args: object) -> torch.Tensor:
        calls["n"] += 1
        loss = real_loss(*args)  # type: ignore[arg-type]
        return loss * float("nan") if calls["n"] == 3 else loss

    trainer.loss = flaky_loss  # type: ignore[method-assign]
    trainer.step = 0
    summary = trainer.fit()
    trainer.close()
    assert summary["skipped_steps"] == 1 and summary["steps"] == 6
    records = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "skip"] == [3]
    weights = ck.load_checkpoint(tmp_path / "out" / "latest.pt")["model"]
    assert all(bool(torch.isfinite(v).all()) for v in weights.values() if v.is_floating_point())


def test_nan_weights_never_become_best(tmp_path: Path) -> None:
    config = config_from_dict(tiny_config(tmp_path, steps=2, batch=4, hidden=8, eval_size=8))
    trainer = TorchTrainer(config, quiet=True)
    with torch.no_grad():
        trainer.model.head.fc.bias.fill_(float("nan"))
    trainer._eval_and_save()
    trainer.close()
    assert trainer.best is None
    assert not (tmp_path / "out" / "best_accuracy.pt").exists()
    assert (tmp_path / "out" / "latest.pt").exists()


def test_amp_bf16_on_cpu_keeps_ctc_in_float32(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=2, batch=4, hidden=8, eval_size=8)
    cfg["Global"]["amp"] = "bf16"
    trainer = TorchTrainer(config_from_dict(cfg), quiet=True)
    trainer.train_sampler.set_epoch(0)
    batch = next(iter(trainer.train_loader))
    with trainer._autocast():
        logits = trainer.model(batch["images"])
    assert logits.dtype == torch.bfloat16  # autocast is really on
    loss = trainer.loss(logits, batch["targets"], batch["target_lengths"])
    assert loss.dtype == torch.float32
    out = trainer.train_step(batch)
    trainer.close()
    assert out["skipped"] is None and np.isfinite(out["loss"])


@pytest.mark.parametrize("native", [True, False])
def test_amp_auto_on_cpu_takes_bf16_only_where_the_cpu_has_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """Emulated bf16 trained crnn_default 6-12x slower than float32 on an AVX2 machine."""
    from crnn_torch import amp, progress

    monkeypatch.setattr(amp, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    assert amp.autocast_dtype("auto", cpu) == ((torch.bfloat16 if native else None), False)
    assert amp.autocast_dtype("bf16", cpu) == (torch.bfloat16, False)  # asked for: obeyed
    assert amp.autocast_dtype("off", cpu) == (None, False)
    cfg = tiny_config(tmp_path, steps=1, batch=4, hidden=8, eval_size=8)
    cfg["Global"]["amp"] = "bf16"
    messages: list[str] = []
    monkeypatch.setattr(progress.Reporter, "info", lambda self, text: messages.append(text))
    TorchTrainer(config_from_dict(cfg), quiet=True).close()
    warned = [m for m in messages if "without native bf16" in m]
    assert bool(warned) == (not native)


# -- data: sources, mixing, filtering, resumable order, augmentation ----------------------------------


def _label_dataset(root: Path) -> Path:
    """A label file of 10 crops: 8 usable digit labels, one with a letter, one too long."""
    import cv2
    from crnn_torch.config import synth_config

    from crnn_cli.synth import SynthRenderer

    raw = tiny_config(root)
    renderer = SynthRenderer(synth_config(config_from_dict(raw).Train.dataset), None, 3)  # type: ignore[union-attr]
    (root / "img").mkdir()
    lines = []
    for i in range(8):
        img, _ = renderer.sample(i)
        cv2.imwrite(str(root / "img" / f"{i}.png"), img)
        lines.append(f"img/{i}.png\t{'0123456789'[i]}{i}")
    lines += ["img/0.png\t12a", "img/1.png\t123456"]  # 'a' is not a digit; 6 > max_text_length 4
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "labels.tsv"


def test_mixed_data_filtering_and_resumable_order(tmp_path: Path) -> None:
    from crnn_torch.data import EpochPlan, build_leaves

    labels = _label_dataset(tmp_path)
    raw = tiny_config(tmp_path, batch=4)
    synth = raw["Train"]["dataset"]
    real = {"name": "SimpleDataSet", "label_file_list": [str(labels)], "ratio_list": [2.0],
            "transforms": [{"RecAug": {"tia_prob": 1.0}}]}  # fmt: skip
    raw["Train"]["dataset"] = {
        "name": "MixDataSet",
        "ratio_list": [0.25, 0.75],
        "datasets": [dict(synth, transforms=[]), real],
        "transforms": synth["transforms"],
    }
    cfg = config_from_dict(raw)
    assert cfg.Train is not None
    from crnn_cli.core.charset import load_charset

    charset = load_charset(cfg.Global.character_dict_path)
    leaves = build_leaves(cfg.Train.dataset, charset, 4, 7, "Train.dataset")
    synth_leaf, real_leaf = leaves
    stats = real_leaf.source.stats
    assert (stats.seen, stats.kept) == (10, 8)
    assert stats.skipped == {"symbol not in dictionary": 1, "label too long": 1}
    # An epoch is one pass over the real data at its ratio (8 x 2 = 16 = 75 %), synthetic fills 25 %.
    assert (real_leaf.quota, synth_leaf.quota) == (16, 5)
    assert real_leaf.augment is not None and real_leaf.augment["tia"] == 1.0 and synth_leaf.augment is None

    plan = EpochPlan(leaves, seed=7, shuffle=True)
    e0, e1 = plan.epoch(0), plan.epoch(1)
    assert np.array_equal(e0, plan.epoch(0)) and not np.array_equal(e0, e1)  # a pure function of the epoch
    assert sorted(np.bincount(e0[e0[:, 0] == 1, 1])) == [2] * 8  # each real crop twice (ratio 2)
    assert set(e0[e0[:, 0] == 0, 1]).isdisjoint(e1[e1[:, 0] == 0, 1])  # fresh synthetic images per epoch

    trainer = TorchTrainer(cfg, quiet=True)
    sampler = trainer.train_sampler
    assert len(sampler) == 5  # 21 samples, batches of 4, the partial one dropped
    sampler.set_epoch(1)
    full = [key for batch in sampler for key in batch]
    sampler.set_epoch(1, start_batch=2)
    tail = [key for batch in sampler for key in batch]
    assert len(full) == 20 and tail == full[8:]  # resuming at batch 2 yields exactly the rest
    sampler.set_epoch(0)
    batch = next(iter(trainer.train_loader))
    trainer.close()
    assert batch["images"].shape == (4, 3, 16, 48) and float(batch["images"].abs().max()) <= 1.0
    assert int(batch["target_lengths"].sum()) == batch["targets"].numel()
    assert all(set(t) <= set("0123456789") and 1 <= len(t) <= 4 for t in batch["texts"])


def test_ddp_shards_are_disjoint() -> None:
    from crnn_torch.data import EpochBatchSampler, EpochPlan, Leaf

    leaf = Leaf("s", None, 103.0, True, None, quota=103)  # type: ignore[arg-type]
    plan = EpochPlan([leaf], seed=1, shuffle=True)
    keys = []
    for rank in (0, 1):
        sampler = EpochBatchSampler(plan, batch_size=10, drop_last=True, rank=rank, world=2)
        assert len(sampler) == 5  # 103 // 2 = 51 slots per rank -> 5 full batches each
        keys.append({k[3] for b in sampler for k in b})
    assert keys[0].isdisjoint(keys[1]) and len(keys[0]) == len(keys[1]) == 50


def test_augmentation_is_seeded_and_toggleable() -> None:
    from crnn_torch.augment import augment

    img = np.full((32, 96, 3), 230, np.uint8)
    img[8:24, 10:86] = 20
    on = dict.fromkeys(("tia", "crop", "hsv_aug", "jitter", "blur", "noise", "reverse"), 1.0)
    a = augment(img, on, np.random.default_rng(5))
    b = augment(img, on, np.random.default_rng(5))
    c = augment(img, on, np.random.default_rng(6))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and a.shape[1] == 96
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[: min(len(a), 32)], img[: min(len(a), 32)])
    off = dict.fromkeys(on, 0.0)
    assert np.array_equal(augment(img, off, np.random.default_rng(5)), img)


def test_arc_and_vanish_augmentation_warp_real_crops_and_leave_other_configs_alone() -> None:
    """RecAug arc_prob bends the crop along a circle (taller canvas, the crop's own edge pixels in the
    corners, flagged as moving glyphs along the line), vanish_prob moves one end farther away; a config
    without them draws no extra random number, so its samples are what they were before they existed."""
    from crnn_torch.augment import augment_warped
    from crnn_torch.config_schema import RecAugOp

    img = np.full((32, 160, 3), 230, np.uint8)
    img[10:22, 8:152] = 20  # a dark bar on a light crop
    bent, warped = augment_warped(img, {"arc": 1.0}, np.random.default_rng(3))
    assert warped and bent.shape[0] > 48  # enlarged to 48 px high first, then bent: taller than that
    corners = bent[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.min() > 200  # the crop's light edge fills the corners, not black
    dark_rows = np.flatnonzero((bent[:, :, 0] < 128).any(axis=1))
    assert len(dark_rows) > 0.3 * bent.shape[0]  # the bar now spans rows: it is bent, not moved
    others = {"tia": 0.5, "blur": 0.5, "noise": 0.5}
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    a, _ = augment_warped(img, others, r1)
    b, _ = augment_warped(img, {**others, "arc": 0.0}, r2)
    assert np.array_equal(a, b) and r1.random() == r2.random()
    far, warped = augment_warped(img, {"vanish": 1.0}, np.random.default_rng(4))
    dark = far[:, :, 0] < 128
    ends = dark[:, 10:16].sum(0).mean(), dark[:, -16:-10].sum(0).mean()
    assert warped and min(ends) < 0.92 * max(ends)  # one end of the bar seen from farther away
    probs = RecAugOp(arc_prob=0.2, vanish_prob=0.1).probabilities()
    assert (probs["arc"], probs["vanish"]) == (0.2, 0.1)
    assert RecAugOp(arc_prob=0.2).probabilities()["arc"] == 0.2
    older = RecAugOp(aug_prob=0.3).probabilities()  # PaddleOCR's switch leaves crnn's own ops off
    assert older["arc"] == older["vanish"] == 0.0
    with pytest.raises(Exception, match="arc_prob"):
        RecAugOp(arc_prob=1.5)
    with pytest.raises(Exception, match="vanish_prob"):
        RecAugOp(vanish_prob=-0.1)


def test_arc_bends_long_crops_less_so_their_labels_keep_enough_frames() -> None:
    """A receipt line 15 times as wide as high, bent like a word (up to 120 degrees), shrank to about 24
    CTC frames at height 32, fewer than its 35 symbols: the bend of a long crop is capped by its sag."""
    from crnn_torch.augment import arc

    from crnn_cli.core.warp import bend_along_arc

    line = np.full((40, 600, 3), 200, np.uint8)
    frames = []
    for seed in range(12):
        bent = arc(line, np.random.default_rng(seed))
        frames.append(bent.shape[1] * 32 / bent.shape[0] / 4)  # frames at height 32: one per 4 px
    assert min(frames) > 50
    uncapped = bend_along_arc(line, 20.0, 120.0, np.random.default_rng(0), min_arc=110.0)
    assert uncapped.shape[1] * 32 / uncapped.shape[0] / 4 < 35  # what the cap prevents
    word = np.full((32, 128, 3), 200, np.uint8)  # a word keeps its strong bends
    assert min(arc(word, np.random.default_rng(s)).shape[0] for s in range(12)) > 48
    with pytest.raises(ValueError, match="positive"):
        bend_along_arc(line, 20.0, 0.0, np.random.default_rng(0))


def test_lr_schedules() -> None:
    from crnn_torch.config_schema import LrConfig
    from crnn_torch.optim import LrSchedule

    cosine = LrSchedule(
        LrConfig(name="Cosine", learning_rate=0.1, warmup_epoch=1), steps_per_epoch=10, total_steps=110
    )
    assert cosine(0) == pytest.approx(0.01) and cosine(9) == pytest.approx(0.1)  # linear warmup over epoch 1
    assert (
        cosine(10) == pytest.approx(0.1)
        and cosine(60) == pytest.approx(0.05)
        and cosine(110) == pytest.approx(0.0)
    )
    piecewise = LrSchedule(
        LrConfig(name="Piecewise", decay_epochs=(2, 4), values=(0.1, 0.01, 0.001)),
        steps_per_epoch=5,
        total_steps=50,
    )
    assert [piecewise(s) for s in (0, 9, 10, 19, 20, 49)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_optimizer_weight_decay_groups() -> None:
    from crnn_torch.config_schema import OptimizerConfig, RegularizerConfig
    from crnn_torch.models import build_model
    from crnn_torch.optim import build_optimizer

    model = build_model("crnn_default", 11, hidden_size=8)
    head = {id(p) for p in model.head.parameters()}
    adam = build_optimizer(model, OptimizerConfig(regularizer=RegularizerConfig(factor=1e-4)), head_decay=0.0)
    decays = {id(p): g["weight_decay"] for g in adam.param_groups for p in g["params"]}
    assert len(decays) == len(list(model.parameters()))
    assert all(decays[k] == 0.0 for k in head)  # the head's own L2 (fc_decay 0) replaces the global one
    assert all(v == 1e-4 for k, v in decays.items() if k not in head)
    adamw = build_optimizer(
        model, OptimizerConfig(name="AdamW", weight_decay=0.05, no_weight_decay_name="neck")
    )
    decays = {id(p): g["weight_decay"] for g in adamw.param_groups for p in g["params"]}
    assert all(decays[id(p)] == 0.0 for p in model.neck.parameters())
    assert decays[id(model.head.fc.weight)] == 0.05 and decays[id(model.head.fc.bias)] == 0.0


def _dynamic_config(root: Path, bucket: int) -> dict:
    """The digit task at dynamic width (16 x 48..160 px, texts of 1..12 digits): widths vary a lot."""
    cfg = tiny_config(root, batch=8)
    for split in ("Train", "Eval"):
        ds = cfg[split]["dataset"]
        ds["synth"]["max_text_length"] = 12
        ds["transforms"] = [
            {
                "RecResizeImg": {
                    "image_shape": [3, 16, 48],
                    "dynamic_width": True,
                    "max_width": 160,
                    "width_step": 4,
                }
            }
        ]
    cfg["Global"]["max_text_length"] = 12
    cfg["Train"]["dataset"]["size"] = 8 * 12  # 12 batches an epoch: 3 chunks of 4
    cfg["Train"]["loader"]["bucket_batches"] = bucket
    return cfg


def _epoch_batches(trainer: TorchTrainer, start: int = 0) -> list[dict]:
    trainer.train_sampler.set_epoch(1, start)
    return list(trainer.train_loader)


def test_width_buckets_cut_padding_and_resume_mid_chunk(tmp_path: Path) -> None:
    """Bucketed batches hold the same samples per chunk, pad far less, and restart at any batch."""
    plain = TorchTrainer(config_from_dict(_dynamic_config(tmp_path / "a", 1)), quiet=True)
    bucketed = TorchTrainer(config_from_dict(_dynamic_config(tmp_path / "b", 4)), quiet=True)
    try:
        drawn, grouped = _epoch_batches(plain), _epoch_batches(bucketed)
        assert len(drawn) == len(grouped) == len(bucketed.train_loader) == 12
        for c in range(3):  # regrouping stays within a chunk of 4 batches
            texts = [
                sorted(t for b in batches[4 * c : 4 * c + 4] for t in b["texts"])
                for batches in (drawn, grouped)
            ]
            assert texts[0] == texts[1]

        def padded_share(batches: list[dict]) -> float:
            total = sum(b["images"].shape[0] * b["images"].shape[3] for b in batches)
            return 1 - sum(int(b["widths"].sum()) for b in batches) / total

        assert padded_share(grouped) < 0.5 * padded_share(drawn), (padded_share(grouped), padded_share(drawn))
        assert all(int(b["widths"].max()) == b["images"].shape[3] for b in grouped)
        for start in (2, 5, 8):  # mid-chunk and on a chunk boundary
            rest = _epoch_batches(bucketed, start)
            assert [b["texts"] for b in rest] == [b["texts"] for b in grouped[start:]]
            assert all(torch.equal(x["images"], y["images"]) for x, y in zip(rest, grouped[start:]))
        other_epoch = bucketed.train_sampler
        other_epoch.set_epoch(2)
        assert [b["texts"] for b in bucketed.train_loader] != [b["texts"] for b in grouped]
    finally:
        plain.close()
        bucketed.close()


def _policy_after(priority: str) -> tuple[int, int]:
    from crnn_torch.data import _lower_priority

    _lower_priority(priority)
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")
def test_data_workers_run_below_the_training_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    from crnn_torch.data import worker_priority

    from crnn_cli.core.errors import ConfigError

    monkeypatch.delenv("CRNN_WORKER_NICE", raising=False)
    assert worker_priority() == "idle"
    monkeypatch.setenv("CRNN_WORKER_NICE", " 19 ")
    assert worker_priority() == "19"
    for bad in ("fast", "-5", "20", ""):
        monkeypatch.setenv("CRNN_WORKER_NICE", bad)
        with pytest.raises(ConfigError, match="CRNN_WORKER_NICE"):
            worker_priority()
    # Applied in a child process (as in a DataLoader worker), never to the test process itself.
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        assert pool.apply(_policy_after, ("idle",))[0] == os.SCHED_IDLE
    with multiprocessing.get_context("forkserver").Pool(1) as pool:
        policy, nice = pool.apply(_policy_after, ("7",))
    assert policy == os.SCHED_OTHER and nice == min(base + 7, 19)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


_SPIN_PROBE = """
import json, os, sys
from crnn_torch import TorchBackend
from crnn_cli.core.errors import ConfigError
before = "torch" in sys.modules
try:
    TorchBackend().train(None)  # no config: fails after the OpenMP setting, before any training
except ConfigError:
    pass
print(json.dumps([before, os.environ.get("GOMP_SPINCOUNT"), "torch" in sys.modules]))
"""


@pytest.mark.parametrize(
    ("user", "expected"),
    [({}, "30000"), ({"GOMP_SPINCOUNT": "5"}, "5"), ({"OMP_WAIT_POLICY": "active"}, None)],
)
def test_train_shortens_openmp_spinning_before_torch_loads(
    user: dict[str, str], expected: str | None
) -> None:
    # `crnn train` sets GOMP_SPINCOUNT before torch (and with it libgomp) is imported, so the runtime
    # reads it; a user's own spin or wait policy is left alone.
    env = {k: v for k, v in _env().items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run(
        [sys.executable, "-c", _SPIN_PROBE], env={**env, **user}, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == [False, expected, True]  # torch loaded by train(), after the setting


def test_openmp_setting_is_skipped_once_torch_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from crnn_torch.openmp import limit_spinning

    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert "torch" in sys.modules  # this module imports it: the runtime has read its settings already
    assert limit_spinning() is False
    assert "GOMP_SPINCOUNT" not in os.environ


def test_min_aspect_is_trained_with_and_recorded_in_the_checkpoint(tmp_path: Path) -> None:
    """RecResizeImg.min_aspect stretches narrow crops in training and evaluation, and the checkpoint's
    metadata says so, so that `crnn export` and every backend stretch them the same way."""
    cfg = tiny_config(tmp_path, steps=2, eval_size=8)
    resize = {"image_shape": [3, 16, 48], "dynamic_width": True, "max_width": 96, "min_aspect": 4}
    for part in ("Train", "Eval"):
        cfg[part]["dataset"]["transforms"] = [{"RecResizeImg": resize}]
    trainer = TorchTrainer(config_from_dict(cfg), quiet=True)
    try:
        assert trainer.preprocess.sizes(16, 10)[0] == 64 and trainer.eval_preprocess.min_aspect == 4
        trainer.fit()
    finally:
        trainer.close()
    model, meta = ck.model_from_checkpoint(tmp_path / "out" / "latest.pt")
    assert meta.min_aspect == 4.0 and meta.preprocess().sizes(16, 10)[0] == 64
    from crnn_torch.export import export_onnx

    from crnn_cli.core.recognizer import Recognizer

    export_onnx(model, meta, tmp_path / "m.onnx", verify=False)
    with Recognizer(tmp_path / "m.onnx", "onnxruntime") as rec:
        assert rec.preprocess_config.min_aspect == 4.0
