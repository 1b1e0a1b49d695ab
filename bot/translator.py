"""Rendering the sources' sentences with the local model, into a translation memory.

bot/translation.py holds the renderings; this module makes new ones: one sentence at a time
(`translate_sentence`, checked by bot/translation_check.py), in bulk for `crampbot
translate-sources` (`fill_memory`, `seed_shipped`), or in a background thread while no visitor
waits for the model (`BackgroundTranslator`).
"""
from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable

from bot import texts
from bot.generation.base import ChatMessage, Generator
from bot.translation import (
    MADE_BY_MODEL, Rendering, TranslationMemory, read_shipped, sentence_key, write_shipped,
)
from bot.translation_check import load_terms, rendering_problems

log = logging.getLogger(__name__)

_PREFIX = re.compile(r"^\s*(?:translation|перевод|rendering)\s*:\s*", re.IGNORECASE)


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
