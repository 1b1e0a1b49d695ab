"""Locust users for the load test: visitors of the API and of the chat pages (some only load
them, some ask in the chat as a browser does, through Gradio's queue), and two misbehaving
clients at the same time, a slow-header (slow-loris) client and a feedback flood.

Run it through `python -m bench.loadtest.run` (it starts the server and writes the results). Every
user sends from its own loopback address (127.0.0.N), so the per-address limits treat each
visitor as a separate person, as they would be on the internet; traffic never leaves 127/8.
"""
from __future__ import annotations

import itertools
import json
import random
import socket
import time
import uuid

import requests
from locust import HttpUser, User, between, constant, task
from requests_toolbelt.adapters.source import SourceAddressAdapter

QUESTIONS = [
    "Why do my calves cramp at night?",
    "Which vitamins help prevent leg cramps?",
    "What helps against leg cramps when swimming?",
    "Can pregnancy cause leg cramps?",
]
FOLLOW_UP = "How can I stop it?"
_ADDRESSES = itertools.count(10)  # 127.0.0.10, .11, ... one per user
WELL_BEHAVED = "visitor"  # request names starting with this are the well-behaved traffic


def own_address(user: HttpUser) -> str:
    address = f"127.0.0.{next(_ADDRESSES) % 250 + 2}"
    adapter = SourceAddressAdapter(address)
    user.client.mount("http://", adapter)
    return address


class ApiVisitor(HttpUser):
    """Asks a question, then a follow-up in the same conversation, like a person reading."""

    weight = 3
    wait_time = between(10, 14)  # two questions every 13-19 s: under the 10 a minute allowed

    def on_start(self) -> None:
        own_address(self)

    @task
    def conversation(self) -> None:
        with self.client.post("/api/v1/ask", json={"question": random.choice(QUESTIONS)},
                              name=f"{WELL_BEHAVED}: ask", catch_response=True) as reply:
            if reply.status_code != 200 or reply.json().get("disclaimer") is None:
                reply.failure(f"status {reply.status_code}")
                return
            conversation_id = reply.json()["conversation_id"]
        time.sleep(random.uniform(3, 5))
        self.client.post("/api/v1/ask", json={"question": FOLLOW_UP,
                                              "conversation_id": conversation_id},
                         name=f"{WELL_BEHAVED}: follow-up")


class ChatVisitor(HttpUser):
    """Opens the chat page and the widget with what their first load fetches."""

    weight = 2
    wait_time = between(2, 4)

    def on_start(self) -> None:
        own_address(self)

    @task
    def open_pages(self) -> None:
        self.client.get("/", name=f"{WELL_BEHAVED}: chat page")
        self.client.get("/config", name=f"{WELL_BEHAVED}: chat config")
        self.client.get("/widget/", name=f"{WELL_BEHAVED}: widget page")
        self.client.get("/embed.js", name=f"{WELL_BEHAVED}: embed.js")
        self.client.get("/api/v1/health", name=f"{WELL_BEHAVED}: health")


class ChatAsker(HttpUser):
    """Asks a question and a follow-up in the chat page or the widget, as their page does:
    Gradio's `ask` step, then `respond` through Gradio's queue, reading the queue's event
    stream until the answer is complete. One row per question, from sending it to the end of
    its answer."""

    weight = 2
    wait_time = between(10, 14)  # like ApiVisitor: under the per-address limit

    def on_start(self) -> None:
        address = own_address(self)
        self.mount = random.choice(["", "/widget"])
        self.session = requests.Session()  # the protocol's steps: timed as one question below
        self.session.trust_env = False
        self.session.mount("http://", SourceAddressAdapter(address))
        self.session_hash = uuid.uuid4().hex[:11]
        config = self.session.get(f"{self.host}{self.mount}/config", timeout=30).json()
        by_name = {d.get("api_name"): d for d in config["dependencies"]}
        self.ask_fn, self.respond_fn = by_name["ask"]["id"], by_name["respond"]["id"]
        self.box = by_name["ask"]["targets"][0][0]
        restored = self._post("run/predict", by_name["restore"]["id"], ["", "en-US"],
                              by_name["restore"]["targets"][0][0])
        self.conversation_id = restored.json()["data"][0]

    @task
    def conversation(self) -> None:
        self._ask(random.choice(QUESTIONS), "chat ask")
        time.sleep(random.uniform(3, 5))
        self._ask(FOLLOW_UP, "chat follow-up")

    def _post(self, route: str, fn_index: int, data: list, trigger: int) -> requests.Response:
        reply = self.session.post(f"{self.host}{self.mount}/gradio_api/{route}", timeout=30, json={
            "data": data, "fn_index": fn_index, "session_hash": self.session_hash,
            "event_data": None, "trigger_id": trigger})
        reply.raise_for_status()
        return reply

    def _ask(self, question: str, name: str) -> None:
        started, error = time.perf_counter(), None
        try:
            self._post("run/predict", self.ask_fn, [question, None, None], self.box)
            # respond's inputs: the question taken, the turns, the conversation id, the language
            self._post("queue/join", self.respond_fn, [None, None, self.conversation_id, None],
                       self.box)
            error = self._completed()
        except (requests.RequestException, ValueError, KeyError) as failure:
            error = failure
        self.environment.events.request.fire(
            request_type="CHAT", name=f"{WELL_BEHAVED}: {name}",
            response_time=(time.perf_counter() - started) * 1000, response_length=0,
            exception=error, context={})

    def _completed(self) -> Exception | None:
        """None once the queue says the answer is complete and it is an answer, not a refusal
        (the rate limit's and an internal error's texts both ask to try again)."""
        with self.session.get(f"{self.host}{self.mount}/gradio_api/queue/data",
                              params={"session_hash": self.session_hash}, stream=True,
                              timeout=(10, 120)) as events:
            for line in events.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    if not message.get("success"):
                        return RuntimeError("the chat's answer failed")
                    text = json.dumps(message.get("output", {}).get("data", [None])[0])
                    return RuntimeError("refused") if "try again" in text else None
        return RuntimeError("the queue's stream ended without the answer")


class FeedbackFlood(HttpUser):
    """Votes on one answer as fast as it can: 429s and deduplication should absorb it."""

    fixed_count = 1
    wait_time = constant(0)
    answer_id: str | None = None

    def on_start(self) -> None:
        own_address(self)
        reply = self.client.post("/api/v1/ask", json={"question": QUESTIONS[0]},
                                 name="flood: first ask")
        self.answer_id = reply.json().get("answer_id") if reply.status_code == 200 else None

    @task
    def vote(self) -> None:
        with self.client.post("/api/v1/feedback",
                              json={"answer_id": self.answer_id or "none",
                                    "rating": random.choice(["up", "down"])},
                              name="flood: feedback", catch_response=True) as reply:
            if reply.status_code in (200, 429):  # shed, as intended
                reply.success()
            else:
                reply.failure(f"status {reply.status_code}")


class SlowLoris(User):
    """Holds connections open by sending header bytes slowly; success is being cut off."""

    fixed_count = 1
    wait_time = constant(0)
    connections = 20
    byte_every_s = 1.0

    @task
    def trickle(self) -> None:
        host, port = self.host.removeprefix("http://").split(":")
        started = time.monotonic()
        sockets = []
        for n in range(self.connections):
            sock = socket.create_connection((host, int(port)), timeout=5,
                                            source_address=(f"127.0.0.{200 + n % 50}", 0))
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sockets.append(sock)
        open_ = list(sockets)
        while open_ and time.monotonic() - started < 60:
            time.sleep(self.byte_every_s)
            still = []
            for sock in open_:
                try:
                    sock.sendall(b"X")
                    still.append(sock)
                except OSError:
                    sock.close()
            open_ = still
        held = time.monotonic() - started
        for sock in open_:
            sock.close()
        self.environment.events.request.fire(
            request_type="SLOW", name="slow-loris: connections held (ms)", response_time=held * 1000,
            response_length=0, exception=None if not open_ else RuntimeError("never cut off"),
            context={})
