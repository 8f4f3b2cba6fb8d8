"""`crnn backends`: the installed backend plugins, what each does (infer, read, write, quantize, train)
and whether it can run here."""

from __future__ import annotations

import json

import click


def collect() -> list[dict[str, object]]:
    from crnn_cli.core import registry
    from crnn_cli.core.backend import INFER, TRAIN
    from crnn_cli.core.errors import BackendError

    rows: list[dict[str, object]] = []
    for info in registry.plugin_infos():
        row: dict[str, object] = {
            "name": info.name,
            "distribution": info.distribution,
            "version": "",
            "capabilities": [],
            "file_types": [],
            "available": False,
            "reason": "",
            "infer": [],  # model file types it runs
            "read": [],  # source kinds `crnn convert` reads through it
            "write": [],  # --to formats it writes
            "quantize": [],  # --to formats it writes in INT8
            "train": False,
        }
        try:
            backend = registry.load_backend(info.name)
            avail = backend.availability()
            row.update(
                version=avail.version,
                capabilities=sorted(backend.capabilities),
                file_types=list(backend.suffixes),
                available=avail.ok,
                reason="" if avail.ok else f"{avail.reason}; {avail.hint}".strip("; "),
                infer=list(backend.suffixes) if INFER in backend.capabilities else [],
                read=sorted({k for r in backend.readers() for k in r.kinds}),
                write=sorted(w.target for w in backend.writers()),
                quantize=sorted(q.target for q in backend.quantizers()),
                train=TRAIN in backend.capabilities,
            )
        except BackendError as exc:
            row["reason"] = str(exc)
        rows.append(row)
    return sorted(rows, key=lambda r: str(r["name"]))


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def backends(fmt: str) -> None:
    """List backend plugins: what each infers (file types), reads and writes (`crnn convert`), quantizes
    (--int8) and trains, its distribution and runtime version, and whether it is available or why not."""
    rows = collect()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from crnn_cli.commands.common import table_width

    # Six narrow columns, the long lists wrapped inside them: fits an 80-column terminal.
    table = Table(title="crnn backends", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("name", "infer", "read / write", "quantize", "train", "status"):
        table.add_column(col, min_width=len(col))  # headers stay whole in a narrow terminal
    for r in rows:
        status = "[green]available[/]" if r["available"] else f"[red]unavailable[/]: {r['reason']}"
        version = f" {r['version']}" if r["version"] else ""
        convert = [
            f"read {', '.join(r['read'])}" if r["read"] else "",
            f"write {', '.join(r['write'])}" if r["write"] else "",
        ]  # type: ignore[arg-type]
        table.add_row(
            f"{r['name']}\n[dim]{r['distribution']}{version}[/]",
            " ".join(r["infer"]),  # type: ignore[arg-type]
            "\n".join(c for c in convert if c),
            ", ".join(r["quantize"]),  # type: ignore[arg-type]
            "yes" if r["train"] else "",
            status,
        )
    Console(width=table_width()).print(table)
