"""StackSettings for tests and benchmarks: every process of a stack on a port of its own."""

from __future__ import annotations

from services.launcher.stack import StackSettings


def test_a_stack_on_free_ports_gets_distinct_ports() -> None:
    settings = StackSettings.on_free_ports(redis=True, ui=True)
    used = [settings.gateway_port, settings.candidate_port, settings.ranker_port]
    used += [settings.redis_port, settings.ui_port]
    assert len(set(used)) == 5 and 0 not in used
    bare = StackSettings.on_free_ports()
    assert (bare.redis_port, bare.ui_port) == (0, 0)  # none of their own
    assert len({bare.gateway_port, bare.candidate_port, bare.ranker_port}) == 3
