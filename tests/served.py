"""Helpers of the web tests: the real server (app.build_server under uvicorn, with
web/server.py's limits) in a thread on 127.0.0.1, for tests that need real sockets, and a bot
that writes down what reached it."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import uvicorn

from web.server import uvicorn_options

HOST = "127.0.0.1"


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def serve(asgi_app, web, startup_timeout_s: float = 60) -> Iterator[tuple[str, int]]:
    """Yields (base URL, port); the server stops when the block ends."""
    port = free_port()
    config = uvicorn.Config(asgi_app, host=HOST, port=port, log_level="warning",
                            **uvicorn_options(web))
    config.timeout_graceful_shutdown = 1
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {port}")
            time.sleep(0.05)
        yield f"http://{HOST}:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class RecordingBot:
    """Wraps the real CrampBot; every question and the history that reached it written down."""

    def __init__(self, bot) -> None:
        self.bot = bot
        self.asked: list[tuple[str, list[tuple[str, str]]]] = []

    def ask(self, question, history=(), lang=None):
        self.asked.append((question, list(history)))
        return self.bot.ask(question, history, lang)

    def stream(self, question, history=(), lang=None):
        self.asked.append((question, list(history)))
        return self.bot.stream(question, history, lang)

    def __getattr__(self, name):
        return getattr(self.bot, name)
