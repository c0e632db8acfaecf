"""Keep the current model version loaded and swap to a newly published one without restarting.

Loading happens off the event loop; artifacts are sha256-verified before use; the swap is a single
reference assignment, so a request sees either the old or the new version, never a mix. The
previous version stays loaded so requests pinned to it (by the candidate stage) still resolve.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import redis

from shared.observability import MODEL_REFUSED, MODEL_SWAPS, MODEL_VERSION
from shared.redis_conn import async_client
from shared.registry import ModelRegistry

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded(Generic[T]):
    version: int
    model: T


class ModelHolder(Generic[T]):
    def __init__(
        self,
        service: str,
        registry: ModelRegistry,
        artifacts: list[str],
        build: Callable[[dict[str, bytes]], T],
    ) -> None:
        self.service = service
        self._registry = registry
        self._artifacts = artifacts
        self._build = build
        self.current: Loaded[T] | None = None
        self.previous: Loaded[T] | None = None
        self._refused: set[int] = set()
        # Why the registry's current version was refused, while it is: what /readyz tells.
        self.refusal: str | None = None
        self._lock = asyncio.Lock()
        # Older versions loaded on demand for requests pinned to them (a few, newest kept).
        self._pinned: dict[int, Loaded[T]] = {}
        self._pinned_lock = asyncio.Lock()

    def get(self, version: int | None = None) -> Loaded[T] | None:
        """The loaded model for `version` (current if None); None if that version is not loaded."""
        cur, prev = self.current, self.previous
        if version is None or (cur is not None and cur.version == version):
            return cur
        if prev is not None and prev.version == version:
            return prev
        return None

    async def get_pinned(self, version: int, keep: int = 2) -> Loaded[T] | None:
        """`get(version)`, else load that version for a request still pinned to it (the candidate
        stage chose it before a swap). Verified like any load; None if it cannot be had."""
        loaded = self.get(version) or self._pinned.get(version)
        if loaded is not None or version in self._refused:
            return loaded
        async with self._pinned_lock:
            if version in self._pinned:
                return self._pinned[version]
            try:
                model = await asyncio.to_thread(self._load, version)
            except redis.RedisError as exc:  # Redis down: nothing wrong with the version itself
                log.warning("%s: cannot load pinned version %s: %s", self.service, version, exc)
                return None
            except Exception:
                log.exception("%s: cannot load pinned version %s", self.service, version)
                self._refused.add(version)  # do not retry it on every request
                return None
            self._pinned[version] = Loaded(version, model)
            for old in sorted(self._pinned)[:-keep]:
                del self._pinned[old]
            return self._pinned[version]

    def _load(self, version: int) -> T:
        return self._build(self._registry.load_artifacts(version, self._artifacts))

    async def sync(self) -> None:
        """Load the registry's current version if it differs from ours (rollback included)."""
        async with self._lock:
            try:
                wanted = await asyncio.to_thread(self._registry.current_version)
            except redis.RedisError as exc:
                log.warning(
                    "%s: registry unreachable (%s); keeping version %s",
                    self.service,
                    exc,
                    self.current.version if self.current else None,
                )
                return
            if wanted in self._refused:
                return  # still the version refused, for the reason `refusal` keeps
            self.refusal = None
            if wanted is None:
                return
            if self.current is not None and self.current.version == wanted:
                return
            if self.previous is not None and self.previous.version == wanted:
                self.current, self.previous = self.previous, self.current
            else:
                try:
                    model = await asyncio.to_thread(self._load, wanted)
                except redis.RedisError as exc:
                    # Redis went away mid-load: keep serving, try again on the next check.
                    log.warning("%s: loading version %s failed: %s", self.service, wanted, exc)
                    return
                except Exception as exc:
                    # Corrupt or incompatible artifacts must never replace a working model.
                    log.exception("%s: refusing model version %s", self.service, wanted)
                    MODEL_REFUSED.labels(self.service).inc()
                    self._refused.add(wanted)
                    self.refusal = f"model version {wanted} refused: {exc}"
                    return
                self.previous, self.current = self.current, Loaded(wanted, model)
            MODEL_SWAPS.labels(self.service).inc()
            MODEL_VERSION.labels(self.service).set(wanted)
            log.info("%s: now serving model version %s", self.service, wanted)

    async def watch(self, redis_url: str, check_seconds: float) -> None:
        """Follow the registry channel; a periodic check covers missed messages and reconnects.

        Survives Redis restarts: a lost connection drops the subscription, which is made again
        (with a fresh client) after a short pause, and the loaded model keeps serving meanwhile.
        """
        while True:
            client = async_client(redis_url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self._registry.channel)
                    await self.sync()
                    while True:
                        # Wakes on a publish message or after check_seconds; either way, re-check.
                        await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=check_seconds
                        )
                        await self.sync()
            except (redis.RedisError, OSError) as exc:
                log.warning("%s: lost Redis (%s); retrying", self.service, exc)
                await asyncio.sleep(min(check_seconds, 1.0))
            except Exception:  # never let the watcher die: it is what keeps models current
                log.exception("%s: model watcher failed; restarting it", self.service)
                await asyncio.sleep(min(check_seconds, 1.0))
            finally:
                await client.aclose()
