"""First look at a user's message: clean it, refuse what is empty, too long or not text, and
tell its language, once: `check_message` returns one `Message` that the rest of the assistant
reads instead of deriving these again.

HTML is kept as the user wrote it (the UI escapes it when showing it);
`plain_text_for_retrieval` gives the tag-free text that retrieval and the prompt should see.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Literal

from bot import texts
from bot.translit import cyrillic_reading

Problem = Literal["empty", "too_long", "not_text"]

# Above this share of junk characters (controls, replacement chars, unassigned code points)
# among the visible ones, a message is a pasted binary or a broken encoding, not a question.
_MAX_JUNK_SHARE = 0.3
# A message this many times over the limit is refused before any per-character work, so a
# pasted megabyte costs no more than a question does.
_HOPELESS_FACTOR = 10
# ANSI terminal escapes (colour codes from a pasted terminal): dropping only the ESC byte would
# leave "[31m" litter in the question.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_ZERO_WIDTH_JOINER = "\u200d"
# Letters of Ukrainian, Belarusian, Serbian and Macedonian that Russian does not use.
_NON_RUSSIAN_CYRILLIC = re.compile("[іїєґўђјљњћџѓќѕ]")
# Lone UTF-16 halves: JSON may carry them ("\\ud800", e.g. a JavaScript client that cut an emoji
# in two) and Python decodes them, but no UTF-8 writer (a log, a reply, the page) accepts them.
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


@dataclass(frozen=True)
class Message:
    """One message, checked: the verdict, and the forms of it each later step reads.

    `cleaned` is what the rest of the assistant should use (HTML kept, for the red-flag rules
    and the scope check); `search_text` is it without HTML (retrieval, the prompt); `lang` is
    detect_language of `search_text` ("en", "ru" or "other"); `reply_lang` the catalog language
    the reply's fixed texts are given in. Russian typed in Latin letters comes with `cleaned` and
    `search_text` in Cyrillic and `lang` "ru" (bot/translit.py); `raw` keeps what was typed.
    """

    ok: bool
    cleaned: str
    problem: Problem | None
    length: int  # characters in `cleaned` (in the raw message when refused unread)
    raw: str = ""
    search_text: str = ""
    lang: str = "other"
    asked_lang: str | None = None  # the reply language a client asked for (the API's `lang`)

    @property
    def reply_lang(self) -> str:
        """The language asked for, else the question's when there is a catalog for it, else
        English."""
        if self.asked_lang:
            return texts.language(self.asked_lang)
        return texts.language(self.lang) if self.lang != "other" else texts.LANGUAGES[0]


GuardResult = Message  # the earlier name


def encodable(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so it always encodes as UTF-8.

    The one place where text from outside is made writable; the web layer applies it to every
    string of every JSON request (web/limits.py). Valid text is returned unchanged.
    """
    return _SURROGATE.sub(REPLACEMENT_CHARACTER, text)


def has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def check_message(text: str, max_chars: int) -> Message:
    """Clean `text`, say whether the assistant should answer it, and in which language."""
    if text is None:
        text = ""
    if isinstance(text, (bytes, bytearray)):
        # A client that sends bytes gets the same verdict as one that decoded them badly.
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str) or "\x00" in text:
        # NUL never occurs in typed text; like git, take it as the mark of binary content.
        return Message(False, "", "not_text", len(text) if isinstance(text, str) else 0,
                       raw=text if isinstance(text, str) else "")
    if len(text) > max_chars * _HOPELESS_FACTOR:
        return Message(False, "", "too_long", len(text), raw=text)
    if _looks_binary(text):
        return Message(False, "", "not_text", len(text), raw=text)
    cleaned = clean_text(text)
    if not cleaned:
        return Message(False, "", "empty", 0, raw=text)
    search_text = plain_text_for_retrieval(cleaned)
    # Told even for a refused long message, so the refusal is in the writer's language.
    lang = detect_language(search_text)
    if len(cleaned) > max_chars:
        return Message(False, cleaned, "too_long", len(cleaned), text, search_text, lang)
    # Russian typed in Latin letters is read, searched and answered as the Russian it is.
    reading = cyrillic_reading(search_text) if lang == "en" else None
    if reading is not None:
        return Message(True, reading, None, len(cleaned), text, reading, "ru")
    return Message(True, cleaned, None, len(cleaned), text, search_text, lang)


def clean_text(text: str) -> str:
    """Drop invisible and control characters, apply NFKC and collapse whitespace to single spaces.

    Zero-width and bidirectional-override characters are removed because they hide words from
    matching ("che\u200bst pain") and can reorder what a reader sees; a zero-width joiner is kept
    only between two non-letters, where it glues emoji sequences together.
    """
    text = _ANSI_ESCAPE.sub("", text)
    kept: list[str] = []
    for i, char in enumerate(text):
        if char in "\t\n\r\v\f":
            kept.append(" ")
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cn") or char == "\ufffd":
            continue
        if category == "Cf" and not (char == _ZERO_WIDTH_JOINER and _joins_symbols(text, i)):
            continue
        kept.append(char)
    # NFKC folds full-width letters, ligatures and compatibility forms into the plain letters
    # that matching and retrieval expect; str.split() then knows every Unicode space.
    return " ".join(unicodedata.normalize("NFKC", "".join(kept)).split())


def _joins_symbols(text: str, i: int) -> bool:
    before = text[i - 1] if i > 0 else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    return bool(before and after) and not (before.isalnum() or after.isalnum())


def _looks_binary(text: str) -> bool:
    visible = junk = 0
    for char in text:
        if char.isspace():
            continue
        visible += 1
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Cn", "Co") or char == "\ufffd":
            junk += 1
    return visible > 0 and junk / visible > _MAX_JUNK_SHARE


class _TextExtractor(HTMLParser):
    """Collects the text a browser would show, skipping scripts, styles and other non-text."""

    _SKIPPED = {"script", "style", "template", "noscript", "head", "title", "iframe", "svg"}
    # Tags that do not break a word: "<b>cr</b>amp" is one word, "<p>a</p><p>b</p>" two.
    _INLINE = {"a", "abbr", "b", "code", "em", "i", "mark", "s", "small", "span", "strong",
               "sub", "sup", "u"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self._SKIPPED:
            self._skipping.append(tag)
        elif tag not in self._INLINE:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()
        elif tag not in self._INLINE:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def plain_text_for_retrieval(text: str) -> str:
    """The message without HTML tags, comments, scripts and styles, entities decoded.

    Uses the standard library's tolerant HTML parser rather than regular expressions, which
    mishandle nesting, comments and attributes containing ">". Text that merely contains "<"
    ("cramps < 3 times a week") passes through unchanged.
    """
    extractor = _TextExtractor()
    extractor.feed(text)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def detect_language(text: str) -> str:
    """"ru" when the letters are mostly Cyrillic, "en" when mostly Latin, "other" otherwise.

    The assistant only has to choose between English and Russian, whose scripts do not overlap,
    so counting letters by script decides exactly and instantly; an offline language-ID model
    (fastText, langid) would add a model file and is less reliable on three-word messages.
    Letters used by other Cyrillic languages but not by Russian (і, ї, є, ґ, ў...) give "other";
    any Latin-script language counts as "en", since English is the only Latin one served.
    """
    cyrillic = latin = other = 0
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith("CYRILLIC"):
            cyrillic += 1
        elif name.startswith("LATIN"):
            latin += 1
        else:
            other += 1
    letters = cyrillic + latin + other
    if letters == 0:
        return "other"
    if cyrillic / letters > 0.5:
        return "other" if _NON_RUSSIAN_CYRILLIC.search(text.lower()) else "ru"
    if latin / letters > 0.5:
        return "en"
    return "other"

