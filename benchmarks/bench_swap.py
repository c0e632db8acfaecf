"""`make bench-swap`: publish model versions one after another under steady load.

What it checks (the "atomic hot swap under load" issue): while versions are swapped in, every
answer is a 200 from one known version (never degraded), no request sent after another one came
back is answered by an older version, and each published version is served by both stages
within 2 s.

How: its own Redis and stack (gateway, candidate, ranker, worker) on free ports; N+1 small
synthetic models trained in this process up front, so the publish loop times swaps, not training;
an open-loop load generator in a separate process (so its event loop does not share the GIL with
the publisher and the probe); a 20 ms probe of both stages' /healthz in a thread.

Times from both processes are `time.monotonic()`, which is one system-wide clock on Linux and
macOS (CLOCK_MONOTONIC / mach_continuous_time), so they can be compared directly.

    .venv/bin/python -m benchmarks.bench_swap [--rate 100 --versions 10 --interval 1.5] [--quick]
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import numpy as np
import orjson
import redis
import typer
from rich.console import Console
from rich.table import Table

from benchmarks.loadgen import LoadConfig, finish_load, start_load
from services.launcher.stack import Stack, StackSettings
from shared.artifacts import RedisArtifactStore
from shared.redis_conn import free_port, start_redis_server
from shared.registry import ModelRegistry
from shared.schemas.training import TrainRequest
from shared.training.params import TrainParams

if TYPE_CHECKING:
    from shared.training.run import TrainOutput

PREFIX = "recsys"  # the services' default key prefix, so they follow this registry
N_USERS, N_PRODUCTS, N_DAYS = 300, 150, 90  # the tests' SMALL_TRAIN: seconds per model
K = 10
DEFAULT_OUT = Path("var/bench/bench_swap.json")
SERVED_P95_TARGET_S = 2.0
# The generator counts as keeping up if it sent at least this share of the asked-for rate.
RATE_VALIDITY = 0.95

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0] if __doc__ else None)
# Tables stay readable when piped or logged (rich would otherwise squeeze them to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 120)


# ----------------------------------------------------------------------------- probe


class Probe(threading.Thread):
    """Polls candidate and ranker /healthz every `period` s; one sample per round."""

    def __init__(self, urls: tuple[str, str], period: float = 0.02) -> None:
        super().__init__(name="bench-swap-probe", daemon=True)
        self.urls = urls
        self.period = period
        # (time the round finished, candidate version, ranker version): the end time, so a sample
        # never claims a version earlier than both answers were in.
        self.samples: list[tuple[float, int | None, int | None]] = []
        # /healthz does no work, so its latency is how long that service's event loop was busy
        # elsewhere: a stall during a swap shows up here.
        self.latency: tuple[list[float], list[float]] = ([], [])
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(1.0)) as http:
            while not self._halt.is_set():
                begin = time.monotonic()
                seen: list[int | None] = []
                for url, latency in zip(self.urls, self.latency, strict=True):
                    call = time.monotonic()
                    try:
                        seen.append(http.get(url).json().get("version"))
                    except (httpx.HTTPError, ValueError):
                        seen.append(None)
                        self.errors += 1
                    latency.append(time.monotonic() - call)
                self.samples.append((time.monotonic(), seen[0], seen[1]))
                self._halt.wait(max(0.0, self.period - (time.monotonic() - begin)))

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Trained:
    params: TrainParams
    output: TrainOutput


def train_models(seeds: Sequence[int]) -> list[Trained]:
    from shared.datasets import synthetic
    from shared.training.run import run_training  # heavy; see the load generator note

    out = []
    for seed in seeds:
        params = TrainParams(  # no recipe search: the swaps are measured, not the training
            n_users=N_USERS, n_products=N_PRODUCTS, n_days=N_DAYS, seed=seed, tune_budget_seconds=0
        )
        begin = time.monotonic()
        data = synthetic.generate(n_users=N_USERS, n_products=N_PRODUCTS, n_days=N_DAYS, seed=seed)
        out.append(Trained(params, run_training(data, params)))
        console.print(f"  trained seed {seed} in {time.monotonic() - begin:.1f} s")
    return out


def publish(registry: ModelRegistry, trained: Trained) -> int:
    from services.trainer.publish import data_identity

    request = TrainRequest(dataset="synthetic", params=trained.params)
    manifest, made_current = registry.publish(
        trained.output.artifacts,
        dataset="synthetic",
        params={**request.model_dump(mode="json"), "data": data_identity(request)},
        metrics=trained.output.metrics,
    )
    if not made_current:
        raise RuntimeError(f"version {manifest.version} did not become current")
    return manifest.version


def wait_served(stack: Stack, urls: tuple[str, str], version: int, timeout: float = 60) -> None:
    """Both stages report `version` and the gateway answers with it."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            stack.check_alive()
            try:
                stages = [http.get(url).json().get("version") for url in urls]
                r = http.get(f"{stack.gateway_url}/recommend", params={"user": "U1", "k": K})
                if stages == [version, version] and r.headers.get("X-Model-Version") == str(
                    version
                ):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
    raise TimeoutError(f"version {version} not served within {timeout:.0f}s")


# ----------------------------------------------------------------------------- analysis


def pcts(values: Sequence[float], qs: Sequence[int] = (50, 95)) -> dict[str, float | None]:
    """Percentiles (numpy's linear interpolation) and max; None when there is nothing to rank."""
    if not values:
        return {**{f"p{q}": None for q in qs}, "max": None}
    arr = np.asarray(values, dtype=float)
    return {**{f"p{q}": float(np.percentile(arr, q)) for q in qs}, "max": float(arr.max())}


def parse_version(raw: object) -> int | None:
    try:
        return int(str(raw)) if raw is not None else None
    except ValueError:
        return None


def monotonic_violations(ok: list[dict[str, Any]], t0: float) -> tuple[int, list[dict[str, Any]]]:
    """Requests answered by an older version than one that had already come back before they
    were sent. Concurrent in-flight requests may legitimately finish in any order, so only
    'sent after another completed' is a promise the system makes."""
    by_send = sorted(ok, key=lambda r: r["send"])
    by_done = sorted(ok, key=lambda r: r["send"] + r["latency"])
    best, j, count = 0, 0, 0
    examples: list[dict[str, Any]] = []
    for rec in by_send:
        while j < len(by_done) and by_done[j]["send"] + by_done[j]["latency"] < rec["send"]:
            best = max(best, by_done[j]["v"])
            j += 1
        if rec["v"] < best:
            count += 1
            if len(examples) < 5:
                examples.append(
                    {"sent_at_s": rec["send"] - t0, "version": rec["v"], "newest_seen": best}
                )
    return count, examples


@dataclass
class SwapTiming:
    version: int
    seed: int
    published_at_s: float  # since the load started
    publish_call_s: float
    served_everywhere_s: float | None = None  # probe: candidate AND ranker report >= version
    served_exact: bool = False  # ...and both reported exactly this version at some point
    first_answer_s: float | None = None  # load: first answer (completion) with >= version
    all_answers_s: float | None = None  # load: after this, no request sent got an older version


def swap_timings(
    pubs: list[tuple[int, int, float, float]],
    samples: list[tuple[float, int | None, int | None]],
    ok: list[dict[str, Any]],
    t0: float,
) -> list[SwapTiming]:
    out = []
    for version, seed, at, call in pubs:
        s = SwapTiming(version, seed, at - t0, call)
        for t, cand, rank in samples:
            if t >= at and cand is not None and rank is not None and min(cand, rank) >= version:
                s.served_everywhere_s = t - at
                break
        s.served_exact = any(t >= at and c == r == version for t, c, r in samples)
        done = [r["send"] + r["latency"] for r in ok if r["v"] >= version and r["send"] >= at]
        if done:
            s.first_answer_s = min(done) - at
        stale = [r["send"] for r in ok if r["v"] < version and r["send"] >= at]
        if done:
            s.all_answers_s = max(stale) - at if stale else 0.0
        out.append(s)
    return out


def timeline(records: list[dict[str, Any]], t0: float) -> list[dict[str, Any]]:
    """Per second of sending: whether failures cluster after publishes or build up as overload."""
    seconds: dict[int, list[dict[str, Any]]] = {}
    for rec in records:
        seconds.setdefault(int(rec["send"] - t0), []).append(rec)
    out = []
    for second, recs in sorted(seconds.items()):
        lat = [r["latency"] * 1000 for r in recs]
        versions = Counter(str(r.get("version")) for r in recs if r["status"] == 200)
        out.append(
            {
                "second": second,
                "sent": len(recs),
                "ok": sum(r["status"] == 200 for r in recs),
                "latency_ms": pcts(lat, (50,)),
                "versions": dict(sorted(versions.items())),
            }
        )
    return out


def stage_skew(samples: list[tuple[float, int | None, int | None]]) -> dict[str, Any]:
    """How long candidate and ranker reported different versions (legal: the ranker serves the
    version the candidate stage pinned, keeping the previous one loaded)."""
    longest, begin, rounds = 0.0, None, 0
    for t, cand, rank in samples:
        if cand != rank:
            rounds += 1
            begin = t if begin is None else begin
            longest = max(longest, t - begin)
        else:
            begin = None
    return {"samples": len(samples), "samples_differing": rounds, "longest_differing_s": longest}


def analyse(
    records: list[dict[str, Any]],
    pubs: list[tuple[int, int, float, float]],
    probe: Probe,
    known: set[int],
    t0: float,
    cfg: dict[str, Any],
) -> dict[str, Any]:
    failures: Counter[str] = Counter()
    bad_version: Counter[str] = Counter()
    degraded = 0
    ok: list[dict[str, Any]] = []
    for rec in records:
        if rec["status"] != 200:
            failures[rec.get("error") or str(rec["status"])] += 1
            continue
        v = parse_version(rec.get("version"))
        if v is None or v not in known:
            bad_version[str(rec.get("version"))] += 1
        if rec.get("degraded"):
            degraded += 1
        if v is not None:
            ok.append({**rec, "v": v})
    sends = sorted(r["send"] for r in records)
    span = (sends[-1] - sends[0]) if len(sends) > 1 else 0.0
    violations, examples = monotonic_violations(ok, t0)
    swaps = swap_timings(pubs, probe.samples, ok, t0)
    served = [s.served_everywhere_s for s in swaps if s.served_everywhere_s is not None]
    n_failed = sum(failures.values())
    n_bad = sum(bad_version.values())
    achieved = (len(records) - 1) / span if span > 0 else 0.0
    served_stats = pcts(served)
    p95 = served_stats["p95"]
    targets = [
        _target("failed requests", n_failed, "== 0", n_failed == 0),
        _target(
            "missing/unknown version or degraded", n_bad + degraded, "== 0", n_bad + degraded == 0
        ),
        _target("monotonicity violations", violations, "== 0", violations == 0),
        _target(
            "versions served everywhere", len(served), f"== {len(swaps)}", len(served) == len(swaps)
        ),
        _target(
            "publish->served p95 (s)",
            p95,
            f"<= {SERVED_P95_TARGET_S}",
            # No publishes (--versions 0, the no-swap baseline): nothing to miss.
            not swaps or (p95 is not None and p95 <= SERVED_P95_TARGET_S),
        ),
    ]
    validity = [
        _target(
            "achieved rate (req/s)",
            achieved,
            f">= {RATE_VALIDITY:.0%} of {cfg['rate']:g}",
            achieved >= RATE_VALIDITY * cfg["rate"],
        )
    ]
    return {
        "config": cfg,
        "requests": {
            "total": len(records),
            "ok": len(records) - n_failed,
            "failed": n_failed,
            "failed_by_reason": dict(failures),
            "missing_or_unknown_version": n_bad,
            "bad_versions": dict(bad_version),
            "degraded": degraded,
            "monotonicity_violations": violations,
            "monotonicity_examples": examples,
            "achieved_rate": achieved,
            "send_lag_s": pcts([r["lag"] for r in records], (50, 99)),
            "latency_ms": pcts([r["latency"] * 1000 for r in records if r["status"]], (50, 95, 99)),
            "answers_by_version": {
                str(v): n for v, n in sorted(Counter(r["v"] for r in ok).items())
            },
        },
        "swaps": {
            "per_version": [asdict(s) for s in swaps],
            "publish_to_served_s": served_stats,
            "publish_to_first_answer_s": pcts(
                [s.first_answer_s for s in swaps if s.first_answer_s is not None]
            ),
            "publish_to_all_answers_s": pcts(
                [s.all_answers_s for s in swaps if s.all_answers_s is not None]
            ),
        },
        "timeline": timeline(records, t0),
        "probe": {
            **stage_skew(probe.samples),
            "errors": probe.errors,
            "healthz_ms": {
                stage: pcts([x * 1000 for x in latency], (50, 99))
                for stage, latency in zip(("candidate", "ranker"), probe.latency, strict=True)
            },
        },
        "targets": targets,
        "validity": validity,
        "all_targets_met": all(t["met"] for t in targets),
    }


def _target(name: str, value: float | None, target: str, met: bool) -> dict[str, Any]:
    return {"name": name, "value": value, "target": target, "met": met}


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class BenchConfig:
    rate: float
    versions: int
    interval: float
    tail: float
    lead: float
    timeout: float
    seed: int
    models: int  # distinct trained models, cycled over the versions
    out: Path


def run(cfg: BenchConfig) -> dict[str, Any]:
    workdir = cfg.out.parent / "bench_swap_work"  # logs stay here for a look after the run
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "logs").mkdir(parents=True)
    redis_port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    settings = StackSettings.on_free_ports()
    env = {
        "RECSYS_REDIS_URL": redis_url,
        "RECSYS_MODEL_CHECK_SECONDS": "1",
        "RECSYS_KEY_PREFIX": PREFIX,
        "RECSYS_ARTIFACT_STORE": "redis",
    }
    stack = Stack(settings, workdir, with_ui=False, with_beat=False, extra_env=env)
    stage_urls = (
        f"http://{settings.host}:{settings.candidate_port}/healthz",
        f"http://{settings.host}:{settings.ranker_port}/healthz",
    )
    duration = cfg.lead + cfg.versions * cfg.interval + cfg.tail
    records_path = workdir / "records.json"
    redis_proc: subprocess.Popen[bytes] | None = None
    client: redis.Redis | None = None
    probe = Probe(stage_urls)
    load: mp.process.BaseProcess | None = None
    # Other work on the machine moves every number here: keep the evidence with the result.
    loadavg_before = list(os.getloadavg())
    try:
        redis_proc = start_redis_server(
            redis_port, workdir / "redis", workdir / "logs" / "redis.log"
        )
        console.print(f"stack in {workdir} (logs there) …")
        stack.start()
        console.print(f"training {cfg.models} models in-process …")
        models = train_models([cfg.seed + i for i in range(cfg.models)])
        client = redis.Redis.from_url(redis_url)
        registry = ModelRegistry(client, RedisArtifactStore(client, PREFIX), PREFIX)
        first = publish(registry, models[0])
        wait_served(stack, stage_urls, first)
        known = {first}
        console.print(f"version {first} served; load {cfg.rate:g} req/s for {duration:.1f} s …")

        probe.start()
        started = mp.get_context("spawn").Event()
        users = tuple(f"U{u}" for u in range(1, N_USERS + 1))
        load_cfg = LoadConfig(
            stack.gateway_url, cfg.rate, duration, cfg.timeout, cfg.seed, users, str(records_path)
        )
        load = start_load(load_cfg, started, "bench-swap-load")
        t0 = time.monotonic()
        pubs: list[tuple[int, int, float, float]] = []  # version, seed, published at, call s
        for i in range(cfg.versions):
            # Cycling from the second model on: neighbouring versions always differ in content.
            trained = models[(i + 1) % len(models)]
            # A fixed schedule, so a slow publish does not stretch the run.
            time.sleep(max(0.0, t0 + cfg.lead + i * cfg.interval - time.monotonic()))
            begin = time.monotonic()
            version = publish(registry, trained)
            end = time.monotonic()  # `current` moves at the very end of publish()
            known.add(version)
            pubs.append((version, trained.params.seed, end, end - begin))
            console.print(f"  published version {version}")
        records = finish_load(load_cfg, load)
        probe.stop()
        stack.check_alive()  # a service that died under the swaps is a finding, not a number
        meta = {**asdict(cfg), "out": str(cfg.out), "loadavg_before": loadavg_before}
        meta["loadavg_after"] = list(os.getloadavg())
        return analyse(records, pubs, probe, known, t0, meta)
    finally:
        if load is not None and load.is_alive():
            load.terminate()
            load.join(timeout=5)
        probe.stop()
        if client is not None:
            client.close()
        stack.stop()
        if redis_proc is not None and redis_proc.poll() is None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)


# ----------------------------------------------------------------------------- report


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_report(result: dict[str, Any]) -> None:
    req, swaps = result["requests"], result["swaps"]
    table = Table(title="requests")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name in ("total", "failed", "missing_or_unknown_version", "degraded"):
        table.add_row(name, _fmt(req[name]))
    table.add_row("monotonicity violations", _fmt(req["monotonicity_violations"]))
    table.add_row("achieved rate (req/s)", _fmt(req["achieved_rate"]))
    for q, v in req["latency_ms"].items():
        table.add_row(f"latency {q} (ms)", _fmt(v))
    table.add_row(
        "answers by version", ", ".join(f"{k}:{n}" for k, n in req["answers_by_version"].items())
    )
    if req["failed_by_reason"]:
        table.add_row("failures", str(req["failed_by_reason"]))
    for stage, stats in result["probe"]["healthz_ms"].items():
        table.add_row(
            f"{stage} /healthz p99 / max (ms)", f"{_fmt(stats['p99'])} / {_fmt(stats['max'])}"
        )
    console.print(table)

    table = Table(title="publish -> served (s)")
    for col in (
        "version",
        "published at",
        "served everywhere",
        "exact",
        "first answer",
        "all answers",
    ):
        table.add_column(col, justify="right")
    for s in swaps["per_version"]:
        table.add_row(
            str(s["version"]),
            _fmt(s["published_at_s"]),
            _fmt(s["served_everywhere_s"]),
            "yes" if s["served_exact"] else "no",
            _fmt(s["first_answer_s"]),
            _fmt(s["all_answers_s"]),
        )
    for key, label in (
        ("publish_to_served_s", "served everywhere"),
        ("publish_to_first_answer_s", "first answer"),
        ("publish_to_all_answers_s", "all answers"),
    ):
        stats = swaps[key]
        table.add_row(
            label,
            "",
            "p50 " + _fmt(stats["p50"]),
            "p95 " + _fmt(stats["p95"]),
            "max " + _fmt(stats["max"]),
            "",
        )
    console.print(table)

    table = Table(title="targets")
    for col in ("target", "value", "wanted", "met"):
        table.add_column(col)
    for t in [*result["targets"], *result["validity"]]:
        met = "[green]met[/]" if t["met"] else "[red]missed[/]"
        table.add_row(t["name"], _fmt(t["value"]), t["target"], met)
    console.print(table)
    verdict = "all targets met" if result["all_targets_met"] else "some targets missed"
    console.print(verdict)


@app.command()
def main(
    rate: Annotated[float | None, typer.Option(min=0.1, help="requests/s (default 100)")] = None,
    versions: Annotated[
        int | None, typer.Option(min=0, help="versions to publish (10); 0 = no-swap baseline")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(min=0.05, help="s between publishes (1.5)")
    ] = None,
    tail: Annotated[
        float | None, typer.Option(min=0, help="load after the last publish (4)")
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="per-request deadline, s")] = 2.0,
    seed: Annotated[int, typer.Option(help="seed of the first model; later ones +1 each")] = 42,
    models: Annotated[
        int | None,
        typer.Option(
            min=1, help="distinct models to train, cycled over the versions (versions+1; quick 2)"
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="JSON result")] = DEFAULT_OUT,
    quick: Annotated[bool, typer.Option(help="smoke test: 20 req/s, 3 versions, 2 models")] = False,
) -> None:
    """Publish model versions under steady load; report failures, mixed versions, swap delays."""
    defaults = (20.0, 3, 1.0, 2.0) if quick else (100.0, 10, 1.5, 4.0)
    n_versions = versions if versions is not None else int(defaults[1])
    # Training dominates the run time (seconds per model on an idle 2-core machine, a minute when
    # it is busy), so the smoke test trains two and alternates them.
    n_models = models if models is not None else (2 if quick else n_versions + 1)
    cfg = BenchConfig(
        rate=rate if rate is not None else defaults[0],
        versions=n_versions,
        interval=interval if interval is not None else defaults[2],
        tail=tail if tail is not None else defaults[3],
        lead=1.0,  # load before the first publish, so its first swap is under load too
        timeout=timeout,
        seed=seed,
        models=min(n_models, n_versions + 1),
        out=out,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    result = run(cfg)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print_report(result)
    console.print(f"wrote {out}")


if __name__ == "__main__":
    app()
