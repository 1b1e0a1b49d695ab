"""Citation markers in model answers: find them in any common style, split answers into
sentences that keep their markers, drop markers that point at no shown passage, and renumber.

Models write "[1]", "[1, 2]", "[1][2]", "[1-3]", "[Source 1]", "(1)", "(Source 2)" or "[^1]";
after `normalize_sentence` every sentence ends with canonical "[n]" markers just before its
final punctuation ("Cramps are common [1]."), which is what `renumber` and the UI expect.
Sentence splitting is hand-written: the splitters LangChain wraps (NLTK, spaCy) are not installed
and would need model data, and answers need markers kept with the sentence they follow.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

_NUMBER = r"\d{1,2}"
_SOURCE_WORD = r"(?:sources?|src|refs?|references?|passages?|docs?|documents?)"
# A list inside one marker: "1, 2", "1 and 3", "1-3", "Source 1; Source 2".
_NUMBER_LIST = (
    rf"(?:{_SOURCE_WORD}\s*)?#?\s*{_NUMBER}"
    rf"(?:\s*(?:,|;|&|and|-|–|to)\s*(?:{_SOURCE_WORD}\s*)?#?\s*{_NUMBER})*"
)
_MARKER = re.compile(
    rf"\[\^?\s*{_NUMBER_LIST}\s*\]"  # [1] [1, 2] [Source 1] [^1] [1-3]
    rf"|【\s*{_NUMBER_LIST}\s*】"
    rf"|\(\s*{_NUMBER_LIST}\s*\)",  # (1) (Source 2): checked against enumerations below
    re.IGNORECASE,
)
_RANGE = re.compile(rf"({_NUMBER})\s*(?:-|–|to)\s*(?:{_SOURCE_WORD}\s*)?#?\s*({_NUMBER})", re.I)
_DIGITS = re.compile(r"\d+")
# Ranges longer than this are typos ("[1-20]"), not citations of twenty passages.
_MAX_RANGE = 6

# "According to source [1], x" / "Source [2] says that x": the lead-in goes, the marker stays.
_LEAD_IN = re.compile(
    rf"^\s*(?:(?:according to|as (?:stated|mentioned|noted|explained|described) in|based on|per)"
    rf"\s+(?:the\s+)?(?:{_SOURCE_WORD}\s*)?(?P<m1>(?:{_MARKER.pattern})+|#?{_NUMBER})\s*,?\s*"
    rf"|(?:the\s+)?{_SOURCE_WORD}\s*(?P<m2>(?:{_MARKER.pattern})+|#?{_NUMBER})\s+"
    rf"(?:says|states|notes|explains|mentions|reports|suggests|adds)\s*(?:that\s+)?,?\s*)",
    re.IGNORECASE,
)

# Words before a period that do not end a sentence ("e.g. cold water", "approx. 5 cups").
_ABBREVIATIONS = frozenset(
    "e.g eg i.e ie vs dr mr mrs ms prof approx ca cf fig incl esp st no nos resp min max".split()
)
_BULLET = re.compile(r"^\s*(?:(?P<dash>[-*•–])|\(?(?P<num>\d{1,2})[.)])\s+")
# "Try this: 1. Stretch. 2. Drink." -> one list item per line, so the splitter sees bullets.
_INLINE_ENUMERATOR = re.compile(r"(?<=[:.!?])\s+(?=\(?\d{1,2}[.)]\s+[A-Z])")
_TERMINAL = re.compile(r"[.!?…]+['\"”’)]*")
_SPACES = re.compile(r"[ \t]*")
_SENTENCE_END = re.compile(rf"[.!?…:]['\"”’)]*(?:\s*(?:{_MARKER.pattern}))*\s*$", re.IGNORECASE)
_TRAILING_PUNCT = re.compile(r"\s*([.!?…]+['\"”’)]*|:)?\s*$")
_CLOSING = "'\"”’)"


@dataclass(frozen=True)
class Marker:
    """One citation marker in a text: its span and the passage numbers it names, in order."""

    start: int
    end: int
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class AnswerSentence:
    """A sentence of an answer with its markers, and where it sat in the answer's layout."""

    text: str  # the sentence with its citation markers, list bullet removed
    bullet: str = ""  # "" running text, "-" bullet item, "1." numbered item
    new_paragraph: bool = False  # a line break came before it


class Renumbered(NamedTuple):
    """Text with markers renumbered 1..k; `order[k - 1]` is the original number of new [k]."""

    text: str
    order: list[int]


def _marker_numbers(marker_text: str) -> tuple[int, ...]:
    numbers: list[int] = []
    rest = marker_text
    for match in _RANGE.finditer(marker_text):
        low, high = int(match.group(1)), int(match.group(2))
        if low <= high <= low + _MAX_RANGE:
            numbers.extend(range(low, high + 1))
            rest = rest.replace(match.group(0), " ", 1)
    numbers.extend(int(digits) for digits in _DIGITS.findall(rest))
    return tuple(dict.fromkeys(numbers))


def _opens_item(text: str, match: re.Match[str]) -> bool:
    """A parenthesized number followed by a word, as in "(1) stretching" (or "(1) and")."""
    return match.group(0).startswith("(") and bool(re.match(r"\s+[A-Za-z]", text[match.end() :]))


def find_markers(text: str) -> list[Marker]:
    """Every citation marker in `text`, in order of appearance.

    "(1) stretching, (2) drinking" is an enumeration, not two citations: when two or more
    parenthesized numbers each open a clause, none of those is taken as a marker.
    """
    matches = list(_MARKER.finditer(text))
    enumerators = {m.start() for m in matches if _opens_item(text, m)}
    if len(enumerators) < 2:
        before = {m.start(): text[: m.start()].rstrip() for m in matches}
        # A single one counts as a list item only where a clause starts.
        enumerators = {s for s in enumerators if not before[s] or before[s][-1] in ":;("}
    return [
        Marker(m.start(), m.end(), _marker_numbers(m.group(0)))
        for m in matches
        if m.start() not in enumerators
    ]


def cited_numbers(text: str) -> list[int]:
    """Passage numbers cited in `text`, each once, in order of first appearance."""
    return list(dict.fromkeys(n for marker in find_markers(text) for n in marker.numbers))


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" +([.,;:!?…])", r"\1", text)  # "cramps [1] ." -> "cramps."
    text = re.sub(r"([.,;:])(?:\s*\1)+", r"\1", text)  # ",," left where a marker sat
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
    return text.strip()


def parse_citations(sentence: str) -> tuple[str, list[int]]:
    """(`sentence` without markers or "According to source [1]," lead-ins, numbers it cites)."""
    numbers: list[int] = []
    lead_in = _LEAD_IN.match(sentence)
    if lead_in:
        cited = lead_in.group("m1") or lead_in.group("m2") or ""
        numbers.extend(_marker_numbers(cited))
        sentence = sentence[lead_in.end() :]
    pieces, last = [], 0
    for marker in find_markers(sentence):
        pieces.append(sentence[last : marker.start])
        numbers.extend(marker.numbers)
        last = marker.end
    pieces.append(sentence[last:])
    core = _tidy("".join(pieces))
    return core[:1].upper() + core[1:], list(dict.fromkeys(numbers))


def strip_markers(text: str) -> str:
    """`text` without any citation markers or "According to source [1]," lead-ins."""
    return parse_citations(text)[0]


def with_markers(sentence: str, numbers: list[int]) -> str:
    """`sentence` (without markers) with "[n]" markers inserted before its final punctuation."""
    sentence = sentence.strip()
    if not numbers:
        return sentence
    markers = "".join(f"[{n}]" for n in dict.fromkeys(numbers))
    match = _TRAILING_PUNCT.search(sentence)
    body, punct = sentence[: match.start()], match.group(1) or ""
    if punct and punct[-1] in _CLOSING:  # 'the question "why do calves cramp."' keeps its quote whole
        return f"{body}{punct} {markers}"
    return f"{body} {markers}{punct}"


def normalize_sentence(sentence: str, n_shown: int) -> str:
    """One sentence with canonical "[n]" markers at its end; markers naming no shown passage go."""
    core, numbers = parse_citations(sentence)
    return with_markers(core, [n for n in numbers if 1 <= n <= n_shown])


def _boundaries(block: str) -> list[int]:
    """Offsets in `block` where a sentence ends (after its punctuation and trailing markers)."""
    cuts = []
    for match in _TERMINAL.finditer(block):
        end = match.end()
        while (marker := _MARKER.match(block, _SPACES.match(block, end).end())) is not None:
            end = marker.end()
        rest = block[end:]
        if not rest.strip():
            continue
        if not rest[:1].isspace() and end == match.end():
            continue  # "1.5", "e.g.,", "U.S." : no space after the period
        following = rest.lstrip()[:1]
        if not (following.isupper() or following.isdigit() or following in "\"“‘'(["):
            continue
        word = re.search(r"([\w.]+)$", block[: match.start()])
        token = word.group(1).lower().rstrip(".") if word else ""
        if match.group(0).startswith(".") and (
            token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())
        ):
            continue
        cuts.append(end)
    return cuts


def _blocks(text: str) -> list[tuple[str, str, bool]]:
    """(block text, bullet, new_paragraph) per list item or paragraph of running text."""
    text = _INLINE_ENUMERATOR.sub("\n", text.replace("\r\n", "\n"))
    blocks: list[tuple[str, str, bool]] = []
    line_break = False
    for line in text.split("\n"):
        if not line.strip():
            line_break = True
            continue
        bullet_match = _BULLET.match(line)
        if bullet_match:
            bullet = "-" if bullet_match.group("dash") else "1."
            blocks.append((line[bullet_match.end() :].strip(), bullet, True))
        elif blocks and not line_break and not blocks[-1][1] and not _ends_sentence(blocks[-1][0]):
            # A wrapped line continues the sentence above it.
            previous, _, paragraph = blocks[-1]
            blocks[-1] = (f"{previous} {line.strip()}", "", paragraph)
        else:
            blocks.append((line.strip(), "", bool(blocks)))
        line_break = False
    return blocks


def _ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text))


def split_answer(text: str) -> list[AnswerSentence]:
    """The sentences of an answer with their markers, list bullets and paragraph breaks."""
    sentences: list[AnswerSentence] = []
    for block, bullet, new_paragraph in _blocks(text):
        start = 0
        for index, cut in enumerate([*_boundaries(block), len(block)]):
            piece = block[start:cut].strip()
            start = cut
            if piece:
                first = index == 0
                sentences.append(
                    AnswerSentence(piece, bullet if first else "", new_paragraph and first)
                )
    return sentences


def first_sentence_end(text: str) -> int | None:
    """Where the first sentence of one line of running text ends (after its markers), once the
    next sentence has begun; None until then. For text that is still arriving (bot/lead.py)."""
    cuts = _boundaries(text)
    return cuts[0] if cuts else None


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, each with the citation markers that follow it."""
    return [sentence.text for sentence in split_answer(text)]


def join_sentences(sentences: list[AnswerSentence]) -> str:
    """Sentences back into one text, keeping list items on their own lines."""
    parts: list[str] = []
    item_number = 0
    for sentence in sentences:
        if sentence.bullet:
            item_number = item_number + 1 if sentence.bullet == "1." else 0
            prefix = f"{item_number}." if sentence.bullet == "1." else "-"
            parts.append(f"\n{prefix} {sentence.text}")
        elif sentence.new_paragraph and parts:
            item_number = 0
            parts.append(f"\n\n{sentence.text}")
        else:
            parts.append(f" {sentence.text}" if parts else sentence.text)
    return re.sub(r"^\n+", "", "".join(parts)).strip()


def renumber(text: str) -> Renumbered:
    """Markers renumbered 1..k in order of first appearance, written as "[n]" each.

    Adjacent markers are merged, deduplicated and sorted ("[3][1][3]" -> "[1][2]").
    """
    order = cited_numbers(text)
    new_number = {old: index + 1 for index, old in enumerate(order)}
    pieces, last, group = [], 0, []
    markers = find_markers(text)
    for index, marker in enumerate(markers):
        if not group:
            pieces.append(text[last : marker.start])
        group.extend(new_number[n] for n in marker.numbers)
        last = marker.end
        following = markers[index + 1] if index + 1 < len(markers) else None
        if following is None or text[marker.end : following.start].strip():
            pieces.append("".join(f"[{n}]" for n in sorted(set(group))))
            group = []
    pieces.append(text[last:])
    return Renumbered("".join(pieces), order)
