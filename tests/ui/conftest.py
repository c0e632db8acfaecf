"""Fixtures shared by the UI tests (AppTest runs the pages in this process)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


@contextlib.contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A tiny HTTP server on a free port for banner states a real stack cannot easily show."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
