"""Fixtures shared by the UI tests (AppTest runs the pages in this process)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from ui.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    # get_settings() is cached per process and AppTest runs the page in this process: without a
    # clear, the first test's UI_GATEWAY_URL would leak into the next ones.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def closed_port_url() -> str:
    # Bind to get a free port, then close it: nothing listens there, connects are refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
