"""`make bench-ab`: simulated shoppers with hidden tastes drive an A/B test through the HTTP API.

The shoppers are the synthetic data's users, and they choose by what the generator drew their
history from (`shared/datasets/tastes.py` `HiddenTastes`: category tastes, popularity, price
fit by age), which no model sees. Each visit asks `GET /recommend` for one of them, and the user
reacts to the list by a position-based click model (`ClickModel`): place p is looked at with
probability attention / p^decay, a product looked at is clicked with its attraction (a
saturating function of how likely the user's own next choice is that product), and a click is
a purchase with probability buy_given_click x attraction. Clicks and purchases go to `POST
/events` with the answer's request id and the place; purchases carry the answer's price.

An A/B (`run_ab`): two versions trained through `POST /train` on the same synthetic data, a good
one (the normal recipe) and a deliberately weak one (`shuffle_links_seed`: products permuted
among the training rows, so it knows popularity and nothing about the users, not even what each
one already took); an experiment with the weak version as control and the good one as
treatment; traffic until the report names a winner or the time is up; the report, the counts
the simulator sent beside the gateway's, and how long the verdict took.

    .venv/bin/python -m benchmarks.simulator [--gateway URL] [--users N] [--seconds S]
        [--concurrency 8] [--good V --weak V] [--aa] [--attention 0.8] [--half-preference 2]
        [--repeat-interest 0.1] [--out var/bench/simulator.json]

Without --gateway it starts its own stack (Redis, worker, candidate, ranker, gateway) on free
ports; without --good/--weak it trains both versions first. --aa serves the good version in
both arms: there the right verdict is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson
import typer
from rich.console import Console
from rich.table import Table

from shared.client import AsyncRecsysClient, RecsysError
from shared.datasets.base import Dataset
from shared.datasets.synthetic import generate_with_tastes
from shared.datasets.tastes import HiddenTastes
from shared.schemas.experiments import (
    ArmIn,
    ExperimentIn,
    ExperimentReport,
    Guardrails,
    StopRequest,
)
from shared.schemas.serving import EventIn
from shared.schemas.training import TrainRequest
from shared.training.params import TrainParams

Floats = npt.NDArray[np.float64]
DEFAULT_OUT = Path("var/bench/simulator.json")
# The data both versions train on: the tests' small synthetic shop (seconds to train), with the
# recipe fixed (no search) so the good version is the same every run.
N_USERS, N_PRODUCTS, N_DAYS = 300, 150, 90
WEAK_SEED = 1  # shuffle_links_seed of the weak version

console = Console(width=None if sys.stdout.isatty() else 140)

# ----------------------------------------------------------------------------- the pure core


@dataclass(frozen=True)
class ClickModel:
    """A position-based click model (Craswell et al. 2008; Joachims et al. 2017): whether a
    place is looked at depends on the place only, whether what is there is clicked on the user
    and the product only."""

    attention: float = 0.8  # P(the first place is looked at)
    position_decay: float = 1.0  # place p is looked at with attention / p ** position_decay
    # Attraction = r / (r + half_preference), r = the product's share of the user's next choice
    # relative to a uniform one (r = 1: as likely as an average product; 0: never chosen).
    half_preference: float = 2.0
    # A product the user already took attracts this fraction as much: the generator re-buys in
    # 4 % of steps and draws again when a fresh choice hits something already bought.
    repeat_interest: float = 0.1
    buy_given_click: float = 0.5  # P(purchase | click) = buy_given_click x attraction

    def examination(self, n: int) -> Floats:
        """P(place 1..n is looked at)."""
        places = np.arange(1, n + 1, dtype=np.float64)
        out: Floats = self.attention / places**self.position_decay
        return out

    def attraction(self, relative_preference: Floats, taken: npt.NDArray[np.bool_]) -> Floats:
        r = relative_preference
        out: Floats = r / (r + self.half_preference) * np.where(taken, self.repeat_interest, 1.0)
        return out


@dataclass(frozen=True)
class Reaction:
    """What a shopper did with one list: 1-based places clicked, and of those, bought."""

    clicks: list[int]
    purchases: list[int]


class Shoppers:
    """The simulated users: the generator's tastes, what each one took (the training data, then
    what they buy here), and the click model they react by."""

    def __init__(self, tastes: HiddenTastes, data: Dataset, model: ClickModel) -> None:
        self.tastes, self.model = tastes, model
        self._user = tastes.user_index()
        self._product = tastes.product_index()
        self._drawn = int((~tastes.new).sum())
        self.taken: dict[str, set[str]] = {}
        for user, product in zip(
            data.interactions["user_id"], data.interactions["product_id"], strict=True
        ):
            self.taken.setdefault(str(user), set()).add(str(product))

    @property
    def users(self) -> tuple[str, ...]:
        return self.tastes.user_ids

    def probabilities(self, user: str, products: Sequence[str]) -> tuple[Floats, Floats]:
        """(P(click), P(purchase | click)) of each place of a list shown to `user`. Products the
        generator does not know (added to the live catalog since) attract nobody."""
        known = np.array([p in self._product for p in products], dtype=bool)
        idx = np.array([self._product.get(p, 0) for p in products], dtype=np.int64)
        u = np.full(len(products), self._user[user], dtype=np.int64)
        r = np.where(known, self._drawn * self.tastes.choice_probability(u, idx), 0.0)
        taken = np.array([p in self.taken.get(user, ()) for p in products], dtype=bool)
        attraction = self.model.attraction(r, taken)
        click: Floats = self.model.examination(len(products)) * attraction
        buy: Floats = self.model.buy_given_click * attraction
        return click, buy

    def react(self, user: str, products: Sequence[str], rng: np.random.Generator) -> Reaction:
        """Draw the user's clicks and purchases on the list (two uniforms per place, in order)."""
        click, buy = self.probabilities(user, products)
        draws = rng.random((len(products), 2))
        clicked = draws[:, 0] < click
        bought = clicked & (draws[:, 1] < buy)
        return Reaction(
            clicks=[int(i) + 1 for i in np.flatnonzero(clicked)],
            purchases=[int(i) + 1 for i in np.flatnonzero(bought)],
        )

    def bought(self, user: str, product: str) -> None:
        self.taken.setdefault(user, set()).add(product)


# ----------------------------------------------------------------------------- the driver

# The typed client has no argument for a request's own X-Request-ID: the simulator's httpx
# client adds it from this variable (each asyncio task sees its own value).
_REQUEST_ID: ContextVar[str | None] = ContextVar("simulated_request_id", default=None)


async def _with_request_id(request: httpx.Request) -> None:
    rid = _REQUEST_ID.get()
    if rid is not None and request.url.path.endswith("/recommend"):
        request.headers["X-Request-ID"] = rid


@contextlib.asynccontextmanager
async def simulator_client(
    base_url: str, api_key: str | None = None, timeout: float = 30.0
) -> AsyncIterator[AsyncRecsysClient]:
    """The typed async client on an httpx client that sends the simulator's request ids."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with (
        httpx.AsyncClient(event_hooks={"request": [_with_request_id]}, limits=limits) as http,
        AsyncRecsysClient(base_url, api_key=api_key, timeout=timeout, http=http) as client,
    ):
        yield client


@dataclass
class Tally:
    """What the simulator sent under one arm ("<experiment>/<arm>", or "-" outside any)."""

    lists: int = 0
    items: int = 0
    degraded: int = 0
    clicks: int = 0
    lists_clicked: int = 0
    purchases: int = 0
    revenue: float = 0.0
    misattributed: int = 0  # events the gateway did not attribute by their request id


@dataclass
class Traffic:
    tallies: dict[str, Tally] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    timeline: list[dict[str, Any]] = field(default_factory=list)  # the watcher's reads
    report: ExperimentReport | None = None  # the experiment's report after the last visit

    @property
    def lists(self) -> int:
        return sum(t.lists for t in self.tallies.values())


@dataclass(frozen=True)
class TrafficConfig:
    seconds: float = 180.0  # at most this long
    concurrency: int = 8  # shoppers visiting at once (each its own share of the users)
    k: int = 10
    seed: int = 7
    experiment: str | None = None  # watched: the traffic stops once its report names a winner
    poll_seconds: float = 2.0


async def drive(
    client: AsyncRecsysClient,
    shoppers: Shoppers,
    cfg: TrafficConfig,
    traffic: Traffic | None = None,
) -> Traffic:
    """Visits until `cfg.seconds` pass or the watched experiment has a winner or ended; counted
    into `traffic` (a new one by default)."""
    traffic, done = traffic or Traffic(), asyncio.Event()
    run = secrets.token_hex(3)
    start = time.monotonic()

    workers = min(cfg.concurrency, len(shoppers.users))

    async def visitor(w: int) -> None:
        rng = np.random.default_rng([cfg.seed, w])
        mine = shoppers.users[w::workers]
        n = 0
        while not done.is_set() and time.monotonic() - start < cfg.seconds:
            user = mine[int(rng.integers(len(mine)))]
            rid, n = f"sim-{run}-{w}-{n}", n + 1
            try:
                await _visit(client, shoppers, traffic, user, rid, cfg.k, rng)
            except RecsysError as exc:
                kind = type(exc).__name__
                traffic.errors[kind] = traffic.errors.get(kind, 0) + 1

    async def watcher(name: str) -> None:
        while not done.is_set():
            await asyncio.sleep(cfg.poll_seconds)
            try:
                report = await client.experiment(name)
            except RecsysError as exc:  # counted like a visit's; the next poll may answer
                kind = f"report: {type(exc).__name__}"
                traffic.errors[kind] = traffic.errors.get(kind, 0) + 1
                continue
            traffic.timeline.append(_moment(report, time.monotonic() - start))
            if report.winner is not None or report.experiment.status != "running":
                done.set()

    tasks = [asyncio.create_task(visitor(w)) for w in range(workers)]
    watch = asyncio.create_task(watcher(cfg.experiment)) if cfg.experiment else None
    try:
        await asyncio.gather(*tasks)
    finally:
        done.set()
        for t in [*tasks, *([watch] if watch else [])]:
            t.cancel()
        await asyncio.gather(*tasks, *([watch] if watch else []), return_exceptions=True)
    traffic.seconds = time.monotonic() - start
    if cfg.experiment:
        traffic.report = await client.experiment(cfg.experiment)
        traffic.timeline.append(_moment(traffic.report, traffic.seconds))
    return traffic


async def _visit(
    client: AsyncRecsysClient,
    shoppers: Shoppers,
    traffic: Traffic,
    user: str,
    rid: str,
    k: int,
    rng: np.random.Generator,
) -> str | None:
    """One visit: the list, the user's reaction sent as events. The arm that answered."""
    _REQUEST_ID.set(rid)
    answer = await client.recommend(user, k)
    _REQUEST_ID.set(None)
    tally = traffic.tallies.setdefault(answer.arm or "-", Tally())
    products = [item.product for item in answer.items]
    tally.lists += 1
    tally.items += len(products)
    tally.degraded += answer.degraded is not None
    reaction = shoppers.react(user, products, rng)
    for place in reaction.clicks:
        event = EventIn(user=user, product=products[place - 1], type="click", request_id=rid,
                        position=place)  # fmt: skip
        got = await client.send_event(event)
        tally.clicks += 1
        tally.misattributed += got.attribution is None or got.attribution.how != "request_id"
    tally.lists_clicked += bool(reaction.clicks)
    for place in reaction.purchases:
        item = answer.items[place - 1]
        event = EventIn(user=user, product=item.product, type="purchase", request_id=rid,
                        position=place, price=item.price)  # fmt: skip
        got = await client.send_event(event)
        shoppers.bought(user, item.product)
        tally.purchases += 1
        tally.revenue += item.price or 0.0
        tally.misattributed += got.attribution is None or got.attribution.how != "request_id"
    return answer.arm


def _moment(report: ExperimentReport, seconds: float) -> dict[str, Any]:
    treated = report.arms[-1].vs_control
    return {
        "seconds": round(seconds, 2),
        "lists": {a.name: a.lists for a in report.arms},
        "primary": {a.name: a.primary for a in report.arms},
        "vs_control": None if treated is None else treated.model_dump(),
        "verdict": report.verdict,
        "winner": report.winner,
        "status": report.experiment.status,
    }


# ----------------------------------------------------------------------------- the A/B


@dataclass(frozen=True)
class Versions:
    good: int
    weak: int
    train_seconds: dict[str, float]


async def train_versions(
    client: AsyncRecsysClient, params: TrainParams, weak_seed: int = WEAK_SEED
) -> Versions:
    """The weak version (`params` with `shuffle_links_seed`), then the good one (`params`),
    through `POST /train`; the good one is trained last, so it becomes current."""
    weak = params.model_copy(update={"shuffle_links_seed": weak_seed})
    got: dict[str, int] = {}
    took: dict[str, float] = {}
    for name, p in (("weak", weak), ("good", params)):
        t = time.monotonic()
        job = await client.train(TrainRequest(dataset="synthetic", params=p))
        while (status := await client.train_status(job.job_id)).state not in ("SUCCESS", "FAILURE"):
            await asyncio.sleep(0.5)
        if status.state != "SUCCESS" or status.model_version is None:
            raise RuntimeError(f"training the {name} version failed: {status.error}")
        got[name], took[name] = status.model_version, round(time.monotonic() - t, 1)
    return Versions(good=got["good"], weak=got["weak"], train_seconds=took)


async def shoppers_for(
    client: AsyncRecsysClient, versions: Sequence[int], model: ClickModel
) -> Shoppers:
    """The shoppers of the synthetic data `versions` were trained on (all on the same, read
    from their manifests), reacting by `model`."""
    made: set[tuple[int, ...]] = set()
    for v in versions:
        detail = await client.model(v)
        request = detail.params
        if request.get("dataset") != "synthetic":
            raise ValueError(f"version {v} was not trained on synthetic data: no hidden tastes")
        p = TrainParams.model_validate(request["params"])
        made.add((p.n_users, p.n_products, p.n_days, p.seed, p.n_new_products))
    if len(made) != 1:
        raise ValueError(f"versions {list(versions)} were trained on different synthetic data")
    n_users, n_products, n_days, seed, n_new = made.pop()
    data, tastes = generate_with_tastes(n_users, n_products, n_days, seed, n_new)
    return Shoppers(tastes, data, model)


async def run_ab(
    client: AsyncRecsysClient,
    versions: Versions,
    cfg: TrafficConfig,
    name: str,
    model: ClickModel | None = None,
    guardrails: Guardrails | None = None,
) -> dict[str, Any]:
    """An experiment `name` (control: the weak version, treatment: the good one, half each),
    simulated traffic until its report names a winner or `cfg.seconds` pass, then stopped."""
    model = model or ClickModel()
    shoppers = await shoppers_for(client, [versions.weak, versions.good], model)
    arms = [ArmIn(name="weak", version=versions.weak, share=0.5),
            ArmIn(name="good", version=versions.good, share=0.5)]  # fmt: skip
    asked = ExperimentIn(name=name, arms=arms, guardrails=guardrails or Guardrails())
    await client.create_experiment(asked)
    try:
        traffic = await _until_arms_served(client, shoppers, name, cfg)
        watched = TrafficConfig(**{**asdict(cfg), "experiment": name})
        traffic = await drive(client, shoppers, watched, traffic)
    finally:
        with contextlib.suppress(RecsysError):
            await client.stop_experiment(name, StopRequest(reason="the simulation ended"))
    result = summary(traffic, versions, cfg, model, len(shoppers.users))
    ended = (await client.experiment(name)).experiment
    result["ended"] = {"status": ended.status, "reason": ended.reason}
    return result


async def _until_arms_served(
    client: AsyncRecsysClient, shoppers: Shoppers, name: str, cfg: TrafficConfig
) -> Traffic:
    """Gateways read the running experiment every GATEWAY_EXPERIMENT_POLL_SECONDS: visits of
    one shopper until an answer carries its arm (counted like every other visit)."""
    traffic, rng = Traffic(), np.random.default_rng([cfg.seed, cfg.concurrency])  # no visitor's
    deadline = time.monotonic() + 30
    n = 0
    while time.monotonic() < deadline:
        rid, n = f"sim-probe-{secrets.token_hex(3)}-{n}", n + 1
        arm = await _visit(client, shoppers, traffic, shoppers.users[0], rid, cfg.k, rng)
        if arm is not None and arm.startswith(f"{name}/"):
            return traffic
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no answer carried experiment {name!r} within 30 s")


def summary(
    traffic: Traffic, versions: Versions, cfg: TrafficConfig, model: ClickModel, users: int
) -> dict[str, Any]:
    """The run as JSON: what was sent per arm, the gateway's report, when the verdict came."""
    report = traffic.report
    first = next((m for m in traffic.timeline if m["winner"] is not None), None)
    return {
        "config": {**asdict(cfg), "users": users, "click_model": asdict(model)},
        "versions": asdict(versions),
        "seconds": round(traffic.seconds, 2),
        "lists": traffic.lists,
        "lists_per_second": round(traffic.lists / traffic.seconds, 1) if traffic.seconds else None,
        "errors": traffic.errors,
        "sent": {arm: asdict(t) for arm, t in sorted(traffic.tallies.items())},
        "report": None if report is None else report.model_dump(mode="json"),
        "verdict": None if report is None else report.verdict,
        "winner": None if report is None else report.winner,
        # an A/A (both arms one version) is right while it names no winner
        "right_verdict": report is not None
        and report.winner == ("good" if versions.good != versions.weak else None),
        "verdict_after_seconds": None if first is None else first["seconds"],
        "lists_at_verdict": None if first is None else first["lists"],
        "timeline": traffic.timeline,
        "loadavg_after": list(os.getloadavg()),
    }


def show(result: dict[str, Any]) -> None:
    v = result["versions"]
    title = (
        f"simulated A/B: control weak (v{v['weak']}, popularity only) vs treatment good "
        f"(v{v['good']})"
        if v["good"] != v["weak"]
        else f"simulated A/A: version {v['good']} in both arms (named weak and good)"
    )
    table = Table(title=title)
    columns = ("arm", "version", "lists", "clicks", "lists clicked", "click rate", "purchases",
               "revenue", "degraded", "p99 ms", "vs control", "interval")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="right")
    report = result["report"] or {"arms": []}
    for arm in report["arms"]:
        vs = arm["vs_control"]
        diff = "-" if vs is None else f"{vs['estimate']:+.4f}"
        interval = "-" if vs is None else f"{vs['low']:+.3f}..{vs['high']:+.3f}"
        table.add_row(
            arm["name"], str(arm["version"]), str(arm["lists"]), str(arm["clicks"]),
            str(arm["lists_clicked"]), _f(arm["primary"]), str(arm["purchases"]),
            f"{arm['revenue']:.2f}", str(arm["degraded"]), _f(arm["p99_ms"], 1), diff, interval,
        )  # fmt: skip
    console.print(table)
    console.print(
        f"verdict: {result['verdict']} (winner: {result['winner']}; right: "
        f"{result['right_verdict']}) after {result['verdict_after_seconds']} s of traffic, "
        f"lists then {result['lists_at_verdict']}; {result['lists']} lists in "
        f"{result['seconds']} s ({result['lists_per_second']}/s), errors {result['errors'] or 0}"
    )


def _f(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


# ----------------------------------------------------------------------------- the CLI


@contextlib.contextmanager
def own_stack(workdir: Path) -> Iterator[str]:
    """Redis, worker, candidate, ranker and gateway on free ports (no UI, no beat): its URL."""
    from services.launcher.stack import Stack, StackSettings

    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "logs").mkdir(parents=True)
    os.environ.pop("RECSYS_REDIS_URL", None)  # the stack starts its own Redis then
    settings = StackSettings.on_free_ports(redis=True)
    env = {"RECSYS_MODEL_CHECK_SECONDS": "1", "GATEWAY_ADMIN_API_KEY": ""}
    stack = Stack(settings, workdir, with_ui=False, with_beat=False, extra_env=env)
    try:
        stack.start()
        yield stack.gateway_url
    finally:
        stack.stop()


app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0] if __doc__ else None)


@app.command()
def main(
    gateway: Annotated[
        str | None, typer.Option(help="a running gateway; default: own stack")
    ] = None,
    users: Annotated[int, typer.Option(min=10, max=200_000, help="synthetic users")] = N_USERS,
    seconds: Annotated[float, typer.Option(min=1, help="traffic at most this long")] = 180.0,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="visits at once")] = 8,
    k: Annotated[int, typer.Option(min=1, max=100, help="items per list")] = 10,
    seed: Annotated[int, typer.Option(help="the shoppers' random numbers")] = 7,
    good: Annotated[int | None, typer.Option(help="the good version (default: train it)")] = None,
    weak: Annotated[int | None, typer.Option(help="the weak version (default: train it)")] = None,
    name: Annotated[str, typer.Option(help="experiment name (+ a random suffix)")] = "sim",
    attention: Annotated[
        float, typer.Option(min=0.01, max=1, help="P(place 1 is looked at)")
    ] = ClickModel.attention,
    half_preference: Annotated[
        float, typer.Option(min=0.01, help="relative preference clicked half the time it is seen")
    ] = ClickModel.half_preference,
    repeat_interest: Annotated[
        float, typer.Option(min=0, max=1, help="attraction left to a product already taken")
    ] = ClickModel.repeat_interest,
    api_key: Annotated[str | None, typer.Option(envvar="GATEWAY_ADMIN_API_KEY")] = None,
    aa: Annotated[
        bool, typer.Option(help="A/A: the good version in both arms (a winner would be false)")
    ] = False,
    out: Annotated[Path, typer.Option(help="JSON result")] = DEFAULT_OUT,
) -> None:
    """Train a good and a weak version (unless given), run an A/B between them with simulated
    shoppers until a verdict, print the table and write the JSON."""
    if (good is None) != (weak is None):
        raise typer.BadParameter("give both --good and --weak, or neither")
    cfg = TrafficConfig(seconds=seconds, concurrency=concurrency, k=k, seed=seed)
    params = TrainParams(n_users=users, n_products=N_PRODUCTS, n_days=N_DAYS, tune_budget_seconds=0)
    with contextlib.ExitStack() as stack:
        url = gateway or stack.enter_context(own_stack(out.parent / "simulator_work"))
        model = ClickModel(attention, half_preference=half_preference,
                           repeat_interest=repeat_interest)  # fmt: skip
        result = asyncio.run(
            _main(url, api_key or None, params, (good, weak), cfg, name, model, aa)
        )
    show(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    console.print(f"wrote {out}")


async def _main(
    url: str,
    api_key: str | None,
    params: TrainParams,
    given: tuple[int | None, int | None],
    cfg: TrafficConfig,
    name: str,
    model: ClickModel,
    aa: bool,
) -> dict[str, Any]:
    good, weak = given
    async with simulator_client(url, api_key) as client:
        if good is None or weak is None:
            console.print(f"training the weak and the good version on {params.n_users} users …")
            versions = await train_versions(client, params)
            console.print(f"  {versions}")
        else:
            versions = Versions(good=good, weak=weak, train_seconds={})
        if aa:
            versions = Versions(versions.good, versions.good, versions.train_seconds)
        return await run_ab(client, versions, cfg, f"{name}-{secrets.token_hex(3)}", model)


if __name__ == "__main__":
    app()
