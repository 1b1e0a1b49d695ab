"""The web app (`app.py`) as a separate process on 127.0.0.1, for the end-to-end and load benchmarks.

A separate process, not a thread of the benchmark: cold start includes interpreter start and
imports, and the load generator's own threads must not share the server's interpreter lock.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bot.settings import PROJECT_DIR

API = "/api/v1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AppProcess:
    """`python app.py --preset P --config C --port N`, its timestamps and its log."""

    preset: str
    config: dict
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    log_path: Path | None = None
    _scratch: tempfile.TemporaryDirectory | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="crampbot-bench-")
        scratch = Path(self._scratch.name)
        config_path = scratch / "config.json"
        config_path.write_text(json.dumps(self.config), encoding="utf-8")
        self.log_path = scratch / "app.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRAMPBOT_")}
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
        command = [sys.executable, str(PROJECT_DIR / "app.py"), "--preset", self.preset,
                   "--config", str(config_path), "--host", "127.0.0.1", "--port", str(self.port)]
        self.started_at = time.perf_counter()
        # The log goes to a file: a pipe nobody reads would fill and block the server.
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def since_start(self) -> float:
        return time.perf_counter() - self.started_at

    def wait_until(self, model_ready: bool, timeout_s: float, warmed: bool = False) -> float:
        """Seconds from process start until /health answers (and reports the model loaded;
        with `warmed`, until /ready says the warm-up question has been answered too)."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"app.py exited with {self.process.returncode}: {self.log_tail()}")
                try:
                    health = client.get(f"{self.base_url}{API}/health")
                    if health.status_code == 200 and (not model_ready or health.json()["model_ready"]) \
                            and (not warmed or client.get(f"{self.base_url}{API}/ready").status_code == 200):
                        return self.since_start()
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"app.py was not ready within {timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " / ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except (OSError, AttributeError):
            return ""

    def log_lines(self, containing: str) -> list[str]:
        """The server log's lines containing `containing` (read before stop(), which deletes it)."""
        try:
            return [line for line in self.log_path.read_text(errors="replace").splitlines() if containing in line]
        except (OSError, AttributeError):
            return []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._scratch is not None:
            self._scratch.cleanup()

    def __enter__(self) -> "AppProcess":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def ask(client: httpx.Client, base_url: str, question: str, conversation_id: str | None = None) -> tuple[httpx.Response, float]:
    """POST /api/v1/ask; the response and its wall-clock seconds."""
    body = {"question": question}
    if conversation_id:
        body["conversation_id"] = conversation_id
    started = time.perf_counter()
    response = client.post(f"{base_url}{API}/ask", json=body)
    return response, time.perf_counter() - started
