"""`recsys up` as a user runs it: one process killed, restarted by the launcher, the rest serving.

Starts the real command in its own folder on free ports (with the UI), waits for "ready", then
kills each process in turn with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from shared.client import RecsysClient, RecsysError
from shared.redis_conn import free_port
from tests.integration.load import Load, wait_until

pytestmark = pytest.mark.integration

# Each role of the stack and a piece of its command line that names it.
ROLES = {
    "candidate": "services.candidate.app",
    "ranker": "services.ranker.app",
    "gateway": "services.gateway.app",
    "worker": " worker ",
    "beat": " beat ",
    "ui": "streamlit",
    "redis": "redis-server",
}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str]]:
    home = tmp_path_factory.mktemp("up")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "GATEWAY_"))}
    ports = {f"{n}_PORT": str(free_port()) for n in ("REDIS", "GATEWAY", "CANDIDATE", "RANKER")}
    env |= ports | {"UI_PORT": str(free_port()), "RECSYS_MODEL_CHECK_SECONDS": "1"}
    recsys = Path(sys.executable).parent / "recsys"
    out = home / "up.out"
    with out.open("w") as sink:  # a file, not a pipe: nobody reads on while the tests run
        proc = subprocess.Popen(
            [str(recsys), "up", "--workdir", str(home / "var")],
            cwd=home,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_until(lambda: "ready" in out.read_text() or proc.poll() is not None, timeout=300)
        assert proc.poll() is None, f"recsys up exited before it was ready:\n{out.read_text()}"
        yield proc, f"http://127.0.0.1:{ports['GATEWAY_PORT']}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        print(out.read_text()[-3000:])


def role_pid(launcher: subprocess.Popen[str], role: str) -> int | None:
    for child in psutil.Process(launcher.pid).children():
        try:
            if ROLES[role] in " ".join(child.cmdline()) + " ":
                return int(child.pid)
        except psutil.NoSuchProcess:
            continue
    return None


def kill(launcher: subprocess.Popen[str], role: str) -> float:
    """SIGKILL the role's process; seconds until a new process of that role runs."""
    pid = role_pid(launcher, role)
    assert pid is not None, f"no {role} process"
    os.kill(pid, signal.SIGKILL)
    return wait_until(lambda: role_pid(launcher, role) not in (None, pid), timeout=10, step=0.1)


def healthy(url: str) -> bool:
    try:
        with RecsysClient(url, timeout=5) as api:
            return api.recommend("U1").degraded is None
    except RecsysError:  # no answer, or no list
        return False


@pytest.mark.parametrize("stage", ["ranker", "candidate"])
def test_a_killed_stage_is_restarted_and_no_request_fails(
    up: tuple[subprocess.Popen[str], str], stage: str
) -> None:
    launcher, url = up
    wait_until(lambda: healthy(url), timeout=60, step=0.2)
    load = Load(url, clients=2).start()
    time.sleep(1.0)
    back_after = kill(launcher, stage)
    recovery = wait_until(lambda: healthy(url), timeout=60, step=0.2)
    time.sleep(0.5)
    figures = load.stop().summary()
    print(
        f"{stage} killed: back after {back_after:.1f} s, serving fully after {recovery:.1f} s "
        f"more, {figures}"
    )
    assert back_after <= 5
    assert figures["requests"] > 20 and figures["non_200"] == 0
    assert launcher.poll() is None


@pytest.mark.parametrize("role", ["gateway", "worker", "beat", "ui", "redis"])
def test_any_killed_process_is_restarted_and_nothing_else_stops(
    up: tuple[subprocess.Popen[str], str], role: str
) -> None:
    launcher, url = up
    others = {r: role_pid(launcher, r) for r in ROLES if r != role}
    back_after = kill(launcher, role)
    print(f"{role} killed: back after {back_after:.1f} s")
    assert back_after <= 5
    assert {r: role_pid(launcher, r) for r in others} == others  # nobody else was touched
    wait_until(lambda: healthy(url), timeout=60, step=0.2)
    assert launcher.poll() is None


def test_a_process_that_keeps_dying_backs_off(up: tuple[subprocess.Popen[str], str]) -> None:
    launcher, _ = up
    gaps = [kill(launcher, "beat") for _ in range(3)]
    print(f"beat killed three times in a row: restarted after {[round(g, 1) for g in gaps]} s")
    assert gaps[0] < 2 and gaps[2] > gaps[0] + 0.5  # the third restart waited its back-off
    assert launcher.poll() is None
