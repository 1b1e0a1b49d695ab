"""Finding the section headings of a source, so passages never mix sections and carry a title.

Plain-text sources mark headings only by layout: a short line of its own, capitalised, without a
closing full stop ("Possible reasons", "Why reduces the calf muscle during sleep?"). Markdown
sources use '#' headings. A short line that continues a sentence is not a heading: a line whose
predecessor did not end a sentence, or whose successor starts in lower case, is wrapped text
("Exactly because of this reason" / "leg cramps occur.").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADING_CHARS = 90
MAX_HEADING_WORDS = 12

_MARKDOWN_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
# Characters a line can end with and still be a sentence that the next line does not continue.
_SENTENCE_END = tuple('.!?:;"\')»…')
# A heading ends in a word, a number, a closing bracket or a question mark, never a full stop,
# and never in a word that needs a continuation ("... magnesium and" / "Vitamin D").
_HEADING_END = re.compile(r"[\w)?]$")
_CONTINUING_WORDS = frozenset(
    "a an the and or but nor of to in on at by for with from into about as than that which who "
    "because if when while is are was were be not its their your his her my our".split()
)
# Pages stitched from a series of articles number them ("Advice 2: Why ..."); once a passage is
# shown on its own the number means nothing, so the title shown to users drops it.
_SERIES_PREFIX = re.compile(r"^(?:advice|tip|article|part)\s+\d+\s*[:.]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """A heading and the raw character span of the text under it."""

    heading: str  # as written (Markdown '#' markers removed); "" for text before the first heading
    start: int  # raw offset of the body's first character
    end: int  # raw offset just past the body


def split_sections(raw_text: str) -> list[Section]:
    """The sections of `raw_text` in order; sections whose body is blank are left out."""
    sections: list[Section] = []
    heading, body_start, offset = "", 0, 0
    lines = raw_text.splitlines(keepends=True)
    previous_is_heading = False
    for i, line in enumerate(lines):
        previous = lines[i - 1].strip() if i > 0 else None
        following = lines[i + 1].strip() if i + 1 < len(lines) else None
        title = heading_text(line, previous, following, previous_is_heading)
        if title is not None:
            sections.append(Section(heading, body_start, offset))
            heading, body_start = title, offset + len(line)
        previous_is_heading = title is not None
        offset += len(line)
    sections.append(Section(heading, body_start, len(raw_text)))
    return [s for s in sections if raw_text[s.start:s.end].strip()]


def heading_text(line: str, previous: str | None, following: str | None,
                 previous_is_heading: bool = False) -> str | None:
    """The heading `line` states, or None when it is body text.

    `previous`/`following` are the neighbouring lines stripped ("" for a blank line, None at
    the start or end of the text).
    """
    markdown = _MARKDOWN_HEADING.match(line)
    if markdown:
        return markdown.group("title")
    text = line.strip()
    if not text or len(text) > MAX_HEADING_CHARS or len(text.split()) > MAX_HEADING_WORDS:
        return None
    if not text[0].isupper() or not _HEADING_END.search(text):
        return None
    if text.split()[-1].lower() in _CONTINUING_WORDS:
        return None
    continues_previous = bool(previous) and not previous_is_heading and not previous.endswith(_SENTENCE_END)
    continued_by_next = bool(following) and following[0].islower()
    if continues_previous or continued_by_next:
        return None
    return text


def display_heading(heading: str) -> str:
    """The heading without a series number ("Advice 2: Why ..." -> "Why ...")."""
    return _SERIES_PREFIX.sub("", heading).strip() or heading.strip()
