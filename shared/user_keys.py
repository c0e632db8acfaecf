"""Where a user's data lives in Redis: one place for every role that writes, reads or erases it
(events, served lists, profiles, erasure)."""

from __future__ import annotations

import os
from typing import Any


class UserKeys:
    """Where a user's data lives in Redis (one place for every role that reads or erases it)."""

    def __init__(self, key_prefix: str) -> None:
        self.prefix = key_prefix
        self.profiles = f"{key_prefix}:users"
        self.erased = f"{key_prefix}:users:erased"
        self.events = f"{key_prefix}:events"
        self.served = f"{key_prefix}:served"
        self.explored = f"{key_prefix}:explore"  # exploration draws (off-policy estimates)

    def recent(self, user: str) -> str:
        return f"{self.prefix}:recent:{user}"

    def hidden(self, user: str) -> str:
        return f"{self.prefix}:hidden:{user}"

    def served_by(self, user: str) -> str:
        """The served list that last showed each product to the user (attribution)."""
        return f"{self.prefix}:served:by:{user}"

    def served_list(self, request_id: str) -> str:
        return f"{self.prefix}:served:list:{request_id}"

    def state(self, user: str) -> str:
        """A token every write to what the candidate stage reads of the user replaces with a new
        one (events, profile): the gateway's answer cache serves an answer again only while the
        token it was computed under is still there."""
        return f"{self.prefix}:state:{user}"

    def shown(self, user: str) -> str:
        """Impressions per product since the user last interacted with it."""
        return f"{self.prefix}:shown:{user}"


def new_state(pipe: Any, key: str, ttl: int) -> None:
    """Replace the user's state token (`UserKeys.state`) inside a write's transaction: a
    random one, never equal to one an answer was cached under, even after an erasure."""
    if ttl > 0:
        pipe.set(key, os.urandom(8).hex(), ex=ttl)
    else:
        pipe.set(key, os.urandom(8).hex())
