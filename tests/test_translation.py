"""The translation memory (bot/translation.py), its checks (bot/translation_check.py) and the
rendering of a composed answer in the reply's language (bot/localize.py), with a scripted model;
and the shipped memory itself: every sentence an answer can show has a reviewed Russian line."""
from __future__ import annotations

import json
import re

import pytest

from bot import texts
from bot.answer import Answer, Citation
from bot.generation.fake import FakeGenerator
from bot.localize import localize_answer
from bot.translation import (
    CORRECTED, MADE_BY_MODEL, REVIEWED, Rendering, TranslationMemory, answer_sentences,
    memory_for, read_shipped, write_shipped,
)
from bot.translator import BackgroundTranslator, fill_memory, translate_sentence, translation_messages
from bot.translation_check import load_terms, rendering_problems
from corpus.passage import Passage

CAFFEINE = ("Caffeine abuse: when you drink more than 5 cups of strong tea or coffee a day, your "
            "calf muscles may cramp.")
CAFFEINE_RU = ("Злоупотребление кофеином: если выпивать больше 5 чашек крепкого чая или кофе в "
               "день, могут возникать судороги икроножных мышц.")
PHLEBOLOGIST = "A phlebologist then prescribes treatment."
PHLEBOLOGIST_RU = "Затем флеболог назначает лечение."
B6 = "This is a well-known vitamin B6."
B6_RU = "Это хорошо известный витамин B6."
MASSAGE = "Massage has a positive effect on spasms."


# -- the checks -----------------------------------------------------------------------------
@pytest.mark.parametrize("english, rendered", [
    (CAFFEINE, CAFFEINE_RU), (PHLEBOLOGIST, PHLEBOLOGIST_RU), (B6, B6_RU),
    (B6, "Это хорошо известный витамин В6."),  # a Cyrillic "В" is the same letter
    ("For example, vitamin D deficiency: it helps to absorb calcium and magnesium, without which "
     "the nerve endings work poorly.", "Например, нехватка витамина D: он помогает усваивать "
     "кальций и магний, без которых нервные окончания работают плохо."),
    ("Lightly stroke them under the water.", "Слегка погладьте их под водой."),  # not a stroke
    ("At the appointment, carefully list all the possible causes (trauma and surgery).",
     "На приёме подробно перечислите все возможные причины (травмы и операции)."),  # not herbs
])
def test_a_faithful_rendering_passes(english, rendered):
    assert rendering_problems(english, rendered, "ru") == []


@pytest.mark.parametrize("rendered, problem", [
    (CAFFEINE_RU.replace("5", "3"), "numbers differ"),
    (CAFFEINE_RU.replace(" или кофе", ""), "leaves out coffee"),
    (CAFFEINE_RU.replace("чая или кофе", "чая, кофе или алкоголя"), "adds алкогол-"),
    (CAFFEINE_RU.replace("могут возникать", "не возникают"), "negation differs"),
    (CAFFEINE_RU + " Это опасно.", "more sentences"),
    (CAFFEINE_RU.replace("день,", "день [1],"), "brackets or markers"),
    (CAFFEINE, "not in the language's script"),
    ("Кофеин.", "length ratio"),
    ("", "empty"),
])
def test_a_rendering_that_says_more_or_less_fails(rendered, problem):
    assert any(p.startswith(problem) for p in rendering_problems(CAFFEINE, rendered, "ru")), \
        rendering_problems(CAFFEINE, rendered, "ru")


def test_codes_and_specialists_are_kept():
    assert rendering_problems(B6, "Это хорошо известный витамин B1.", "ru") == [
        "codes (vitamins) differ"]
    assert rendering_problems(PHLEBOLOGIST, "Затем врач назначает лечение.", "ru") == [
        "leaves out phlebologist", "adds врач-"]


def test_the_lexicon_reads_the_longest_form_at_each_place():
    terms = load_terms("ru")
    names = lambda text, side: {terms.terms[i].english[0] for i in terms.named(text, side)}  # noqa: E731
    assert names("травмы и травяной чай", "local") == {"trauma", "herbal", "tea"}
    assert names("from the cortex and the spinal cord", "english") == {"brain", "spinal cord"}
    assert names("спинной мозг", "local") == {"spinal cord"}
    assert load_terms("xx").terms == ()  # a language without a lexicon checks no terms


# -- the memory -----------------------------------------------------------------------------
@pytest.fixture
def memory(tmp_path):
    shipped = tmp_path / "translations.ru.tsv"
    write_shipped(shipped, [Rendering(CAFFEINE, CAFFEINE_RU, REVIEWED),
                            Rendering(PHLEBOLOGIST, PHLEBOLOGIST_RU, CORRECTED, "Флеболог затем.")],
                  "test memory")
    return TranslationMemory("ru", shipped, tmp_path / "cache" / "ru.jsonl")


def test_the_memory_serves_renderings_that_pass_and_remembers_the_models(memory):
    assert memory.rendering("  " + CAFFEINE.replace(" ", "  ")) == CAFFEINE_RU  # spacing aside
    assert memory.rendering(B6) is None and memory.missing([B6, CAFFEINE]) == [B6]
    memory.remember(B6, B6_RU, [])
    memory.remember(MASSAGE, "Массаж.", ["length ratio 0.17"])  # rejected: kept, never served
    assert memory.rendering(B6) == B6_RU
    assert memory.rendering(MASSAGE) is None and memory.missing([MASSAGE]) == []
    memory.remember(CAFFEINE, "Кофе вреден.", [])  # the reviewed shipped line wins
    assert memory.rendering(CAFFEINE) == CAFFEINE_RU
    lines = memory.cache_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["how"] for line in lines] == [MADE_BY_MODEL] * 3


def test_a_shipped_line_that_fails_its_checks_is_not_served(tmp_path):
    path = tmp_path / "translations.ru.tsv"
    write_shipped(path, [Rendering(CAFFEINE, CAFFEINE_RU.replace("5", "6"), REVIEWED)], "x")
    assert TranslationMemory("ru", path).rendering(CAFFEINE) is None


def test_the_memory_file_is_read_back_as_written(memory):
    found = read_shipped(memory.shipped_path)
    assert found[PHLEBOLOGIST] == Rendering(PHLEBOLOGIST, PHLEBOLOGIST_RU, CORRECTED, "Флеболог затем.")
    bad = memory.shipped_path.with_name("bad.tsv")
    bad.write_text("english\trendering\thow\tdraft\nA.\tА.\tguessed\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'how' must be one of"):
        read_shipped(bad)


def test_the_model_is_asked_with_the_lexicons_terms_and_a_reviewed_example(memory):
    generator = FakeGenerator(["Перевод: «Затем флеболог назначает лечение.»"])
    text, problems = translate_sentence(generator, PHLEBOLOGIST, "ru", memory.example())
    assert (text, problems) == (PHLEBOLOGIST_RU, [])
    system, example, answer, asked = generator.calls[0]
    assert "into русский (ru)" in system["content"]
    assert example["content"].endswith(f"Sentence: {CAFFEINE}") and answer["content"] == CAFFEINE_RU
    assert "phlebologist = флеболог" in asked["content"] and asked["content"].endswith(PHLEBOLOGIST)
    assert translation_messages(MASSAGE, "ru")[-1]["content"].startswith("Terms: massage = массаж")


def test_filling_the_cache_renders_only_what_is_missing(memory):
    generator = FakeGenerator([B6_RU, "Massage has a positive effect on spasms, массаж."])
    seen = []
    passed = fill_memory(memory, [CAFFEINE, B6, MASSAGE, B6],
                         generator, lambda *row: seen.append(row))
    assert passed == 1 and len(generator.calls) == 2
    assert [(english, problems) for english, _, problems in seen] == [
        (B6, []), (MASSAGE, ["not in the language's script"])]
    assert memory.rendering(B6) == B6_RU and memory.missing([MASSAGE]) == []


def test_the_background_translator_renders_requests_once(memory):
    generator = FakeGenerator([B6_RU])
    translator = BackgroundTranslator(memory, lambda: generator, busy=lambda: True)
    translator._thread = object()  # no thread: drained here instead
    translator.request([B6, B6, CAFFEINE])
    translator.drain()
    assert len(generator.calls) == 1 and memory.rendering(B6) == B6_RU
    translator.request([B6])
    translator.drain()
    assert len(generator.calls) == 1


# -- an answer rendered from the memory -----------------------------------------------------
def _passage(number: int) -> Passage:
    return Passage(id=f"s#{number}", source="s.txt", title="T", section="S",
                   text=f"{CAFFEINE} {PHLEBOLOGIST}", raw_start=0, raw_end=10, original="o")


def _answer(text: str) -> Answer:
    citations = [Citation(1, _passage(1), 0.9, CAFFEINE), Citation(2, _passage(2), 0.8, PHLEBOLOGIST)]
    return Answer(question="q", text=text, citations=citations, composed=True, extractive=True,
                  lang="ru", disclaimer=texts.t("DISCLAIMER", "ru"))


def test_each_sentence_is_rendered_with_its_own_markers(memory):
    english = f"{CAFFEINE[:-1]} [1]. {PHLEBOLOGIST[:-1]} [2]."
    answer, missing = localize_answer(_answer(english), memory, has_lead=False)
    assert answer.text == f"{CAFFEINE_RU[:-1]} [1]. {PHLEBOLOGIST_RU[:-1]} [2]."
    assert answer.checked_text == english and missing == []
    assert (answer.rendered.sentences, answer.rendered.kept_english) == (2, 0)
    assert [c.supporting_translation for c in answer.citations] == [CAFFEINE_RU, PHLEBOLOGIST_RU]
    assert answer.full_text.endswith(texts.t("DISCLAIMER", "ru"))


def test_a_sentence_without_a_rendering_stays_english_and_is_asked_for(memory):
    english = f"{CAFFEINE[:-1]} [1]. {PHLEBOLOGIST[:-1]} [2]. {B6[:-1]} [2]."
    answer, missing = localize_answer(_answer(english), memory, has_lead=False)
    assert answer.text.endswith(f"{PHLEBOLOGIST_RU[:-1]} [2]. {B6[:-1]} [2].")
    assert missing == [B6] and answer.rendered.kept_english == 1
    assert not answer.rendered.english_note


def test_too_much_english_gives_the_english_answer_after_a_note(memory):
    english = f"{CAFFEINE[:-1]} [1]. {B6[:-1]} [2]. {MASSAGE[:-1]} [2]."
    answer, missing = localize_answer(_answer(english), memory, has_lead=False, max_untranslated=0.5)
    assert answer.text == f"{texts.t('ANSWER_IN_ENGLISH', 'ru')}\n\n{english}"
    assert answer.rendered.english_note and missing == [B6, MASSAGE]
    assert all(not c.supporting_translation for c in answer.citations)


def test_the_lead_is_rendered_at_request_time_or_stays_english(memory):
    lead = "Yes, a phlebologist treats it [2]."
    english = f"{lead} {PHLEBOLOGIST[:-1]} [2]."
    asked = []

    def render_lead(sentence):
        asked.append(sentence)
        return "Да, это лечит флеболог.", []

    answer, _ = localize_answer(_answer(english), memory, has_lead=True, render_lead=render_lead)
    assert asked == ["Yes, a phlebologist treats it."]
    assert answer.text == f"Да, это лечит флеболог [2]. {PHLEBOLOGIST_RU[:-1]} [2]."
    assert answer.rendered.lead == "rendered"
    failed, _ = localize_answer(_answer(english), memory, has_lead=True,
                                render_lead=lambda s: ("Да, врач.", ["leaves out phlebologist"]),
                                max_untranslated=0.5)
    assert failed.text.startswith(lead) and failed.rendered.lead == "english"


# -- the shipped memory ---------------------------------------------------------------------
def test_every_sentence_an_answer_can_show_has_a_reviewed_rendering_that_passes(
        fake_settings, shared_retriever):
    memory = memory_for(fake_settings, "ru")
    sentences = answer_sentences(shared_retriever.load().passages)
    assert len(sentences) >= 100
    renderings = read_shipped(memory.shipped_path)
    lacking = [s for s in sentences if memory.rendering(s) is None]
    assert not lacking, lacking
    assert all(renderings[s].how in (REVIEWED, CORRECTED) for s in sentences)
    # Review is recorded: a corrected line keeps the model's draft beside it.
    corrected = [r for r in renderings.values() if r.how == CORRECTED]
    assert corrected and all(r.draft and r.draft != r.text for r in corrected)


def test_shipped_renderings_are_plain_russian():
    memory_file = texts.LOCALES_DIR.parent.parent / "corpus" / "translations.ru.tsv"
    for rendering in read_shipped(memory_file).values():
        assert not re.search(r"[a-z]{3,}", rendering.text.lower().replace("doppler", "")), rendering


# -- crampbot translate-sources -------------------------------------------------------------
def test_translate_sources_checks_the_shipped_memory_and_fills_the_added_sources_cache(
        tmp_path, monkeypatch, capsys):
    import cli
    from corpus import sample_leaflets

    monkeypatch.setenv("CRAMPBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CRAMPBOT_GENERATION__BACKEND", "fake")
    assert cli.main(["translate-sources", "--shipped", "--check"]) == 0
    assert capsys.readouterr().out.strip().endswith("have a rendering in ru that passes its checks.")
    leaflet = sample_leaflets.build_html(tmp_path / "veins.html")
    assert cli.main(["sources", "add", str(leaflet)]) == 0
    capsys.readouterr()
    assert cli.main(["translate-sources", "--check"]) == 1  # the leaflet's sentences: none yet
    missing = [line for line in capsys.readouterr().out.splitlines() if line.startswith("no rendering")]
    assert missing
    assert cli.main(["translate-sources"]) == 0  # the scripted model answers in English: rejected
    cache = tmp_path / "data" / "translations" / "ru.jsonl"
    records = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    assert len(records) == len(missing) and all(r["problems"] for r in records)
    assert cli.main(["translate-sources", "--lang", "de"]) == 2


# -- the real model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def default_model():
    from bot.generation.factory import make_generator
    from bot.settings import load_settings

    settings = load_settings("default")
    generator = make_generator(settings.generation, settings.models_dir)
    generator.load()
    return generator


@pytest.mark.slow
@pytest.mark.parametrize("lead_translation", ["none", "model"])
def test_the_real_model_answers_a_russian_question_in_russian_with_citations(
        default_model, fake_settings, shared_retriever, lead_translation):
    from bot.pipeline import CrampBot
    from bot.safety.input_guard import detect_language

    settings = fake_settings.model_copy(update={"answer": fake_settings.answer.model_copy(
        update={"lead_translation": lead_translation})})
    bot = CrampBot(settings, generator=default_model)
    bot.retriever = shared_retriever
    answer = bot.ask("Почему по ночам сводит икры?")
    assert not (answer.declined or answer.error or answer.red_flag), answer.full_text
    assert detect_language(re.sub(r"\[\d+\]", "", answer.text)) == "ru", answer.text
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert markers and markers == {c.number for c in answer.citations}, answer.text
    assert answer.full_text.endswith(texts.t("DISCLAIMER", "ru"))
    assert not answer.rendered.english_note, answer.rendered


@pytest.mark.slow
def test_the_real_model_renders_a_new_leaflet_sentence_in_russian(default_model, fake_settings):
    from bot.safety.input_guard import detect_language

    memory = memory_for(fake_settings, "ru")
    text, _ = translate_sentence(default_model, "Stretch your calves gently before going to bed.",
                                 "ru", memory.example())
    assert detect_language(text) == "ru", text
