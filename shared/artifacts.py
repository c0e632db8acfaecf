"""Where model artifacts live: in Redis (default, no shared disk needed) or under an fsspec URL
(s3://bucket/prefix for big artifacts, file:///folder)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import redis
from fsspec import AbstractFileSystem, available_protocols
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem


class CorruptArtifactError(RuntimeError):
    """An artifact is missing or its sha256 differs from the manifest: never serve it."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore(Protocol):
    def put(self, version: int, name: str, data: bytes) -> None: ...
    def get(self, version: int, name: str) -> bytes: ...
    def delete(self, version: int) -> None: ...


# Redis refuses a value past 512 MB (`proto-max-bulk-len`) by dropping the connection; a
# 1M-product version's index is ~470 MB. Bigger artifacts are kept in parts of this size, one
# HSET each (a command past the 1 GB `client-query-buffer-limit` is dropped too).
CHUNK_BYTES = 256 << 20


class RedisArtifactStore:
    """Artifacts of a version as fields of one hash; one past `chunk_bytes` as the fields
    `{name}#0`, `{name}#1`, ... with their count in `{name}#parts` (names never hold a '#')."""

    def __init__(self, client: redis.Redis, prefix: str, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._r = client
        self._prefix = prefix
        self._chunk = chunk_bytes

    def _key(self, version: int) -> str:
        return f"{self._prefix}:artifacts:{version}"

    def put(self, version: int, name: str, data: bytes) -> None:
        key = self._key(version)
        if len(data) <= self._chunk:
            self._r.hset(key, name, data)
            return
        view = memoryview(data)
        parts = range(0, len(data), self._chunk)
        for i, start in enumerate(parts):
            self._r.hset(key, f"{name}#{i}", bytes(view[start : start + self._chunk]))
        self._r.hset(key, f"{name}#parts", len(parts))  # last: a reader sees all parts or none

    def get(self, version: int, name: str) -> bytes:
        key = self._key(version)
        data = self._r.hget(key, name)
        if data is not None:
            return bytes(data)  # type: ignore[arg-type]
        count = self._r.hget(key, f"{name}#parts")
        if count is None:
            raise CorruptArtifactError(f"artifact {name!r} of version {version} is missing")
        parts = [self._r.hget(key, f"{name}#{i}") for i in range(int(count))]
        if any(part is None for part in parts):
            raise CorruptArtifactError(f"artifact {name!r} of version {version} lost a part")
        return b"".join(parts)  # type: ignore[arg-type]

    def delete(self, version: int) -> None:
        self._r.delete(self._key(version))


class FsspecArtifactStore:
    """Artifacts under any fsspec URL: `s3://bucket/prefix` (S3 and S3-compatible stores such as
    MinIO or Ceph, with the `s3` extra), `file:///abs/folder` (a local or mounted disk),
    `memory://` (tests). One object per artifact at `{root}/v{version}/{name}`.

    S3 credentials and endpoint come from the usual places (AWS_* variables, instance roles,
    ~/.aws) or fsspec's own variables, e.g. FSSPEC_S3_ENDPOINT_URL=http://minio:9000.
    A reader never sees half an artifact: an S3 PUT replaces an object whole, and on a local
    disk the bytes go to a temporary file renamed into place. sha256 checks stay in the
    registry, whatever the store.
    """

    def __init__(self, url: str, **storage_options: object) -> None:
        try:
            fs, root = url_to_fs(url, **storage_options)
        except ImportError as exc:  # e.g. s3fs for s3://
            raise ValueError(
                f"artifact store {url!r} needs a filesystem package ({exc}); for s3:// install "
                "the `s3` extra: pip install 'recsys[s3]'"
            ) from exc
        self.url = url
        self._fs: AbstractFileSystem = fs
        self._root = str(root).rstrip("/")
        self._local = isinstance(fs, LocalFileSystem)

    def _folder(self, version: int) -> str:
        return f"{self._root}/v{version}"

    def _path(self, version: int, name: str) -> str:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"bad artifact name {name!r}")
        return f"{self._folder(version)}/{name}"

    def put(self, version: int, name: str, data: bytes) -> None:
        path = self._path(version, name)
        if not self._local:
            self._fs.pipe_file(path, data)
            return
        self._fs.makedirs(self._folder(version), exist_ok=True)
        tmp = f"{path}.tmp"
        self._fs.pipe_file(tmp, data)
        self._fs.mv(tmp, path)  # a rename: readers never see half a file

    def get(self, version: int, name: str) -> bytes:
        try:
            return bytes(self._fs.cat_file(self._path(version, name)))
        except FileNotFoundError:
            raise CorruptArtifactError(
                f"artifact {name!r} of version {version} is missing"
            ) from None

    def delete(self, version: int) -> None:
        folder = self._folder(version)
        if self._fs.exists(folder):
            self._fs.rm(folder, recursive=True)


class FileArtifactStore(FsspecArtifactStore):
    """The store under a local folder (`file:///abs/folder`)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root.resolve().as_uri())


def make_store(spec: str, client: redis.Redis, prefix: str) -> ArtifactStore:
    """RECSYS_ARTIFACT_STORE: `redis`, or an fsspec URL (`s3://bucket/prefix`, `file:///abs`)."""
    if spec == "redis":
        return RedisArtifactStore(client, prefix)
    parsed = urlparse(spec)
    if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
        raise ValueError(f"artifact store {spec!r}: a file:// URL needs an absolute path")
    if parsed.scheme and parsed.scheme in available_protocols():
        return FsspecArtifactStore(spec)
    raise ValueError(
        f"unknown artifact store {spec!r}: use 'redis', 's3://bucket/prefix' or 'file:///path'"
    )
