"""The gaps log: visitors' questions the sources do not answer, for the clinic to write about.

With answer.gaps_log_enabled (off by default), each question the bot declines because its sources
do not cover it, and each answer a visitor gives a thumbs down, appends one JSON line
{"ts", "lang", "reason", "question"} to answer.gaps_log. Emails and phone numbers are replaced by
[email] and [phone] before anything is written: they never reach the disk. Lines older than
answer.gaps_retention_days are deleted when the log is written or read. `crampbot gaps` reads the
log back and groups paraphrases of the same question (group_gaps).
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from corpus.files import write_atomic

if TYPE_CHECKING:
    from bot.settings import Settings
    from index.embedding import Embedder

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 300  # a stored question is cut to this length (after scrubbing)
MAX_LOG_BYTES = 5_000_000  # no more lines are written once the log is this big
DEFAULT_THRESHOLD = 0.75  # cosine similarity at which two questions count as the same question
# reason of a line: declined as a topic the sources never name, declined for want of a source
# that fits, or an answer voted down
NOT_COVERED, NO_SOURCES, THUMBS_DOWN = "not_covered", "no_sources", "thumbs_down"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, optionally after "+" or "(", with up to three of " .-()" between
# digits: +1 555-123-4567, (555) 123 4567, 8 (912) 345-67-89, 5551234567. Doses and times
# ("500 mg", "2-3 times") have too few digits to match.
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s.()-]{0,3}\d){6,}")
_lock = threading.Lock()


def scrub(text: str) -> str:
    """The text with email addresses and phone numbers replaced by [email] and [phone]."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))


def gaps_path(settings: "Settings") -> Path | None:
    """Where the log lives, or None when it is off (answer.gaps_log_enabled, the default, is
    false, or answer.gaps_log is empty)."""
    configured = settings.answer.gaps_log
    if not settings.answer.gaps_log_enabled or configured is None:
        return None
    return settings.data_dir / configured


def _time(record: dict) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(record.get("ts", "")))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _is_recent(record: dict, cutoff: datetime | None) -> bool:
    """Within the retention; a line whose time cannot be read counts as old (it is deleted)."""
    if cutoff is None:
        return True
    when = _time(record)
    return when is not None and when >= cutoff


def _cutoff(retention_days: int | None, now: datetime | None = None) -> datetime | None:
    if retention_days is None:
        return None
    return (now or datetime.now(timezone.utc)) - timedelta(days=retention_days)


def _parse(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _file_lock(path: Path) -> FileLock:
    # Other server processes append to the same file; pruning replaces it, so both hold this.
    return FileLock(str(path) + ".lock")


def _prune_locked(path: Path, cutoff: datetime) -> int:
    """Rewrite the log without its lines older than `cutoff`; the caller holds the locks."""
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            first = lines.readline()
            if not first or _is_recent(_parse(first) or {}, cutoff):
                return 0  # lines are appended in time order: the first is the oldest
            kept, dropped = [], 1
            for line in lines:
                if _is_recent(_parse(line) or {}, cutoff):
                    kept.append(line)
                else:
                    dropped += 1
    except FileNotFoundError:
        return 0
    write_atomic(path, "".join(kept).encode("utf-8"))
    return dropped


def prune_gaps(path: Path, retention_days: int, now: datetime | None = None) -> int:
    """Delete the log's lines older than `retention_days`; how many were deleted."""
    path = Path(path)
    if not path.is_file():
        return 0
    with _lock, _file_lock(path):
        return _prune_locked(path, _cutoff(retention_days, now))


def record_gap(path: Path, question: str, lang: str, reason: str,
               max_bytes: int = MAX_LOG_BYTES, retention_days: int | None = None) -> bool:
    """Append one scrubbed line; lines past `retention_days` are deleted first. False when the
    log is full."""
    path = Path(path)
    cleaned = " ".join(scrub(question).split())[:MAX_QUESTION_CHARS]
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="seconds"), "lang": lang,
              "reason": reason, "question": cleaned}
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, _file_lock(path):
        if retention_days is not None:
            _prune_locked(path, _cutoff(retention_days))
        try:
            if path.stat().st_size + len(line) > max_bytes:
                return False
        except FileNotFoundError:
            pass
        # One write of one line with O_APPEND: a line is never interleaved with another.
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)
    return True


def note_gap(settings: "Settings", question: str, lang: str, reason: str) -> None:
    """record_gap at the configured path when the log is on; a failure is logged, never raised
    into an answer or a vote."""
    try:
        path = gaps_path(settings)
        if path is not None and not record_gap(path, question, lang, reason,
                                               retention_days=settings.answer.gaps_retention_days):
            log.warning("gaps log %s is full (%d bytes); question not recorded",
                        path, MAX_LOG_BYTES)
    except Exception:  # the answer matters more than the log
        log.exception("could not record a question in the gaps log")


def note_thumbs_down(settings: "Settings", subject: dict) -> None:
    """Log the question of an answer a visitor voted down (web/feedback.py's answer_subject).
    A declined answer's question is in the log already, and refused input is not a question."""
    if subject.get("declined") or subject.get("error") or not subject.get("question"):
        return
    note_gap(settings, str(subject["question"]), str(subject.get("lang") or "en"), THUMBS_DOWN)


def read_gaps(path: Path, retention_days: int | None = None) -> list[dict]:
    """The log's records (those within `retention_days` when given); unreadable lines are
    skipped. Scrubbed again, in case an older or hand-edited log holds what the writer would
    have removed."""
    cutoff = _cutoff(retention_days)
    records = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            record = _parse(line)
            if record is None or not isinstance(record.get("question"), str):
                continue
            if not _is_recent(record, cutoff):
                continue
            record["question"] = scrub(record["question"])
            if record["question"].strip():
                records.append(record)
    return records


@dataclass
class GapGroup:
    """Paraphrases of one uncovered question."""

    questions: list[str] = field(default_factory=list)  # one per decline, in log order
    languages: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    last_seen: str = ""

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def example(self) -> str:
        """The wording asked most often (the first of them on a tie)."""
        return Counter(self.questions).most_common(1)[0][0]

    def to_dict(self) -> dict:
        return {"count": self.count, "example": self.example,
                "languages": dict(self.languages.most_common()),
                "reasons": dict(self.reasons.most_common()), "last_seen": self.last_seen,
                "questions": sorted(set(self.questions))}


def group_gaps(records: list[dict], embedder: "Embedder",
               threshold: float = DEFAULT_THRESHOLD) -> list[GapGroup]:
    """Greedy clustering on cosine similarity, largest group first.

    Identical wordings are embedded once; the wordings, most frequent first, each join the group
    whose (normalized) centroid is closest if it is at least `threshold` similar, or start a new
    group. Linear in the number of groups per wording, so a full log stays quick.
    """
    import numpy as np

    wordings = Counter(" ".join(r["question"].split()).lower() for r in records)
    ordered = [text for text, _ in wordings.most_common()]
    vectors = embedder.embed(ordered) if ordered else np.zeros((0, 1), dtype=np.float32)
    sums: list = []
    of_wording: dict[str, int] = {}
    for text, vector in zip(ordered, vectors):
        if sums:
            centroids = np.stack(sums)
            centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
            similarity = centroids @ vector
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                sums[best] = sums[best] + vector * wordings[text]
                of_wording[text] = best
                continue
        of_wording[text] = len(sums)
        sums.append(vector * wordings[text])
    groups = [GapGroup() for _ in sums]
    for record in records:
        group = groups[of_wording[" ".join(record["question"].split()).lower()]]
        group.questions.append(" ".join(record["question"].split()))
        group.languages[str(record.get("lang", "?"))] += 1
        group.reasons[str(record.get("reason", "?"))] += 1
        group.last_seen = max(group.last_seen, str(record.get("ts", "")))
    return sorted(groups, key=lambda g: (-g.count, g.example))


def format_groups(groups: list[GapGroup], path: Path) -> str:
    """The plain-text report of `crampbot gaps`."""
    if not groups:
        return f"No declined or voted-down questions to show from {path}."
    total = sum(g.count for g in groups)
    lines = [f"{total} declined or voted-down questions in {len(groups)} groups ({path}), "
             "largest first:"]
    for number, group in enumerate(groups, 1):
        languages = ", ".join(f"{lang} {n}" for lang, n in group.languages.most_common())
        variants = len(set(group.questions))
        lines.append(f"\n{number}. {group.count}x  [{languages}]  last {group.last_seen or '?'}"
                     f"  ({variants} wording{'s' if variants != 1 else ''})\n   {group.example}")
    return "\n".join(lines)
