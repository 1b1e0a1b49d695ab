"""Renderings of the sources' English sentences in another language: a translation memory.

A composed answer shows source sentences (`display_sentences` of the chosen units, bot/compose.py).
Each one is rendered once, never per request: the shipped corpus's renderings are a committed,
reviewed file (corpus/translations.<lang>.tsv: the English sentence, its rendering, how it was
made, and the model's draft where review corrected it); the sentences of sources a clinic adds
later are rendered by the local model into a cache under the data dir
(<data_dir>/translations/<lang>.jsonl), by `crampbot translate-sources` or in the background the
first time an answer needs them. A rendering is served only while it passes
bot/translation_check.py; otherwise the answer keeps the English sentence.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bot import texts
from bot.compose import _item_claim, display_sentences, passage_units
from bot.generation.base import ChatMessage, Generator
from bot.translation_check import load_terms, rendering_problems
from corpus.passage import Passage

log = logging.getLogger(__name__)

_COLUMNS = ["english", "rendering", "how", "draft"]
# How a rendering was made: by the model and not yet read; read and kept; rewritten by review
# (the model's draft is kept beside it).
MADE_BY_MODEL, REVIEWED, CORRECTED = "model", "reviewed", "corrected"
_HOWS = (MADE_BY_MODEL, REVIEWED, CORRECTED)
_PREFIX = re.compile(r"^\s*(?:translation|перевод|rendering)\s*:\s*", re.IGNORECASE)


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
    rows = csv.reader(path.read_text(encoding="utf-8").splitlines(), delimiter="\t",
                      quoting=csv.QUOTE_NONE)
    found: dict[str, Rendering] = {}
    header_seen = False
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].startswith("#"):
            continue
        if not header_seen:
            if [c.strip() for c in row] != _COLUMNS:
                raise ValueError(f"{path.name} line {number}: the header must be "
                                 f"{'<TAB>'.join(_COLUMNS)}")
            header_seen = True
            continue
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
                renderings.update(read_shipped(self.shipped_path))
                self._renderings, self._stamp = renderings, stamp
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
        """A reviewed rendering to show the model as a worked example."""
        return next((r for r in read_shipped(self.shipped_path).values()
                     if r.how in (REVIEWED, CORRECTED) and 60 <= len(r.english) <= 160), None)


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
        for unit, _ in passage_units(passage):
            for text in (unit, _item_claim(unit)):
                for sentence in display_sentences(text):
                    found.setdefault(sentence_key(sentence), passage.source)
    return found


def card_sentences(supporting: str) -> list[str]:
    """The sentences of a source card's highlighted unit, as they are rendered."""
    return [sentence_key(s) for s in display_sentences(supporting)]


# -- rendering with the local model ---------------------------------------------------------
def translation_messages(english: str, lang: str, example: Rendering | None = None
                         ) -> list[ChatMessage]:
    """System rules, a reviewed example when there is one, then the sentence (user text last)."""
    language = texts.t("LANGUAGE_NAME", lang)
    system = texts.TRANSLATE_SENTENCE.format(language=language, code=lang)
    lexicon = load_terms(lang)

    def asked(sentence: str) -> str:
        terms = "; ".join(f"{en} = {say}" for en, say in lexicon.hints(sentence))
        return texts.TRANSLATE_SENTENCE_INPUT.format(terms=terms or "-", sentence=sentence)

    messages: list[ChatMessage] = [{"role": "system", "content": system}]
    if example is not None:
        messages += [{"role": "user", "content": asked(example.english)},
                     {"role": "assistant", "content": example.text}]
    messages.append({"role": "user", "content": asked(english)})
    return messages


def translate_sentence(generator: Generator, english: str, lang: str,
                       example: Rendering | None = None) -> tuple[str, list[str]]:
    """The model's rendering of one sentence and what its checks found wrong ([] = passes)."""
    budget = min(320, 24 + int(len(english) * 0.7))  # Cyrillic costs more tokens than Latin
    reply = "".join(generator.stream(translation_messages(english, lang, example), budget))
    line = next((l.strip() for l in reply.splitlines() if l.strip()), "")
    text = _PREFIX.sub("", line).strip().strip('"«»').strip()
    return text, rendering_problems(english, text, lang)


def fill_memory(memory: TranslationMemory, sentences: Iterable[str], generator: Generator,
                progress: Callable[[str, str, list[str]], None] | None = None) -> int:
    """Render every sentence the memory lacks into its cache; returns how many passed."""
    example, passed = memory.example(), 0
    for english in memory.missing(sentences):
        text, problems = translate_sentence(generator, english, memory.lang, example)
        memory.remember(english, text, problems)
        passed += not problems
        if progress is not None:
            progress(english, text, problems)
    return passed


class BackgroundTranslator:
    """Renders sentences an answer lacked, one at a time in a daemon thread, while no visitor
    is waiting for the model (`busy`): that visitor got the English sentence, later ones get
    the rendering. A sentence started just before a question arrives delays it by one sentence."""

    def __init__(self, memory: TranslationMemory, generator: Callable[[], Generator],
                 busy: Callable[[], bool], idle_s: float = 1.0) -> None:
        self.memory, self._generator, self._busy, self._idle_s = memory, generator, busy, idle_s
        self._queue: queue.Queue[str] = queue.Queue()
        self._queued: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self, sentences: Iterable[str]) -> None:
        with self._lock:
            for sentence in self.memory.missing(sentences):
                if sentence not in self._queued:
                    self._queued.add(sentence)
                    self._queue.put(sentence)
            if self._thread is None and self._queued:
                self._thread = threading.Thread(target=self._run, name="translator", daemon=True)
                self._thread.start()

    def drain(self) -> None:
        """Render everything queued now, in this thread (tests, and a server shutting down)."""
        while True:
            try:
                sentence = self._queue.get_nowait()
            except queue.Empty:
                return
            self._render(sentence)

    def _run(self) -> None:
        while True:
            sentence = self._queue.get()
            while self._busy():
                time.sleep(self._idle_s)
            self._render(sentence)

    def _render(self, sentence: str) -> None:
        try:
            if self.memory.missing([sentence]):
                text, problems = translate_sentence(self._generator(), sentence, self.memory.lang,
                                                    self.memory.example())
                self.memory.remember(sentence, text, problems)
        except Exception:  # a failed rendering leaves the English sentence; never a crash
            log.exception("rendering a sentence in %s failed", self.memory.lang)
        finally:
            with self._lock:
                self._queued.discard(sentence)


def memory_for(settings, lang: str) -> TranslationMemory:
    """The memory of `lang` for these settings: the shipped file beside the raw sources, and
    the cache under the data dir (none when answer.translation_cache is empty)."""
    folder = settings.answer.translation_cache
    cache = None if folder is None else settings.data_dir / folder / f"{lang}.jsonl"
    return TranslationMemory(lang, shipped_memory_path(settings.corpus.raw_dir.parent, lang), cache)


MEMORY_PREAMBLE = """Renderings of the shipped sources' sentences, one per sentence a composed answer can show
(bot/translation.py, answer_sentences). Columns (tab-separated): the English sentence as the
answer shows it; its rendering; how it was made: model (the local model's, not yet read),
reviewed (read and kept as the model wrote it), corrected (rewritten by review; the model's
draft is in the last column). Made by `crampbot translate-sources --shipped --lang LANG`, then
read line by line; bot/translation_check.py checks each line again when it is served, and
tests/test_translation.py checks that every sentence has a line that passes."""


def seed_shipped(memory: TranslationMemory, sentences: list[str], generator: Generator,
                 progress: Callable[[str, str, list[str]], None] | None = None) -> list[str]:
    """The shipped memory file with a line for each sentence, in the given order: a line it
    already has is kept as it is, a new one is the model's (how = model, for review); lines of
    sentences no answer shows any more are dropped. Returns the dropped English sentences."""
    path = memory.shipped_path
    existing = read_shipped(path)
    wanted = [sentence_key(s) for s in sentences]
    example = memory.example()
    rows: dict[str, Rendering] = {}
    for count, english in enumerate(wanted, start=1):
        if english in existing:
            rows[english] = existing[english]
            continue
        text, problems = translate_sentence(generator, english, memory.lang, example)
        rows[english] = Rendering(english, text, MADE_BY_MODEL)
        if progress is not None:
            progress(english, text, problems)
        if count % 10 == 0:  # a long run keeps its work if it is stopped
            write_shipped(path, list(rows.values()), MEMORY_PREAMBLE)
    write_shipped(path, list(rows.values()), MEMORY_PREAMBLE)
    return [english for english in existing if english not in rows]
