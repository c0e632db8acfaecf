"""An open-loop HTTP load generator, run in its own process by the benchmarks.

Open loop: request i is sent at t0 + i/rate whether or not earlier ones have answered, so a slow
server cannot slow the generator down and hide its own latency (no coordinated omission).
Runs in a spawned process that re-imports this module: keep its imports light.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import signal
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import aiohttp
import orjson


@dataclass(frozen=True)
class LoadConfig:
    base_url: str
    rate: float  # requests per second
    duration: float  # seconds of sending
    timeout: float  # each request's whole deadline
    seed: int
    users: tuple[str, ...]  # drawn at random, one per request
    out: str  # where the child writes its records (JSON list)
    path: str = "/recommend"
    k: int = 10
    # Kept-alive connections at most: more would be opened in bursts whenever the generator lags,
    # and opening them costs the generator more than the requests (on this 2-core machine).
    connections: int = 64
    # True: records are appended to `out` as JSON lines about every second while the load runs
    # (`read_stream`), so a long run keeps little in memory and can be watched as it goes.
    stream: bool = False


def load_process(cfg: LoadConfig, started: MpEvent) -> None:
    """Entry point of the load generator process."""
    # Ctrl-C reaches the whole process group; the parent handles it and terminates us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    records = asyncio.run(generate_load(cfg, started))
    if not cfg.stream:  # streamed records are in the file already
        Path(cfg.out).write_bytes(orjson.dumps(records))


async def generate_load(cfg: LoadConfig, started: MpEvent) -> list[dict[str, Any]]:
    """One record per request: send time, lag behind its schedule, latency, status, headers.

    aiohttp, not httpx: at 400 req/s an httpx client spends more CPU per request than the
    trivial endpoint it measures, and on two cores the generator became the bottleneck.
    """
    rng = random.Random(cfg.seed)
    n = int(cfg.rate * cfg.duration)
    records: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=cfg.timeout, connect=min(0.5, cfg.timeout))
    if cfg.stream:
        Path(cfg.out).write_bytes(b"")

    def flush() -> None:
        nonlocal records
        if cfg.stream and records:
            done, records = records, []
            with Path(cfg.out).open("ab") as f:
                f.write(b"".join(orjson.dumps(r) + b"\n" for r in done))

    async def flush_every_second() -> None:
        while True:
            await asyncio.sleep(1.0)
            flush()

    async def one(session: aiohttp.ClientSession, scheduled: float, user: str) -> None:
        send = time.monotonic()
        rec: dict[str, Any] = {"send": send, "lag": send - scheduled, "status": 0}
        try:
            params = {"user": user, "k": str(cfg.k)}
            async with session.get(cfg.path, params=params) as r:
                await r.read()
                rec.update(
                    status=r.status,
                    version=r.headers.get("X-Model-Version"),
                    degraded=r.headers.get("X-Degraded"),
                    cached=r.headers.get("X-Answer-Cache") == "hit",
                )
        except asyncio.CancelledError:
            rec["error"] = "unfinished"
            raise
        except TimeoutError:
            rec["error"] = "deadline"
        except Exception as exc:  # any failure is a failed request here, whatever its kind
            rec["error"] = type(exc).__name__
        finally:
            rec["latency"] = time.monotonic() - send
            records.append(rec)

    # Enough connections for every request in flight within its deadline, capped: see
    # LoadConfig.connections. Waiting for a connection counts as latency (it starts at `send`).
    pool = min(int(cfg.rate * cfg.timeout) + 10, cfg.connections)
    connector = aiohttp.TCPConnector(limit=pool)
    flusher = asyncio.create_task(flush_every_second()) if cfg.stream else None
    async with aiohttp.ClientSession(cfg.base_url, connector=connector, timeout=timeout) as session:
        # only the requests still in flight: a long run does not keep every finished task
        tasks: set[asyncio.Task[None]] = set()
        started.set()
        t0 = time.monotonic()
        stop_sending = t0 + cfg.duration + cfg.timeout  # bounded even if the loop falls behind
        for i in range(n):
            scheduled = t0 + i / cfg.rate
            now = time.monotonic()
            if now > stop_sending:
                break
            if scheduled > now:
                await asyncio.sleep(scheduled - now)
            user = cfg.users[rng.randrange(len(cfg.users))]
            task = asyncio.create_task(one(session, scheduled, user))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        # Every request has its own deadline; this only bounds a client that is stuck anyway.
        _, pending = (
            await asyncio.wait(set(tasks), timeout=cfg.timeout + 5) if tasks else (set(), set())
        )
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
    if flusher is not None:
        flusher.cancel()
    flush()
    return records


def degraded_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Answers flagged `X-Degraded`, per value (`ranker`, `candidate`, `overload`): a degraded
    answer is quick and partial, and must not pass for a full one in the figures."""
    counts: dict[str, int] = {}
    for rec in records:
        if mode := rec.get("degraded"):
            counts[mode] = counts.get(mode, 0) + 1
    return dict(sorted(counts.items()))


def read_stream(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The records a streaming generator has written to `path` past byte `offset`, and the offset
    after the last whole line (a line being written is left for the next call)."""
    with Path(path).open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    records = [orjson.loads(line) for line in data[:end].splitlines() if line]
    return records, offset + end


def run_load(cfg: LoadConfig, name: str = "loadgen") -> list[dict[str, Any]]:
    """Run the generator in a spawned process and wait for its records (blocking)."""
    ctx = mp.get_context("spawn")
    started = ctx.Event()
    proc = start_load(cfg, started, name)
    try:
        return finish_load(cfg, proc)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)


def start_load(cfg: LoadConfig, started: MpEvent, name: str = "loadgen") -> mp.process.BaseProcess:
    """Start the generator process and wait until it is about to send its first request."""
    proc = mp.get_context("spawn").Process(target=load_process, args=(cfg, started), name=name)
    proc.start()
    if not started.wait(60):
        proc.terminate()
        raise RuntimeError("load generator did not start within 60 s")
    return proc


def finish_load(cfg: LoadConfig, proc: mp.process.BaseProcess) -> list[dict[str, Any]]:
    # An overloaded machine slows the generator too: wait generously, the records tell the truth.
    proc.join(timeout=2 * cfg.duration + cfg.timeout + 120)
    if proc.is_alive() or proc.exitcode != 0:
        raise RuntimeError(f"load generator failed (exit code {proc.exitcode})")
    records: list[dict[str, Any]] = orjson.loads(Path(cfg.out).read_bytes())
    return records
