"""Two app replicas (app.py processes) with web.state = "redis" share one rate limit, one set
of conversations, the recent answers and the votes on them (one feedback log with one vote per
answer), through a real redis-server that this module starts on 127.0.0.1 (Debian's package;
scripts/run.sh installs it for the tests). Both stop at the end of the module."""
from __future__ import annotations

import json

import httpx
import pytest
import redis

from bench.app_process import AppProcess
from web.feedback import latest_votes, read_feedback

from served import REDIS_SERVER, redis_server  # noqa: E402  (tests/served.py)

pytestmark = pytest.mark.skipif(REDIS_SERVER is None,
                                reason="redis-server missing (apt-get install redis-server)")
NIGHT = "Why do my calves cramp at night?"
PER_MINUTE = 3


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def feedback_log(tmp_path_factory):
    return tmp_path_factory.mktemp("shared") / "feedback.jsonl"


@pytest.fixture(scope="module")
def replicas(redis_url, feedback_log):
    config = {"generation": {"backend": "fake"},
              "web": {"state": "redis", "redis_url": redis_url, "feedback_file": str(feedback_log),
                      "rate_limit_per_minute": PER_MINUTE, "feedback_per_minute": 100}}
    first, second = AppProcess("default", config), AppProcess("default", config)
    try:
        for replica in (first, second):  # one after the other: a fresh clone builds the index once
            replica.start()
            replica.wait_until(model_ready=False, timeout_s=300)
        yield first.base_url, second.base_url
    finally:
        first.stop()
        second.stop()


def visitor(address: str) -> httpx.Client:
    """A client sending from its own loopback address, so each test is its own visitor."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60,
                        trust_env=False)


def test_two_replicas_enforce_one_rate_limit(replicas):
    first, second = replicas
    with visitor("127.0.0.3") as client:
        statuses = [client.post(f"{url}/api/v1/ask", json={"question": NIGHT}).status_code
                    for url in (first, second, first, second, first)]
    assert statuses == [200] * PER_MINUTE + [429, 429]


def test_a_conversation_started_on_one_replica_continues_on_the_other(replicas, redis_url):
    first, second = replicas
    with visitor("127.0.0.4") as client:
        started = client.post(f"{first}/api/v1/ask", json={"question": NIGHT}).json()
        follow_up = client.post(f"{second}/api/v1/ask", json={
            "question": "And how do I prevent them?",
            "conversation_id": started["conversation_id"]})
    assert follow_up.status_code == 200, follow_up.text
    assert follow_up.json()["conversation_id"] == started["conversation_id"]
    stored = redis.Redis.from_url(redis_url)
    key = f"crampbot:conversation:{started['conversation_id']}"
    assert len(json.loads(stored.get(key))) == 2  # both turns, written by both replicas
    assert 0 < stored.ttl(key) <= 30 * 60  # forgotten by Redis itself


def test_a_vote_on_the_other_replica_finds_the_answer(replicas):
    first, second = replicas
    with visitor("127.0.0.5") as client:
        answer = client.post(f"{first}/api/v1/ask", json={"question": NIGHT}).json()
        vote = client.post(f"{second}/api/v1/feedback",
                           json={"answer_id": answer["answer_id"], "rating": "up"})
    assert vote.status_code == 200 and vote.json() == {"recorded": True}


def test_votes_spread_over_both_replicas_store_the_question_once_and_the_latest_wins(
        replicas, feedback_log):
    first, second = replicas
    with visitor("127.0.0.6") as client:
        answer_id = client.post(f"{first}/api/v1/ask", json={"question": NIGHT}).json()["answer_id"]
        for url, rating in [(first, "up"), (second, "up"), (second, "down"), (first, "down"),
                            (first, "up")]:
            vote = client.post(f"{url}/api/v1/feedback",
                               json={"answer_id": answer_id, "rating": rating})
            assert vote.status_code == 200, vote.text
    lines = [record for record in read_feedback(feedback_log).records
             if record["answer_id"] == answer_id]
    assert [record["rating"] for record in lines] == ["up", "down", "up"]  # repeats add nothing
    assert [("question" in record) for record in lines] == [True, False, False]
    [latest] = latest_votes(lines)
    assert latest["rating"] == "up" and latest["question"] == NIGHT
