"""The traffic simulator's A/B against real processes (issue 25: "the simulator's A/B reaches the
right verdict"): a good and a deliberately weak version trained through POST /train, an
experiment with the weak one as control, simulated shoppers with hidden tastes until the report
names a winner; it must be the good version, within 3 minutes of traffic, and the report's
counts must be what the shoppers sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.simulator import (
    TrafficConfig,
    Versions,
    run_ab,
    simulator_client,
    train_versions,
)
from services.launcher.stack import Stack
from shared.training.params import TrainParams
from tests.conftest import SMALL_TRAIN, running_stack

pytestmark = pytest.mark.integration
DB = 9
TRAFFIC_SECONDS = 180.0


@pytest.fixture(scope="module")
def simstack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own (an experiment pins versions for every user), no model yet."""
    env = {"GATEWAY_EXPERIMENT_POLL_SECONDS": "0.5"}
    workdir = tmp_path_factory.mktemp("simstack")
    with running_stack(redis_url, DB, workdir, train=False, env=env) as s:
        yield s


async def _ab(url: str) -> tuple[Versions, dict[str, Any]]:
    params = TrainParams.model_validate(SMALL_TRAIN["params"])
    async with simulator_client(url) as client:
        versions = await train_versions(client, params)
        models = await client.models()
        assert models.current == versions.good  # trained last, on other data: promoted
        cfg = TrafficConfig(seconds=TRAFFIC_SECONDS, concurrency=8, seed=7, poll_seconds=1.0)
        return versions, await run_ab(client, versions, cfg, "simulated")


def test_the_simulated_ab_names_the_good_version(simstack: Stack) -> None:
    versions, result = asyncio.run(_ab(simstack.gateway_url))
    report = result["report"]
    arms = {a["name"]: a for a in report["arms"]}
    good, weak = arms["good"], arms["weak"]
    vs = good["vs_control"]
    print(
        f"\nversions: good {versions.good}, weak {versions.weak} (trained in "
        f"{versions.train_seconds} s); {result['lists']} lists in {result['seconds']} s "
        f"({result['lists_per_second']}/s), errors {result['errors']}"
    )
    for arm in (weak, good):
        print(
            f"  {arm['name']:>4} v{arm['version']}: {arm['lists']} lists, click rate "
            f"{arm['primary']:.4f} ({arm['lists_clicked']} lists clicked, {arm['clicks']} "
            f"clicks), {arm['purchases']} purchases, revenue {arm['revenue']:.2f}, "
            f"degraded {arm['degraded']}, p99 {arm['p99_ms']:.1f} ms"
        )
    print(
        f"  good - weak: {vs['estimate']:+.4f} [{vs['low']:+.4f}, {vs['high']:+.4f}]; "
        f"verdict {report['verdict']!r} after {result['verdict_after_seconds']} s "
        f"(lists then {result['lists_at_verdict']})"
    )
    assert result["errors"] == {}
    assert (good["version"], weak["version"]) == (versions.good, versions.weak)
    # the right verdict, with the test's own confidence, in bounded time
    assert report["winner"] == "good", report["verdict"]
    assert report["verdict"] == "good beats control weak on click_rate"
    assert vs["low"] > 0 and good["primary"] > weak["primary"]
    assert result["verdict_after_seconds"] is not None
    assert result["verdict_after_seconds"] <= TRAFFIC_SECONDS
    # run_ab stops it after the verdict (no guardrail stopped it before)
    assert result["ended"] == {"status": "stopped", "reason": "the simulation ended"}
    # what the gateway counted is what the shoppers sent, per arm, exactly
    sent = {arm.split("/")[1]: t for arm, t in result["sent"].items() if arm != "-"}
    assert set(sent) == {"good", "weak"}
    for name, arm in arms.items():
        s = sent[name]
        assert (arm["lists"], arm["items_shown"], arm["degraded"]) == (
            s["lists"], s["items"], s["degraded"])  # fmt: skip
        assert (arm["clicks"], arm["lists_clicked"], arm["purchases"]) == (
            s["clicks"], s["lists_clicked"], s["purchases"])  # fmt: skip
        assert arm["revenue"] == pytest.approx(s["revenue"])
        assert s["misattributed"] == 0  # every event found its list by its request id
