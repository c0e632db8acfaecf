"""`recsys recommend --users FILE --out FILE.jsonl`: lists for many users through the gateway's
`POST /recommend/batch`, in chunks, appended to the output as they come; run again after an
interruption and it goes on where it stopped (users already in the output are skipped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from shared.client import RecsysClient, RecsysError
from shared.console import console
from shared.schemas.serving import BatchRequest

CHUNK = 500


def _done(out: Path) -> tuple[set[str], int | None]:
    """Users with a complete line in `out` already, and the version of its full answers."""
    done: set[str] = set()
    version: int | None = None
    if not out.exists():
        return done, version
    with out.open("rb") as f:
        for raw in f:
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                break  # a line cut by the interruption: it is written again
            done.add(line["user"])
            if version is None and line.get("degraded") is None and line.get("version"):
                version = int(line["version"])
    return done, version


def _users(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if user := line.strip():
                yield user


def _truncate_partial(out: Path) -> None:
    """Drop a last line without its newline (the run was cut while writing it)."""
    if not out.exists():
        return
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):
        out.write_bytes(data[: data.rfind(b"\n") + 1])


def recommend(
    users: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="one user id a line")],
    out: Annotated[Path, typer.Option(help="JSON lines, appended to (resumable)")],
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    gateway: Annotated[str, typer.Option(envvar="UI_GATEWAY_URL")] = "http://127.0.0.1:8000",
    chunk: Annotated[int, typer.Option(min=1, max=1000, help="users per request")] = CHUNK,
    log_served: Annotated[
        bool,
        typer.Option(
            help="log each list as served (kept 24 h for attribution; each line then has the "
            "request_id its events send): for lists that are sent, e.g. an e-mail's"
        ),
    ] = False,
) -> None:
    """Lists for every user of USERS, one JSON line each, one model version for all."""
    _truncate_partial(out)
    done, version = _done(out)
    todo = [u for u in dict.fromkeys(_users(users)) if u not in done]
    if done:
        console.print(f"resuming: {len(done)} users already in {out}, {len(todo)} to go")
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    with (
        RecsysClient(gateway, timeout=120) as client,
        out.open("ab") as sink,
        Progress(*columns, console=console) as progress,
    ):
        task = progress.add_task("users", total=len(todo))
        for start in range(0, len(todo), chunk):
            request = BatchRequest(users=todo[start : start + chunk], k=k, version=version,
                                   log_served=log_served)  # fmt: skip
            try:
                for line in client.iter_recommend_batch(request):
                    if version is None and line.degraded is None and line.version is not None:
                        version = line.version
                    dumped = line.model_dump_json(exclude={"items": {"__all__": {"explanation"}}})
                    sink.write(dumped.encode() + b"\n")
                    progress.advance(task)
            except RecsysError as exc:  # what came before is kept: run again to go on
                sink.flush()
                console.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(1) from None
            sink.flush()
    console.print(f"{len(done) + len(todo)} users in {out} (model version {version})")
