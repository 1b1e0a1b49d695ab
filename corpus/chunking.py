"""Cutting a source into passages: a few whole sentences of one section, tied to their raw span.

LangChain's RecursiveCharacterTextSplitter does the cutting. In section-aware mode it runs on the
RAW body of each section with paragraph and sentence separators (so every chunk is an exact raw
slice and `add_start_index` gives its span), and each chunk is cleaned afterwards. With
`section_aware=False` it is exactly the LangChain tutorial splitter over the whole file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from corpus.cleaning import GLUED_SENTENCE_END, clean_text, normalize
from corpus.errors import CorpusError
from corpus.passage import Passage
from corpus.sections import Section, display_heading, split_sections
from corpus.settings import CorpusSettings
from corpus.sources import SourceText

log = logging.getLogger(__name__)

# Separators for the splitter, coarsest first; all regexes without capturing groups (LangChain
# wraps each in one group for re.split). A single line break is NOT a separator: file 000 wraps
# lines mid-sentence, and a break after a full stop is already a sentence end.
_PARAGRAPH = r"\n\s*\n"
_SENTENCE = r"(?<=[.!?])[\"')»]*\s+|" + GLUED_SENTENCE_END
_CLAUSE = r"(?<=[;:])\s+"
SEPARATORS = [_PARAGRAPH, _SENTENCE, _CLAUSE, r"\s+", ""]


@dataclass(frozen=True)
class _Draft:
    """A passage before its text is made: its section and the raw spans it covers."""

    section: str
    spans: tuple[tuple[int, int], ...]  # one span; two only when a tiny section was merged

    @property
    def start(self) -> int:
        return self.spans[0][0]

    @property
    def end(self) -> int:
        return self.spans[-1][1]


def sentence_splitter(settings: CorpusSettings) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        separators=SEPARATORS,
        is_separator_regex=True,
        # "end": each piece keeps its trailing separator, so merged pieces are contiguous raw
        # text and `add_start_index` can find them.
        keep_separator="end",
        add_start_index=True,
    )


def tutorial_splitter(settings: CorpusSettings) -> RecursiveCharacterTextSplitter:
    """The splitter of the LangChain RAG tutorial, unchanged (the baseline)."""
    return RecursiveCharacterTextSplitter(
        chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap, add_start_index=True
    )


def chunk_source(source: SourceText, title: str, settings: CorpusSettings) -> list[Passage]:
    """The passages of one source, in order, with ids "<stem>#0", "<stem>#1", ..."""
    if settings.chunk_overlap >= settings.chunk_size:
        raise CorpusError(f"corpus.chunk_overlap ({settings.chunk_overlap}) must be smaller than "
                          f"corpus.chunk_size ({settings.chunk_size}).")
    drafts = _merge_short(source.text, _drafts(source.text, title, settings), settings)
    return [
        Passage(
            id=f"{source.stem}#{n}",
            source=source.name,
            title=title,
            section=draft.section,
            text=_passage_text(source.text, draft, settings),
            raw_start=draft.start,
            raw_end=draft.end,
            original=source.text[draft.start:draft.end],
        )
        for n, draft in enumerate(drafts)
    ]


def _drafts(raw: str, title: str, settings: CorpusSettings) -> list[_Draft]:
    if not settings.section_aware:
        return [_Draft("", (span,)) for span in _chunk_spans(tutorial_splitter(settings), raw, 0)]
    splitter = sentence_splitter(settings)
    drafts = []
    for section in split_sections(raw):
        name = _section_title(section, title, settings)
        body = raw[section.start:section.end]
        drafts += [_Draft(name, (span,)) for span in _chunk_spans(splitter, body, section.start)]
    return drafts


def _chunk_spans(splitter: RecursiveCharacterTextSplitter, text: str,
                 offset: int) -> list[tuple[int, int]]:
    """Raw (start, end) of each chunk of `text`, which starts at `offset` in the raw file."""
    spans = []
    for doc in splitter.create_documents([text]):
        start = offset + doc.metadata["start_index"]
        spans.append((start, start + len(doc.page_content)))
    return spans


def _section_title(section: Section, title: str, settings: CorpusSettings) -> str:
    """The heading shown to users; text before the first heading is filed under the source title."""
    if not section.heading:
        return title
    if not settings.clean:
        return section.heading
    return clean_text(display_heading(section.heading), settings).rstrip(".:;")


def _passage_text(raw: str, draft: _Draft, settings: CorpusSettings) -> str:
    pieces = [raw[start:end] for start, end in draft.spans]
    if not settings.clean:
        return "\n\n".join(piece.strip() for piece in pieces)
    return " ".join(clean_text(piece, settings) for piece in pieces)


def _merge_short(raw: str, drafts: list[_Draft], settings: CorpusSettings) -> list[_Draft]:
    """Fold passages shorter than `min_passage_chars` into a neighbour, same section first."""
    drafts = list(drafts)
    i = 0
    while i < len(drafts):
        if len(_passage_text(raw, drafts[i], settings)) >= settings.min_passage_chars:
            i += 1
            continue
        host = _merge_host(drafts, i)
        if host is None:
            log.warning("dropping a %d-character text that has no neighbour to join",
                        len(normalize(raw[drafts[i].start:drafts[i].end])))
            del drafts[i]
            continue
        low, high = sorted((host, i))
        drafts[low:high + 1] = [_joined(drafts[low], drafts[high], drafts[host].section)]
        i = low
    return drafts


def _merge_host(drafts: list[_Draft], i: int) -> int | None:
    """The neighbour a short passage joins: previous or next of its section, else any neighbour."""
    neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(drafts)]
    same_section = [j for j in neighbours if drafts[j].section == drafts[i].section]
    return (same_section or neighbours or [None])[0]


def _joined(first: _Draft, second: _Draft, section: str) -> _Draft:
    if first.section != second.section:
        # Across a heading: keep both spans, so the heading line is not read as passage text.
        return _Draft(section, first.spans + second.spans)
    # Neighbours in one section overlap or touch: their facing spans become one.
    bridge = (first.spans[-1][0], max(first.spans[-1][1], second.spans[0][1]))
    return _Draft(section, first.spans[:-1] + (bridge,) + second.spans[1:])
