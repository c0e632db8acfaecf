"""The restart policy of `services.launcher.supervisor`, on stand-in processes and a fake clock."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, cast

from services.launcher.stack import Stack, StackSettings
from services.launcher.supervisor import Supervisor


class FakeProc:
    def __init__(self, pid: int) -> None:
        self.pid, self.returncode = pid, cast(int | None, None)

    def poll(self) -> int | None:
        return self.returncode


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path) -> tuple[Stack, Supervisor, Clock, list[str]]:
    stack = Stack(StackSettings.on_free_ports(), tmp_path)
    started = iter(range(100, 200))

    def launch() -> subprocess.Popen[bytes]:
        return cast("subprocess.Popen[bytes]", FakeProc(next(started)))

    for name in ("ranker", "gateway"):
        stack.launchers[name] = launch
        stack.procs[name] = launch()
    clock, lines = Clock(), list[str]()
    return stack, Supervisor(stack, lines.append, clock=clock), clock, lines


def die(stack: Stack, name: str) -> None:
    cast(FakeProc, stack.procs[name]).returncode = -9


def test_first_death_restarts_at_once_and_leaves_the_others(tmp_path: Path) -> None:
    stack, sup, _, lines = make(tmp_path)
    gateway = stack.procs["gateway"]
    die(stack, "ranker")
    sup.tick()
    assert stack.procs["ranker"].pid == 102 and stack.procs["ranker"].poll() is None
    assert stack.procs["gateway"] is gateway
    assert "ranker exited with code -9" in lines[0] and "ranker restarted (pid 102)" in lines[1]


def test_repeated_deaths_back_off_and_a_stable_process_is_forgiven(tmp_path: Path) -> None:
    stack, sup, clock, _ = make(tmp_path)
    restarts = []
    for _ in range(5):
        die(stack, "ranker")
        pid = stack.procs["ranker"].pid
        died_at = clock.now
        while stack.procs["ranker"].pid == pid:
            sup.tick()
            clock.now += 0.5
        restarts.append(clock.now - 0.5 - died_at)
    assert restarts == [0.0, 1.0, 2.0, 4.0, 8.0]
    clock.now += sup.stable_after + 1
    sup.tick()  # up long enough: its crashes are forgotten
    die(stack, "ranker")
    pid = stack.procs["ranker"].pid
    sup.tick()
    assert stack.procs["ranker"].pid != pid


def test_back_off_is_capped() -> None:
    sup = Supervisor(cast(Any, None), print)
    assert [sup.delay(n) for n in (1, 2, 3, 7, 20)] == [0.0, 1.0, 2.0, 30.0, 30.0]
