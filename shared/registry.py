"""ModelRegistry: increasing integer versions, a manifest each, a `current` pointer, pub/sub news.

Layout in Redis (prefix `recsys` by default):
  {p}:model:next_version   INCR counter, so two trainers never get the same id
  {p}:model:manifest:{v}   JSON ModelManifest
  {p}:model:versions       sorted set of published versions
  {p}:model:current        the version services must serve
  {p}:model:published      pub/sub channel: ModelPublished whenever `current` moves
Artifacts go to an ArtifactStore first, the manifest second, the pointer last: a reader that sees a
version in `current` always finds its manifest and artifacts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import redis

from shared.artifacts import ArtifactStore, CorruptArtifactError, make_store, sha256_hex
from shared.redis_conn import sync_client
from shared.schemas.models import (
    ArtifactInfo,
    EvaluationSummary,
    ModelManifest,
    ModelPublished,
    TuningReport,
)
from shared.settings import CommonSettings

# Move `current` forward only: a slow job finishing after a newer one must not roll serving back.
_ADVANCE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PUBLISH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class UnknownVersionError(KeyError):
    pass


def current_version_key(prefix: str) -> str:
    """The version services must serve (the gateway's answer cache reads it too)."""
    return f"{prefix}:model:current"


def held_versions_key(prefix: str) -> str:
    """The versions a running experiment serves (an arm each): retention keeps them, and they
    cannot be deleted until it ends."""
    return f"{prefix}:versions:held"


class ModelRegistry:
    def __init__(self, client: redis.Redis, store: ArtifactStore, prefix: str = "recsys") -> None:
        self._r = client
        self._store = store
        self._p = f"{prefix}:model"
        self._current = current_version_key(prefix)
        self.channel = f"{self._p}:published"
        self._advance = client.register_script(_ADVANCE)
        self._held = held_versions_key(prefix)

    def held(self) -> set[int]:
        members: Any = self._r.smembers(self._held)
        return {int(v) for v in members}

    @classmethod
    def from_settings(cls, common: CommonSettings) -> ModelRegistry:
        client = sync_client(common.redis_url)
        return cls(
            client, make_store(common.artifact_store, client, common.key_prefix), common.key_prefix
        )

    def publish(
        self,
        artifacts: Mapping[str, bytes],
        *,
        dataset: str,
        params: Mapping[str, object],
        metrics: Mapping[str, float],
        activate: bool = True,
        evaluation: EvaluationSummary | None = None,
        tuning: TuningReport | None = None,
    ) -> tuple[ModelManifest, bool]:
        """Store a new version; make it current if `activate` and it is the newest.

        Returns (manifest, made_current).
        """
        version = int(self._r.incr(f"{self._p}:next_version"))
        infos = {}
        for name, data in artifacts.items():
            self._store.put(version, name, data)
            infos[name] = ArtifactInfo(sha256=sha256_hex(data), size=len(data))
        manifest = ModelManifest(
            version=version,
            created_at=datetime.now(UTC),
            dataset=dataset,
            params=dict(params),
            # JSON has no NaN: an undefined metric (no AUC without both classes) is left out,
            # not written as a null that no reader could parse back into a float.
            metrics={k: float(v) for k, v in metrics.items() if math.isfinite(v)},
            artifacts=infos,
            evaluation=evaluation,
            tuning=tuning,
        )
        self._r.set(f"{self._p}:manifest:{version}", manifest.model_dump_json())
        self._r.zadd(f"{self._p}:versions", {str(version): version})
        made_current = False
        if activate:
            message = ModelPublished(version=version).model_dump_json()
            made_current = bool(
                self._advance(keys=[self._current, self.channel], args=[version, message])
            )
        return manifest, made_current

    def current_version(self) -> int | None:
        raw = self._r.get(self._current)
        return int(raw) if raw is not None else None

    def manifest(self, version: int) -> ModelManifest:
        raw = self._r.get(f"{self._p}:manifest:{version}")
        if raw is None:
            raise UnknownVersionError(version)
        return ModelManifest.model_validate_json(raw)

    def versions(self) -> list[int]:
        members = self._r.zrange(f"{self._p}:versions", 0, -1)
        return sorted(int(str(v, "ascii") if isinstance(v, bytes) else str(v)) for v in members)

    def manifests(self) -> list[ModelManifest]:
        return [self.manifest(v) for v in self.versions()]

    def activate(self, version: int) -> None:
        """Point `current` at any stored version (rollback included) and tell the services."""
        self.manifest(version)  # raises UnknownVersionError
        pipe = self._r.pipeline()
        pipe.set(self._current, version)
        pipe.publish(self.channel, ModelPublished(version=version).model_dump_json())
        pipe.execute()

    def delete(self, version: int) -> None:
        """Remove a stored version and its artifacts; the current one cannot be deleted."""
        if version == self.current_version():
            raise ValueError(f"version {version} is current: activate another one first")
        if version in self.held():
            raise ValueError(f"version {version} serves a running experiment: stop it first")
        self.manifest(version)  # raises UnknownVersionError
        self._r.zrem(f"{self._p}:versions", str(version))
        self._r.delete(f"{self._p}:manifest:{version}")
        self._store.delete(version)

    def prune(self, keep: int) -> list[int]:
        """Retention: keep the newest `keep` versions plus the current one; delete the rest."""
        current = self.current_version()
        versions = self.versions()
        held = self.held()
        doomed = [v for v in versions[: max(len(versions) - keep, 0)] if v != current]
        doomed = [v for v in doomed if v not in held]
        for v in doomed:
            self.delete(v)
        return doomed

    def load_artifacts(self, version: int, names: list[str] | None = None) -> dict[str, bytes]:
        """Fetch artifacts and verify each sha256 against the manifest; raise on any mismatch."""
        manifest = self.manifest(version)
        wanted = names if names is not None else list(manifest.artifacts)
        out: dict[str, bytes] = {}
        for name in wanted:
            info = manifest.artifacts.get(name)
            if info is None:
                raise CorruptArtifactError(f"version {version} has no artifact {name!r}")
            data = self._store.get(version, name)
            if sha256_hex(data) != info.sha256:
                raise CorruptArtifactError(
                    f"artifact {name!r} of version {version} fails its sha256 check"
                )
            out[name] = data
        return out
