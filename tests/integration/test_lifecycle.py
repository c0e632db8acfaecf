"""Model lifecycle against real processes: swaps under load, corrupt artifacts, killed workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from services.launcher.stack import Stack
from shared.client import ApiError, RecsysClient
from shared.registry import ModelRegistry
from shared.settings import CommonSettings
from tests.conftest import SMALL_TRAIN_REQUEST, wait_for_job, wait_for_version

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_registry(stack: Stack) -> Iterator[ModelRegistry]:
    registry = ModelRegistry.from_settings(
        CommonSettings(redis_url=stack.env()["RECSYS_REDIS_URL"])
    )
    yield registry
    registry._r.close()


def _republish(registry: ModelRegistry, activate: bool = True) -> int:
    """A new version with the current version's artifacts (a real, loadable model)."""
    current = registry.current_version()
    assert current is not None
    old = registry.manifest(current)
    manifest, _ = registry.publish(
        registry.load_artifacts(current),
        dataset=old.dataset,
        params=old.params,
        metrics=old.metrics,
        activate=activate,
    )
    return manifest.version


def test_swaps_under_concurrent_requests_never_fail_or_go_back(
    stack: Stack, stack_registry: ModelRegistry
) -> None:
    stop = threading.Event()
    seen: dict[int, list[int]] = {}
    failures: list[str] = []

    def client(n: int) -> None:
        versions = seen.setdefault(n, [])
        with RecsysClient(stack.gateway_url, timeout=5) as api:
            while not stop.is_set():
                try:
                    answer = api.recommend(f"U{n + 1}")
                except ApiError as exc:
                    failures.append(f"{exc.status_code} {exc.message[:100]}")
                    versions.append(-1)
                    continue
                if answer.degraded is not None or len(answer.items) != 10:
                    failures.append(f"200 {answer.degraded} {len(answer.items)} items")
                versions.append(-1 if answer.version is None else answer.version)

    # the version served before the swaps (not always the newest: a test may have activated an
    # older one back)
    before = stack_registry.current_version()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    published = []
    try:
        for _ in range(3):
            time.sleep(0.7)
            published.append(_republish(stack_registry))
        wait_for_version(stack.gateway_url, published[-1])
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    total = sum(len(v) for v in seen.values())
    print(f"swap under load: {total} requests, {len(failures)} failures, versions {published}")
    assert total > 40
    assert failures == []
    for versions in seen.values():
        assert versions == sorted(versions), "a client saw an older version after a newer one"
        assert set(versions) <= {before, *published}
    assert any(published[-1] in v for v in seen.values())


def test_corrupt_version_is_refused_and_old_keeps_serving(
    stack: Stack, stack_registry: ModelRegistry
) -> None:
    serving = stack_registry.current_version()
    assert serving is not None
    bad = _republish(stack_registry, activate=False)
    key = f"recsys:artifacts:{bad}"
    name = next(iter(stack_registry.manifest(bad).artifacts))
    assert isinstance(stack_registry._r, redis.Redis)
    stack_registry._r.hset(key, name, b"corrupted on the way")
    try:
        stack_registry.activate(bad)
        time.sleep(2.5)  # pub/sub plus a safety-net period (1 s in the test stack)
        with RecsysClient(stack.gateway_url) as api:
            for _ in range(20):
                assert api.recommend("U1").version == serving
        s = stack.settings  # the stages' own /metrics (internal ports, Prometheus text)
        for port in (s.candidate_port, s.ranker_port):
            metrics = httpx.get(f"http://{s.host}:{port}/metrics", timeout=10).text
            refused = [
                line
                for line in metrics.splitlines()
                if line.startswith("recsys_model_refused_total")
            ]
            assert refused and float(refused[0].split()[-1]) >= 1
    finally:
        stack_registry.activate(serving)
        wait_for_version(stack.gateway_url, serving)


def test_killed_worker_keeps_model_serving_and_job_is_retried_or_failed(
    stack: Stack, stack_registry: ModelRegistry, api: RecsysClient
) -> None:
    serving = stack_registry.current_version()
    job = api.train(SMALL_TRAIN_REQUEST).job_id
    worker = psutil.Process(stack.procs["worker"].pid)
    deadline = time.monotonic() + 60
    while True:  # wait until the pool child is training, then kill it without warning
        status = api.train_status(job)
        if status.state == "PROGRESS" and worker.children():
            break
        assert time.monotonic() < deadline, f"job never started: {status}"
        time.sleep(0.05)
    for child in worker.children():
        child.send_signal(signal.SIGKILL)
    assert api.recommend("U1").version == serving
    final = wait_for_job(stack.gateway_url, job, timeout=300)
    print(f"killed worker: job ended {final.state} ({final.error or final.reason})")
    if final.state == "FAILURE":
        assert final.error and "lost" in final.error.lower()
        assert stack_registry.current_version() == serving
    else:
        assert final.model_version is not None  # redelivered (acks_late) and trained again
    stack.check_alive()  # the worker's main process survives and replaced its child


def test_beat_schedule_retrains_through_the_queue(
    stack: Stack, stack_registry: ModelRegistry, tmp_path: Path
) -> None:
    before = max(stack_registry.versions())
    env = {
        **stack.env(),
        "TRAINER_SCHEDULE_SECONDS": "3",
        "TRAINER_SCHEDULE_DATASET": "synthetic",
        "TRAINER_SCHEDULE_PARAMS": '{"tune_budget_seconds": 0}',  # seconds, not minutes
    }
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "services.trainer.celery_app:celery_app",
                "beat",
                "--schedule",
                str(tmp_path / "beat-schedule"),
                "--loglevel",
                "INFO",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while max(stack_registry.versions()) == before:
            assert time.monotonic() < deadline, f"no training within 120 s: {log.read_text()}"
            assert beat.poll() is None, "beat exited"
            time.sleep(0.5)
    finally:
        beat.terminate()
        beat.wait(timeout=15)
    # let jobs beat queued meanwhile drain, so later tests see a quiet worker
    subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "services.trainer.celery_app:celery_app",
            "purge",
            "-f",
            "-Q",
            "trainer",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
