"""Move accepted events from the Redis Stream into Parquet files the trainer reads.

A consumer group tracks what was taken. Each batch is written to a temporary file, fsynced and
renamed (durable, never half-visible), and only then acknowledged. A consumer killed between
writing and acknowledging re-reads its pending entries on restart: the batch is written again,
and `load_events` keeps one row per stream id, so the training data gets every event once.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import redis

from shared.datasets.base import Dataset
from shared.ml.interactions import DAY
from shared.redis_conn import text
from shared.schemas.serving import Event
from shared.served import ServedList

GROUP = "trainer"
COLUMNS = ["id", "user", "product", "type", "ts", "request_id", "version", "position", "quantity",
           "price"]  # fmt: skip
SERVED_COLUMNS = ["id", "request_id", "user", "ts", "version", "arm", "degraded", "items"]


def _event_row(entry_id: str, fields: dict[bytes, bytes]) -> tuple[object, ...]:
    e = Event.model_validate_json(fields[b"event"])
    return (entry_id, e.user, e.product, e.type, e.ts, e.request_id, e.version, e.position,
            e.quantity, e.price)  # fmt: skip


def _served_row(entry_id: str, fields: dict[bytes, bytes]) -> tuple[object, ...]:
    s = ServedList.model_validate_json(fields[b"served"])
    items = orjson.dumps([i.model_dump() for i in s.items]).decode()  # JSON: one column
    return (entry_id, s.id, s.user, s.ts, s.version, s.arm, s.degraded, items)


# What each stream holds, and how its entries become Parquet rows (files named `<kind>-...`).
KINDS = {"events": (_event_row, COLUMNS), "served": (_served_row, SERVED_COLUMNS)}


def _ensure_group(client: redis.Redis, stream: str) -> None:
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _write(entries: list[tuple[bytes, dict[bytes, bytes]]], out_dir: Path, kind: str) -> None:
    to_row, columns = KINDS[kind]
    rows = [to_row(entry_id.decode(), fields) for entry_id, fields in entries]
    table = pa.Table.from_pandas(pd.DataFrame(rows, columns=columns), preserve_index=False)
    first, last = rows[0][0], rows[-1][0]
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{kind}-{first}-{last}.parquet"
    tmp = final.with_suffix(".tmp")
    pq.write_table(table, tmp)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    tmp.replace(final)
    dir_fd = os.open(out_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash too
    finally:
        os.close(dir_fd)


def ingest(
    client: redis.Redis,
    stream: str,
    out_dir: Path,
    batch: int = 1000,
    consumer: str = "ingest",
    kind: str = "events",
) -> int:
    """Drain the stream into `out_dir`; returns how many entries were written and acknowledged."""
    _ensure_group(client, stream)
    done = 0
    # First what this consumer took but never acknowledged (a crash), then what is new.
    for start in ("0", ">"):
        cursor = start
        while True:
            reply: Any = client.xreadgroup(GROUP, consumer, {stream: cursor}, count=batch)
            entries: list[tuple[bytes, dict[bytes, bytes]]] = reply[0][1] if reply else []
            if not entries:
                break
            # An entry deleted after it was read (an erased user's event) comes back empty.
            if kept := [(i, f) for i, f in entries if f]:
                _write(kept, out_dir, kind)
            client.xack(stream, GROUP, *[entry_id for entry_id, _ in entries])
            done += len(entries)
            if start == "0":
                cursor = entries[-1][0].decode()
    _trim_acknowledged(client, stream)
    return done


def _trim_acknowledged(client: redis.Redis, stream: str) -> None:
    """Drop the entries the group has acknowledged: they are in Parquet now. The stream's bound
    (`RECSYS_*_STREAM_MAX`, a million) only guards against an ingester that is down; kept
    after ingestion, a million served lists would sit in Redis memory for good (the 30-minute
    soak saw Redis grow ~22 MB a minute at 150 req/s). Entries read but not acknowledged (a
    crashed run's) and everything after them stay."""
    pending: Any = client.xpending(stream, GROUP)
    if pending["pending"]:
        floor = text(pending["min"])
    else:
        groups: Any = client.xinfo_groups(stream)
        last = next(text(g["last-delivered-id"]) for g in groups if text(g["name"]) == GROUP)
        ms, seq = last.split("-")
        floor = f"{ms}-{int(seq) + 1}"  # MINID keeps ids >= floor: everything delivered goes
    client.xtrim(stream, minid=floor, approximate=False)


def load_events(out_dir: Path) -> pd.DataFrame:
    """Every ingested event exactly once (by stream id), oldest first."""
    files = sorted(out_dir.glob("events-*.parquet"))
    if not files:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    unique: pd.DataFrame = frame.drop_duplicates("id").sort_values("ts", kind="stable")
    return unique.reset_index(drop=True)


def with_events(data: Dataset, events: pd.DataFrame, weights: dict[str, float]) -> Dataset:
    """The dataset plus ingested events as interactions, each as strong as its type's weight;
    events whose type weighs 0 or less (dislike, hide) are negative feedback, not interactions."""
    events = events[events["type"].map(lambda t: weights.get(t, 1.0)).astype(float) > 0]
    if events.empty:
        return data
    extra = pd.DataFrame(
        {
            "user_id": events["user"].astype(str),
            "product_id": events["product"].astype(str),
            "rating": events["type"].map(lambda t: weights.get(t, 1.0)).astype(float),
            "ts": events["ts"].astype("int64"),
        }
    )
    merged = pd.concat([data.interactions, extra], ignore_index=True)
    return replace(data, interactions=merged)


def timeline_gap(data: Dataset, events: pd.DataFrame, days: float) -> str | None:
    """What to say when the last `days` before the newest event hold none of the dataset's
    interactions (e.g. today's events over a demo dataset of another year): the recent windows
    that training evaluates on and learns its ranker from then hold the events alone. None
    otherwise."""
    if events.empty or data.interactions.empty:
        return None
    newest, last = float(events["ts"].max()), float(data.interactions["ts"].max())
    if newest - days * DAY <= last:
        return None
    end = datetime.fromtimestamp(last, UTC).date()
    return (
        f"the merged events run until {(newest - last) / DAY:.0f} days after the dataset's last "
        f"interaction ({end}): they are on another timeline, so the recent windows training "
        f"evaluates and learns from (the last {days:g} days) hold only events; train without "
        "include_events, or on data whose timeline the events continue"
    )


def main() -> None:
    """`python -m services.trainer.ingest [BATCH]`: drain once, with the configured settings."""
    import sys

    from shared.redis_conn import sync_client
    from shared.settings import get_common_settings

    common = get_common_settings()
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    client = sync_client(common.redis_url)
    n = ingest(client, f"{common.key_prefix}:events", events_dir(), batch)
    print(f"ingested {n} events into {events_dir()}")
    n = ingest(client, f"{common.key_prefix}:served", served_dir(), batch, kind="served")
    print(f"ingested {n} served lists into {served_dir()}")


def served_dir() -> Path:
    from shared.settings import get_common_settings

    return get_common_settings().work_dir / "served"


def events_dir() -> Path:
    from shared.settings import get_common_settings

    return get_common_settings().work_dir / "events"


if __name__ == "__main__":
    main()
