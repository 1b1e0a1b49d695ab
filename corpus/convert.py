"""Turning a clinic's file (.pdf, .docx, .html, .md, .txt) into the text its passages are cut from.

PDF: pypdf (BSD), page by page, so every passage keeps its page; DOCX and HTML: markitdown (MIT),
whose Markdown headings become sections. docs/sources.md compares these with markitdown on PDF
(it interleaves two-column pages line by line). What no library does for us is done here, on
PDF text only: lines repeated on most pages (running headers and footers) and bare page numbers
are dropped, and words hyphenated at a line end are joined.
"""
from __future__ import annotations

import bisect
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from corpus.errors import CorpusError

CONVERTIBLE_SUFFIXES = (".pdf", ".docx", ".html", ".htm", ".md", ".txt")

# Page furniture: "3", "- 3 -", "Page 3", "Page 3 of 4", "3/4".
_PAGE_NUMBER = re.compile(r"^\W*(?:page|p\.|seite|стр\.?)?\s*\d+\s*(?:(?:of|/|из)\s*\d+)?\W*$",
                          re.IGNORECASE)
# A line that ends in a letter and a hyphen, continued by a lower-case word: "circum-" / "ference".
_HYPHENATED = re.compile(r"(\w*[^\W\d_])-\n([^\W\d_][\w]*)")
# A line repeated on at least this share of the pages (digits ignored) is a header or footer.
_FURNITURE_SHARE = 0.6
# Headers and footers sit in the first or last few lines of a page's extracted text.
_EDGE_LINES = 4
# Fewer non-space characters than this per page means the PDF has no usable text layer.
_MIN_CHARS_PER_PAGE = 20
# Page regions markitdown's HTML converter would otherwise keep as text.
_HTML_CHROME = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form")


class ConversionError(CorpusError):
    """A source file cannot be turned into text (wrong format, damaged, or scanned without text)."""


@dataclass(frozen=True)
class Converted:
    """The text of one converted file and what made it."""

    text: str
    converter: str  # library that did the conversion
    converter_version: str
    page_starts: tuple[int, ...] = field(default=())  # offset where each page begins (PDF only)
    title: str = ""  # the document's own title (PDF metadata, HTML <title>), if it has one
    warnings: tuple[str, ...] = ()  # what a person should check (pages without text)

    def page_at(self, offset: int) -> int | None:
        return page_at(self.page_starts, offset)


def page_at(page_starts: tuple[int, ...] | list[int], offset: int) -> int | None:
    """The 1-based page the character at `offset` is on, or None for formats without pages."""
    if not page_starts:
        return None
    return max(1, bisect.bisect_right(page_starts, offset))


def convert_file(path: Path) -> Converted:
    """The text of `path`; raises ConversionError with a sentence saying what to do."""
    suffix = path.suffix.lower()
    if suffix not in CONVERTIBLE_SUFFIXES:
        raise ConversionError(f"{path.name}: crampbot reads {', '.join(CONVERTIBLE_SUFFIXES)} "
                              "files; save it in one of those formats.")
    if not path.is_file():
        raise ConversionError(f"{path} does not exist or is not a file.")
    data = path.read_bytes()
    if suffix == ".pdf":
        converted = _convert_pdf(path.name, data)
    elif suffix == ".docx":
        converted = _markitdown(path.name, data, ".docx")
    elif suffix in (".html", ".htm"):
        converted = _markitdown(path.name, _without_chrome(data), ".html")
    else:
        converted = Converted(_decode_text(path.name, data), "text", "utf-8")
    if not converted.text.strip():
        raise ConversionError(f"{path.name} contains no text to answer from.")
    return converted


def _decode_text(name: str, data: bytes) -> str:
    if b"\x00" in data:
        raise ConversionError(f"{name} looks like a binary file, not text; save it as UTF-8 text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConversionError(f"{name} is not UTF-8 text (bad byte at position {error.start}); "
                              "save it as UTF-8.") from None


def _convert_pdf(name: str, data: bytes) -> Converted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ConversionError(f"{name} is password-protected; save an unprotected copy.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as error:
        raise ConversionError(f"{name} is not a readable PDF ({type(error).__name__}); export "
                              "it again or save it as .docx.") from None
    if sum(len("".join(p.split())) for p in pages) < _MIN_CHARS_PER_PAGE * max(1, len(pages)):
        raise ConversionError(
            f"{name} has no text layer (it looks scanned: its pages are pictures of text); "
            "run it through OCR (for example ocrmypdf) or add the text as .docx or .txt."
        )
    blank = [str(n) for n, page in enumerate(pages, 1)
             if len("".join(page.split())) < _MIN_CHARS_PER_PAGE]
    pages_have = f"pages {', '.join(blank)} have" if len(blank) > 1 else f"page {''.join(blank)} has"
    warnings = (f"{name}: {pages_have} no text layer (scanned?); its text is not included.",
                ) if blank else ()
    cleaned = join_hyphenation(drop_page_furniture(pages))
    text, starts = "", []
    for page_text in cleaned:
        starts.append(len(text))
        text += page_text.strip("\n") + "\n\n"
    title = (reader.metadata.title or "").strip() if reader.metadata else ""
    return Converted(text, "pypdf", metadata.version("pypdf"), tuple(starts), title, warnings)


def drop_page_furniture(pages: list[str]) -> list[str]:
    """Each page without its running header/footer lines and bare page numbers.

    A header or footer is a line near the top or bottom of the page (where extractors put them)
    that recurs, digits aside ("Page 2 of 3"), on most pages; on a one- or two-page file only
    page numbers can be told apart from text.
    """
    def key(line: str) -> str:
        return re.sub(r"\d+", "#", " ".join(line.split())).lower()

    def edges(lines: list[str]) -> set[str]:
        return {key(line) for line in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:] if line.strip()}

    page_lines = [page.splitlines() for page in pages]
    counts = Counter(k for lines in page_lines for k in edges(lines))
    repeated = {k for k, n in counts.items()
                if len(pages) >= 3 and n >= max(2, _FURNITURE_SHARE * len(pages))}
    kept = []
    for lines in page_lines:
        edge = set(range(_EDGE_LINES)) | set(range(len(lines) - _EDGE_LINES, len(lines)))
        kept.append("\n".join(
            line for i, line in enumerate(lines)
            if not (i in edge and key(line) in repeated) and not _PAGE_NUMBER.match(line.strip())))
    return kept


def join_hyphenation(pages: list[str]) -> list[str]:
    """Words split with a hyphen at a line end joined again ("circum-\\nference").

    Kept hyphenated only when the document writes the hyphenated form elsewhere on one line
    ("self-care"), the one case where the hyphen is the word's own.
    """
    whole = "\n".join(pages)
    own_hyphens = {m.group(0).lower() for m in re.finditer(r"\w+-\w+", whole)}

    def join(found: re.Match) -> str:
        first, second = found.group(1), found.group(2)
        if f"{first}-{second}".lower() in own_hyphens or second[0].isupper():
            return f"{first}-{second}"
        return f"{first}{second}"

    return [_HYPHENATED.sub(join, page) for page in pages]


def _without_chrome(data: bytes) -> bytes:
    """The page without navigation, header, footer, scripts and forms (site chrome, not content)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup.find_all(_HTML_CHROME):
        tag.decompose()
    return str(soup).encode("utf-8")


def _markitdown(name: str, data: bytes, extension: str) -> Converted:
    from markitdown import MarkItDown, StreamInfo

    try:
        result = MarkItDown(enable_plugins=False).convert_stream(
            io.BytesIO(data), stream_info=StreamInfo(extension=extension, charset="utf-8"))
    except Exception as error:  # markitdown wraps each format's own errors in its own types
        raise ConversionError(f"{name} could not be converted ({type(error).__name__}); open it, "
                              "save it again and retry, or save it as .txt.") from None
    return Converted(_tidy_markdown(result.text_content), "markitdown",
                     metadata.version("markitdown"), title=(result.title or "").strip())


def _tidy_markdown(text: str) -> str:
    # A Word table without a header row comes out with an empty one: "|  |  |" then "| --- |".
    text = re.sub(r"^\|(?:\s*\|)+\s*\n\|(?:\s*-+\s*\|)+\s*\n", "", text, flags=re.MULTILINE)
    return text.strip() + "\n"
