"""`recsys models list|activate|delete` against a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from services.trainer.cli import app
from shared.artifacts import RedisArtifactStore
from shared.redis_conn import free_port
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


def test_redis_out_of_reach_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """The installed `recsys` (cli.main), as a user runs it before `make run`."""
    env = {**os.environ, "RECSYS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    run = subprocess.run(
        [sys.executable, "-c", "from services.trainer.cli import main; main()", "models", "list"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    said = " ".join(run.stdout.split())
    assert "error: Redis is out of reach" in said and "make run" in said, said
    assert "Traceback" not in run.stdout + run.stderr
