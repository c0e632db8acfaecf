"""Waiting for the services to serve a given model version after the registry moved."""

from __future__ import annotations

import time

from ui.client import GatewayClient, GatewayError
from ui.settings import UISettings

# Services pick a new current version up on their own schedule (pub/sub, or a periodic check);
# wait this long so the page rerenders with the new version rather than the old one.
LOAD_WAIT_SECONDS = 30.0


def wait_until_served(
    client: GatewayClient, settings: UISettings, user: str, version: int
) -> int | None:
    """Poll until the gateway answers `user` with `version`; returns the version last seen.

    None means the gateway did not say (no header, or an error the page will explain itself).
    """
    deadline = time.monotonic() + LOAD_WAIT_SECONDS
    served: int | None = None
    while True:
        try:
            served, _ = client.recommend(user, 1)
        except GatewayError:
            return None
        if served is None or served == version or time.monotonic() >= deadline:
            return served
        time.sleep(settings.poll_seconds)
