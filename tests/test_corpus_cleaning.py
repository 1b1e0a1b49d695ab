"""Cleaning: normalization and the glossary repairs, on sentences taken from the real raw texts."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from corpus.cleaning import Glossary, apply_glossary, clean_text, load_glossary, normalize
from corpus.errors import CorpusError
from corpus.settings import CorpusSettings

SETTINGS = CorpusSettings()
RAW = {path.name[:3]: path.read_text(encoding="utf-8")
       for path in sorted(SETTINGS.raw_dir.glob("*.txt"))}


def raw_fragment(file: str, fragment: str) -> str:
    """`fragment`, after checking it really is in raw file `file` ("000" or "002")."""
    assert fragment in RAW[file], f"not in {file}: {fragment!r}"
    return fragment


# (file, raw fragment, cleaned result): the machine-translation artifacts named in the brief.
REPAIRS = [
    ("002", "The reason that drives caviar can be reinforced sports.",
     "A reason the calves cramp can be intensive sports training."),
    ("002", "Advice 2: Why drives caviar", "Advice 2: Why the calves cramp"),
    ("000", "the reasons why it reduces the calf muscle and",
     "the reasons why the calf muscle cramps and"),
    ("000", "Why reduces the calf muscle during sleep?", "Why does the calf muscle cramp during sleep?"),
    ("002", "The complaint that brings the calves of the legs at night are not uncommon.",
     "Complaints that the calves cramp at night are not uncommon."),
    ("000", "Often brings feet in water in people suffering from a lack of calcium.",
     "The feet often cramp in water in people suffering from a lack of calcium."),
    ("002", "About diseases of the feet, many know neponaslyshke.",
     "Many people know leg problems firsthand."),
    ("002", "With such a diagnosis mixing calf muscle may occur",
     "With such a diagnosis calf muscle cramps may occur"),
    ("002", "more than 5 cups of strong tea or coffee, you may be advised calf muscles.",
     "more than 5 cups of strong tea or coffee, your calf muscles may cramp."),
    ("002", "Among the leaders in unpleasant sensations of caviar.",
     "The calves are among the most common places of such unpleasant sensations."),
    ("002", "Advice 4: Why reduces muscle", "Advice 4: Why muscles cramp"),
    ("002", "their significant losses disrupt this process, causing and reduces muscle.",
     "their significant losses disrupt this process, making the muscles cramp."),
    ("000", "the legs are reduced due to dehydration", "the legs cramp due to dehydration"),
    ("002", "After all, when driving leg muscles, it is very painful",
     "After all, when the leg muscles cramp, it is very painful"),
    ("002", "(influenza, SARS)", "(influenza, acute respiratory viral infections)"),
    ("002", "incipient Parkinson's disease can cause seizures.",
     "incipient Parkinson's disease can cause cramps."),
]


@pytest.mark.parametrize(("file", "fragment", "expected"), REPAIRS)
def test_glossary_repairs_real_sentences(file, fragment, expected):
    assert clean_text(raw_fragment(file, fragment)) == expected


def test_repair_across_a_wrapped_line_in_file_000():
    fragment = raw_fragment("000", "Exactly because of this reason\nleg cramps occur.")
    assert clean_text(fragment) == "It is for exactly this reason that leg cramps occur."


def test_generic_phrases_work_anywhere_and_keep_a_leading_capital():
    assert apply_glossary("it drives caviar at night") == "it cramps the calves at night"
    assert apply_glossary("Neponaslyshke") == "Firsthand"
    assert apply_glossary("they know NEPONASLYSHKE well") == "they know Firsthand well"
    assert apply_glossary("they know neponaslyshke") == "they know firsthand"


def test_glossary_matches_whole_phrases_only():
    assert apply_glossary("mixing calf muscles") == "mixing calf muscles"
    assert apply_glossary("rebrings feet") == "rebrings feet"


@pytest.mark.parametrize("question", [
    "Does magnesium reduce muscle cramps?",
    "Stretching reduces muscle cramps at night.",
    "What helps calf cramps during sleep?",
    "Is caviar good for leg cramps?",
    "Why do my feet cramp when I swim?",
])
def test_ordinary_questions_are_left_alone(question):
    assert clean_text(question) == question


def test_normalize_fixes_glued_sentences_spaces_and_unicode():
    glued = raw_fragment("002", "kiwi and honey.In addition, muscle cramps")
    assert normalize(glued) == "kiwi and honey. In addition, muscle cramps"
    assert normalize("calf\u00a0muscle  \n cramps ,\tat night") == "calf muscle cramps, at night"
    assert normalize("“Why?” she asked ‘twice’") == "\"Why?\" she asked 'twice'"
    assert normalize("ﬁve cramps") == "five cramps"  # NFKC folds the ligature
    assert normalize("1.5 mg, U.S.A and e.g. this") == "1.5 mg, U.S.A and e.g. this"


@pytest.mark.parametrize("file", ["000", "002"])
def test_cleaned_corpus_has_no_known_artifacts_left(file):
    cleaned = clean_text(RAW[file])
    for artifact in ["caviar", "neponaslyshke", "reduces the calf", "drives", "brings",
                     "mixing", "advised", "are reduced", "SARS", "lower floors", ".In "]:
        assert artifact.lower() not in cleaned.lower(), artifact
    assert not re.search(r"[a-z][.!?][A-Z]", cleaned)


@pytest.mark.parametrize("file", ["000", "002"])
def test_cleaning_is_idempotent(file):
    once = clean_text(RAW[file])
    assert clean_text(once) == once


def test_every_glossary_entry_is_used_and_no_replacement_is_itself_a_phrase():
    glossary = load_glossary(SETTINGS.glossary_file)
    corpus = normalize("\n".join(RAW.values()))
    for entry in glossary.entries:
        assert apply_glossary(entry.replacement) == entry.replacement, entry.phrase
        # Occurs in the corpus (generic entries may still be shadowed there by longer ones).
        assert Glossary([entry]).apply(corpus) != corpus, f"line {entry.line}: {entry.phrase}"


def test_glossary_file_is_reviewable_sorted_sections_with_notes():
    """Rows come in blocks under '#' section lines; each block is sorted and every row has a note."""
    blocks: list[list[str]] = [[]]
    for line in SETTINGS.glossary_file.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("phrase\t"):
            if blocks[-1]:
                blocks.append([])
            continue
        phrase, replacement, note = line.split("\t")
        assert phrase.strip() and replacement.strip() and note.strip(), line
        blocks[-1].append(phrase.lower())
    blocks = [block for block in blocks if block]
    assert len(blocks) >= 4
    for block in blocks:
        assert block == sorted(block)


def write_glossary(path: Path, rows: list[str]) -> Path:
    path.write_text("phrase\treplacement\tnote\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_glossary_is_data_and_is_reread_when_edited(tmp_path):
    path = write_glossary(tmp_path / "g.tsv", ["charley horse\tcalf cramp\tUS slang"])
    assert apply_glossary("A Charley horse again", path) == "A Calf cramp again"
    write_glossary(path, ["charley horse\tsudden calf muscle cramp\tUS slang, longer"])
    assert apply_glossary("a charley horse", path) == "a sudden calf muscle cramp"
    settings = CorpusSettings(glossary_file=path)
    assert clean_text("a  charley\nhorse", settings) == "a sudden calf muscle cramp"


@pytest.mark.parametrize("rows", [
    ["only\ttwo"],
    ["a\tb\tnote", "A\tc\tsame phrase again"],
    ["a\t\tempty replacement"],
])
def test_bad_glossary_rows_are_corpus_errors(tmp_path, rows):
    with pytest.raises(CorpusError, match="line"):
        apply_glossary("a", write_glossary(tmp_path / "bad.tsv", rows))


def test_glossary_without_header_or_file_is_a_corpus_error(tmp_path):
    headless = tmp_path / "headless.tsv"
    headless.write_text("a\tb\tnote\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="header"):
        apply_glossary("a", headless)
    with pytest.raises(CorpusError, match="glossary"):
        apply_glossary("a", tmp_path / "missing.tsv")
