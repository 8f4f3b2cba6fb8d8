"""`crnn eval`: accuracy per dataset on any backend, as a table, JSON or CSV, with a CI gate."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import click

from crnn_cli.commands.common import backend_options, progress_enabled, session_options, stderr_console
from crnn_cli.distributed.options import ray_options


def _parse_datasets(specs: tuple[str, ...]) -> list[tuple[str | None, Path]]:
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if sep and name and not Path(spec).exists():
            out.append((name, Path(path)))
        else:
            out.append((None, Path(spec)))
    return out


def _threshold(value: float | None) -> float | None:
    # Always a percentage, as coverage's fail_under and pytest-cov read theirs: 1 means 1 %, not 100 %.
    return None if value is None else value / 100.0


@click.command(name="eval")
@click.argument("datasets", nargs=-1, required=True, metavar="DATASET...")
@click.option(
    "--model",
    type=click.Path(exists=True, path_type=str),
    default=None,
    help="Model file; default: the bundled English model.",
)
@backend_options
@click.option(
    "--dict",
    "dictionary",
    default=None,
    metavar="NAME|PATH",
    help="Dictionary of a model that carries none (a Paddle model): a shipped name (ic15, en) "
    "or a file with one symbol a line. Models exported by crnn carry their own.",
)
@click.option(
    "--use-space-char",
    is_flag=True,
    default=None,
    help="With --dict: the model has a space class after the dictionary (PaddleOCR's use_space_char).",
)
@click.option(
    "--image-shape",
    default=None,
    metavar="C,H,W",
    help="Input shape of a model that does not say it, e.g. 3,48,320 (PaddleOCR's rec_image_shape).",
)
@click.option(
    "--rotate",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Tall crops (h/w >= 1.5): read both ways, the most confident wins (auto); turned (always); as is.",
)
@click.option(
    "--protocol",
    type=click.Choice(["paddle", "benchmark", "exact", "caseless"]),
    default="benchmark",
    show_default=True,
    help="benchmark: case-insensitive alphanumeric (DTRB/PARSeq); paddle: PaddleOCR RecMetric; exact; "
    "caseless: every symbol, case-insensitive, spaces collapsed (receipt lines).",
)
@click.option(
    "--filter",
    "filter_mode",
    type=click.Choice(["drop", "strip"]),
    default="drop",
    show_default=True,
    help="benchmark protocol: drop labels with other symbols or > 25 chars (DTRB), or strip the symbols (PARSeq).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the result here.",
)
@click.option(
    "--fail-under",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="ACC",
    help="Exit 1 when the mean word accuracy is below ACC percent (0-100; 0.9 means 0.9 %).",
)
@click.option(
    "--report",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write an HTML page and PNG gallery of the worst errors here.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N samples per dataset.")
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder the image paths of label files are relative to (default: each label file's folder).",
)
@click.option(
    "--label-format",
    type=click.Choice(["auto", "tsv", "space", "jsonl", "icdar", "csv", "per-image"]),
    default="auto",
    show_default=True,
    help="Layout of label files: tsv (path<TAB>label, PaddleOCR), space (path label, MMOCR txt), jsonl "
    '({"filename", "text"}), icdar (word_1.png, "text"), csv (EasyOCR filename,words), per-image (a .txt '
    "beside each image); auto detects it per file.",
)
@click.option(
    "--confine-paths",
    is_flag=True,
    help="Refuse image paths that leave the data folder (absolute, ../, symlinks out), for label files "
    "you do not trust; they then count as missing.",
)
@click.option(
    "--allow-unreadable",
    is_flag=True,
    help="Exit 0 even when samples are missing or unreadable (they still count as wrong).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
@ray_options
def evaluate(
    datasets: tuple[str, ...],
    model: str | None,
    backend: str | None,
    threads: int | None,
    device: str | None,
    providers: str | None,
    performance_hint: str | None,
    dictionary: str | None,
    use_space_char: bool | None,
    image_shape: str | None,
    rotate: str,
    protocol: str,
    filter_mode: str,
    fmt: str,
    output: Path | None,
    fail_under: float | None,
    report: Path | None,
    limit: int | None,
    data_dir: Path | None,
    label_format: str,
    confine_paths: bool,
    allow_unreadable: bool,
    batch_size: int,
    quiet: bool,
    ray_address: str | None,
    ray_actors: int | None,
) -> None:
    """Evaluate a model on DATASETs: NAME=PATH or PATH, where PATH is a folder with labels.tsv, a label
    file, an LMDB folder (data.mdb), or a folder of several of those (each reported on its own).

    \b
    Per dataset: count, filtered count and why, word accuracy, 1 - normalised edit distance, mean
    confidence, images/s; then the unweighted and the sample-weighted mean.

    \b
    Every labelled line counts: a sample whose image is missing or cannot be read, or whose line
    cannot be parsed, is scored as wrong, named on stderr, and makes the exit status 1 (unless
    --allow-unreadable). Only the protocol's filter leaves samples out (column "filtered").
    """
    from crnn_cli import __version__
    from crnn_cli.core.datasets import discover_datasets, open_spec
    from crnn_cli.core.errors import DatasetError
    from crnn_cli.core.recognizer import Recognizer, parse_image_shape
    from crnn_cli.evaluation import evaluate_dataset, to_json

    console = stderr_console(quiet)
    if ray_address is None and ray_actors is not None:
        raise click.UsageError("--ray-actors needs --ray ADDRESS")
    make: Any = Recognizer
    if ray_address is not None:  # the same scoring; the crops are read here and recognised on Ray
        from crnn_cli.distributed.recognizer import RayRecognizer

        make = partial(RayRecognizer, ray_address, actors=ray_actors)
    rec = make(
        model,
        backend,
        dictionary=dictionary,
        use_space_char=use_space_char,
        image_shape=parse_image_shape(image_shape) if image_shape else None,
        rotate_vertical=rotate,
        batch_size=batch_size,
        threads=threads,
        session_options=session_options(threads, device, providers, performance_hint),
    )
    found: list[tuple[str, Any]] = []
    for name, path in _parse_datasets(datasets):
        subs = discover_datasets(path)
        for sub_name, spec in subs:
            label = sub_name if not name else (name if len(subs) == 1 else f"{name}/{sub_name}")
            if data_dir is not None and spec.kind == "labels":
                spec = replace(spec, data_dir=data_dir)
            found.append((label, spec))
    reports = []
    skipped: list[dict[str, str]] = []  # datasets that could not be opened: listed, and exit 1
    keep = 48 if report else 0
    with rec:
        for name, spec in found:
            try:
                ds = open_spec(
                    name,
                    spec,
                    decode=False,
                    keep_unreadable=True,
                    label_format=label_format,
                    confine_paths=confine_paths,
                )
            except DatasetError as exc:
                console.print(f"crnn: skipped dataset {name}: {exc}", markup=False)
                skipped.append({"name": name, "error": str(exc)})
                continue
            total = len(ds) if limit is None else min(limit, len(ds))
            run = partial(
                evaluate_dataset,
                name,
                ds,
                rec.recognize,
                path=str(spec.path),
                protocol=protocol,
                filter_mode=filter_mode,
                limit=limit,
                keep_failures=keep,
            )
            if progress_enabled(quiet):
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                columns = (TextColumn(name), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
                with Progress(*columns, console=console.real, transient=True) as progress:
                    task = progress.add_task(name, total=total)
                    r = run(on_progress=lambda n, t=task: progress.update(t, completed=n))
            else:
                r = run()
            if r.acc.count == 0 and not r.acc.filtered:
                why = (
                    ", ".join(f"{n} {reason}" for reason, n in ds.stats.skipped.most_common(3))
                    or "it is empty"
                )
                console.print(f"crnn: {name}: no sample could be scored ({why})", markup=False)
                skipped.append({"name": name, "error": f"no sample could be scored ({why})"})
                continue
            if r.bad_samples:
                console.print(_problem_line(r, spec), markup=False)
            reports.append(r)
        backend_name = rec.backend.name
    if not reports:
        raise DatasetError("no dataset could be evaluated")
    threshold = _threshold(fail_under)
    result = to_json(
        reports,
        {
            "crnn_version": __version__,
            "model": str(rec.model_path),
            "backend": backend_name,
            "protocol": protocol,
            "filter": filter_mode,
            "limit": limit,
            "fail_under": threshold,
            "passed": None,
            "skipped_datasets": skipped,
        },
    )
    mean_acc = result["summary"]["mean"]["accuracy"]
    if threshold is not None:
        result["passed"] = mean_acc >= threshold
    text = render(result, fmt)
    click.echo(text, nl=not text.endswith("\n"))
    if output is not None:
        from crnn_cli.core.fileio import write_bytes_atomic

        write_bytes_atomic(
            output, (render(result, "json" if output.suffix == ".json" else fmt, color=False)).encode()
        )
    if report is not None:
        from crnn_cli.report import write_report

        page = write_report(report, reports, result)
        console.print(f"crnn: report written to {page}", markup=False)
    failed = False
    if threshold is not None and not result["passed"]:
        # Even under -q: a failed gate says why, in one line.
        click.echo(f"crnn: mean accuracy {mean_acc:.2%} is below --fail-under {threshold:.2%}", err=True)
        failed = True
    # Each reason for exit 1 says so on stderr, also under -q.
    if skipped:
        click.echo(f"crnn: {len(skipped)} dataset(s) could not be evaluated", err=True)
        failed = True
    bad = sum(r.bad_samples for r in reports)
    if bad and not allow_unreadable:
        click.echo(
            f"crnn: {bad} sample(s) could not be read and were counted as wrong; "
            "fix the data, or pass --allow-unreadable to accept that",
            err=True,
        )
        failed = True
    if failed:
        sys.exit(1)


def _problem_line(r: Any, spec: Any) -> str:
    """One stderr line naming what could not be read in a dataset, with examples and a hint."""
    parts = [f"{n} {reason}" for reason, n in (r.missing + r.unreadable).most_common()]
    examples = "; ".join(r.problem_examples[:3])
    line = (
        f"crnn: {r.name}: {r.bad_samples} of {r.acc.count} samples could not be read and count as wrong "
        f"({', '.join(parts)}; e.g. {examples})"
    )
    if r.missing and spec.kind == "labels":
        folder = (spec.data_dir if spec.data_dir is not None else spec.path.parent).resolve()
        line += (
            f"; image paths are read relative to {folder}: if they are relative to another folder, "
            "give it with --data-dir"
        )
    return line


COLUMNS = ("count", "filtered", "missing", "unreadable")


def notes(result: dict[str, Any]) -> list[str]:
    """Why samples were filtered or lost, one line per dataset that has any (under the table)."""
    out = []
    for d in result["datasets"]:
        for what, reasons in (("filtered", d["filtered_reasons"]), ("not read", d["problem_reasons"])):
            if reasons:
                text = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda x: -x[1]))
                out.append(f"{d['name']}: {what}: {text}")
    return out


def render(result: dict[str, Any], fmt: str, color: bool = True) -> str:
    if fmt == "json":
        return json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    rows = []
    for d in result["datasets"]:
        rows.append(
            [
                d["name"],
                *(d[c] for c in COLUMNS),
                d["accuracy"],
                d["norm_edit_distance"],
                d["mean_confidence"],
                d["images_per_second"],
            ]
        )
    s = result["summary"]
    blank = [""] * (len(COLUMNS) - 1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            ["dataset", *COLUMNS, "accuracy", "norm_edit_distance", "mean_confidence", "images_per_second"]
        )
        for r in rows:
            w.writerow([*r[:5], f"{r[5]:.6f}", f"{r[6]:.6f}", f"{r[7]:.6f}", f"{r[8]:.1f}"])
        for label, key in (("mean", "mean"), ("weighted_mean", "weighted_mean")):
            scores = s[key]
            w.writerow(
                [
                    label,
                    s["count"],
                    *blank,
                    f"{scores['accuracy']:.6f}",
                    f"{scores['norm_edit_distance']:.6f}",
                    "",
                    "",
                ]
            )
        return buf.getvalue()
    from rich.console import Console
    from rich.table import Table

    from crnn_cli.commands.common import table_width

    table = Table(
        title=f"crnn eval: {Path(result['model']).name} on {result['backend']}, protocol {result['protocol']}"
        + (f" (filter {result['filter']})" if result["protocol"] == "benchmark" else ""),
        caption="count: every labelled sample not filtered; missing and unreadable ones count as wrong",
    )
    for col in ("dataset", *COLUMNS, "accuracy", "1-NED", "mean conf", "img/s"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for r in rows:
        table.add_row(*(str(v) for v in r[:5]), f"{r[5]:.2%}", f"{r[6]:.4f}", f"{r[7]:.3f}", f"{r[8]:.1f}")
    table.add_section()
    for label, key in (("mean", "mean"), ("weighted mean", "weighted_mean")):
        scores = s[key]
        table.add_row(
            label,
            str(s["count"]),
            *blank,
            f"{scores['accuracy']:.2%}",
            f"{scores['norm_edit_distance']:.4f}",
            "",
            "",
        )
    buf = io.StringIO()
    Console(
        file=buf, width=table_width(), force_terminal=color and sys.stdout.isatty(), color_system="auto"
    ).print(table)
    for line in notes(result):
        buf.write(line + "\n")
    return buf.getvalue()
