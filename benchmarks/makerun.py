"""The stack `make run` starts, for the benchmarks, and what each of its processes costs.

`make_run_stack`: every process `recsys up` starts (Redis, Celery worker and beat, candidate,
ranker, gateway, Streamlit UI), on free ports, with the services' default settings, so that
the benchmarks measure the configuration a user runs rather than a reduced one.

`cpu_seconds` / `rss_bytes`: a process's CPU time and resident memory, its descendants included
(the Celery worker's pool child that trains, the ranker's native-compile child): psutil when it
is installed (the `test` extra), else /proc (Linux).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.launcher.stack import Stack, StackSettings
from shared.redis_conn import redis_url

try:
    import psutil
except ImportError:  # `make bench` needs only the base install: /proc then
    psutil = None

# The processes of `make run`, in the order the tables show them.
PROCESSES = ("gateway", "candidate", "ranker", "worker", "beat", "ui", "redis")


def make_run_stack(workdir: Path, extra_env: Mapping[str, str] | None = None) -> Stack:
    """A `Stack` of every process `make run` starts, on free ports; Redis is the stack's own
    (its launcher restarts it on the same port and data directory). Call `.start()`."""
    # The stack starts Redis only when no RECSYS_REDIS_URL is given: one in our environment
    # (a developer's shell) would point the whole stack at another Redis.
    os.environ.pop("RECSYS_REDIS_URL", None)
    settings = StackSettings.on_free_ports(redis=True, ui=True)
    env = {k: v for k, v in (extra_env or {}).items() if k != "RECSYS_REDIS_URL"}
    return Stack(settings, workdir, with_ui=True, with_beat=True, extra_env=env)


def stack_redis_url(stack: Stack) -> str:
    s = stack.settings
    return redis_url(s.redis_port, password=s.redis_password)


def admin_headers(stack: Stack) -> dict[str, str]:
    """The gateway's admin key, when one is configured (POST /train needs it then)."""
    key = stack.settings.admin_api_key
    return {"X-API-Key": key.get_secret_value()} if key else {}


def stack_pids(stack: Stack) -> dict[str, int]:
    """The current pid of each running process of the stack (a restarted one has a new pid)."""
    return {name: proc.pid for name, proc in stack.procs.items() if proc.poll() is None}


# ----------------------------------------------------------------------------- sampling


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid`, its reaped children and its live descendants; None
    if it is gone."""
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            t = proc.cpu_times()
            total = float(t.user + t.system + t.children_user + t.children_system)
            for child in proc.children(recursive=True):
                try:
                    c = child.cpu_times()
                    total += float(c.user + c.system)
                except psutil.Error:
                    continue
            return total
        except psutil.Error:
            return None
    stats = _proc_stats()
    if pid not in stats:
        return None
    return float(sum(stats[p]["cpu"] for p in _tree(pid, stats)))


def rss_bytes(pid: int) -> int | None:
    """Resident memory of `pid` and its live descendants (bytes); None if it is gone."""
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            total = int(proc.memory_info().rss)
            for child in proc.children(recursive=True):
                try:
                    total += int(child.memory_info().rss)
                except psutil.Error:
                    continue
            return total
        except psutil.Error:
            return None
    stats = _proc_stats()
    if pid not in stats:
        return None
    return int(sum(stats[p]["rss"] for p in _tree(pid, stats)))


def sampler_name() -> str:
    """Where the figures come from: "psutil" or "/proc"."""
    return "psutil" if psutil is not None else "/proc"


def sample_cpu(pids: Mapping[str, int]) -> dict[str, float | None]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def cpu_ms_per_request(
    before: Mapping[str, float | None], after: Mapping[str, float | None], requests: int
) -> dict[str, float | None]:
    """Milliseconds of CPU per request sent, per process (None where a sample is missing)."""
    out: dict[str, float | None] = {}
    for name, b in before.items():
        a = after.get(name)
        out[name] = (
            (a - b) * 1000 / requests if a is not None and b is not None and requests else None
        )
    return out


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of `pid` alone (no children); None if it is gone or unknown."""
    if pid is None:
        return None
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _TICK


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _proc_stats() -> dict[int, dict[str, Any]]:
    """Every process's parent, CPU seconds (own + reaped children) and RSS, from /proc."""
    stats: dict[int, dict[str, Any]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or (fields := _stat_fields(int(entry))) is None:
            continue
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        stats[int(entry)] = {
            "ppid": int(fields[1]),
            "cpu": ticks / _TICK,
            "rss": int(fields[21]) * _PAGE,
        }
    return stats


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 on (None if the process is gone). fields[0] is field 3
    (state): ppid 4, utime 14, stime 15, cutime 16, cstime 17, rss 24."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    return raw[raw.rindex(")") + 2 :].split()


def _tree(pid: int, stats: Mapping[int, Mapping[str, Any]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for p, s in stats.items():
        children.setdefault(int(s["ppid"]), []).append(p)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out
