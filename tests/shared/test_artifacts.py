"""Artifact stores behind RECSYS_ARTIFACT_STORE: fsspec URLs (file://, memory://) and Redis."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import redis

from shared.artifacts import (
    CorruptArtifactError,
    FsspecArtifactStore,
    RedisArtifactStore,
    make_store,
)
from shared.registry import ModelRegistry
from shared.settings import CommonSettings

ARTIFACTS = {"ranker.txt": b"tree\n" * 1000, "index.npz": bytes(range(256)) * 64}


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    name = f"test-store-{uuid.uuid4().hex[:8]}"
    yield name
    for key in redis_client.scan_iter(f"{name}:*"):
        redis_client.delete(key)


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = f"memory://recsys-test-{uuid.uuid4().hex[:8]}/models"
    yield url
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://").split("/")[0]
    if fs.exists(f"/{root}"):
        fs.rm(f"/{root}", recursive=True)


def _publish(registry: ModelRegistry) -> int:
    manifest, _ = registry.publish(ARTIFACTS, dataset="synthetic", params={}, metrics={})
    return manifest.version


def test_file_url_through_the_registry(
    tmp_path: Path, redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    root = tmp_path / "artifacts"
    common = CommonSettings(redis_url=redis_url, artifact_store=root.as_uri(), key_prefix=prefix)
    registry = ModelRegistry.from_settings(common)
    assert isinstance(registry._store, FsspecArtifactStore)
    v = _publish(registry)
    assert registry.load_artifacts(v) == ARTIFACTS
    # One plain file per artifact, no temporary file left behind.
    assert sorted(p.name for p in (root / f"v{v}").iterdir()) == sorted(ARTIFACTS)
    assert (root / f"v{v}" / "ranker.txt").read_bytes() == ARTIFACTS["ranker.txt"]

    # sha256 is the registry's business, whatever the store: a changed file is refused.
    (root / f"v{v}" / "ranker.txt").write_bytes(b"tampered")
    with pytest.raises(CorruptArtifactError, match="sha256"):
        registry.load_artifacts(v)
    (root / f"v{v}" / "index.npz").unlink()
    with pytest.raises(CorruptArtifactError, match="missing"):
        registry.load_artifacts(v, ["index.npz"])

    v2 = _publish(registry)
    registry.delete(v)
    assert not (root / f"v{v}").exists()
    assert registry.load_artifacts(v2) == ARTIFACTS


def test_memory_url_round_trip_and_delete(memory_url: str) -> None:
    store = make_store(memory_url, redis.Redis(), "unused")
    assert isinstance(store, FsspecArtifactStore)
    for name, data in ARTIFACTS.items():
        store.put(3, name, data)
    store.put(4, "ranker.txt", b"other")
    assert store.get(3, "ranker.txt") == ARTIFACTS["ranker.txt"]
    store.put(3, "ranker.txt", b"replaced")  # a version's artifact is overwritten whole
    assert store.get(3, "ranker.txt") == b"replaced"
    store.delete(3)
    with pytest.raises(CorruptArtifactError, match="missing"):
        store.get(3, "index.npz")
    assert store.get(4, "ranker.txt") == b"other"  # other versions untouched
    store.delete(3)  # deleting twice is fine


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "a\\b"])
def test_artifact_names_cannot_leave_their_folder(tmp_path: Path, name: str) -> None:
    store = FsspecArtifactStore(tmp_path.as_uri())
    with pytest.raises(ValueError, match="bad artifact name"):
        store.put(1, name, b"x")
    assert not any(tmp_path.iterdir())


def test_make_store_choices(tmp_path: Path) -> None:
    client = redis.Redis()  # not connected: no store touches the server when made
    assert isinstance(make_store("redis", client, "p"), RedisArtifactStore)
    assert isinstance(make_store(tmp_path.as_uri(), client, "p"), FsspecArtifactStore)
    with pytest.raises(ValueError, match="absolute path"):
        make_store("file://relative/folder", client, "p")
    with pytest.raises(ValueError, match="unknown artifact store"):
        make_store("/plain/path", client, "p")
    with pytest.raises(ValueError, match="unknown artifact store"):
        make_store("nosuchproto://x", client, "p")
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(ValueError, match=r"recsys\[s3\]"):
            make_store("s3://bucket/models", client, "p")
    else:  # made without a network call; credentials are looked up on first use
        assert isinstance(make_store("s3://bucket/models", client, "p"), FsspecArtifactStore)


def test_redis_store_keeps_a_big_artifact_in_parts(redis_client: redis.Redis, prefix: str) -> None:
    store = RedisArtifactStore(redis_client, prefix, chunk_bytes=1000)
    big, small = bytes(range(256)) * 20, b"small"  # 5,120 bytes: six parts, the last short
    store.put(1, "index.npz", big)
    store.put(1, "ranker.txt", small)
    fields = set(redis_client.hkeys(f"{prefix}:artifacts:1"))
    assert fields == {
        b"ranker.txt",
        b"index.npz#parts",
        *(f"index.npz#{i}".encode() for i in range(6)),
    }
    assert store.get(1, "index.npz") == big and store.get(1, "ranker.txt") == small
    redis_client.hdel(f"{prefix}:artifacts:1", "index.npz#3")
    with pytest.raises(CorruptArtifactError, match="lost a part"):
        store.get(1, "index.npz")
    store.delete(1)
    with pytest.raises(CorruptArtifactError, match="missing"):
        store.get(1, "index.npz")


def test_an_artifact_past_redis_value_limit_round_trips(
    redis_client: redis.Redis, prefix: str
) -> None:
    """Redis drops the connection on a value past 512 MB (`proto-max-bulk-len`): a wide
    catalog's index would fail to publish with a bare ConnectionError. Kept in parts, it loads."""
    registry = ModelRegistry(redis_client, RedisArtifactStore(redis_client, prefix), prefix)
    big = bytes(range(256)) * ((520 << 20) // 256)
    manifest, _ = registry.publish({"index.npz": big}, dataset="synthetic", params={}, metrics={})
    assert registry.load_artifacts(manifest.version)["index.npz"] == big
