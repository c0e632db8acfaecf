"""`recsys models list|activate|delete`: the registry from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shared.console import console
from shared.registry import ModelRegistry, UnknownVersionError
from shared.settings import get_common_settings

app = typer.Typer(help="List, activate (roll back) or delete model versions.", no_args_is_help=True)
Version = Annotated[int, typer.Argument(min=1, help="model version")]
SHOWN = ["ndcg@10", "popularity_ndcg@10", "recall@10", "ranker_auc", "valid_ndcg@10"]


def _registry() -> ModelRegistry:
    return ModelRegistry.from_settings(get_common_settings())


@app.command("list")
def list_versions() -> None:
    """Every stored version with its dataset and headline metrics; * marks the current one."""
    registry = _registry()
    current = registry.current_version()
    table = Table(title="model versions")
    for col in ["", "version", "created (UTC)", "dataset", *SHOWN]:
        table.add_column(col, justify="right" if col in SHOWN or col == "version" else "left")
    for m in registry.manifests():
        metrics = [f"{m.metrics[k]:.4f}" if k in m.metrics else "-" for k in SHOWN]
        mark = "*" if m.version == current else ""
        table.add_row(mark, str(m.version), f"{m.created_at:%Y-%m-%d %H:%M}", m.dataset, *metrics)
    console.print(table)


@app.command()
def activate(version: Version) -> None:
    """Serve this version now (rollback included); services swap without restarting."""
    try:
        _registry().activate(version)
    except UnknownVersionError:
        console.print(f"[red]error:[/red] version {version} does not exist")
        raise typer.Exit(2) from None
    console.print(f"version {version} is now current")


@app.command()
def delete(version: Version) -> None:
    """Delete a version and its artifacts (not the current one)."""
    try:
        _registry().delete(version)
    except UnknownVersionError:
        console.print(f"[red]error:[/red] version {version} does not exist")
        raise typer.Exit(2) from None
    except ValueError as exc:  # the current version
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"version {version} deleted")
