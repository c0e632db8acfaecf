"""Where model artifacts live: in Redis (default, no shared disk needed) or under a file:// root."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import redis


class CorruptArtifactError(RuntimeError):
    """An artifact is missing or its sha256 differs from the manifest: never serve it."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore(Protocol):
    def put(self, version: int, name: str, data: bytes) -> None: ...
    def get(self, version: int, name: str) -> bytes: ...
    def delete(self, version: int) -> None: ...


class RedisArtifactStore:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._prefix = prefix

    def _key(self, version: int) -> str:
        return f"{self._prefix}:artifacts:{version}"

    def put(self, version: int, name: str, data: bytes) -> None:
        self._r.hset(self._key(version), name, data)

    def get(self, version: int, name: str) -> bytes:
        data = self._r.hget(self._key(version), name)
        if data is None:
            raise CorruptArtifactError(f"artifact {name!r} of version {version} is missing")
        return bytes(data)  # type: ignore[arg-type]

    def delete(self, version: int) -> None:
        self._r.delete(self._key(version))


class FileArtifactStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, version: int, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad artifact name {name!r}")
        return self._root / f"v{version}" / name

    def put(self, version: int, name: str, data: bytes) -> None:
        path = self._path(version, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers never see half a file

    def get(self, version: int, name: str) -> bytes:
        try:
            return self._path(version, name).read_bytes()
        except FileNotFoundError:
            raise CorruptArtifactError(
                f"artifact {name!r} of version {version} is missing"
            ) from None

    def delete(self, version: int) -> None:
        folder = self._root / f"v{version}"
        if folder.is_dir():
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()


def make_store(spec: str, client: redis.Redis, prefix: str) -> ArtifactStore:
    if spec == "redis":
        return RedisArtifactStore(client, prefix)
    parsed = urlparse(spec)
    if parsed.scheme == "file":
        return FileArtifactStore(Path(parsed.path))
    raise ValueError(f"unknown artifact store {spec!r}: use 'redis' or 'file:///path'")
