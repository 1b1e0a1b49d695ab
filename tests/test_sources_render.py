"""Source cards show a clinic source's governance: title linked to its page, page, review."""
from __future__ import annotations

from dataclasses import replace

from bot.answer import Citation
from bot.render import render_source_card
from corpus.passage import Passage

LEAFLET = Passage("vein-clinic#2", "vein-clinic.pdf", "Veins & <cramps>", "The Tuesday vein clinic",
                  "The Riverside vein clinic runs every Tuesday morning.", 10, 62,
                  "The Riverside vein clinic runs every Tuesday morning.", page=2,
                  url="https://riverside.example/veins?a=1&b=2", reviewed_by="Dr A. Patel",
                  reviewed_on="2026-03-01")


def card(passage: Passage) -> str:
    return render_source_card(Citation(1, passage, 0.9, passage.text))


def test_card_links_the_title_in_a_new_tab_and_shows_page_and_review():
    html = card(LEAFLET)
    assert ('<a href="https://riverside.example/veins?a=1&amp;b=2" target="_blank" '
            'rel="noopener">Veins &amp; &lt;cramps&gt;</a>') in html
    assert "The Tuesday vein clinic · page 2" in html
    assert "Reviewed by Dr A. Patel on 1 March 2026" in html


def test_card_without_governance_looks_as_before_and_never_links_other_schemes():
    shipped = replace(LEAFLET, page=None, url="", reviewed_by="", reviewed_on="")
    html = card(shipped)
    assert "<a " not in html and "Reviewed" not in html and "page" not in html
    assert "javascript" not in card(replace(LEAFLET, url="javascript:alert(1)"))
    assert "Reviewed on 1 March 2026" in card(replace(LEAFLET, reviewed_by=""))
    assert "Reviewed by Dr A. Patel</span>" in card(replace(LEAFLET, reviewed_on=""))


def test_a_russian_reader_gets_the_card_texts_from_the_russian_catalog():
    html = render_source_card(Citation(1, LEAFLET, 0.9, LEAFLET.text), "ru")
    assert "The Tuesday vein clinic · страница 2" in html
    assert "Содержание проверил специалист Dr A. Patel, дата проверки: 01.03.2026" in html
    assert "Reviewed" not in html
