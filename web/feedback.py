"""Thumbs up/down on answers: an append-only JSON Lines log, capped in size, and a summary.

A record holds what was asked and answered, the cited sources, the reply's flags and the UTC
time, and nothing about who asked: no IP address, no conversation id, no browser details.
The first vote on an answer stores all of that; a changed or withdrawn vote appends a short
line with only the answer id and the new rating, and a repeat of the same vote appends nothing.
The summary counts the latest vote per answer. When the log would pass its size cap it is
rotated (feedback.jsonl -> feedback.jsonl.1 -> ...), keeping a few old files. A stored thumbs
down is also handed to `on_thumbs_down` (app.py: the gaps log, bot/gaps.py), whose failure never
loses the vote.

Which vote is an answer's first, a change or a repeat is remembered in `Votes`: this process's
memory (`VoteMemory`, settings.web.state = "memory"), or Redis (web/state.py, "redis"), so
that replicas sharing one log store the question once and let the latest vote win however a
visitor's votes are spread over them.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal, Protocol

from filelock import FileLock

from bot.answer import Answer
from bot.settings import Settings

log = logging.getLogger(__name__)

Rating = Literal["up", "down", "none"]
Surface = Literal["widget", "chat", "api"]
VoteKind = Literal["first", "changed", "same"]

_MOST_DISLIKED = 5
_QUOTE_CHARS = 90
_STORED_QUESTION_CHARS = 6000  # the input guard's default limit; refusals are cut earlier
_STORED_ANSWER_CHARS = 8000
_VOTES_REMEMBERED = 20_000  # answers whose latest vote this process remembers (deduplication)
CHANGES_PER_ANSWER = 10  # after this many changes of mind, further votes on it are ignored


def feedback_path(settings: Settings) -> Path:
    """Where the log lives: settings.web.feedback_file, relative to data_dir unless absolute."""
    return settings.data_dir / settings.web.feedback_file


def rating_from_vote(liked: bool | str | None) -> Rating:
    """Gradio's like event says True (thumbs up), False (down), or "" when a vote is undone."""
    if liked is True:
        return "up"
    if liked is False:
        return "down"
    return "none"


def answer_subject(answer: Answer) -> dict:
    """What a vote stores about the answer it is on (JSON-ready, so a shared store can keep it)."""
    return {
        "question": answer.question[:_STORED_QUESTION_CHARS],
        "answer": answer.text[:_STORED_ANSWER_CHARS],
        "citations": [
            {"number": c.number, "title": c.passage.title, "section": c.passage.section,
             "source": c.passage.source, "passage_id": c.passage.id}
            for c in answer.citations
        ],
        "declined": answer.declined,
        "red_flag": answer.red_flag,
        "error": answer.error,
        "extractive": answer.extractive,
        "verified_fraction": answer.verified_fraction,
        "lang": answer.lang,
    }


def feedback_record(answer: Answer | dict, rating: Rating, surface: Surface, answer_id: str,
                    now: datetime | None = None) -> dict:
    """The line stored for the first vote on an answer (an Answer, or its answer_subject)."""
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    subject = answer if isinstance(answer, dict) else answer_subject(answer)
    return {"time": when.isoformat(timespec="seconds"), "answer_id": answer_id,
            "rating": rating, "surface": surface, **subject}


def vote_change(rating: Rating, surface: Surface, answer_id: str,
                now: datetime | None = None) -> dict:
    """The line stored when an answer already voted on gets another rating."""
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {"time": when.isoformat(timespec="seconds"), "answer_id": answer_id,
            "rating": rating, "surface": surface}


class Votes(Protocol):
    def cast(self, answer_id: str, rating: Rating) -> VoteKind:
        """Remember `rating` as the answer's latest vote and say what it is: its `first`
        vote, a `changed` one, or the `same` as before (or one change too many), not stored."""


class VoteMemory:
    """Votes remembered by this process: the latest rating and the number of changes of the
    most recent answers voted on."""

    def __init__(self, max_answers: int = _VOTES_REMEMBERED) -> None:
        self.max_answers = max_answers
        self._votes: OrderedDict[str, tuple[Rating, int]] = OrderedDict()  # id -> (rating, changes)
        self._lock = threading.Lock()

    def cast(self, answer_id: str, rating: Rating) -> VoteKind:
        with self._lock:
            previous = self._votes.pop(answer_id, None)
            if previous is not None and (previous[0] == rating
                                         or previous[1] >= CHANGES_PER_ANSWER):
                self._votes[answer_id] = previous
                return "same"
            self._votes[answer_id] = (rating, 0 if previous is None else previous[1] + 1)
            while len(self._votes) > self.max_answers:
                self._votes.popitem(last=False)
            return "first" if previous is None else "changed"


class FeedbackStore:
    """Appends votes to one JSON Lines file, safely from many threads and processes; one
    vote per answer (the latest counts, as remembered by `votes`), the file rotated past
    `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int = 5_000_000, backups: int = 3,
                 votes: Votes | None = None,
                 on_thumbs_down: Callable[[dict], None] | None = None) -> None:
        self.path = Path(path)
        self.on_thumbs_down = on_thumbs_down  # given the answer_subject of each stored "down"
        self.max_bytes = max_bytes
        self.backups = backups
        self.votes = votes or VoteMemory()
        self._thread_lock = threading.Lock()
        # FileLock serializes writers in other processes (several server workers); the
        # thread lock keeps this process's threads from queueing on the file lock's polling.
        self._file_lock = FileLock(str(self.path) + ".lock")

    def record(self, answer: Answer | dict, rating: Rating, surface: Surface, answer_id: str
               ) -> dict | None:
        """Store a vote; None when it changes nothing (the same rating again, or an answer
        whose vote changed too often already)."""
        kind = self.votes.cast(answer_id, rating)
        if kind == "same":
            return None
        subject = answer if isinstance(answer, dict) else answer_subject(answer)
        record = (feedback_record(subject, rating, surface, answer_id) if kind == "first"
                  else vote_change(rating, surface, answer_id))
        self.append(record)
        if rating == "down" and self.on_thumbs_down is not None:
            try:
                self.on_thumbs_down(subject)
            except Exception:  # the vote is stored; a second log must not undo that
                log.exception("thumbs down stored, but its hook failed")
        return record

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "replace")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, self._file_lock:
            self._rotate_if_full(len(line))
            # O_APPEND puts every write at the end even if another writer bypasses the lock;
            # one write per line, so a line is never interleaved with another.
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(descriptor, line)
                if written != len(line):
                    raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
            finally:
                os.close(descriptor)

    def _rotate_if_full(self, adding: int) -> None:
        # Under the file lock, so no other writer appends meanwhile. Hand-written because
        # logging's RotatingFileHandler keeps its file open and rotates per process, which
        # breaks when several server processes write one log.
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size + adding <= self.max_bytes:
            return
        for number in range(self.backups, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{number}")
            newer = self.path.with_name(f"{self.path.name}.{number - 1}") if number > 1 else self.path
            if newer.exists():
                os.replace(newer, older)
        self.path.unlink(missing_ok=True)  # only still there when no backups are kept


def log_files(path: Path) -> list[Path]:
    """The log and its rotated copies, oldest first."""
    path = Path(path)
    rotated = [part for part in path.parent.glob(f"{path.name}.*") if part.suffix[1:].isdigit()]
    return sorted(rotated, key=lambda part: -int(part.suffix[1:])) + [path]


@dataclass(frozen=True)
class FeedbackLog:
    records: list[dict]
    unreadable_lines: int


def read_feedback(path: Path) -> FeedbackLog:
    """All records of the log and its rotated copies, oldest first; lines that are not JSON
    objects are counted, not fatal."""
    records, unreadable = [], 0
    for part in log_files(path):
        if part.is_file():
            part_records, part_unreadable = _read_part(part)
            records += part_records
            unreadable += part_unreadable
    return FeedbackLog(records, unreadable)


def _read_part(path: Path) -> tuple[list[dict], int]:
    records, unreadable = [], 0
    with open(path, encoding="utf-8", errors="replace") as log:
        for line in log:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                unreadable += 1
                continue
            if isinstance(record, dict) and record.get("answer_id") and record.get("rating"):
                records.append(record)
            else:
                unreadable += 1
    return records, unreadable


def latest_votes(records: list[dict]) -> list[dict]:
    """The last vote on each answer (over what its first vote stored), in the order answers
    were first voted on."""
    latest: dict[str, dict] = {}
    for record in records:
        latest[record["answer_id"]] = {**latest.get(record["answer_id"], {}), **record}
    return list(latest.values())


def summarize(path: Path) -> str:
    """A plain-text report of the log for `crampbot feedback-summary`."""
    log = read_feedback(Path(path))
    if not log.records:
        note = f" ({log.unreadable_lines} unreadable lines)" if log.unreadable_lines else ""
        return f"No feedback recorded yet in {path}{note}."
    votes = latest_votes(log.records)
    counted = [vote for vote in votes if vote["rating"] in ("up", "down")]
    ups = sum(vote["rating"] == "up" for vote in counted)
    downs = len(counted) - ups
    times = sorted(record["time"] for record in log.records if record.get("time"))
    lines = [
        f"Feedback in {path}: {len(log.records)} votes on {len(votes)} answers"
        + (f", {times[0]} to {times[-1]}" if times else "") + ".",
        "The latest vote on each answer counts"
        + (f"; {len(votes) - len(counted)} votes were withdrawn" if len(votes) > len(counted)
           else "") + ".",
        "",
        f"  thumbs up    {ups:5d}  {_percent(ups, len(counted))}",
        f"  thumbs down  {downs:5d}  {_percent(downs, len(counted))}",
        "",
        "By kind of reply (up / down):",
        *_by_kind(counted),
        "",
        "By where it was given: " + ", ".join(
            f"{surface} {count}" for surface, count in
            Counter(vote.get("surface", "?") for vote in counted).most_common()),
    ]
    lines += _most_disliked(counted)
    if log.unreadable_lines:
        lines += ["", f"{log.unreadable_lines} unreadable lines were skipped."]
    return "\n".join(lines)


def _percent(part: int, whole: int) -> str:
    return f"({100 * part / whole:.0f}%)" if whole else ""


def _kind(vote: dict) -> str:
    if vote.get("red_flag"):
        return "urgent-care advice"
    if vote.get("error"):
        return "error or refused input"
    if vote.get("declined"):
        return "declined"
    return "quoted from the sources" if vote.get("extractive") else "answered"


def _by_kind(votes: list[dict]) -> list[str]:
    ups, downs = Counter(), Counter()
    for vote in votes:
        (ups if vote["rating"] == "up" else downs)[_kind(vote)] += 1
    kinds = sorted(set(ups) | set(downs), key=lambda kind: -(ups[kind] + downs[kind]))
    return [f"  {kind:<24} {ups[kind]:4d} / {downs[kind]:<4d}" for kind in kinds]


def _most_disliked(votes: list[dict]) -> list[str]:
    disliked = Counter(" ".join(vote.get("question", "").split()).casefold()
                       for vote in votes if vote["rating"] == "down")
    if not disliked:
        return []
    lines = ["", "Most disliked questions:"]
    for question, count in disliked.most_common(_MOST_DISLIKED):
        shown = question if len(question) <= _QUOTE_CHARS else question[:_QUOTE_CHARS] + "..."
        lines.append(f"  {count:3d} x  {shown!r}")
    return lines
