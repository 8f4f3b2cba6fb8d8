"""`crnn backends`: the installed backend plugins and whether each can run here."""

from __future__ import annotations

import json

import click


def collect() -> list[dict[str, object]]:
    from crnn_cli.core import registry
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
            )
        except BackendError as exc:
            row["reason"] = str(exc)
        rows.append(row)
    return sorted(rows, key=lambda r: str(r["name"]))


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def backends(fmt: str) -> None:
    """List backend plugins: distribution, runtime version, capabilities, available or why not."""
    rows = collect()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from crnn_cli.commands.common import table_width

    table = Table(title="crnn backends", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for col in ("name", "distribution", "runtime", "capabilities", "file types", "status"):
        table.add_column(col, min_width=len(col))  # headers stay whole in a narrow terminal
    for r in rows:
        status = "[green]available[/]" if r["available"] else f"[red]unavailable[/]: {r['reason']}"
        table.add_row(
            str(r["name"]),
            str(r["distribution"]),
            str(r["version"]),
            ", ".join(r["capabilities"]),  # type: ignore[arg-type]
            ", ".join(r["file_types"]),  # type: ignore[arg-type]
            status,
        )
    Console(width=table_width()).print(table)
