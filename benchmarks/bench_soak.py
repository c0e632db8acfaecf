"""`make soak`: the `make run` stack under steady load for half an hour, with retrains, a ranker
killed and Redis restarted on the way.

1. Starts every process `make run` starts (Redis, Celery worker and beat, candidate, ranker,
   gateway, Streamlit UI; `benchmarks/makerun.py`), supervised as `recsys up` supervises them
   (`services/launcher/supervisor.py`: a process that dies is started again), and trains a
   first model through the queue (synthetic data, no recipe search: seconds).
2. An open-loop generator in its own process sends GET /recommend?k=10 at a steady rate
   (default 150 req/s) for the whole run, streaming its records back.
3. On the way: POST /train (the same request) every `--retrain-every` minutes, half a period
   out of step with the faults (at 2.5, 7.5, 12.5 … minutes); `kill -9` of the ranker at a
   third of the run (the supervisor restarts it); at two thirds Redis is stopped (SIGTERM) and,
   after `--redis-down` seconds, started again on the same port with the same data directory
   (the supervisor pauses meanwhile, so it is this restart and not the supervisor's).
4. Per interval (default a minute): requests, errors (non-2xx or no answer; 5xx apart),
   degraded answers (`X-Degraded`), p50/p99 latency of the answers, each process's RSS (its
   descendants included) at the interval's end.
5. Targets (issue 27): 0 5xx; degraded answers only from each fault until `--grace` seconds
   after its process is back; each process's RSS at the end within 10 % of its value after
   warm-up (at the end of the first interval after `--warmup`).

Writes var/bench/bench_soak.json and a plot of latency and RSS over time (bench_soak.png); each
run's process logs and request records stay in var/bench/soak/<UTC time>/.

    .venv/bin/python -m benchmarks.bench_soak [--minutes 30] [--rate 150] [--retrain-every 5]
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import orjson
import typer
from rich.console import Console
from rich.table import Table

from benchmarks.bench_serve import sample_users, train_through_queue, wait_until_compiled
from benchmarks.loadgen import LoadConfig, read_stream, start_load
from benchmarks.makerun import (
    PROCESSES,
    admin_headers,
    make_run_stack,
    rss_bytes,
    sampler_name,
    stack_redis_url,
)
from services.launcher.stack import Stack
from services.launcher.supervisor import Supervisor
from services.launcher.up import _supervisor_log

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path("var/bench/bench_soak.json")
K = 10
RSS_TOLERANCE = 0.10  # end vs after warm-up, per process

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0] if __doc__ else None)
console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass
class Row:
    """One interval of the run: the records sent in it, and the RSS sampled at its end."""

    index: int
    start: float  # seconds since the load began
    end: float
    latencies: list[float] = field(default_factory=list)  # seconds, answered 2xx
    requests: int = 0
    ok: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0
    no_answer: int = 0  # timeout or connection error: no status at all
    degraded: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[str, float | None] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    def add(self, rec: dict[str, Any]) -> None:
        self.requests += 1
        status = int(rec["status"])
        if 200 <= status < 300:
            self.ok += 1
            self.latencies.append(float(rec["latency"]))
            if mode := rec.get("degraded"):
                self.degraded[mode] = self.degraded.get(mode, 0) + 1
        elif status >= 500:
            self.errors_5xx += 1
        elif status >= 400:
            self.errors_4xx += 1
        else:
            self.no_answer += 1

    def summary(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        lat = np.asarray(self.latencies, dtype=float) * 1000
        span = self.end - self.start
        return {
            "index": self.index,
            "start_s": self.start,
            "end_s": self.end,
            "requests": self.requests,
            "achieved_rate": self.requests / span if span > 0 else 0.0,
            "ok": self.ok,
            "errors": self.requests - self.ok,
            "errors_5xx": self.errors_5xx,
            "errors_4xx": self.errors_4xx,
            "no_answer": self.no_answer,
            "degraded": sum(self.degraded.values()),
            "degraded_modes": dict(sorted(self.degraded.items())),
            "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
            "max_ms": float(lat.max()) if lat.size else None,
            "rss_mb": self.rss_mb,
            "pids": self.pids,
            "events": [
                e["kind"]
                for e in events
                if e["kind"] != "supervisor" and self.start <= e["t"] < self.end
            ],
        }


class Soak:
    """The run's state: the stack, its supervisor, the events, the per-interval rows."""

    def __init__(self, stack: Stack, t0: float, rows: list[Row], grace: float) -> None:
        self.stack = stack
        self.t0 = t0
        self.rows = rows
        self.grace = grace
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()  # held by the supervisor's ticks and by the Redis restart
        self.halt = threading.Event()
        self.first_seen: dict[str, float] = {}  # model version -> first answer with it (s)
        self.degraded_at: list[float] = []  # send times (s) of the degraded answers
        self.five_xx_at: list[float] = []
        self.no_answer_at: list[float] = []  # send times (s) of requests without any status
        log = _supervisor_log(stack.workdir)

        def log_event(line: str) -> None:
            log(line)
            self.event("supervisor", line=line)

        self.supervisor = Supervisor(stack, log_event)
        self.thread = threading.Thread(target=self._supervise, daemon=True, name="supervisor")

    def now(self) -> float:
        return time.monotonic() - self.t0

    def event(self, kind: str, **info: Any) -> dict[str, Any]:
        e = {"kind": kind, "t": round(self.now(), 3), **info}
        self.events.append(e)
        return e

    def _supervise(self) -> None:  # Supervisor.run, with the lock the Redis restart takes
        while not self.halt.wait(0.5):
            with self.lock:
                self.supervisor.tick()

    def take(self, records: list[dict[str, Any]]) -> None:
        for rec in records:
            t = float(rec["send"]) - self.t0
            i = min(max(int(t // (self.rows[0].end - self.rows[0].start)), 0), len(self.rows) - 1)
            self.rows[i].add(rec)
            if rec.get("degraded") and 200 <= int(rec["status"]) < 300:
                self.degraded_at.append(t)
            if int(rec["status"]) >= 500:
                self.five_xx_at.append(t)
            elif int(rec["status"]) < 100:
                self.no_answer_at.append(t)
            if (v := rec.get("version")) is not None and v not in self.first_seen:
                self.first_seen[v] = t

    def sample_rss(self, row: Row) -> None:
        for name in PROCESSES:
            proc = self.stack.procs.get(name)
            if proc is None:
                continue
            rss = rss_bytes(proc.pid) if proc.poll() is None else None
            row.rss_mb[name] = round(rss / 2**20, 1) if rss is not None else None
            row.pids[name] = proc.pid

    # ------------------------------------------------------------------------- faults

    def kill_ranker(self) -> dict[str, Any]:
        pid = self.stack.procs["ranker"].pid
        os.kill(pid, signal.SIGKILL)
        return self.event("ranker_kill", pid=pid, restarted_t=None, back_t=None)

    def watch_ranker(self, kill: dict[str, Any]) -> None:
        """Called in the main loop until the killed ranker is back: restarted (new pid), then
        ready (its /readyz answers 200: a model loaded)."""
        proc = self.stack.procs["ranker"]
        if kill["restarted_t"] is None and proc.pid != kill["pid"] and proc.poll() is None:
            kill["restarted_t"] = round(self.now(), 3)
        if kill["restarted_t"] is not None and kill["back_t"] is None:
            s = self.stack.settings
            with contextlib.suppress(httpx.HTTPError):
                url = f"http://{s.host}:{s.ranker_port}/readyz"
                if httpx.get(url, timeout=0.5).status_code == 200:
                    kill["back_t"] = round(self.now(), 3)

    def restart_redis(self, down: float) -> dict[str, Any]:
        """SIGTERM Redis (it writes its AOF and exits), wait `down` s, start it again as the
        stack first started it: same port, same data directory."""
        e = self.event("redis_restart", pid=self.stack.procs["redis"].pid)
        with self.lock:  # the supervisor would otherwise restart it at once itself
            self.stack.stop_process("redis")
            e["stopped_t"] = round(self.now(), 3)
            time.sleep(down)
            self.stack.restart("redis")  # returns once it answers PING
            e["back_t"] = round(self.now(), 3)
            e["new_pid"] = self.stack.procs["redis"].pid
        return e


def retrain(soak: Soak, request: dict[str, Any]) -> dict[str, Any]:
    e = soak.event("retrain", job_id=None, state=None, version=None, done_t=None, served_t=None)
    try:
        r = httpx.post(
            f"{soak.stack.gateway_url}/train",
            json=request,
            headers=admin_headers(soak.stack),
            timeout=10,
        )
        e["status"] = r.status_code
        if r.status_code == 202 or r.is_success:
            body = r.json()
            e["job_id"], e["joined"] = body["job_id"], body.get("joined", False)
        else:
            e["state"], e["error"] = "REFUSED", r.text[:200]
    except httpx.HTTPError as exc:
        e["state"], e["error"] = "REFUSED", f"{type(exc).__name__}: {exc}"
    return e


def poll_retrain(soak: Soak, e: dict[str, Any]) -> None:
    if e["job_id"] is None or e["state"] in ("SUCCESS", "FAILURE"):
        return
    with contextlib.suppress(httpx.HTTPError, ValueError):
        status = httpx.get(f"{soak.stack.gateway_url}/train/{e['job_id']}", timeout=2).json()
        e["state"] = status.get("state")
        if e["state"] in ("SUCCESS", "FAILURE"):
            e["done_t"] = round(soak.now(), 3)
            e["version"] = status.get("model_version")
            e["promoted"] = status.get("promoted")
            e["error"] = status.get("error")


def fault_windows(events: list[dict[str, Any]], end: float, grace: float) -> list[list[float]]:
    """[from, to] in seconds around each fault: from the fault until `grace` s after its
    process was back (the run's end if it never came back)."""
    windows = []
    for e in events:
        if e["kind"] in ("ranker_kill", "redis_restart"):
            back = e.get("back_t")
            until = (back if back is not None else end) + grace
            windows.append([round(e["t"] - 1.0, 3), round(until, 3)])
    return windows


def evaluate(result: dict[str, Any], warmup: float) -> list[dict[str, Any]]:
    rows, events = result["rows"], result["events"]
    cfg = result["config"]
    targets: list[dict[str, Any]] = []
    five_xx = sum(r["errors_5xx"] for r in rows)
    targets.append({"name": "5xx answers", "target": "0", "value": five_xx, "met": five_xx == 0})
    outside = result["degraded_outside_faults"]
    targets.append({
        "name": f"degraded answers outside the faults (+{cfg['grace_s']:g} s)",
        "target": "0", "value": outside, "met": outside == 0,
    })  # fmt: skip
    # RSS after warm-up: at the end of the first interval that starts once warm-up is over.
    base_i = math.ceil(warmup / cfg["interval_s"])
    last = len(rows) - 1
    restarted = {
        e["kind"].split("_")[0] for e in events if e["kind"] in ("ranker_kill", "redis_restart")
    }
    for name in PROCESSES:
        if base_i >= last:  # no interval between the warm-up and the end: nothing to compare
            value, met = None, None
        else:
            base, end = rows[base_i]["rss_mb"].get(name), rows[last]["rss_mb"].get(name)
            value = (end / base - 1) if base and end else None
            met = abs(value) <= RSS_TOLERANCE if value is not None else None
        note = " (restarted during the run)" if name in restarted else ""
        targets.append({
            "name": f"RSS {name}: end vs after warm-up{note}",
            "target": f"within {RSS_TOLERANCE:.0%}", "value": value, "met": met,
            "baseline_mb": rows[base_i]["rss_mb"].get(name) if base_i <= last else None,
            "end_mb": rows[last]["rss_mb"].get(name),
        })  # fmt: skip
    return targets


@app.command()
def main(
    minutes: Annotated[float, typer.Option(help="length of the loaded run")] = 30.0,
    rate: Annotated[float, typer.Option(help="open-loop requests per second")] = 150.0,
    retrain_every: Annotated[float, typer.Option(help="minutes between POST /train")] = 5.0,
    interval: Annotated[float, typer.Option(help="seconds per row of the table")] = 60.0,
    warmup: Annotated[float, typer.Option(help="seconds before the RSS baseline interval")] = 60.0,
    grace: Annotated[
        float, typer.Option(help="degraded answers allowed this long after a fault is over (s)")
    ] = 10.0,
    redis_down: Annotated[float, typer.Option(help="seconds Redis stays stopped")] = 2.0,
    timeout: Annotated[
        float, typer.Option(help="client deadline per request (s); above the gateway's 3 s")
    ] = 5.0,
    dataset: str = "synthetic",
    tune_budget: Annotated[float, typer.Option(help="recipe search seconds per training")] = 0.0,
    users: int = 2000,
    seed: int = 42,
    out: Path = DEFAULT_OUT,
    plot: Annotated[Path | None, typer.Option(help="PNG; default: next to --out")] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(help="process logs and records; default: a new var/bench/soak/<UTC time>"),
    ] = None,
) -> None:
    duration = minutes * 60
    plot = plot or out.with_suffix(".png")
    # Stopped by a signal, the run still stops its stack (the `finally` below): SIGTERM exits
    # through SystemExit, and SIGINT interrupts even when a background start ignored it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A run of its own keeps each run's process logs: a stall is explained from them afterwards.
    workdir = workdir or Path("var/bench/soak") / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "logs").mkdir(parents=True)
    data_dir = os.environ.get("RECSYS_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    stack = make_run_stack(workdir, {"RECSYS_DATA_DIR": data_dir})
    n_rows = max(1, math.ceil(duration / interval - 1e-9))
    rows = [Row(i, i * interval, min((i + 1) * interval, duration)) for i in range(n_rows)]
    soak = Soak(stack, time.monotonic(), rows, grace)
    request: dict[str, Any] = {"dataset": dataset, "params": {"tune_budget_seconds": tune_budget}}
    result: dict[str, Any] = {"loadavg_before": list(os.getloadavg()), "workdir": str(workdir)}
    loadgen = None
    try:
        console.print("starting the make-run stack: " + ", ".join(PROCESSES) + " …")
        stack.start()
        soak.thread.start()  # from here on a process that dies is restarted, as in `recsys up`
        console.print(f"training the first model ({dataset}) through the queue …")
        version, train_s = train_through_queue(stack, request)
        native, compile_s = wait_until_compiled(stack, timeout=120)
        console.print(
            f"version {version} served after {train_s:.1f} s, compiled {compile_s:.1f} s later"
        )
        result["first_model"] = {
            "version": version,
            "train_seconds": train_s,
            "native_members": native,
            "compile_wait_seconds": compile_s,
        }
        who = sample_users(stack_redis_url(stack), version, users, seed)
        records = workdir / "records.jsonl"
        cfg = LoadConfig(stack.gateway_url, rate, duration, timeout, seed, tuple(who),
                         str(records), k=K, stream=True)  # fmt: skip
        loadgen = start_load(cfg, mp.get_context("spawn").Event(), "soak-loadgen")
        soak.t0 = time.monotonic()
        soak.events.clear()  # times are relative to the load's start from here on
        run_loop(soak, cfg, loadgen, request, retrain_every * 60, redis_down)
        result["loadavg_after"] = list(os.getloadavg())
    finally:
        soak.halt.set()
        if soak.thread.is_alive():
            soak.thread.join()
        if loadgen is not None and loadgen.is_alive():
            loadgen.terminate()
            loadgen.join(timeout=5)
        stack.stop()
    summaries = [r.summary(soak.events) for r in rows]
    windows = fault_windows(soak.events, duration, grace)
    outside = [t for t in soak.degraded_at if not any(a <= t <= b for a, b in windows)]
    for e in soak.events:
        if e["kind"] == "retrain" and e.get("version") is not None:
            served = soak.first_seen.get(str(e["version"]))
            e["served_t"] = round(served, 3) if served is not None else None
    result.update(
        config={"minutes": minutes, "rate": rate, "retrain_every_min": retrain_every,
                "interval_s": interval, "warmup_s": warmup, "grace_s": grace,
                "redis_down_s": redis_down, "timeout_s": timeout, "dataset": dataset,
                "tune_budget_seconds": tune_budget, "users": len(who), "k": K,
                "stack": list(PROCESSES), "rss_sampler": sampler_name()},
        rows=summaries, events=soak.events, fault_windows=windows,
        degraded_outside_faults=len(outside), degraded_outside_at=outside[:100],
        five_xx_at=soak.five_xx_at[:100],
        no_answer_at=soak.no_answer_at[:1000],
        totals={key: sum(r[key] for r in summaries)
                for key in ("requests", "ok", "errors", "errors_5xx", "errors_4xx", "no_answer",
                            "degraded")},
    )  # fmt: skip
    result["targets"] = evaluate(result, warmup)
    result["all_targets_met"] = all(t["met"] is True for t in result["targets"])
    report(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    console.print(f"wrote {out}; process logs in {workdir}/logs")
    draw(result, plot)


def run_loop(
    soak: Soak,
    cfg: LoadConfig,
    loadgen: mp.process.BaseProcess,
    request: dict[str, Any],
    retrain_period: float,
    redis_down: float,
) -> None:
    """Until the generator is done: read its records, sample RSS at each interval's end, print
    each interval once all its answers are in, and make the retrains and the faults happen."""
    duration = cfg.duration
    retrain_at = [(k + 0.5) * retrain_period for k in range(int(duration // retrain_period) + 1)]
    retrain_at = [t for t in retrain_at if t < duration]
    kill_at = duration / 3
    redis_at: float | None = 2 * duration / 3
    kill: dict[str, Any] | None = None
    retrains: list[dict[str, Any]] = []
    offset, sampled, printed, last_poll = 0, 0, 0, 0.0
    while True:
        alive = loadgen.is_alive()
        now = soak.now()
        new, offset = read_stream(cfg.out, offset)
        soak.take(new)
        while sampled < len(soak.rows) and now >= soak.rows[sampled].end:
            soak.sample_rss(soak.rows[sampled])
            sampled += 1
        if retrain_at and now >= retrain_at[0]:
            retrain_at.pop(0)
            retrains.append(retrain(soak, request))
        if kill is None and now >= kill_at:
            kill = soak.kill_ranker()
            console.print(f"  {now:6.1f} s: kill -9 ranker (pid {kill['pid']})")
        if kill is not None and kill["back_t"] is None:
            soak.watch_ranker(kill)
        if redis_at is not None and now >= redis_at:
            redis_at = None
            e = soak.restart_redis(redis_down)
            console.print(f"  {now:6.1f} s: Redis stopped and started again ({e['back_t']} s)")
        if now - last_poll >= 2:
            last_poll = now
            for e in retrains:
                poll_retrain(soak, e)
        # an interval is complete once every request sent in it has answered or timed out
        while printed < len(soak.rows) and (
            not alive or now >= soak.rows[printed].end + cfg.timeout + 2
        ):
            if printed < sampled or not alive:
                print_row(soak.rows[printed].summary(soak.events))
                printed += 1
            else:
                break
        if not alive:
            break
        time.sleep(0.25)
    loadgen.join(timeout=10)
    if loadgen.exitcode != 0:
        raise RuntimeError(f"load generator failed (exit code {loadgen.exitcode})")
    for row in soak.rows[sampled:]:  # a run cut short: the last sample is now
        soak.sample_rss(row)
    deadline = time.monotonic() + 5  # a retrain still running is left as it is
    while any(e["state"] not in ("SUCCESS", "FAILURE", "REFUSED") for e in retrains):
        if time.monotonic() > deadline:
            break
        for e in retrains:
            poll_retrain(soak, e)
        time.sleep(0.5)


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def print_row(r: dict[str, Any]) -> None:
    rss = " ".join(f"{n} {v:.0f}" for n, v in r["rss_mb"].items() if v is not None)
    console.print(
        f"  [{r['start_s']:6.0f}-{r['end_s']:4.0f} s] {r['requests']} req, {r['errors']} errors"
        f" ({r['errors_5xx']} 5xx), {r['degraded']} degraded, p50 {_ms(r['p50_ms'])} p99"
        f" {_ms(r['p99_ms'])} ms; RSS MB: {rss}"
        + (f"; {', '.join(r['events'])}" if r["events"] else ""),
        soft_wrap=True,
    )


def report(result: dict[str, Any]) -> None:
    cfg = result["config"]
    table = Table(
        title=f"soak: GET /recommend?k=10 at {cfg['rate']:g} req/s for {cfg['minutes']:g} min, per"
        f" {cfg['interval_s']:g} s (latency of the 2xx answers, ms; RSS MB at the interval's end)"
    )
    names = [n for n in PROCESSES if any(n in r["rss_mb"] for r in result["rows"])]
    cols = ("min", "requests", "errors", "5xx", "no answer", "degraded", "p50", "p99", *names)
    for col in (*cols, "events"):
        table.add_column(col, justify="left" if col == "events" else "right")
    for r in result["rows"]:
        modes = ", ".join(f"{m} {n}" for m, n in r["degraded_modes"].items())
        table.add_row(
            f"{r['start_s'] / 60:.1f}", str(r["requests"]), str(r["errors"]), str(r["errors_5xx"]),
            str(r["no_answer"]), f"{r['degraded']}" + (f" ({modes})" if modes else ""),
            _ms(r["p50_ms"]), _ms(r["p99_ms"]),
            *[_ms(r["rss_mb"].get(n)) for n in names], ", ".join(r["events"]),
        )  # fmt: skip
    console.print(table)
    events = Table(title="events (s since the load began)")
    for col in ("t", "event", "details"):
        events.add_column(col, justify="right" if col == "t" else "left")
    for e in result["events"]:
        if e["kind"] == "supervisor":
            details = e["line"]
        elif e["kind"] == "ranker_kill":
            details = f"pid {e['pid']}; restarted at {e['restarted_t']}, ready at {e['back_t']}"
        elif e["kind"] == "redis_restart":
            details = f"stopped at {e.get('stopped_t')}, answering again at {e.get('back_t')}"
        else:
            details = (
                f"job {e.get('job_id')}: {e.get('state')}, done at {e.get('done_t')}, version"
                f" {e.get('version')} (promoted {e.get('promoted')}), first served at"
                f" {e.get('served_t')}" + (f"; {e['error']}" if e.get("error") else "")
            )
        events.add_row(f"{e['t']:.1f}", e["kind"], details)
    console.print(events)
    tot = result["totals"]
    console.print(
        f"totals: {tot['requests']} requests, {tot['errors']} errors ({tot['errors_5xx']} 5xx,"
        f" {tot['errors_4xx']} 4xx, {tot['no_answer']} without an answer), {tot['degraded']}"
        f" degraded ({result['degraded_outside_faults']} outside the fault windows"
        f" {result['fault_windows']})"
    )
    targets = Table(title="targets (issue 27)")
    for col in ("target", "value", "result"):
        targets.add_column(col, justify="right")
    for t in result["targets"]:
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: "not measured"}[t["met"]]
        v = t["value"]
        value = "-" if v is None else (f"{v:+.1%}" if isinstance(v, float) else str(v))
        if "baseline_mb" in t:
            value += f" ({_ms(t['baseline_mb'])} -> {_ms(t['end_mb'])} MB)"
        targets.add_row(f"{t['name']}: {t['target']}", value, verdict)
    console.print(targets)


def draw(result: dict[str, Any], path: Path) -> None:
    """Latency and RSS per interval, the faults and retrains marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        console.print("matplotlib is not installed: no plot")
        return
    rows = result["rows"]
    x = [r["end_s"] / 60 for r in rows]  # RSS: sampled at each interval's end
    mid = [(r["start_s"] + r["end_s"]) / 120 for r in rows]  # counts, latency: over the interval
    fig, (lat, bad, mem) = plt.subplots(
        3, 1, figsize=(10, 9), sharex=True, gridspec_kw={"height_ratios": [3, 1.5, 3]}
    )
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99")):
        lat.plot(mid, [r[key] if r[key] is not None else np.nan for r in rows], "o-", label=label)
    lat.set_ylabel("latency of the 2xx answers (ms)")
    lat.set_yscale("log")
    width = result["config"]["interval_s"] / 60 / 3.5
    for shift, key, label in ((-1, "degraded", "degraded"), (0, "errors", "errors"),
                              (1, "errors_5xx", "5xx")):  # fmt: skip
        bad.bar([v + shift * width for v in mid], [r[key] for r in rows], width, label=label)
    bad.set_ylabel("answers per interval")
    bad.legend(fontsize=8, ncol=3)
    names = [n for n in PROCESSES if any(r["rss_mb"].get(n) for r in rows)]
    for name in names:
        values = [r["rss_mb"].get(name) for r in rows]
        mem.plot(x, [v if v is not None else np.nan for v in values], "o-", label=name)
    mem.set_ylabel("RSS (MB, with descendants)")
    mem.set_xlabel("minutes since the load began (RSS at each interval's end)")
    marks: dict[str, Callable[[dict[str, Any]], bool]] = {
        "ranker kill": lambda e: e["kind"] == "ranker_kill",
        "Redis restart": lambda e: e["kind"] == "redis_restart",
        "retrain": lambda e: e["kind"] == "retrain",
    }
    for (label, match), color in zip(marks.items(), ("red", "purple", "grey"), strict=True):
        for i, e in enumerate(e for e in result["events"] if match(e)):
            for ax in (lat, bad, mem):
                ax.axvline(e["t"] / 60, color=color, ls="--", lw=1,
                           label=label if i == 0 and ax is lat else None)  # fmt: skip
    lat.legend(fontsize=8, ncol=2)
    mem.legend(fontsize=8, ncol=4)
    cfg = result["config"]
    fig.suptitle(f"make soak: {cfg['rate']:g} req/s for {cfg['minutes']:g} min")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    app()
