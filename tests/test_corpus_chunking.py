"""Sections, passages and ingest on the real corpus, plus a clinic's own file dropped in."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from corpus.errors import CorpusError
from corpus.ingest import corpus_fingerprint, corpus_stamp, load_passages
from corpus.sections import heading_text, split_sections
from corpus.settings import CorpusSettings

SETTINGS = CorpusSettings()
FIXTURES = Path(__file__).parent / "fixtures"
BASELINE_PRESET = Path(__file__).parent.parent / "bot" / "presets" / "baseline.json"
RAW = {path.name: path.read_text(encoding="utf-8") for path in sorted(SETTINGS.raw_dir.glob("*.txt"))}
FILE_000, FILE_002 = sorted(RAW)


@pytest.fixture(scope="module")
def passages():
    return load_passages(SETTINGS)


@pytest.fixture(scope="module")
def baseline_settings():
    return CorpusSettings(**json.loads(BASELINE_PRESET.read_text(encoding="utf-8"))["corpus"])


def test_raw_files_are_untouched():
    digests = {name: hashlib.sha256((SETTINGS.raw_dir / name).read_bytes()).hexdigest()[:16]
               for name in RAW}
    assert digests == {FILE_000: "6ab86356921a13cb", FILE_002: "db11e1b645692c44"}


def headings(text: str) -> list[str]:
    return [section.heading for section in split_sections(text)]


def test_headings_of_file_000_skip_its_wrapped_lines():
    assert headings(RAW[FILE_000]) == [
        "", "Possible reasons", "Why reduces the calf muscle during sleep?", "One more reason"]


def test_headings_of_file_002():
    assert headings(RAW[FILE_002]) == [
        "", "Causes of night pain in calves of legs", "What to do when cramps in calf muscle",
        "Advice 2: Why drives caviar", "Advice 3: Why leg cramps cramp", "Advice 4: Why reduces muscle"]


def test_short_line_continued_in_lower_case_is_not_a_heading():
    # File 000's wrap "Exactly because of this reason\nleg cramps occur." as a line of its own.
    text = "Vitamin D helps absorb calcium.\nExactly because of this reason\nleg cramps occur.\n"
    assert headings(text) == [""]
    assert heading_text("Exactly because of this reason", "calcium.", "leg cramps occur.") is None
    assert heading_text("Exactly because of this reason", "calcium.", "Leg cramps occur.") == \
        "Exactly because of this reason"


def test_unfinished_lines_and_their_successors_are_not_headings():
    text = "Muscles need magnesium and\nVitamin D\nAlso calcium.\n"
    assert headings(text) == [""]
    assert heading_text("Muscles need magnesium and", None, "Vitamin D") is None
    assert heading_text("Vitamin D", "Muscles need magnesium and", "Also calcium.") is None


def test_sentences_and_long_lines_are_not_headings():
    assert heading_text("Good soothing mint tea.", "fees.", "") is None
    assert heading_text("Old age", "seizures.", "") == "Old age"
    assert heading_text("A" + " word" * 15, "", "") is None
    assert heading_text("## Stretching before bed", "", "") == "Stretching before bed"


def test_every_passage_is_its_raw_slice(passages, baseline_settings):
    for settings_passages in (passages, load_passages(baseline_settings)):
        for p in settings_passages:
            raw = RAW[p.source]
            assert p.original == raw[p.raw_start:p.raw_end]
            assert 0 <= p.raw_start < p.raw_end <= len(raw)


def test_passages_have_sections_titles_and_ordered_ids(passages):
    assert {p.section for p in passages} == {
        "Why the calf muscles cramp", "Possible reasons", "Why does the calf muscle cramp during sleep?",
        "One more reason", "Night cramps in the calves: causes and what to do",
        "Causes of night pain in the calves", "What to do about calf muscle cramps",
        "Why the calves cramp", "Why the legs cramp", "Why muscles cramp"}
    assert {p.title for p in passages} == {"Why the calf muscles cramp",
                                           "Night cramps in the calves: causes and what to do"}
    for name in RAW:
        ids = [p.id for p in passages if p.source == name]
        assert ids == [f"{Path(name).stem}#{n}" for n in range(len(ids))]


def test_passages_are_whole_sentences_of_the_target_size(passages):
    section_titles = {s.heading for text in RAW.values() for s in split_sections(text)}
    for p in passages:
        assert SETTINGS.min_passage_chars <= len(p.text) and p.raw_end - p.raw_start <= SETTINGS.chunk_size
        assert p.text[0].isupper() and p.text[-1] in ".!?)\"", p.id
        assert not any(title and p.original.startswith(title) for title in section_titles), p.id
    assert 30 <= len(passages) <= 50


def test_neighbours_overlap_by_at_most_the_overlap(passages):
    overlaps = [prev.raw_end - p.raw_start for prev, p in zip(passages, passages[1:])
                if prev.source == p.source and p.raw_start < prev.raw_end]
    assert overlaps and max(overlaps) <= SETTINGS.chunk_overlap


def test_passage_texts_are_cleaned(passages):
    texts = " ".join(p.text for p in passages)
    assert "kiwi and honey. In addition" in texts
    assert "caviar" not in texts and "neponaslyshke" not in texts
    assert "It is for exactly this reason that leg cramps occur." in texts


def test_baseline_is_exactly_the_tutorial_splitter(baseline_settings):
    baseline = load_passages(baseline_settings)
    splitter = RecursiveCharacterTextSplitter(chunk_size=baseline_settings.chunk_size,
                                              chunk_overlap=baseline_settings.chunk_overlap)
    expected = [chunk for text in RAW.values() for chunk in splitter.split_text(text)]
    assert [p.text for p in baseline] == expected
    assert all(p.section == "" and p.text == p.original for p in baseline)


def clinic_dir(tmp_path: Path) -> CorpusSettings:
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    shutil.copy(FIXTURES / "clinic_leaflet.md", raw_dir)
    return CorpusSettings(raw_dir=raw_dir, sources_file=tmp_path / "sources.json")


def test_a_dropped_in_markdown_file_is_ingested(tmp_path):
    settings = clinic_dir(tmp_path)
    for name in RAW:
        shutil.copy(SETTINGS.raw_dir / name, settings.raw_dir)
    passages = load_passages(settings)
    leaflet = [p for p in passages if p.source == "clinic_leaflet.md"]
    assert [p.id for p in leaflet] == ["clinic_leaflet#0", "clinic_leaflet#1", "clinic_leaflet#2"]
    assert {p.title for p in leaflet} == {"Night cramps: a leaflet from our clinic"}
    assert [p.section for p in leaflet] == [
        "Night cramps: a leaflet from our clinic", "Stretching before bed", "When to see a doctor"]
    assert "Hold the stretch for thirty seconds" in leaflet[1].text
    # Without the manifest, the raw files are titled by their first heading.
    assert {p.title for p in passages if p.source == FILE_000} == {"Possible reasons"}


def test_a_tiny_section_joins_its_neighbour_without_its_heading(tmp_path):
    leaflet = load_passages(clinic_dir(tmp_path))
    joined = next(p for p in leaflet if "Drink water." in p.text)
    assert joined.section == "Stretching before bed" and "## Tip" in joined.original
    assert "Tip" not in joined.text
    assert all(len(p.text) >= SETTINGS.min_passage_chars for p in leaflet)


def test_a_file_without_headings_is_titled_by_its_name(tmp_path):
    settings = clinic_dir(tmp_path)
    (settings.raw_dir / "clinic_leaflet.md").unlink()
    (settings.raw_dir / "stretching-tips_2024.txt").write_text(
        "Stretch your calves every evening. Hold each stretch for thirty seconds.", encoding="utf-8")
    [passage] = load_passages(settings)
    assert passage.title == passage.section == "Stretching tips 2024"


@pytest.mark.parametrize(("content", "message"), [
    (b"PK\x03\x04\x00\x00binary", "binary"),
    ("Calf cramps".encode("cp1251") + b" \xe8\xea\xf0\xfb", "UTF-8"),
])
def test_undecodable_files_are_corpus_errors(tmp_path, content, message):
    settings = clinic_dir(tmp_path)
    (settings.raw_dir / "broken.txt").write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        load_passages(settings)


def test_empty_folder_and_bad_manifest_are_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="no .txt or .md"):
        load_passages(CorpusSettings(raw_dir=tmp_path))
    settings = clinic_dir(tmp_path)
    settings.sources_file.write_text('{"clinic_leaflet.md": {"titel": "typo"}}', encoding="utf-8")
    with pytest.raises(CorpusError, match="clinic_leaflet.md"):
        load_passages(settings)
    settings.sources_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(CorpusError, match="manifest"):
        load_passages(settings)


def test_overlap_not_below_chunk_size_is_a_corpus_error():
    with pytest.raises(CorpusError, match="chunk_overlap"):
        load_passages(SETTINGS.model_copy(update={"chunk_size": 100, "chunk_overlap": 100}))


def test_fingerprint_follows_files_settings_and_glossary(tmp_path):
    settings = clinic_dir(tmp_path)
    glossary = tmp_path / "glossary.tsv"
    glossary.write_text("phrase\treplacement\tnote\n", encoding="utf-8")
    settings = settings.model_copy(update={"glossary_file": glossary})
    first = corpus_fingerprint(settings)
    assert corpus_fingerprint(settings) == first
    assert corpus_fingerprint(settings.model_copy(update={"chunk_size": 300})) != first

    glossary.write_text("phrase\treplacement\tnote\nfoo\tbar\tnote\n", encoding="utf-8")
    assert corpus_fingerprint(settings) != first
    raw_only = settings.model_copy(update={"clean": False})
    before = corpus_fingerprint(raw_only)
    glossary.write_text("phrase\treplacement\tnote\n", encoding="utf-8")
    assert corpus_fingerprint(raw_only) == before  # no cleaning, so the glossary does not matter

    leaflet = settings.raw_dir / "clinic_leaflet.md"
    leaflet.write_bytes(leaflet.read_bytes() + b"\nOne more sentence.\n")
    assert corpus_fingerprint(settings) not in {first, before}


def test_stamp_changes_with_the_files_the_fingerprint_reads(tmp_path):
    settings = clinic_dir(tmp_path)
    first = corpus_stamp(settings)
    assert corpus_stamp(settings) == first
    assert corpus_stamp(settings.model_copy(update={"chunk_size": 300})) != first
    leaflet = settings.raw_dir / "clinic_leaflet.md"
    leaflet.write_bytes(leaflet.read_bytes() + b"\nOne more sentence.\n")
    assert corpus_stamp(settings) != first
    (settings.raw_dir / "second.md").write_text("# Second\nCalves cramp at night.\n", "utf-8")
    assert len(corpus_stamp(settings)) == len(first) + 1


def test_stamp_reads_no_source_text(tmp_path, monkeypatch):
    """The question path keys its normalizer on the stamp: no source is read per question."""
    settings = clinic_dir(tmp_path)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self}"))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: pytest.fail(f"read {self}"))
    corpus_stamp(settings)
