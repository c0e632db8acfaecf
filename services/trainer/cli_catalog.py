"""`recsys catalog import FILE`: load a whole catalog into the live catalog.

CSV (columns `product` or `product_id`, and any of `title`, `category`, `tags` separated by
`|`, `price`, `available`) or JSON lines (one object per line with the same fields; `tags` a
list); `.gz` either way. Good rows go in (batches, one transaction each); each bad row is
reported with its line and reason, and the rest still goes in.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from pydantic import ValidationError

from shared.console import console
from shared.datasets.base import TAG_SEPARATOR
from shared.live_catalog import LiveCatalog, LiveItem
from shared.redis_conn import async_client
from shared.settings import get_common_settings

app = typer.Typer(help="The live catalog: what the shop sells now.", no_args_is_help=True)
BAD_ROWS_SHOWN = 20
TRUE, FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as LiveItem fields: empty cells unknown, tags split, `available` as words."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None:
            raise ValueError("more cells than the header has columns")
        key = key.strip().lower()
        value = (value or "").strip()
        if key == "product_id":
            key = "product"
        if not value:
            continue
        if key == "tags":
            out[key] = [t.strip() for t in value.split(TAG_SEPARATOR) if t.strip()]
        elif key == "price":
            try:
                out[key] = float(value)
            except ValueError:
                raise ValueError(f"price must be a number, not {value!r}") from None
        elif key == "available":
            word = value.lower()
            if word not in TRUE | FALSE:
                raise ValueError(f"available must be true or false, not {value!r}")
            out[key] = word in TRUE
        else:
            out[key] = value
    return out


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line, fields, None) for each readable row, (line, None, reason) for each unreadable."""
    jsonl = ".jsonl" in path.suffixes or ".ndjson" in path.suffixes
    with _open(path) as f:
        if jsonl:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    value = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    yield line_no, None, f"not JSON: {exc}"
                    continue
                if not isinstance(value, dict):
                    yield line_no, None, "not a JSON object"
                    continue
                yield line_no, value, None
            return
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            return
        names = {n.strip().lower() for n in reader.fieldnames}
        if not names & {"product", "product_id"}:
            raise ValueError(f"no product or product_id column (columns: {reader.fieldnames})")
        for row in reader:
            try:
                yield reader.line_num, _csv_row(row), None
            except ValueError as exc:
                yield reader.line_num, None, str(exc)


def _reason(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())


@app.command("import")
def import_catalog(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSON lines")],
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="rows per write")] = 1000,
) -> None:
    """Put every good row of FILE into the live catalog; report each bad row (line, reason)."""
    common = get_common_settings()
    good: list[LiveItem] = []
    bad: list[tuple[int, str]] = []
    try:
        for line, fields, problem in read_rows(file):
            if fields is None:
                bad.append((line, problem or "unreadable"))
                continue
            try:
                good.append(LiveItem.model_validate(fields))
            except ValidationError as exc:
                bad.append((line, _reason(exc)))
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]error:[/red] {file}: {exc}")
        raise typer.Exit(2) from None

    async def write() -> int:
        client = async_client(common.redis_url)
        try:
            store = LiveCatalog(client, common.key_prefix)
            return sum([await store.put(good[i : i + batch]) for i in range(0, len(good), batch)])
        finally:
            await client.aclose()

    written = asyncio.run(write())
    for line, reason in bad[:BAD_ROWS_SHOWN]:
        console.print(f"[yellow]{file}:{line}:[/yellow] {reason}")
    if len(bad) > BAD_ROWS_SHOWN:
        console.print(f"… and {len(bad) - BAD_ROWS_SHOWN} more bad rows")
    console.print(f"imported {written} products into the live catalog; {len(bad)} bad rows")
    if bad and not written:
        raise typer.Exit(1)
