"""Helpers of the web tests: the real server (app.build_server under uvicorn, with
web/server.py's limits) in a thread on 127.0.0.1, for tests that need real sockets, a real
redis-server on 127.0.0.1 for web.state = "redis", and a bot that writes down what reached
it."""
from __future__ import annotations

import shutil
import socket
import subprocess
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


REDIS_SERVER = shutil.which("redis-server")  # Debian's package; scripts/run.sh installs it


@contextmanager
def redis_server(startup_timeout_s: float = 20) -> Iterator[str]:
    """A redis-server of its own on 127.0.0.1, nothing saved to disk; yields its URL and stops
    when the block ends."""
    import redis

    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + startup_timeout_s
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.1)
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


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
