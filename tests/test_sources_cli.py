"""`crampbot sources …` end to end: real leaflets built at test time, a temporary data folder,
the real embedder and index, and the bot (fake generator) answering from the new leaflet."""
from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import pytest

import cli
from corpus import sample_leaflets as leaflets

QUESTION = "When does the Riverside vein clinic run?"
URL = "https://riverside-veins.example/leaflets/117"


@pytest.fixture
def clinic(tmp_path, monkeypatch, embedder):
    """A data folder of its own, the leaflets, and a way to run `crampbot` in-process."""
    data = tmp_path / "data"
    monkeypatch.setenv("CRAMPBOT_DATA_DIR", str(data))
    folder = tmp_path / "leaflets"
    folder.mkdir()
    files = {"pdf": leaflets.build_pdf(folder / "Vein Clinic Leaflet.pdf"),
             "docx": leaflets.build_docx(folder / "stockings.docx"),
             "html": leaflets.build_html(folder / "veins-page.html"),
             "scan": leaflets.build_scanned_pdf(folder / "scanned.pdf")}
    embedded: list[str] = []
    real_embed = embedder.embed
    monkeypatch.setattr(embedder, "embed", lambda texts: embedded.extend(texts) or real_embed(texts))

    class Clinic:
        def run(self, capsys, *argv) -> tuple[int, str, str]:
            code = cli.main(list(argv))
            out, err = capsys.readouterr()
            return code, out, err

    clinic = Clinic()
    clinic.data, clinic.files, clinic.embedded = data, files, embedded
    return clinic


def _settings():
    from bot.settings import load_settings

    return load_settings("default", generation={"backend": "fake"})


def _ask(question: str):
    from bot.generation.fake import FakeGenerator
    from bot.pipeline import CrampBot

    return CrampBot(_settings(), generator=FakeGenerator()).ask(question)


def _index_bytes(data) -> dict[str, bytes]:
    index = data / "index" / "default"
    return {p.name: p.read_bytes() for p in index.iterdir()} | {
        "library": (data / "sources" / "manifest.json").read_bytes()}


def test_a_question_only_the_new_leaflet_answers_is_answered_then_not_after_remove(clinic, capsys):
    code, out, _ = clinic.run(capsys, "sources", "add", str(clinic.files["pdf"]), "--url", URL,
                              "--reviewed-by", "Dr A. Patel", "--reviewed-on", "2026-03-01")
    assert code == 0, out
    assert "added vein-clinic-leaflet: Compression stockings, varicose veins and calf cramps" in out
    assert "(pypdf" in out and "3 pages" in out

    answer = _ask(QUESTION)
    cited = [c.passage for c in answer.citations]
    assert not answer.declined and cited[0].source == "vein-clinic-leaflet.pdf"
    assert "every Tuesday morning from eight until noon" in answer.text
    assert (cited[0].page, cited[0].url, cited[0].reviewed_by, cited[0].reviewed_on) == (
        2, URL, "Dr A. Patel", "2026-03-01")
    assert cited[0].title == "Compression stockings, varicose veins and calf cramps"

    code, out, _ = clinic.run(capsys, "sources", "remove", "vein-clinic-leaflet")
    assert code == 0 and "removed vein-clinic-leaflet" in out
    after = _ask(QUESTION)
    assert after.declined  # the shipped sources do not cover it
    assert all(c.passage.source != "vein-clinic-leaflet.pdf" for c in after.citations)
    assert "Tuesday" not in after.text


def test_originals_are_kept_byte_for_byte_with_a_manifest_entry(clinic, capsys):
    pdf = clinic.files["pdf"]
    assert clinic.run(capsys, "sources", "add", str(pdf), "--lang", "en", "--url", URL)[0] == 0
    stored = clinic.data / "sources" / "originals" / "vein-clinic-leaflet.pdf"
    assert stored.read_bytes() == pdf.read_bytes()
    entry = json.loads((clinic.data / "sources" / "manifest.json").read_text())["vein-clinic-leaflet"]
    assert entry["sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    assert (entry["converter"], entry["original_name"], entry["url"], entry["language"]) == (
        "pypdf", pdf.name, URL, "en")
    assert entry["converter_version"]

    code, out, _ = clinic.run(capsys, "sources", "show", "vein-clinic-leaflet")
    assert code == 0
    tuesday = next(block for block in out.split("\n\n") if "every Tuesday morning" in block)
    assert " page 2 (The Tuesday vein clinic) chars " in tuesday
    # The span printed indexes the converted text kept beside the original.
    start, end = map(int, tuesday.split(" chars ")[1].split("\n")[0].split("-"))
    text = (clinic.data / "sources" / "text" / "vein-clinic-leaflet.txt").read_text()
    assert text[start:end].startswith("The Riverside vein clinic runs every Tuesday")


def test_adding_another_source_embeds_only_its_passages(clinic, capsys):
    assert clinic.run(capsys, "sources", "add", str(clinic.files["pdf"]))[0] == 0
    clinic.embedded.clear()
    code, out, _ = clinic.run(capsys, "sources", "add", str(clinic.files["docx"]))
    assert code == 0
    shown = clinic.run(capsys, "sources", "show", "stockings")[1]
    passages = shown.count("\n[stockings#")
    assert passages >= 3 and len(clinic.embedded) == passages
    assert all("Riverside" in t or "stocking" in t.lower() or "vein" in t.lower()
               for t in clinic.embedded)
    assert f"{passages} embedded, 0 removed" in out


def test_a_failed_conversion_leaves_the_index_and_the_library_as_they_were(clinic, capsys):
    assert clinic.run(capsys, "sources", "add", str(clinic.files["pdf"]))[0] == 0
    before = _index_bytes(clinic.data)
    clinic.embedded.clear()
    code, out, err = clinic.run(capsys, "sources", "add", str(clinic.files["html"]),
                                str(clinic.files["scan"]))
    assert code == 2 and "scanned.pdf has no text layer" in err and "OCR" in err
    assert _index_bytes(clinic.data) == before and clinic.embedded == []
    assert "veins-page" not in (clinic.data / "sources" / "manifest.json").read_text()


def test_sources_list_flags_reviews_older_than_the_setting(clinic, capsys, monkeypatch):
    old = (date.today() - timedelta(days=400)).isoformat()
    assert clinic.run(capsys, "sources", "add", str(clinic.files["html"]), "--reviewed-by",
                      "Nurse Kim", "--reviewed-on", old)[0] == 0
    assert clinic.run(capsys, "sources", "add", str(clinic.files["docx"]))[0] == 0
    out = clinic.run(capsys, "sources", "list")[1]
    lines = dict(line.split("\t", 1) for line in out.splitlines())
    assert "REVIEW DUE: reviewed 400 days ago (corpus.review_after_days = 365)" in lines["veins-page"]
    assert lines["stockings"].endswith("NOT REVIEWED")
    monkeypatch.setenv("CRAMPBOT_CORPUS__REVIEW_AFTER_DAYS", "500")
    out = clinic.run(capsys, "sources", "list")[1]
    assert f"reviewed by Nurse Kim on {old}" in out and "REVIEW DUE" not in out


def test_wrong_input_gets_one_sentence_not_a_traceback(clinic, capsys):
    code, _, err = clinic.run(capsys, "sources", "add", str(clinic.files["pdf"]), "--url",
                              "javascript:alert(1)")
    assert code == 2 and "is not a web address" in err
    code, _, err = clinic.run(capsys, "sources", "remove", "nothing-here")
    assert code == 2 and "no added source 'nothing-here'" in err
    code, _, err = clinic.run(capsys, "sources", "add", str(clinic.files["pdf"]),
                              str(clinic.files["docx"]), "--title", "One title")
    assert code == 2 and "one at a time" in err


def test_a_running_bot_answers_from_a_leaflet_added_after_it_started(clinic, capsys):
    """No restart: the bot that declined before `sources add` answers after it, then declines
    again after `sources remove` (what a server holding one CrampBot does)."""
    from bot.generation.fake import FakeGenerator
    from bot.pipeline import CrampBot

    bot = CrampBot(_settings(), generator=FakeGenerator())
    assert bot.ask(QUESTION).declined
    code, out, _ = clinic.run(capsys, "sources", "add", str(clinic.files["pdf"]), "--url", URL)
    assert code == 0, out
    answer = bot.ask(QUESTION)
    assert not answer.declined and "every Tuesday morning from eight until noon" in answer.text
    assert answer.citations[0].passage.source == "vein-clinic-leaflet.pdf"
    assert clinic.run(capsys, "sources", "remove", "vein-clinic-leaflet")[0] == 0
    after = bot.ask(QUESTION)
    assert after.declined and "Tuesday" not in after.text
