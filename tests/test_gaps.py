"""The gaps log (bot/gaps.py) and `crampbot gaps`: scrubbing, the size cap, concurrent appends,
and the real pipeline's declines grouped by the real embedder."""
from __future__ import annotations

import json
import re
import threading

import pytest

import cli
from bot.gaps import group_gaps, read_gaps, record_gap, scrub

QUININE = [
    "Is quinine safe for leg cramps? mail me at a@b.com",
    "Can I take quinine tablets for my calf cramps? My email is jo.smith@example.org",
    "Is it OK to use quinine against night cramps in the legs? call +1 555-123-4567",
]
ANIMALS = [
    "Can my dog get leg cramps? ring me on (555) 123 4567",
    "Do dogs get cramps in their legs too? 8 (912) 345-67-89",
]
PRIVATE = ["a@b.com", "jo.smith@example.org", "555-123-4567", "123 4567", "345-67-89"]
_ANY_PHONE = re.compile(r"\d{3}\D{0,2}\d{2,4}\D{0,2}\d{2,4}")
_ANY_EMAIL = re.compile(r"\S+@\S+\.\w+")
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT[\d:]+[+-]\d\d:\d\d")


@pytest.mark.parametrize("text, expected", [
    ("write to a@b.com please", "write to [email] please"),
    ("Mail: Jo.Smith+cramps@mail.example.co.uk.", "Mail: [email]."),
    ("call +1 555-123-4567 today", "call [phone] today"),
    ("call (555) 123 4567", "call [phone]"),
    ("звоните 8 (912) 345-67-89", "звоните [phone]"),
    ("+44 20 7946 0958 or 555.123.4567", "[phone] or [phone]"),
    ("my number is 5551234567", "my number is [phone]"),
])
def test_emails_and_phone_numbers_are_replaced(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize("text", [
    "500 mg twice a day", "2-3 times a week for 10-15 minutes", "since 2024", "cramps at 3:30 am",
])
def test_doses_times_and_years_are_kept(text):
    assert scrub(text) == text


def test_a_record_is_scrubbed_cut_and_written_into_a_missing_folder(tmp_path):
    path = tmp_path / "not" / "yet" / "gaps.jsonl"
    assert record_gap(path, "Quinine? a@b.com +1 555-123-4567 " + "x" * 1000, "en", "not_covered")
    text = path.read_text(encoding="utf-8")
    record = json.loads(text)
    assert record["lang"] == "en" and record["reason"] == "not_covered" and record["ts"]
    assert record["question"].startswith("Quinine? [email] [phone] x")
    assert len(record["question"]) == 300
    assert "a@b.com" not in text and "555" not in text


def test_no_line_is_written_past_the_size_cap(tmp_path):
    path = tmp_path / "gaps.jsonl"
    written = [record_gap(path, f"question {n}", "en", "no_sources", max_bytes=400)
               for n in range(20)]
    assert written[0] and not written[-1]
    assert 0 < path.stat().st_size <= 400
    assert len(read_gaps(path)) == written.count(True)


def test_concurrent_appends_give_whole_lines(tmp_path):
    path = tmp_path / "gaps.jsonl"

    def write(worker: int) -> None:
        for n in range(50):
            record_gap(path, f"worker {worker} question {n} " + "y" * 200, "en", "no_sources")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400
    assert {json.loads(line)["question"].split(" y")[0] for line in lines} == {
        f"worker {w} question {n}" for w in range(8) for n in range(50)}


def test_a_log_that_cannot_be_written_does_not_break_the_answer(make_bot, fake_settings,
                                                                 shared_retriever, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    answer = fake_settings.answer.model_copy(update={"gaps_log": blocker / "gaps.jsonl",
                                                     "gaps_log_enabled": True})
    bot = make_bot(settings=fake_settings.model_copy(update={"answer": answer}))
    bot.retriever = shared_retriever
    reply = bot.ask(QUININE[0])
    assert reply.declined and not reply.error


def test_the_log_is_off_unless_the_clinic_turns_it_on():
    from bot.gaps import gaps_path
    from bot.settings import load_settings

    assert gaps_path(load_settings("default", data_dir="/srv/d")) is None
    on = {"gaps_log_enabled": True}
    assert gaps_path(load_settings("default", data_dir="/srv/d", answer=on)).as_posix() == \
        "/srv/d/gaps/gaps.jsonl"
    assert gaps_path(load_settings("default", answer={**on, "gaps_log": ""})) is None


def test_declines_are_not_recorded_by_default(make_bot, fake_settings, shared_retriever,
                                              tmp_path):
    settings = fake_settings.model_copy(update={"data_dir": tmp_path})
    assert not settings.answer.gaps_log_enabled
    bot = make_bot(settings=settings)
    bot.retriever = shared_retriever
    assert bot.ask(QUININE[0]).declined
    assert not (tmp_path / "gaps").exists()


def test_declined_paraphrases_are_grouped_and_nothing_private_is_kept(
        make_bot, fake_settings, shared_retriever, tmp_path, capsys):
    log = tmp_path / "gaps.jsonl"
    answer = fake_settings.answer.model_copy(update={"gaps_log": log, "gaps_log_enabled": True})
    bot = make_bot(settings=fake_settings.model_copy(update={"answer": answer}))
    bot.retriever = shared_retriever
    answered = "How can I stretch my calf when a cramp starts?"
    for question in QUININE + ANIMALS + [answered]:
        reply = bot.ask(question)
        # Checked, not assumed: the real gate declines the uncovered ones and answers the other.
        assert reply.declined == (question != answered), question
        assert not reply.red_flag and not reply.error
    stored = log.read_text(encoding="utf-8")
    assert len(stored.splitlines()) == 5

    assert cli.main(["gaps", "--log", str(log), "--json"]) == 0
    out = capsys.readouterr().out
    groups = json.loads(out)
    assert [g["count"] for g in groups] == [3, 2]
    assert groups[0]["languages"] == {"en": 3} and "quinine" in groups[0]["example"].lower()
    assert all("dog" in q for q in groups[1]["questions"])
    assert cli.main(["gaps", "--log", str(log), "--min-count", "3"]) == 0
    text = capsys.readouterr().out
    assert "3x" in text and "quinine" in text.lower() and "dog" not in text
    report = tmp_path / "report"
    assert cli.main(["gaps", "--log", str(log), "--out", str(report)]) == 0
    markdown, page = ((report / name).read_text(encoding="utf-8") for name in ("gaps.md", "gaps.html"))
    for written in (markdown, page):
        assert "quinine" in written.lower() and "dog" in written.lower()
        assert "| 1 | 3 | en 3 |" in markdown and '<td class="n">1</td><td class="n">3</td>' in page
    assert "<svg" in page and "<script" not in page.lower() and (report / "gaps.svg").is_file()
    asked = [json.loads(line)["question"] for line in stored.splitlines()]
    asked += [q for g in groups for q in g["questions"] + [g["example"]]]
    for where in (stored, out, text, markdown, page, *asked):
        assert not any(private in where for private in PRIVATE)
    for where in (*asked, *(_ISO_TIME.sub("", t) for t in (text, markdown, _text_of(page)))):
        assert not _ANY_EMAIL.search(where) and not _ANY_PHONE.search(where)
    assert "[email]" in stored and "[phone]" in stored


def _text_of(page: str) -> str:
    """The HTML report's words, without the chart's path data (numbers that look like phones)."""
    return re.sub(r"<svg.*</svg>", "", page, flags=re.S)


def test_the_reports_escape_visitors_words(tmp_path, monkeypatch, embedder, capsys):
    import index.embedding

    log = tmp_path / "gaps.jsonl"
    hostile = ["Is quinine safe? <script>alert('x')</script>",
               "Is quinine safe? <img src=x onerror=alert(1)>",
               "Can dogs | cats get *cramps* [click](javascript:alert(1))?"]
    for question in hostile:
        record_gap(log, question, "en", "no_sources")
    monkeypatch.setattr(index.embedding, "load_embedder", lambda _: embedder)
    assert cli.main(["gaps", "--log", str(log), "--out", str(tmp_path / "out")]) == 0
    assert "gaps.html" in capsys.readouterr().err
    page = (tmp_path / "out" / "gaps.html").read_text(encoding="utf-8")
    markdown = (tmp_path / "out" / "gaps.md").read_text(encoding="utf-8")
    chart = (tmp_path / "out" / "gaps.svg").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    for written in (page, markdown):
        assert "<script" not in written and "<img" not in written
    assert "Content-Security-Policy" in page and "http" not in _text_of(page).replace("http-equiv", "")
    assert "dogs \\| cats get \\*cramps\\* \\[click\\](javascript:alert(1))" in markdown
    assert "quinine" not in chart and "dogs" not in chart  # bars are numbered, not labelled
    assert (tmp_path / "out" / "gaps.html").stat().st_mode & 0o777 == 0o600


def test_grouping_keeps_unrelated_questions_apart(embedder):
    records = [{"question": q, "lang": "en"} for q in
               ["Is quinine safe for cramps?", "Is quinine safe for cramps?",
                "Can dogs get leg cramps?", "What does a cramp clinic visit cost?"]]
    groups = group_gaps(records, embedder)
    assert [g.count for g in groups] == [2, 1, 1]
    assert groups[0].example == "Is quinine safe for cramps?"


def test_gaps_on_a_missing_log_says_so(tmp_path, capsys):
    assert cli.main(["gaps", "--log", str(tmp_path / "none.jsonl")]) == 0
    assert "No declined or voted-down questions" in capsys.readouterr().out


def _line(ts: str, question: str) -> str:
    return json.dumps({"ts": ts, "lang": "en", "reason": "no_sources", "question": question}) + "\n"


def test_lines_past_the_retention_are_deleted_when_the_log_is_written(tmp_path):
    from datetime import datetime, timedelta, timezone

    path = tmp_path / "gaps.jsonl"
    now = datetime.now(timezone.utc)
    old, recent = (now - timedelta(days=100)).isoformat(), (now - timedelta(days=10)).isoformat()
    path.write_text(_line(old, "old one") + _line("not a time", "no time")
                    + _line(recent, "recent one"), encoding="utf-8")
    assert [r["question"] for r in read_gaps(path, retention_days=90)] == ["recent one"]
    assert len(read_gaps(path)) == 3  # reading alone deletes nothing
    assert record_gap(path, "new one", "en", "no_sources", retention_days=90)
    assert [json.loads(line)["question"] for line in path.read_text().splitlines()] == [
        "recent one", "new one"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_crampbot_gaps_prunes_the_configured_log(tmp_path, monkeypatch, capsys, embedder):
    from datetime import datetime, timedelta, timezone

    import index.embedding

    path = tmp_path / "gaps" / "gaps.jsonl"
    path.parent.mkdir()
    now = datetime.now(timezone.utc)
    path.write_text(_line((now - timedelta(days=31)).isoformat(), "an old quinine question")
                    + _line(now.isoformat(), "Can dogs get leg cramps?"), encoding="utf-8")
    monkeypatch.setenv("CRAMPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRAMPBOT_ANSWER__GAPS_LOG_ENABLED", "true")
    monkeypatch.setenv("CRAMPBOT_ANSWER__GAPS_RETENTION_DAYS", "30")
    monkeypatch.setattr(index.embedding, "load_embedder", lambda _: embedder)
    assert cli.main(["gaps"]) == 0
    assert "old quinine" not in capsys.readouterr().out
    assert "old quinine" not in path.read_text(encoding="utf-8")


# -- thumbs down -------------------------------------------------------------------------------

def _logging_settings(fake_settings, log):
    answer = fake_settings.answer.model_copy(update={"gaps_log": log, "gaps_log_enabled": True})
    return fake_settings.model_copy(update={"answer": answer})


def test_a_thumbs_down_is_logged_scrubbed_with_its_language(fake_settings, tmp_path):
    from functools import partial

    from bot.answer import Answer
    from bot.gaps import note_thumbs_down
    from web.feedback import FeedbackStore, answer_subject, rating_from_vote

    log = tmp_path / "gaps.jsonl"
    store = FeedbackStore(tmp_path / "fb.jsonl",
                          on_thumbs_down=partial(note_thumbs_down, _logging_settings(fake_settings, log)))
    asked = Answer(question="Почему сводит икры? пишите a@b.com, 8 (912) 345-67-89",
                   text="Ответ [1].", lang="ru")
    store.record(asked, "up", "chat", "a1")
    assert not log.exists()  # a thumbs up is not a gap
    store.record(asked, rating_from_vote(False), "chat", "a1")  # the chat's thumbs down
    subject = {**answer_subject(asked), "question": "Other? a@b.com", "lang": "en"}
    store.record(subject, "down", "api", "a2")  # the API's stored answer
    store.record(Answer(question="Capital of France?", text="...", declined=True), "down", "api", "a3")
    store.record(Answer(question="x" * 9000, text="too long", error=True), "down", "api", "a4")
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [(r["reason"], r["lang"]) for r in lines] == [("thumbs_down", "ru"), ("thumbs_down", "en")]
    assert lines[0]["question"] == "Почему сводит икры? пишите [email], [phone]"
    assert "a@b.com" not in log.read_text(encoding="utf-8")


def test_a_failing_log_keeps_the_vote(fake_settings, tmp_path, caplog):
    from bot.answer import Answer
    from web.feedback import FeedbackStore, read_feedback

    def broken(subject):
        raise OSError("disk full")

    store = FeedbackStore(tmp_path / "fb.jsonl", on_thumbs_down=broken)
    assert store.record(Answer(question="Why?", text="Because [1]."), "down", "chat", "a1")
    assert [r["rating"] for r in read_feedback(tmp_path / "fb.jsonl").records] == ["down"]


def _api(fake_settings, shared_retriever, settings):
    from fastapi.testclient import TestClient

    import app
    from bot.generation.fake import FakeGenerator
    from bot.pipeline import CrampBot

    bot = CrampBot(settings, generator=FakeGenerator())
    bot.retriever = shared_retriever
    web = settings.web.model_copy(update={"allowed_hosts": ["testserver"]})
    return TestClient(app.build_server(bot, settings.model_copy(update={"web": web})))


@pytest.mark.parametrize("blocked", [False, True])
def test_a_thumbs_down_through_the_api_is_logged_and_a_broken_log_keeps_the_vote(
        fake_settings, shared_retriever, tmp_path, blocked):
    from web.feedback import read_feedback

    log = tmp_path / "gaps.jsonl"
    if blocked:
        (tmp_path / "a-file").write_text("not a folder")
        log = tmp_path / "a-file" / "gaps.jsonl"
    settings = _logging_settings(fake_settings, log).model_copy(update={"data_dir": tmp_path})
    with _api(fake_settings, shared_retriever, settings) as client:
        asked = client.post("/api/v1/ask", json={
            "question": "Why do my calves cramp at night? I am on +1 555-123-4567"}).json()
        assert not asked["declined"]
        voted = client.post("/api/v1/feedback", json={"answer_id": asked["answer_id"],
                                                      "rating": "down"})
    assert voted.status_code == 200 and voted.json() == {"recorded": True}
    assert [r["rating"] for r in read_feedback(tmp_path / "feedback" / "feedback.jsonl").records
            ] == ["down"]
    if blocked:
        return
    (line,) = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert line["reason"] == "thumbs_down" and line["lang"] == "en"
    assert line["question"] == "Why do my calves cramp at night? I am on [phone]"
