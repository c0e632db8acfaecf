"""What the Experiments page's parts share: metric titles, the arm names it proposes, the
session keys one part sets for another, and how numbers, times and refusals read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

from shared.schemas.experiments import Guardrails, PrimaryMetric
from ui.client import GatewayError

CONTROL_ARM = "control"
METRICS: list[PrimaryMetric] = list(get_args(PrimaryMetric))
METRIC_TITLES: dict[str, str] = {
    "click_rate": "click rate",
    "add_to_cart_rate": "add-to-cart rate",
    "conversion_rate": "conversion rate",
    "ctr": "CTR",
}
METRIC_HELP: dict[str, str] = {
    "click_rate": "share of the served lists with at least one click",
    "add_to_cart_rate": "share of the served lists with at least one add-to-cart",
    "conversion_rate": "share of the served lists with at least one purchase",
    "ctr": "clicks per item shown",
}
FOCUS_KEY = "exp_focus"  # the experiment the report opens on at the next run
OUTCOME_KEY = "exp_outcome"


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction * 100, 6)


def fraction(percent: float | None) -> float | None:
    return None if percent is None else round(percent / 100, 8)


def guardrails_text(g: Guardrails) -> str:
    parts = []
    if g.max_degraded_rate is not None:
        parts.append(f"degraded ≤ {g.max_degraded_rate:.1%}")
    if g.max_p99_ms is not None:
        parts.append(f"p99 ≤ {g.max_p99_ms:g} ms")
    if g.max_primary_drop is not None:
        parts.append(f"primary drop ≤ {g.max_primary_drop:.0%}")
    judged = f"judged after {g.min_lists} lists per arm"
    return ", ".join(parts) + f" ({judged})" if parts else f"none ({judged})"


def http_error(err: GatewayError) -> str:
    return f"HTTP {err.status_code}: {err.detail}"


def refusal(err: GatewayError) -> str:
    """The gateway's answer as a sentence; a missing or wrong admin key says what to do."""
    if err.status_code in (401, 403):
        return (
            f"{http_error(err)}. This needs the gateway's admin key: set UI_ADMIN_API_KEY (or "
            "RECSYS_ADMIN_API_KEY) where the UI runs to the gateway's GATEWAY_ADMIN_API_KEY."
        )
    return http_error(err)
