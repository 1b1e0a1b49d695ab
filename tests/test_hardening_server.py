"""Issue 15, finding 4: slow, idle and flooding clients against the real server (app.build_server
under uvicorn with web/server.py's options) on 127.0.0.1, short limits so each test takes
seconds. Every socket has its own timeout; the server stops at the end of the module."""
from __future__ import annotations

import socket
import time
from contextlib import closing

import httpx
import pytest

import app
from bot.generation.fake import FakeGenerator
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.feedback import FeedbackStore

from served import HOST, serve  # noqa: E402  (tests/served.py)
LIMITS = {"header_timeout_s": 1.0, "keep_alive_timeout_s": 1, "body_timeout_s": 1.5,
          "max_connections": 6, "max_header_bytes": 4096}


@pytest.fixture(scope="module")
def server_url(fake_settings, shared_retriever, tmp_path_factory):
    bot = CrampBot(fake_settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    web = WebSettings(**LIMITS)
    settings = fake_settings.model_copy(update={"web": web})
    feedback = FeedbackStore(tmp_path_factory.mktemp("fb") / "feedback.jsonl")
    with serve(app.build_server(bot, settings, feedback=feedback), web) as served:
        yield served


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.settimeout(10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closes `sock` (reads and drops what it sends first)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - started
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    raise AssertionError(f"still open after {seconds} s")


def test_an_idle_new_connection_is_closed(server_url):
    _, port = server_url
    with closing(connect(port)) as sock:
        assert closed_within(sock, 6) < 4


def test_headers_that_trickle_in_are_cut_off(server_url):
    _, port = server_url
    with closing(connect(port)) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
        started = time.monotonic()
        try:
            for _ in range(20):  # one header byte every 0.3 s would take 6 s
                sock.sendall(b"X")
                time.sleep(0.3)
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed_within(sock, 6)
        assert time.monotonic() - started < 4


def test_a_slow_body_gets_408(server_url):
    _, port = server_url
    with closing(connect(port)) as sock:
        sock.sendall(b"POST /api/v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"quest")
        started = time.monotonic()
        reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
        assert time.monotonic() - started < 4


def test_an_idle_keep_alive_connection_is_closed(server_url):
    _, port = server_url
    with closing(connect(port)) as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_within(sock, 6) < 4


def test_oversized_headers_are_refused(server_url):
    url, _ = server_url
    reply = httpx.get(f"{url}/api/v1/health", headers={"X-Filler": "a" * 8000}, timeout=10,
                      trust_env=False)
    assert reply.status_code == 431


def test_connections_past_the_limit_get_503_and_health_recovers(server_url):
    url, port = server_url
    idle = [connect(port) for _ in range(LIMITS["max_connections"])]
    try:
        time.sleep(0.2)
        reply = httpx.get(f"{url}/api/v1/health", timeout=10, trust_env=False)
        assert reply.status_code == 503
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{url}/api/v1/health", timeout=10, trust_env=False).status_code == 200


def test_the_loopback_host_is_allowed_by_default_and_others_are_not(server_url):
    url, port = server_url
    assert httpx.get(f"{url}/api/v1/ready", timeout=10, trust_env=False).status_code == 200
    evil = httpx.get(f"{url}/api/v1/health", headers={"Host": "evil.example"}, timeout=10,
                     trust_env=False)
    assert evil.status_code == 400
    for path in ("/logout", "/widget/logout"):
        reply = httpx.get(f"{url}{path}", headers={"Host": f"127.0.0.1:{port}"}, timeout=10,
                          trust_env=False, follow_redirects=False)
        assert reply.status_code == 404 and "location" not in reply.headers


def test_a_flood_of_the_same_error_is_logged_a_few_times_a_minute():
    import logging

    from web.server import RepeatedRecords

    now = [0.0]
    guard = RepeatedRecords(per_minute=3, clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, message, (), None)

    passed = [guard.filter(record("Invalid HTTP request received.")) for _ in range(1000)]
    assert sum(passed) == 3
    assert guard.filter(record("another message"))
    now[0] += 61
    note = record("Invalid HTTP request received.")
    assert guard.filter(note) and "997 more" in note.msg
