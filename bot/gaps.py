"""The gaps log: questions the bot declined because its sources do not cover them.

Each decline appends one JSON line {"ts", "lang", "reason", "question"} to answer.gaps_log
(relative to data_dir unless absolute; empty disables it). Emails and phone numbers are replaced
by [email] and [phone] before anything is written: they never reach the disk. `crampbot gaps`
reads the log back and groups paraphrases of the same question (group_gaps), so that whoever
maintains the sources sees which missing topics are asked most.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings
    from index.embedding import Embedder

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 300  # a stored question is cut to this length (after scrubbing)
MAX_LOG_BYTES = 5_000_000  # no more lines are written once the log is this big
DEFAULT_THRESHOLD = 0.75  # cosine similarity at which two questions count as the same question

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
    """Where the log lives, or None when answer.gaps_log is empty (the log is off)."""
    configured = settings.answer.gaps_log
    return None if configured is None else settings.data_dir / configured


def record_gap(path: Path, question: str, lang: str, reason: str,
               max_bytes: int = MAX_LOG_BYTES) -> bool:
    """Append one scrubbed line for a declined question; False when the log is full."""
    path = Path(path)
    cleaned = " ".join(scrub(question).split())[:MAX_QUESTION_CHARS]
    record = {"ts": datetime.now(timezone.utc).isoformat(timespec="seconds"), "lang": lang,
              "reason": reason, "question": cleaned}
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    with _lock:
        try:
            if path.stat().st_size + len(line) > max_bytes:
                return False
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line with O_APPEND: lines from other processes do not interleave.
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)
    return True


def note_gap(settings: "Settings", question: str, lang: str, reason: str) -> None:
    """record_gap at the configured path; a failure is logged, never raised into an answer."""
    try:
        path = gaps_path(settings)
        if path is not None and not record_gap(path, question, lang, reason):
            log.warning("gaps log %s is full (%d bytes); declined question not recorded",
                        path, MAX_LOG_BYTES)
    except Exception:  # the answer matters more than the log
        log.exception("could not record a declined question in the gaps log")


def read_gaps(path: Path) -> list[dict]:
    """The log's records; unreadable lines are skipped. Scrubbed again, in case an older or
    hand-edited log holds what the writer would have removed."""
    records = []
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("question"), str):
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
        return f"No declined questions to show from {path}."
    total = sum(g.count for g in groups)
    lines = [f"{total} declined questions in {len(groups)} groups ({path}), largest first:"]
    for number, group in enumerate(groups, 1):
        languages = ", ".join(f"{lang} {n}" for lang, n in group.languages.most_common())
        variants = len(set(group.questions))
        lines.append(f"\n{number}. {group.count}x  [{languages}]  last {group.last_seen or '?'}"
                     f"  ({variants} wording{'s' if variants != 1 else ''})\n   {group.example}")
    return "\n".join(lines)
