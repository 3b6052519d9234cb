"""Proxy test fixtures: the app served by uvicorn on 127.0.0.1, in a thread, per test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from guardrail.adapters.proxy import ProxySettings, create_app

from guardrail import Guard
from tests.fake_upstream import FakeUpstream


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free 127.0.0.1 port; yields ``http://127.0.0.1:PORT``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the proxy did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


ProxyFactory = Callable[..., str]


@pytest.fixture
def make_proxy(fake_upstream: FakeUpstream, fake_guard: Guard) -> Iterator[ProxyFactory]:
    """Start a proxy in front of the fake upstream; returns its base URL (``.../v1``).

    ``make_proxy(guard=..., guards=..., **settings)``; by default the guard is ``fake_guard``
    (the `basic` fixture policy with the fake classifier).
    """
    with ExitStack() as stack:

        def factory(
            *, guard: Guard | None = None, guards: dict[str, Guard] | None = None, **options: Any
        ) -> str:
            options.setdefault("upstream_url", fake_upstream.base_url)
            settings = ProxySettings(**options)
            app = create_app(settings, guard=guard or fake_guard, guards=guards)
            return stack.enter_context(serve(app)) + "/v1"

        yield factory


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
