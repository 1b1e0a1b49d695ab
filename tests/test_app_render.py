"""The chat's HTML (bot/render.py) and the app's reply loop (app.py), without a browser."""
from __future__ import annotations

import html
import json
import re

import gradio as gr
import pytest

import app
from bot import render, texts
from bot.answer import Answer, Citation
from bot.events import Delta, Done, Retrieved, Status
from corpus.passage import Passage

SCRIPT = "<script>window.__pwned=1</script>why cramps?"
EVIL = '<img src=x onerror="window.__pwned=1">'


def make_passage(text="Cramps at night come from tired muscles. Stretch before bed.",
                 title="Night cramps in the calves", section="Possible reasons",
                 original="Cramps at night drives caviar.\n\nStretch before bed.") -> Passage:
    return Passage(id="doc#1", source="doc.txt", title=title, section=section, text=text,
                   raw_start=0, raw_end=len(original), original=original)


def make_answer(text="Tired muscles cramp at night [1].", **fields) -> Answer:
    passage = make_passage()
    support = "Cramps at night come from tired muscles."
    fields.setdefault("citations", [Citation(1, passage, 0.8, support)])
    fields.setdefault("verified_fraction", 1.0)
    return Answer(question="Why do my calves cramp at night?", text=text, **fields)


def visible_text(fragment: str) -> str:
    """Roughly what a browser shows: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment.replace("<br>", "\n")))


# -- escaping -------------------------------------------------------------------------------

def test_user_message_with_a_script_is_shown_as_text():
    fragment = render.render_user_message(SCRIPT)
    assert "<script" not in fragment
    assert "&lt;script&gt;" in fragment
    assert visible_text(fragment) == SCRIPT


def test_user_message_keeps_its_line_breaks_on_one_html_line():
    fragment = render.render_user_message("first line\nsecond *line*")
    assert "\n" not in fragment
    assert visible_text(fragment) == "first line\nsecond *line*"


def test_answer_text_from_the_model_is_escaped():
    fragment = render.render_answer(make_answer(f"Stretch {EVIL} before bed [1]."))
    assert "<img" not in fragment
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in fragment


def test_corpus_title_section_text_and_original_are_escaped():
    passage = make_passage(text=f"Stretch. {EVIL}", title=f"<b>{EVIL}</b>", section=SCRIPT,
                           original=f"raw {SCRIPT}")
    answer = make_answer(citations=[Citation(1, passage, 0.5, "Stretch.")])
    fragment = render.render_answer(answer)
    assert "<img" not in fragment and "<script" not in fragment and "<b>" not in fragment
    assert fragment.count("&lt;img") == 2
    assert fragment.count("&lt;script&gt;") == 2


@pytest.mark.parametrize("fragment", [
    render.render_answer(make_answer("one\n\n    two [1]\n")),
    render.render_draft("draft\n\nmore", texts.DISCLAIMER, "status\nline"),
    render.render_status("Loading\n\nthe model"),
])
def test_fragments_are_one_line_so_markdown_cannot_reinterpret_them(fragment):
    # A blank line would end Markdown's raw-HTML block; an indented line would become code.
    assert "\n" not in fragment


# -- answers, cards, badge, disclaimer ---------------------------------------------------------

def test_answer_has_body_citation_mark_card_and_disclaimer():
    fragment = render.render_answer(make_answer())
    assert '<sup class="cb-cite">[1]</sup>' in fragment
    assert "Night cramps in the calves" in fragment
    assert "Possible reasons" in fragment
    assert fragment.index("cb-sources") < fragment.index(html.escape(texts.DISCLAIMER))
    assert visible_text(fragment).rstrip().endswith(texts.DISCLAIMER)


def test_marker_without_a_shown_source_is_not_styled_as_a_citation():
    fragment = render.render_answer(make_answer("Stretch [1] and rest [7]."))
    assert '<sup class="cb-cite">[1]</sup>' in fragment
    assert "[7]" in fragment and '<sup class="cb-cite">[7]</sup>' not in fragment


def test_source_card_highlights_the_supporting_sentence_and_offers_the_original():
    card = render.render_source_card(Citation(2, make_passage(), 0.7,
                                              "cramps at  night come from tired muscles."))
    assert "<mark>Cramps at night come from tired muscles.</mark> Stretch before bed." in card
    assert "[2]" in card
    assert "<details" in card and f"<summary>{render.ORIGINAL_WORDING}</summary>" in card
    assert "Cramps at night drives caviar.<br><br>Stretch before bed." in card


def test_supporting_sentence_not_in_passage_highlights_nothing():
    assert render.highlight_sentence("A <b> text.", "Something else.") == "A &lt;b&gt; text."
    assert render.highlight_sentence("A text.", "") == "A text."


def test_section_less_passage_gets_a_label_not_an_empty_line():
    card = render.render_source_card(Citation(1, make_passage(section=""), 0.7))
    assert render.NO_SECTION in card


@pytest.mark.parametrize("fraction, badge", [(0.834, "83% of sentences matched to their sources"),
                                             (1.0, "100% of sentences matched to their sources")])
def test_verified_badge_shows_the_rounded_share(fraction, badge):
    assert badge in render.render_answer(make_answer(verified_fraction=fraction))


def test_no_badge_when_nothing_was_verified_or_nothing_is_cited():
    assert "cb-verified" not in render.render_answer(make_answer(verified_fraction=None))
    assert "cb-verified" not in render.render_answer(make_answer(citations=[]))


def test_extractive_answer_says_it_is_quoted():
    assert render.EXTRACTIVE_BADGE in render.render_answer(make_answer(extractive=True))


def test_a_translated_answer_says_so_and_its_card_shows_the_translated_highlight():
    from bot.answer import Rendered

    translation = f"Ночью сводит уставшие мышцы {EVIL}."
    citation = Citation(1, make_passage(), 0.8, "Cramps at night come from tired muscles.",
                        supporting_translation=translation)
    answer = make_answer("Ночью сводит уставшие мышцы [1].", citations=[citation], lang="ru",
                         composed=True, extractive=True, rendered=Rendered("ru", 1))
    fragment = render.render_answer(answer)
    assert texts.t("TRANSLATED_BADGE", "ru") in fragment and "cb-translated" in fragment
    card = visible_text(render.render_source_card(citation, "ru"))
    assert f"{texts.t('CARD_TRANSLATION', 'ru')}: {html.unescape(html.escape(translation))}" in card
    assert "<img" not in fragment and '<div class="cb-translation" lang="ru">' in fragment
    english = make_answer(citations=[Citation(1, make_passage(), 0.8, "x")])
    assert "cb-translat" not in render.render_answer(english)
    # Given in English after a note: nothing is said to be translated.
    noted = make_answer(lang="ru", composed=True, extractive=True,
                        rendered=Rendered("ru", 1, 1, english_note=True))
    assert "cb-translated" not in render.render_answer(noted)


@pytest.mark.parametrize("fields, css_class", [
    ({"declined": True}, "cb-declined"),
    ({"error": True}, "cb-error"),
    ({"red_flag": True}, "cb-urgent"),
])
def test_declines_errors_and_urgent_replies_carry_the_disclaimer(fields, css_class):
    answer = make_answer("Some reply.", citations=[], verified_fraction=None, **fields)
    fragment = render.render_answer(answer)
    assert css_class in fragment
    assert "cb-sources" not in fragment
    assert visible_text(fragment).rstrip().endswith(texts.DISCLAIMER)


def test_draft_is_marked_unverified_and_already_carries_the_disclaimer():
    fragment = render.render_draft(f"Half an {EVIL}", texts.DISCLAIMER)
    assert render.CHECKING in fragment and "<img" not in fragment
    assert visible_text(fragment).rstrip().endswith(texts.DISCLAIMER)


# -- the app's reply loop, against a stand-in bot ----------------------------------------------

class ScriptedBot:
    """Yields the events of CrampBot.stream from a script and records the history it got."""

    def __init__(self, *scripts):
        self.scripts = list(scripts)
        self.histories = []

    def stream(self, question, history=(), lang=None):
        self.histories.append(list(history))
        script = self.scripts.pop(0)
        if isinstance(script, Exception):
            raise script
        yield from script(question) if callable(script) else script


def answered(question, text="Tired muscles cramp at night [1]."):
    return [Status(texts.MODEL_LOADING), Retrieved([]), Delta("Tired "), Delta("muscles"),
            Done(make_answer(text))]


def test_reply_streams_status_then_draft_then_the_final_answer():
    bot = ScriptedBot(answered)
    replies = list(app.reply_stream(bot, "Why do my calves cramp at night?", []))
    htmls = [reply for reply, _ in replies]
    assert render.SEARCHING in htmls[0]
    assert any(texts.MODEL_LOADING in reply for reply in htmls)
    assert any(render.WRITING.format(count=0) in reply for reply in htmls)
    assert "Tired muscles" in htmls[-2] and render.CHECKING in htmls[-2]
    assert [answer for _, answer in replies[:-1]] == [None] * (len(replies) - 1)
    final_html, final_answer = replies[-1]
    assert final_answer is not None and final_answer.text == "Tired muscles cramp at night [1]."
    assert final_html == render.render_answer(final_answer)


@pytest.mark.parametrize("script", [RuntimeError("boom"), [Status("working")]])
def test_crash_or_missing_final_answer_becomes_the_polite_error(script, caplog):
    replies = list(app.reply_stream(ScriptedBot(script), "Why?", []))
    final_html, answer = replies[-1]
    assert answer.error and answer.text == texts.INTERNAL_ERROR
    assert html.escape(texts.INTERNAL_ERROR) in final_html
    assert "Traceback" not in final_html and "boom" not in final_html
    # No source is shown, so the disclaimer says general information (like the bot's errors).
    assert visible_text(final_html).rstrip().endswith(texts.DISCLAIMER_NO_SOURCES)
    assert caplog.records  # logged for the operator


def test_history_sent_to_the_bot_is_plain_answers_without_cards_or_disclaimer():
    bot = ScriptedBot(answered, answered, answered)
    turns = []
    for question in ("Why do my calves cramp at night?", "", "And in the day?"):
        *_, (reply_html, answer) = app.reply_stream(bot, question, turns)
        if question == "":
            answer = Answer(question="", text=texts.EMPTY_MESSAGE, error=True)
        turns.append(app.Turn(question, answer, reply_html))
    assert bot.histories[0] == []
    assert bot.histories[2] == [
        ("Why do my calves cramp at night?", "Tired muscles cramp at night [1].")]
    for _, answer_text in bot.histories[2]:
        assert texts.DISCLAIMER not in answer_text and "cb-card" not in answer_text


def test_conversation_view_is_rebuilt_from_the_turns():
    answer = make_answer()
    turns = [app.Turn(SCRIPT, answer, render.render_answer(answer))]
    view = app.conversation_view(turns, "Next?", render.render_status(render.SEARCHING))
    assert [m["role"] for m in view] == ["user", "assistant", "user", "assistant"]
    assert view[0]["content"] == render.render_user_message(SCRIPT)
    assert view[1]["content"] == turns[0].reply_html
    assert render.SEARCHING in view[3]["content"]


def test_real_pipeline_reply_renders_a_card_for_the_cited_passage(make_bot):
    bot = make_bot()
    retrieved = {r.passage.id for r in bot.retrieve("Why do my calves cramp at night?")}
    *_, (reply_html, answer) = app.reply_stream(bot, "Why do my calves cramp at night?", [])
    assert answer.citations and answer.citations[0].passage.id in retrieved
    top = answer.citations[0].passage
    assert html.escape(top.title) in reply_html and "cb-card" in reply_html
    assert visible_text(reply_html).rstrip().endswith(texts.DISCLAIMER)


# -- the page --------------------------------------------------------------------------------

def test_page_is_local_only_without_share_link_or_analytics(fake_settings):
    page = app.build_app(ScriptedBot(), fake_settings)
    assert isinstance(page, gr.Blocks)
    assert page.analytics_enabled is False
    options = app.launch_options(fake_settings)
    assert options["server_name"] == "127.0.0.1" and options["share"] is False
    assert options["css"] == render.CHAT_CSS
    chatbots = [b for b in page.blocks.values() if isinstance(b, gr.Chatbot)]
    assert len(chatbots) == 1
    assert chatbots[0].sanitize_html is True and chatbots[0].allow_tags is False
    assert [e["text"] for e in chatbots[0].examples] == app.EXAMPLE_QUESTIONS


def test_green_only_when_every_model_sentence_passed_and_badges_name_what_was_checked():
    assert "cb-verified" not in render.render_answer(make_answer(verified_fraction=0.5))
    composed = render.render_answer(make_answer(composed=True, extractive=False))
    assert render.LEAD_BADGE in composed and render.EXTRACTIVE_BADGE in composed
    quoted = render.render_answer(make_answer(composed=True, extractive=True))
    assert render.EXTRACTIVE_BADGE in quoted and "cb-verified" not in quoted
    assert "verified" not in render.render_answer(make_answer(verified_fraction=1.0)).lower().replace(
        "cb-verified", "")


def test_page_greets_with_the_disclaimer_and_names_its_controls(fake_settings):
    from bot.settings import WebSettings
    from web import labels
    from web.chat import chat_head

    settings = fake_settings.model_copy(update={"web": WebSettings(
        clinic_name="Riverside", greeting="Hello <b>there</b>", primary_color="#0e6f74")})
    bot = ScriptedBot()
    bot.settings = settings
    page = app.build_app(bot, settings)
    # The page's texts are Gradio i18n keys, translated in the browser from these catalogs.
    english = page.i18n_instance.translations_dict["en"]
    chatbot = next(b for b in page.blocks.values() if isinstance(b, gr.Chatbot))
    greeting = english[chatbot.placeholder.key]
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in greeting  # escaped, never HTML
    assert html.escape(texts.DISCLAIMER_NO_SOURCES) in greeting
    textbox = next(b for b in page.blocks.values() if getattr(b, "elem_id", "") == "crampbot-message")
    assert english[textbox.label.key] == labels.MESSAGE_BOX and textbox.submit_btn == labels.SEND
    def key(value) -> str:  # an I18nData, or its string form once a component processed it
        return getattr(value, "key", None) or json.loads(str(value).removeprefix("__i18n__"))["key"]

    buttons = [english[key(b.value)] for b in page.blocks.values() if isinstance(b, gr.Button)]
    assert labels.NEW_CONVERSATION in buttons

    head = chat_head(settings.web)
    assert "--color-accent: #0e6f74" in head and "footer { display: none" in head
    assert head.count("<script>") == 1 and head.count("</script>") == 1
    assert '"waiting": "' + labels.WAITING + '"' in head  # the script's labels, filled in
    assert '"ru": {"examples": "' in head


def test_the_loading_note_follows_a_load_under_way_not_a_missing_model():
    from types import SimpleNamespace

    from web.chat import _loading

    assert not _loading(SimpleNamespace(model_ready=False, model_loading=False))  # nothing loads
    assert _loading(SimpleNamespace(model_ready=False, model_loading=True))
    assert not _loading(SimpleNamespace(model_ready=True, model_loading=False))
    assert _loading(SimpleNamespace(model_ready=False))  # a bot without the flag: until ready


VEINS = {"en": "leg cramps and varicose veins <b>", "ru": "судорогах в ногах и варикозе вен"}
VEIN_EXAMPLES = {"en": ["Do compression stockings help varicose veins?", "Why do my calves cramp?",
                        "Can varicose veins cause cramps?", "A fourth one?"],
                 "ru": ["Помогают ли компрессионные чулки при варикозе?"]}


def _page_texts(page: gr.Blocks, lang: str) -> tuple[dict, gr.Chatbot, gr.Textbox]:
    translations = page.i18n_instance.translations_dict[lang]
    chatbot = next(b for b in page.blocks.values() if isinstance(b, gr.Chatbot))
    textbox = next(b for b in page.blocks.values() if getattr(b, "elem_id", "") == "crampbot-message")
    return translations, chatbot, textbox


def test_the_page_and_widget_name_the_configured_topic_and_examples(fake_settings):
    from web.widget import build_widget

    web = fake_settings.web.model_copy(update={"topic": VEINS, "examples": VEIN_EXAMPLES})
    settings = fake_settings.model_copy(update={"web": web})
    bot = ScriptedBot()
    bot.settings = settings
    for page, shown in ((app.build_app(bot, settings), 5), (build_widget(bot, web), 3)):
        english, chatbot, textbox = _page_texts(page, "en")
        assert [e["text"] for e in chatbot.examples] == VEIN_EXAMPLES["en"][:shown]
        greeting = english[chatbot.placeholder.key]
        assert "questions about leg cramps and varicose veins &lt;b&gt; from" in greeting
        assert english[textbox.placeholder.key] == "Ask about leg cramps and varicose veins <b>..."
        russian, _, _ = _page_texts(page, "ru")
        assert "о судорогах в ногах и варикозе вен по материалам" in russian[chatbot.placeholder.key]
        assert russian[textbox.placeholder.key] == "Спросите о судорогах в ногах и варикозе вен..."
    header = app.build_app(bot, settings).i18n_instance.translations_dict["en"]["PAGE_HEADER_HTML"]
    assert "<p>Ask about leg cramps and varicose veins &lt;b&gt;. Answers come only" in header


def test_without_a_topic_the_page_says_what_it_always_said(fake_settings):
    page = app.build_app(ScriptedBot(), fake_settings)
    english, chatbot, textbox = _page_texts(page, "en")
    assert english[textbox.placeholder.key] == "Ask about leg or calf cramps..."
    assert html.escape(texts.WIDGET_GREETING) in english[chatbot.placeholder.key]
    assert html.escape(texts.t("PAGE_INTRO")) in english["PAGE_HEADER_HTML"]
    assert [e["text"] for e in chatbot.examples] == texts.t("EXAMPLE_QUESTIONS")


def test_a_decline_and_an_empty_message_name_the_configured_topic(make_bot, fake_settings,
                                                                  shared_retriever):
    web = fake_settings.web.model_copy(update={"topic": VEINS})
    bot = make_bot(settings=fake_settings.model_copy(update={"web": web}))
    bot.retriever = shared_retriever
    declined = bot.ask("What is the capital of France?")
    assert declined.declined
    assert declined.text.endswith("I can answer questions about leg cramps and varicose veins <b>.")
    assert bot.ask("  ").text == "Please type a question about leg cramps and varicose veins <b>."
    assert make_bot().ask("What is the capital of France?").text.endswith(texts.CANNOT_ANSWER_HINT)


@pytest.mark.parametrize("field, value", [
    ("topic", {"de": "Krämpfe"}), ("topic", {"en": "  "}), ("examples", {"en": []}),
    ("examples", {"xx": ["Why?"]}), ("examples", {"en": ["x" * 201]}),
])
def test_topic_and_examples_are_checked(field, value):
    from pydantic import ValidationError

    from bot.settings import WebSettings

    with pytest.raises(ValidationError):
        WebSettings(**{field: value})
