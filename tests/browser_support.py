"""Helpers for browser tests: serve the chat on a free 127.0.0.1 port, and launch Chromium.

All servers stop by themselves: at the end of the `with` block, and after a hard timeout even
if the test hangs (a watchdog thread for the in-process servers; coreutils `timeout` around the
subprocess, which also ends it if pytest itself is killed).
"""
from __future__ import annotations

import functools
import http.server
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts"
HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def _watchdog(timeout_s: float, stop) -> Iterator[None]:
    """Call `stop` if the block still runs after `timeout_s`: a hung test cannot keep a server up."""
    timer = threading.Timer(timeout_s, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@contextmanager
def serve_in_thread(page, settings, timeout_s: float = 300) -> Iterator[str]:
    """Launch a built Gradio page in this process on 127.0.0.1; yields its URL."""
    from app import launch_options

    port = free_port()
    options = {**launch_options(settings), "server_name": HOST, "server_port": port,
               "prevent_thread_lock": True, "quiet": True}
    page.launch(**options)
    try:
        with _watchdog(timeout_s, page.close):
            yield f"http://{HOST}:{port}/"
    finally:
        page.close()


@contextmanager
def serve_subprocess(app_args: list[str] = (), env: dict[str, str] | None = None,
                     timeout_s: float = 900, startup_timeout_s: float = 300,
                     log_name: str = "app") -> Iterator[str]:
    """Run `python app.py` on a free 127.0.0.1 port; yields its URL once the page answers."""
    port = free_port()
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    log_path = ARTIFACTS_DIR / f"{log_name}.log"
    command = [
        "timeout", "--kill-after=10", str(int(timeout_s)),
        sys.executable, str(PROJECT_DIR / "app.py"), "--host", HOST, "--port", str(port),
        *app_args,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env={**os.environ, **(env or {})},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://{HOST}:{port}/"
    try:
        _wait_until_up(url, process, startup_timeout_s, log_path)
        yield url
    finally:
        _stop(process)


def _wait_until_up(url: str, process: subprocess.Popen, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"app.py did not answer on {url} within {timeout_s:.0f} s; see {log_path}")


def _stop(process: subprocess.Popen) -> None:
    # The process group is the one started above (start_new_session): `timeout` and app.py.
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextmanager
def serve_asgi_in_thread(app, timeout_s: float = 300, startup_timeout_s: float = 60
                        ) -> Iterator[str]:
    """Run an ASGI app (the FastAPI server of app.build_server) with uvicorn in this process on
    127.0.0.1; yields its base URL (no trailing slash)."""
    import uvicorn

    port = free_port()
    # Open event streams of pages still connected must not hold up the end of a test.
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        with _watchdog(timeout_s, lambda: setattr(server, "should_exit", True)):
            deadline = time.monotonic() + startup_timeout_s
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start on port {port}")
                time.sleep(0.05)
            yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def serve_directory(directory: Path, replacements: dict[str, str] | None = None,
                    port: int | None = None, timeout_s: float = 300) -> Iterator[str]:
    """Serve a folder of static files on 127.0.0.1 (another origin than the app), with text
    replaced in its .html files (e.g. the app's URL); yields its base URL (no trailing slash)."""
    replacements = replacements or {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def send_head(self):
            path = Path(self.translate_path(self.path))
            if path.is_dir():
                path = path / "index.html"
            if path.suffix != ".html" or not path.is_file():
                return super().send_head()
            text = path.read_text(encoding="utf-8")
            for old, new in replacements.items():
                text = text.replace(old, new)
            body = text.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)

        def log_message(self, *args) -> None:  # quiet test output
            pass

    port = port or free_port()
    handler = functools.partial(Handler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer((HOST, port), handler)
    thread = threading.Thread(target=httpd.serve_forever, name=f"static-{port}", daemon=True)
    thread.start()
    try:
        with _watchdog(timeout_s, httpd.shutdown):
            yield f"http://{HOST}:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=15)


@contextmanager
def chromium_browser() -> Iterator:
    """Debian's Chromium, headless, with no background traffic of its own; closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def record_outside_requests(context, allowed_host: str = HOST) -> list[str]:
    """Block every request that would leave `allowed_host`, and list them (the page must work
    offline, so the list should stay empty)."""
    outside: list[str] = []

    def route(route_request):
        url = route_request.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:")) or host == allowed_host:
            route_request.continue_()
        else:
            outside.append(url)
            route_request.abort()

    context.route("**/*", route)
    return outside


# WCAG 2.0-2.2 A and AA, and axe's best practices (page-has-heading-one is one of them).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_script() -> str:
    """axe-core's browser script, from the axe-playwright-python package (a test requirement,
    which ships it): read from disk, never fetched. Skips the test when it is not installed."""
    import importlib.util

    import pytest

    spec = importlib.util.find_spec("axe_playwright_python")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("axe-core is not installed (pip install axe-playwright-python)")
    return (Path(spec.submodule_search_locations[0]) / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(frame, include: str | None = None) -> list[dict]:
    """axe-core's violations in one frame's document (or in the element `include` names, its
    shadow tree included), each with its id, impact, help and the offending nodes."""
    if not frame.evaluate("typeof window.axe !== 'undefined'"):
        frame.evaluate(axe_script())  # evaluated like a devtools snippet: no CSP applies
    return frame.evaluate("""async ([include, tags]) => {
      const result = await axe.run(include ? {include: [include]} : document,
                                   {runOnly: {type: 'tag', values: tags},
                                    resultTypes: ['violations'], iframes: false});
      return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map(n => ({target: n.target, summary: n.failureSummary}))}));
    }""", [include, AXE_TAGS])


# The example clinic's site (examples/clinic-site) and the address its pages name for our server.
CLINIC_SITE = Path(__file__).resolve().parent.parent / "examples" / "clinic-site"
SITE_APP_URL = "http://127.0.0.1:7860"  # what the example pages say; replaced by the test's URL


def clinic_settings(fake_settings, **web_fields):
    """The example site's own crampbot.json, with the test's changes (origins, limits)."""
    import json

    from bot.settings import WebSettings

    example = json.loads((CLINIC_SITE / "crampbot.json").read_text(encoding="utf-8"))["web"]
    return fake_settings.model_copy(update={"web": WebSettings(**{**example, **web_fields})})
