"""`recsys models list|activate|delete` against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from typer.testing import CliRunner

from services.trainer.cli import app
from shared.artifacts import RedisArtifactStore
from shared.registry import ModelRegistry
from shared.settings import get_common_settings


@pytest.fixture
def cli_registry(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelRegistry]:
    monkeypatch.setenv("RECSYS_REDIS_URL", redis_url)
    monkeypatch.setenv("RECSYS_KEY_PREFIX", "cli-models")
    get_common_settings.cache_clear()
    client = redis.Redis.from_url(redis_url)
    yield ModelRegistry(client, RedisArtifactStore(client, "cli-models"), "cli-models")
    for key in client.scan_iter("cli-models:*"):
        client.delete(key)
    client.close()
    get_common_settings.cache_clear()


def test_list_activate_delete(cli_registry: ModelRegistry) -> None:
    for score in (0.1, 0.2):
        cli_registry.publish(
            {"a": b"x"}, dataset="synthetic", params={}, metrics={"ndcg@10": score}
        )
    runner = CliRunner()
    r = runner.invoke(app, ["models", "list"])
    assert r.exit_code == 0, r.output
    assert "0.1000" in r.output and "0.2000" in r.output and "synthetic" in r.output
    assert runner.invoke(app, ["models", "activate", "1"]).exit_code == 0
    assert cli_registry.current_version() == 1
    r = runner.invoke(app, ["models", "delete", "1"])
    assert r.exit_code == 2 and "current" in r.output
    assert runner.invoke(app, ["models", "delete", "2"]).exit_code == 0
    assert cli_registry.versions() == [1]
    r = runner.invoke(app, ["models", "activate", "7"])
    assert r.exit_code == 2 and "does not exist" in r.output
