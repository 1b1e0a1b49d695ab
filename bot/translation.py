"""Renderings of the sources' English sentences in another language: a translation memory.

A composed answer shows source sentences (`display_sentences` of the chosen units, bot/compose.py).
Each one is rendered once, never per request: the shipped corpus's renderings are a committed,
reviewed file (corpus/translations.<lang>.tsv: the English sentence, its rendering, how it was
made, and the model's draft where review corrected it); the sentences of sources a clinic adds
later are rendered by the local model into a cache under the data dir
(<data_dir>/translations/<lang>.jsonl), by `crampbot translate-sources` or in the background the
first time an answer needs them. A rendering is served only while it passes
bot/translation_check.py; otherwise the answer keeps the English sentence. The model that fills
the memory is driven by bot/translator.py.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bot.compose import _item_claim, display_sentences, passage_units
from bot.translation_check import rendering_problems
from corpus.passage import Passage
from corpus.tsv import tsv_rows

_COLUMNS = ["english", "rendering", "how", "draft"]
# How a rendering was made: by the model and not yet read; read and kept; rewritten by review
# (the model's draft is kept beside it).
MADE_BY_MODEL, REVIEWED, CORRECTED = "model", "reviewed", "corrected"
_HOWS = (MADE_BY_MODEL, REVIEWED, CORRECTED)


def sentence_key(sentence: str) -> str:
    """How a sentence is looked up: whitespace collapsed (a rendering is per sentence)."""
    return " ".join(sentence.split())


@dataclass(frozen=True)
class Rendering:
    english: str
    text: str
    how: str
    draft: str = ""  # the model's rendering, when review corrected it


def shipped_memory_path(corpus_dir: Path, lang: str) -> Path:
    """The committed, reviewed renderings of the shipped sources' sentences."""
    return Path(corpus_dir) / f"translations.{lang}.tsv"


def read_shipped(path: Path) -> dict[str, Rendering]:
    """The renderings of a memory file by English sentence ({} when there is no file)."""
    if not path.is_file():
        return {}
    found: dict[str, Rendering] = {}
    for number, row in tsv_rows(path, _COLUMNS, ValueError):
        english, text, how, draft = (row + ["", "", "", ""])[:4]
        if how not in _HOWS:
            raise ValueError(f"{path.name} line {number}: 'how' must be one of {', '.join(_HOWS)}")
        found[sentence_key(english)] = Rendering(sentence_key(english), text.strip(), how, draft)
    return found


def write_shipped(path: Path, renderings: Iterable[Rendering], preamble: str) -> None:
    """The memory file, one sentence a line in the given order, after a comment preamble."""
    lines = [f"# {line}".rstrip() for line in preamble.splitlines()] + ["\t".join(_COLUMNS)]
    for r in renderings:
        if any("\t" in f or "\n" in f for f in (r.english, r.text, r.draft)):
            raise ValueError(f"a tab or line break in the rendering of {r.english!r}")
        lines.append("\t".join((r.english, r.text, r.how, r.draft)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class TranslationMemory:
    """English source sentence -> its checked rendering in one language."""

    def __init__(self, lang: str, shipped: Path, cache: Path | None = None) -> None:
        self.lang, self.shipped_path, self.cache_path = lang, Path(shipped), cache
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._renderings: dict[str, Rendering] = {}
        self._example: Rendering | None = None

    def rendering(self, sentence: str) -> str | None:
        """The sentence's rendering when there is one and it passes the checks, else None."""
        found = self.renderings().get(sentence_key(sentence))
        if found is None or found.text == "" or rendering_problems(found.english, found.text, self.lang):
            return None
        return found.text

    def renderings(self) -> dict[str, Rendering]:
        """Every rendering, the shipped file's over the cache's; read again when a file changed
        (the background filler or `crampbot translate-sources` in another process)."""
        stamp = tuple(_mtime(p) for p in (self.shipped_path, self.cache_path))
        with self._lock:
            if stamp != self._stamp:
                renderings = _read_cache(self.cache_path) if self.cache_path else {}
                shipped = read_shipped(self.shipped_path)
                renderings.update(shipped)
                self._renderings, self._stamp = renderings, stamp
                self._example = next((r for r in shipped.values() if r.how in (REVIEWED, CORRECTED)
                                      and 60 <= len(r.english) <= 160), None)
            return self._renderings

    def missing(self, sentences: Iterable[str]) -> list[str]:
        """The sentences that have no rendering at all (neither shipped nor cached, even failed)."""
        known = self.renderings()
        return list(dict.fromkeys(s for s in map(sentence_key, sentences) if s and s not in known))

    def remember(self, english: str, text: str, problems: list[str]) -> None:
        """Append a model rendering to the cache; one that failed its checks is kept (as
        rejected) so that it is not asked again, and never served."""
        if self.cache_path is None:
            return
        record = {"english": sentence_key(english), "rendering": text, "how": MADE_BY_MODEL,
                  "problems": problems,
                  "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        # One write with O_APPEND: lines from the server and the command line do not interleave.
        descriptor = os.open(self.cache_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)

    def example(self) -> Rendering | None:
        """A reviewed rendering to show the model as a worked example (read with the rest)."""
        self.renderings()
        with self._lock:
            return self._example


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except FileNotFoundError:
        return None


def _read_cache(path: Path) -> dict[str, Rendering]:
    found: dict[str, Rendering] = {}
    if not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            english = sentence_key(record["english"])
            # A rejected rendering is remembered as "" so that the sentence is not asked again.
            text = "" if record.get("problems") else str(record["rendering"]).strip()
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash: its sentence will be translated again
        found[english] = Rendering(english, text, MADE_BY_MODEL)
    return found


# -- which sentences an answer can show -----------------------------------------------------
def answer_sentences(passages: Iterable[Passage]) -> dict[str, str]:
    """Every sentence a composed answer can show from these passages (by the same functions the
    answer uses: a unit's display sentences, and a list item's claim), with its source file."""
    found: dict[str, str] = {}
    for passage in passages:
        for unit in passage_units(passage):
            for text in (unit, _item_claim(unit)):
                for sentence in display_sentences(text):
                    found.setdefault(sentence_key(sentence), passage.source)
    return found


def card_sentences(supporting: str) -> list[str]:
    """The sentences of a source card's highlighted unit, as they are rendered."""
    return [sentence_key(s) for s in display_sentences(supporting)]


def memory_for(settings, lang: str) -> TranslationMemory:
    """The memory of `lang` for these settings: the shipped file beside the raw sources, and
    the cache under the data dir (none when answer.translation_cache is empty)."""
    folder = settings.answer.translation_cache
    cache = None if folder is None else settings.data_dir / folder / f"{lang}.jsonl"
    return TranslationMemory(lang, shipped_memory_path(settings.corpus.raw_dir.parent, lang), cache)
