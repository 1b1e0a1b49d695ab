"""Converting real-looking leaflets built at test time: what a passage is cut from."""
from __future__ import annotations

import pytest

from corpus import sample_leaflets as leaflets
from corpus.convert import ConversionError, convert_file, drop_page_furniture, join_hyphenation
from corpus.sections import split_sections


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("leaflets")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_pdf_loses_page_furniture_and_hyphenation_but_keeps_every_sentence_and_page(folder):
    converted = convert_file(leaflets.build_pdf(folder / "leaflet.pdf"))
    flat = _flat(converted.text)
    assert leaflets.HEADER not in flat and leaflets.FOOTER not in flat
    assert "Page 1 of 3" not in flat and "www.riverside-veins.example" not in flat
    assert "circumference" in flat and "circum-" not in flat
    for sentence in leaflets.all_sentences():  # two columns read one after the other
        assert sentence in flat
    assert converted.converter == "pypdf" and converted.converter_version
    tuesday = converted.text.index("The Riverside vein clinic runs")
    assert converted.page_at(tuesday) == 2 and converted.page_at(0) == 1
    assert {s.heading for s in split_sections(converted.text)} >= set(leaflets.LEAFLET)


@pytest.mark.parametrize("build", [leaflets.build_docx, leaflets.build_html])
def test_docx_and_html_headings_become_sections_and_chrome_is_dropped(folder, build):
    path = build(folder / f"leaflet{'.docx' if build is leaflets.build_docx else '.html'}")
    converted = convert_file(path)
    sections = {s.heading for s in split_sections(converted.text)}
    assert sections >= set(leaflets.LEAFLET) | {"Stocking classes"}
    flat = _flat(converted.text)
    assert all(sentence in flat for sentence in leaflets.all_sentences())
    assert leaflets.HEADER not in flat and leaflets.FOOTER not in flat
    assert "cookie" not in flat.lower() and "Services" not in flat
    assert "| Class 2 | 23-32 mmHg | Moderate varicose veins |" in converted.text
    assert converted.page_starts == ()


def test_scanned_pdf_is_refused_with_a_message_saying_what_to_do(folder):
    with pytest.raises(ConversionError, match="no text layer.*OCR"):
        convert_file(leaflets.build_scanned_pdf(folder / "scan.pdf"))


def test_a_pdf_with_some_scanned_pages_is_converted_with_a_warning_naming_them(folder):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.append(str(leaflets.build_pdf(folder / "text.pdf")))
    writer.append(str(leaflets.build_scanned_pdf(folder / "scan-page.pdf")))
    writer.write(str(folder / "mixed.pdf"))
    converted = convert_file(folder / "mixed.pdf")
    assert converted.warnings == ("mixed.pdf: page 4 has no text layer (scanned?); its text "
                                  "is not included.",)
    assert leaflets.FACTS[0] in _flat(converted.text)
    assert convert_file(folder / "text.pdf").warnings == ()


def test_unsupported_and_damaged_files_are_refused(folder):
    (folder / "notes.rtf").write_text("{\\rtf1 hello}")
    with pytest.raises(ConversionError, match=r"\.pdf, \.docx"):
        convert_file(folder / "notes.rtf")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with pytest.raises(ConversionError, match="broken.pdf"):
        convert_file(folder / "broken.pdf")


def test_furniture_needs_repetition_and_own_hyphens_are_kept():
    def body(page: str) -> str:
        lines = [f"Line {word} of page {page}." for word in "one two three four five six".split()]
        return "\n".join(lines[:3] + ["A sentence that recurs, 2 of 3."] + lines[3:])

    pages = [f"Clinic news\n{body(page)}\nPage {n} of 3" for n, page in enumerate("abc", 1)]
    # The recurring sentence is in the body of each page, not at its edges: it stays.
    assert drop_page_furniture(pages) == [body(page) for page in "abc"]
    # On two pages a repeated line could be text; only the bare page number goes.
    assert drop_page_furniture(["Same line\n1", "Same line\n2"]) == ["Same line", "Same line"]
    assert join_hyphenation(["good self-care helps; self-\ncare and calf circum-\nference"]) == [
        "good self-care helps; self-care and calf circumference"]
