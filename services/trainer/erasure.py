"""Erased users in the trainer's data: gone from the ingested Parquet files, and left out of
every training whatever the dataset holds (`shared/users.py` records their ids' hashes)."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import redis

from shared.datasets.base import Dataset
from shared.user_keys import UserKeys
from shared.users import user_hash

log = logging.getLogger(__name__)


def erased_hashes(client: redis.Redis, key_prefix: str) -> set[str]:
    members: Any = client.smembers(UserKeys(key_prefix).erased)
    return {m.decode() if isinstance(m, bytes) else str(m) for m in members}


def _erased(users: pd.Series, hashes: set[str]) -> pd.Series:
    """Which rows of `users` belong to an erased user (each distinct id hashed once)."""
    unique = users.astype(str).unique()
    gone = {u for u in unique if user_hash(u) in hashes}
    return users.astype(str).isin(gone)


def erase_from_parquet(out_dir: Path, hashes: set[str], kind: str = "events") -> int:
    """Rewrite each ingested file of `kind` (events, served lists) holding rows of the users
    hashed in `hashes` without them (written aside, fsynced, renamed over: never half-visible);
    rows removed."""
    removed = 0
    for path in sorted(out_dir.glob(f"{kind}-*.parquet")):
        frame = pq.read_table(path).to_pandas()
        gone = _erased(frame["user"], hashes)
        if not gone.any():
            continue
        kept = frame[~gone].reset_index(drop=True)
        tmp = path.with_suffix(".tmp")
        kept.to_parquet(tmp, index=False)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(path)
        removed += int(gone.sum())
    return removed


def without_erased(data: Dataset, hashes: set[str]) -> Dataset:
    """The dataset without the interactions and user rows of erased users."""
    if not hashes:
        return data
    ints = data.interactions[~_erased(data.interactions["user_id"], hashes)]
    users = data.users[~_erased(data.users["user_id"], hashes)]
    dropped = len(data.interactions) - len(ints)
    if dropped:
        log.info("left out %d interactions of erased users", dropped)
    return replace(
        data, interactions=ints.reset_index(drop=True), users=users.reset_index(drop=True)
    )
