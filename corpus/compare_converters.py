"""Compare converters on generated leaflets: `python -m corpus.compare_converters [--out FILE]`.

Builds the leaflets of corpus/sample_leaflets.py (test-time builders needed: requirements-dev.txt)
and scores each converter on what a passage needs: body sentences kept intact, running
headers/footers and page numbers gone, hyphenated words joined, headings found, table rows kept
on one line, and pages known. The table in docs/sources.md was written by this command.
"""
from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from corpus import sample_leaflets as leaflets
from corpus.convert import convert_file
from corpus.sections import split_sections


def _pypdf_plain(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def _markitdown(path: Path) -> str:
    from markitdown import MarkItDown

    return MarkItDown(enable_plugins=False).convert(str(path)).text_content


def _python_docx(path: Path) -> str:
    import docx

    return "\n".join(p.text for p in docx.Document(str(path)).paragraphs)


def _crampbot(path: Path) -> str:
    return convert_file(path).text


def score(text: str, pages_known: bool) -> dict[str, object]:
    flat = " ".join(text.split())
    sentences = leaflets.all_sentences()
    headings = {s.heading.strip() for s in split_sections(text)}
    return {
        "sentences intact": f"{sum(s in flat for s in sentences)}/{len(sentences)}",
        "header/footer lines left": flat.count(leaflets.HEADER) + flat.count(leaflets.FOOTER),
        "page numbers left": flat.count(" of 3"),
        "hyphen splits left": len(re.findall(r"[a-z]- [a-z]", flat)),
        "headings found": f"{len(headings & set(leaflets.LEAFLET))}/{len(leaflets.LEAFLET)}",
        "table rows on one line": sum(all(cell in line for cell in row)
                                      for row in leaflets.TABLE for line in text.splitlines()),
        "page of each passage": "yes" if pages_known else "no",
    }


def compare(folder: Path) -> list[dict[str, object]]:
    files = {
        "pdf": leaflets.build_pdf(folder / "leaflet.pdf"),
        "docx": leaflets.build_docx(folder / "leaflet.docx"),
        "html": leaflets.build_html(folder / "leaflet.html"),
    }
    candidates = [
        ("pdf", "crampbot: pypdf + furniture/hyphen cleanup", _crampbot, True),
        ("pdf", "pypdf 'plain', as is", _pypdf_plain, True),
        ("pdf", "markitdown (pdfminer.six)", _markitdown, False),
        ("docx", "crampbot: markitdown (mammoth)", _crampbot, False),
        ("docx", "python-docx paragraphs", _python_docx, False),
        ("html", "crampbot: markitdown, site chrome removed", _crampbot, False),
        ("html", "markitdown, as is", _markitdown, False),
    ]
    rows = []
    for kind, name, convert, pages in candidates:
        started = time.perf_counter()
        text = convert(files[kind])
        seconds = time.perf_counter() - started
        rows.append({"file": kind, "converter": name, **score(text, pages),
                     "seconds": f"{seconds:.2f}"})
    return rows


def markdown_table(rows: list[dict[str, object]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the table (Markdown) to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        table = markdown_table(compare(Path(folder)))
    print(table)
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
