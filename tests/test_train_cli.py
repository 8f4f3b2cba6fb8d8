"""`crnn train` command line: PaddleOCR's `-o A=1 B=2` (issue 24.6), and a save_model_dir holding another
run is refused unless --resume or --overwrite (issue 24.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crnn_cli.commands.train import expand_overrides


def test_expand_overrides_reads_several_pairs_after_one_o():
    assert expand_overrides(["-c", "x.yml", "-o", "A.b=1", "C.d=2", "-q", "E=3"]) == [
        "-c", "x.yml", "-o", "A.b=1", "-o", "C.d=2", "-q", "E=3",
    ]  # fmt: skip
    assert expand_overrides(["-oA=1", "B=2"]) == ["-oA=1", "-o", "B=2"]
    assert expand_overrides(["--override=A=1", "B=2", "--max-steps", "3"]) == [
        "--override=A=1", "-o", "B=2", "--max-steps", "3",
    ]  # fmt: skip
    assert expand_overrides(["-o", "A=1", "-o", "B=2"]) == ["-o", "A=1", "-o", "B=2"]
    assert expand_overrides(["-c", "x.yml", "A=1"]) == ["-c", "x.yml", "A=1"]  # no -o: click says so


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    pytest.importorskip("torch")
    from train_util import tiny_config, write_config

    return write_config(tmp_path, tiny_config(tmp_path, steps=2, batch=4, hidden=8, eval_size=8))


def _train(*args: str):
    """`crnn train ARGS` through main(), the real error boundary (exit 2 for usage errors)."""
    from crnn_cli.cli import main

    class Run:
        pass

    run = Run()
    with CliRunner().isolation() as (out, err, _):
        try:
            main(["train", "-q", *map(str, args)])
            run.exit_code = 0
        except SystemExit as exc:
            run.exit_code = exc.code
    run.output = out.getvalue().decode() + err.getvalue().decode()
    return run


def test_several_pairs_after_one_o_reach_the_config(tiny):
    r = _train("-c", tiny, "-o", "Global.max_steps=2", "Global.no_such_key=1")
    assert r.exit_code == 2
    assert "no_such_key" in r.output and "unexpected extra argument" not in r.output


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite(tiny, tmp_path):
    out = tmp_path / "out"
    first = _train("-c", tiny, "-o", "Global.max_steps=2", "Global.print_batch_step=1")
    assert first.exit_code == 0, first.output
    old_records = (out / "metrics.jsonl").read_text().splitlines()
    assert (out / "best_accuracy.pt").is_file()

    again = _train("-c", tiny, "-o", "Global.max_steps=1", "Global.eval_batch_step=[0,100]")
    assert again.exit_code == 2
    assert "already holds a training run" in again.output
    assert "--resume" in again.output and "--overwrite" in again.output
    assert (out / "metrics.jsonl").read_text().splitlines() == old_records  # untouched

    resumed = _train("-c", tiny, "--resume", out / "latest.pt", "-o", "Global.max_steps=3")
    assert resumed.exit_code == 0, resumed.output

    old_curves = (out / "curves.png").stat().st_mtime_ns
    fresh = _train("-c", tiny, "--overwrite", "-o", "Global.max_steps=1", "Eval=null")
    assert fresh.exit_code == 0, fresh.output
    # Nothing of the old run is left to mix in: without an eval the new run writes no best_accuracy.pt,
    # so the old one must be gone; curves.png is the new run's own (drawn at the end of every run).
    assert not (out / "best_accuracy.pt").exists()
    assert (out / "curves.png").stat().st_mtime_ns > old_curves
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["event"] == "start" and records[0]["step"] == 0
    assert all(r["step"] <= 1 for r in records)  # the old run logged up to step 3
