"""The chat as Gradio components: used by the full page (app.py) and the widget (web/widget.py).

Built on Blocks + gr.Chatbot rather than gr.ChatInterface, because ChatInterface puts the user's
raw message into the chat, where Gradio renders it as sanitized HTML (a `<script>` would vanish
instead of showing as text), and it hands the chat function the rendered conversation, from
which the plain answers would have to be parsed back out.

The chat speaks the visitor's language (web/labels.py, interface_language): its labels, greeting
and placeholder are Gradio's own i18n (gr.I18n, filled from bot/locales), which follows the
browser's language; the example questions, which Gradio's i18n does not translate, and the
labels when the embed's data-lang or settings.web.lang choose another language, are set when
the page loads. Each reply's fixed texts are in its question's language (bot/pipeline.py).
"""
from __future__ import annotations

import itertools
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio.i18n import I18nData

from bot import render, texts
from bot.answer import Answer
from bot.events import Delta, Done, Retrieved, Status
from bot.pipeline import CrampBot
from bot.safety.input_guard import check_message
from bot.settings import WebSettings
from web import labels
from web.conversations import ExpiringStore
from web.feedback import FeedbackStore, Surface, rating_from_vote
from web.limits import STORED_REFUSED_CHARS, abridged, compact
from web.security import RateLimiter, client_key
from web.theme import clinic_css

log = logging.getLogger("crampbot.chat")

EXAMPLE_QUESTIONS = texts.t("EXAMPLE_QUESTIONS")  # English; every language's in bot/locales
STATIC_DIR = Path(__file__).resolve().parent / "static"
# One answer at a time: generation uses every CPU core, so a second concurrent answer would
# only halve both speeds; waiting users see their place in Gradio's queue instead.
CONCURRENCY_LIMIT = 1
QUEUE_MAX_SIZE = 32
LOADING_CHECK_S = 2.0  # how often an open page asks whether the model has finished loading
# Exchanges a conversation keeps (and the page shows after a reload); the model sees only the
# last few (settings.generation.history_turns).
CHAT_TURNS_KEPT = 50


@dataclass(frozen=True)
class Asked:
    """A question the page took, and its number among all questions asked (see start_over)."""
    message: str
    number: int


@dataclass(frozen=True)
class Turn:
    """One exchange as the server keeps it; the page only ever shows `reply_html`."""

    question: str
    answer: Answer
    reply_html: str
    answer_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # names it in feedback


def kept_turns(turns: list[Turn], message: str, answer: Answer, reply_html: str) -> list[Turn]:
    """The conversation with one more exchange, as the server keeps it: at most
    CHAT_TURNS_KEPT exchanges, a refused message (too long, over the rate limit) abridged. A
    refusal costs no model time, so without these a client sending 60 KB messages over its
    limit grew its conversation by 60 KB a message for as long as it liked."""
    if answer.error:
        message, answer = abridged(message, STORED_REFUSED_CHARS), compact(answer)
    return [*turns, Turn(message, answer, reply_html)][-CHAT_TURNS_KEPT:]


def history_for_bot(turns: list[Turn]) -> list[tuple[str, str]]:
    """Earlier (question, answer text) pairs for `CrampBot.stream`: no disclaimer, no source
    cards, and no refused inputs or internal errors, which are not part of the conversation."""
    return [(turn.question, turn.answer.text) for turn in turns if not turn.answer.error]


def reply_language(message: str, page_lang: str = "en") -> str:
    """The language of a reply's fixed texts before the bot has answered (its status lines, a
    refusal that never reaches the bot): the question's, or the page's when it has no letters
    of a language with a catalog. The bot's Answer.lang, told the same way, then takes over."""
    checked = check_message(message, len(message) + 1)
    return checked.reply_lang if checked.lang in texts.CATALOGS else texts.language(page_lang)


def reply_stream(
    bot: CrampBot, message: str, turns: list[Turn], page_lang: str = "en"
) -> Iterator[tuple[str, Answer | None]]:
    """The reply's HTML as it grows; the last item also carries the final Answer.

    Never raises: whatever goes wrong is logged and shown as the polite internal-error reply
    with the disclaimer, never as a traceback.
    """
    lang = reply_language(message, page_lang)
    searching = texts.t("SEARCHING", lang)
    yield render.render_status(searching), None
    draft, status = "", None
    try:
        for event in bot.stream(message, history_for_bot(turns)):
            if isinstance(event, Done):
                yield render.render_answer(event.answer), event.answer
                return
            if isinstance(event, Status):
                status = event.text
            elif isinstance(event, Retrieved):
                status = texts.t("WRITING", lang).format(count=len(event.passages))
            elif isinstance(event, Delta):
                draft += event.text
                status = None
            if draft:
                yield render.render_draft(draft, texts.t("DISCLAIMER", lang), status, lang), None
            else:
                yield render.render_status(status or searching), None
        log.error("the bot's stream ended without a final answer")
    except Exception:
        log.exception("internal error while answering")
    answer = _refusal(message, "INTERNAL_ERROR", lang)
    yield render.render_answer(answer), answer


def _refusal(message: str, key: str, lang: str) -> Answer:
    return Answer(question=message, text=texts.t(key, lang), error=True, lang=lang,
                  disclaimer=texts.t("DISCLAIMER_NO_SOURCES", lang))


def polite_refusal(message: str, key: str, page_lang: str = "en") -> tuple[str, Answer]:
    """A reply that never reached the bot (e.g. the rate limit: `key` "RATE_LIMITED"), shaped
    like any other, in the question's language."""
    answer = _refusal(message, key, reply_language(message, page_lang))
    return render.render_answer(answer), answer


def conversation_view(turns: list[Turn], question: str | None = None,
                      reply_html: str | None = None) -> list[dict]:
    """The Chatbot's value, rebuilt from the server-side turns (plus the reply in progress)."""
    messages = []
    for turn in turns:
        messages.append({"role": "user", "content": render.render_user_message(turn.question)})
        messages.append({"role": "assistant", "content": turn.reply_html})
    if question is not None:
        messages.append({"role": "user", "content": render.render_user_message(question)})
    if reply_html is not None:
        messages.append({"role": "assistant", "content": reply_html})
    return messages


def voted_turn(turns: list[Turn], message_index: int | Sequence[int]) -> Turn | None:
    """The finished turn whose answer a like event refers to; None for a user message or a
    reply still being written."""
    if not isinstance(message_index, int):
        message_index = message_index[0]
    number, is_answer = divmod(message_index, 2)
    return turns[number] if is_answer and number < len(turns) else None


# A reload keeps the conversation: the browser tab holds only an unguessable id, in
# sessionStorage (so another tab, or the browser closed and opened again, starts afresh; the
# widget's frame keeps its own, per clinic site), and the turns stay here, in memory that
# forgets them after settings.web.conversation_ttl_minutes unused, like the API's.
_STORAGE_KEY = "'crampbot-conversation:' + location.pathname"
_READ_ID = ("() => { try { return sessionStorage.getItem(" + _STORAGE_KEY + ") || ''; }"
            " catch (blocked) { return ''; } }")
_SAVE_ID = ("(id) => { try { sessionStorage.setItem(" + _STORAGE_KEY + ", id); }"
            " catch (blocked) {} }")
# On load the page also tells its browser's language, and is told the one chosen (for chat.js
# and for screen readers: the <html lang> attribute).
_READ_ID_AND_LANGUAGE = ("() => [(" + _READ_ID + ")(), navigator.language || '']")
_SAVE_ID_AND_LANGUAGE = ("(id, lang) => { (" + _SAVE_ID + ")(id); if (lang) {"
                         " document.documentElement.lang = lang;"
                         " document.documentElement.dataset.crampbotLang = lang; } }")


@dataclass
class ChatView:
    """The components of one chat, for pages that embed it (the full page, a widget)."""

    chatbot: gr.Chatbot
    textbox: gr.Textbox
    turns: gr.State
    new_conversation: gr.Button


def greeting_html(web: WebSettings, lang: str = "en") -> str:
    """Shown in the empty chat: the greeting and the disclaimer in `lang`, escaped. A clinic's
    own greeting (settings.web.greeting) is shown as written, in every language."""
    own = web.greeting != texts.WIDGET_GREETING
    greeting = render.escape_text(
        web.greeting if own else texts.about("WIDGET_GREETING", lang, web.topic))
    note = render.escape_text(texts.t("DISCLAIMER_NO_SOURCES", lang))
    return f'<div class="cb-greeting"><p>{greeting}</p><p class="cb-greeting-note">{note}</p></div>'


def _loading(bot) -> bool:
    """Whether the bot is loading its model now (a bot without the flag: until it is ready)."""
    loading = getattr(bot, "model_loading", None)
    return bool(loading) if loading is not None else not getattr(bot, "model_ready", True)


def loading_html(lang: str = "en") -> str:
    """The note shown while the model loads, in `lang`."""
    return f'<p class="cb-status" role="status">{render.escape_text(texts.t("MODEL_LOADING", lang))}</p>'


def chat_head(web: WebSettings) -> str:
    """The chat's own styles and script (web/static/chat.css, chat.js) and the clinic's colours,
    for the page's <head>: the full page gets them from the chat itself, since its theme and
    CSS are set where app.py mounts it. The script gets its labels in every language."""
    names = json.dumps({lang: {"examples": texts.t("EXAMPLES", lang),
                               "waiting": texts.t("WAITING", lang)}
                        for lang in texts.LANGUAGES}).replace("<", "\\u003c")
    script = (STATIC_DIR / "chat.js").read_text(encoding="utf-8").replace(
        "/*@labels*/{}", names, 1)
    style = (STATIC_DIR / "chat.css").read_text(encoding="utf-8") + clinic_css(web)
    return f"<style>{style}</style><script>{script}</script>"


# Texts given to Gradio's i18n besides the catalogs' own: HTML built from them per language.
Localized = dict[str, tuple[gr.components.Component, str, Callable[[str], str]]]


def interface_i18n(web: WebSettings, computed: dict[str, Callable[[str], str]]) -> gr.I18n:
    """Gradio's i18n with every catalog's strings and the `computed` texts, by language. With
    settings.web.lang set, every browser language gets that language's texts."""
    def catalog(lang: str) -> dict[str, str]:
        entries = {k: v for k, v in texts.CATALOGS[lang].items() if isinstance(v, str)}
        # Gradio's own keys for the thumbs' names: the catalog's words replace its built-in ones.
        gradio_keys = {"chatbot.like": entries["LIKE"], "chatbot.dislike": entries["DISLIKE"]}
        return {**entries, **gradio_keys, **{key: make(lang) for key, make in computed.items()}}

    forced = None if web.lang == "auto" else web.lang
    return gr.I18n(**{lang: catalog(forced or lang) for lang in texts.LANGUAGES})


def _i18n(key: str) -> I18nData:
    return I18nData(key)  # what gr.I18n()(key) returns, without needing the instance yet


def build_chat(bot: CrampBot, *, limiter: RateLimiter | None = None,
               feedback: FeedbackStore | None = None, surface: Surface = "chat",
               height: int | str = "70vh", example_count: int | None = None,
               web: WebSettings | None = None, localized: Localized | None = None,
               vote_limiter: RateLimiter | None = None) -> ChatView:
    """Render the chat into the current Blocks and wire its events.

    The conversation lives in a per-session gr.State of `Turn`s; the Chatbot is only a view of
    it, rebuilt on every update. So the history sent back to the model is the plain answer
    text by construction, whatever HTML the page shows. With a `limiter`, a client over its
    rate gets a polite chat reply instead of an answer; with `feedback`, each answer has
    thumbs up/down that are appended to that store (with a `vote_limiter`, at most that many
    per client a minute). The turns are also kept by conversation id for a while, so that a
    reload of the browser tab shows them again.

    The page's language: see the module docstring. `localized` names the caller's own
    components whose `prop` is a text per language (key -> (component, prop, text(lang))):
    they are given the i18n key as their value, and follow the language like the chat's.
    """
    if web is None:  # the clinic's name, colours and greeting, from the bot's settings
        settings = getattr(bot, "settings", None)
        web = settings.web if settings is not None else WebSettings()
    saved: ExpiringStore[list[Turn]] = ExpiringStore(
        web.max_conversations, web.conversation_ttl_minutes * 60)
    # "New conversation" in a tab drops the answers to every question that tab asked before it.
    # Gradio's `cancels` stops such an answer, but the page starts the cancel and the new
    # conversation at the same time: on a busy server a word streamed meanwhile reached the page
    # after the empty chat and put the old draft back (CI saw it; the question had been asked
    # before the page's load had even told it its conversation id). So each question gets a
    # number when asked, and its answer stops itself before its next word once its tab's
    # "New conversation" came after that number (per Gradio session: one per browser tab).
    ask_numbers = itertools.count(1)
    dropped_up_to: ExpiringStore[int] = ExpiringStore(
        web.max_conversations, web.conversation_ttl_minutes * 60)
    gr.HTML("", head=chat_head(web), js_on_load=None, elem_id="crampbot-assets")
    turns = gr.State([])
    pending = gr.State(Asked("", 0))
    page_lang = gr.State("en")  # this visitor's interface language, told on load
    conversation = gr.Textbox(visible=False)  # the browser tab's conversation id
    browser_lang = gr.Textbox(visible=False)  # navigator.language, told on load
    new_conversation = gr.Button(_i18n("NEW_CONVERSATION"), size="sm", variant="secondary",
                                 elem_id="crampbot-new-conversation", scale=0)

    def examples_in(lang: str) -> list[dict] | None:
        questions = (web.examples.get(texts.language(lang))
                     or texts.t("EXAMPLE_QUESTIONS", lang))[:example_count]
        return [{"text": question} for question in questions] or None

    chatbot = gr.Chatbot(
        label=_i18n("CHAT_LOG"), show_label=False, scale=1, height=height, autoscroll=False,
        layout="bubble", examples=examples_in("en" if web.lang == "auto" else web.lang),
        placeholder=_i18n("GREETING_HTML"), sanitize_html=True, allow_tags=False,
        latex_delimiters=[], buttons=[], elem_id="crampbot-chat",
    )
    # Until the model is loaded, the page says so before anyone asks (and stops asking the
    # server once it is).
    loading = gr.HTML(_i18n("LOADING_HTML"), visible=False, js_on_load=None,
                      elem_id="crampbot-loading")
    loading_check = gr.Timer(LOADING_CHECK_S, active=False)
    gr.HTML('<p id="crampbot-waiting" role="status" hidden></p>', js_on_load=None,
            elem_id="crampbot-waiting-block")  # filled by chat.js while a question waits
    textbox = gr.Textbox(label=_i18n("MESSAGE_BOX"), placeholder=_i18n("MESSAGE_PLACEHOLDER"),
                         show_label=False, submit_btn=labels.SEND, autofocus=True,
                         elem_id="crampbot-message")
    # What follows the language: (component, property, its text in a language).
    swapped: list[tuple[gr.components.Component, str, Callable[[str], str]]] = [
        (new_conversation, "value", lambda lang: texts.t("NEW_CONVERSATION", lang)),
        (chatbot, "label", lambda lang: texts.t("CHAT_LOG", lang)),
        (chatbot, "placeholder", lambda lang: greeting_html(web, lang)),
        (loading, "value", loading_html),
        (textbox, "label", lambda lang: texts.t("MESSAGE_BOX", lang)),
        (textbox, "placeholder", lambda lang: texts.about("MESSAGE_PLACEHOLDER", lang, web.topic)),
    ]
    computed = {"GREETING_HTML": lambda lang: greeting_html(web, lang), "LOADING_HTML": loading_html,
                "MESSAGE_PLACEHOLDER": lambda lang: texts.about("MESSAGE_PLACEHOLDER", lang, web.topic)}
    for key, (component, prop, make) in (localized or {}).items():
        setattr(component, prop, str(_i18n(key)))
        swapped.append((component, prop, make))
        computed[key] = make
    page = gr.context.Context.root_block
    # Read by gr.mount_gradio_app (app.py's mounts pass no i18n of their own)...
    page.i18n_instance = interface_i18n(web, computed)
    _keep_i18n_on_launch(page)

    def ask(message: str, history: list[Turn], lang: str):
        view = conversation_view(history, message, render.render_status(
            texts.t("SEARCHING", reply_language(message, lang))))
        # The box stays usable: web/static/chat.js holds a question sent during an answer
        # until that answer is finished.
        return "", view, Asked(message, next(ask_numbers))

    def ask_example(selected: gr.SelectData, history: list[Turn], lang: str):
        return ask(selected.value["text"], history, lang)

    def respond(asked: Asked, history: list[Turn], conversation_id: str, lang: str,
                request: gr.Request):
        message = asked.message
        wait = limiter.retry_after(client_key(request)) if limiter is not None else None
        replies = (reply_stream(bot, message, history, lang) if wait is None
                   else iter([polite_refusal(message, "RATE_LIMITED", lang)]))
        for reply_html, answer in replies:
            if (dropped_up_to.get(request.session_hash) or 0) > asked.number:
                return  # "New conversation" was pressed since
            if answer is None:
                yield conversation_view(history, message, reply_html), history
            else:
                done = kept_turns(history, message, answer, reply_html)
                if conversation_id:
                    saved.put(conversation_id, done)
                yield conversation_view(done), done

    def restore(conversation_id: str, browser: str, request: gr.Request):
        lang = labels.interface_language(
            forced=request.query_params.get("lang"),
            setting=None if web.lang == "auto" else web.lang, browser=browser,
            accept_language=request.headers.get("accept-language"))
        kept = saved.get(conversation_id) if conversation_id else None
        if kept is None:
            conversation_id, kept = _new_conversation_id(), []
        shown = texts_in(lang, browser)
        return (conversation_id,
                gr.update(value=conversation_view(kept), examples=examples_in(lang),
                          **shown.pop(chatbot, {})),
                kept, gr.update(visible=_loading(bot), **shown.pop(loading, {})),
                gr.Timer(active=not getattr(bot, "model_ready", True)), lang, lang,
                *[gr.update(**shown.get(component, {})) for component in others])

    def texts_in(lang: str, browser: str) -> dict:
        """What Gradio's i18n shows in another language than `lang` (the browser's, when
        data-lang or settings.web.lang chose another), as plain strings per component.
        Hand-made because Gradio's i18n follows only navigator.language."""
        shown_by_gradio = web.lang if web.lang != "auto" else texts.language(browser)
        updates: dict = {textbox: {"submit_btn": texts.t("SEND", lang)}}  # not an i18n property
        if lang != shown_by_gradio:
            for component, prop, make in swapped:
                updates.setdefault(component, {})[prop] = make(lang)
        return updates

    # The load's outputs besides the chatbot and the loading note, which it updates anyway.
    others = [component for component in dict.fromkeys([textbox, *(c for c, _, _ in swapped)])
              if component not in (chatbot, loading)]

    def model_state():
        # The note shows while a load is under way; the check stops once the model is ready.
        return gr.update(visible=_loading(bot)), gr.Timer(active=not getattr(bot, "model_ready", True))

    def start_over(request: gr.Request):
        dropped_up_to.put(request.session_hash, next(ask_numbers))
        return _new_conversation_id(), [], [], ""

    def record_vote(vote: gr.LikeData, history: list[Turn], request: gr.Request) -> None:
        # The API's vote limit per client holds in the page too: each vote appends to the log.
        if vote_limiter is not None and vote_limiter.retry_after(client_key(request)) is not None:
            log.info("vote not recorded: %s is over web.feedback_per_minute", surface)
            return
        turn = voted_turn(history, vote.index)
        if turn is not None:
            try:
                feedback.record(turn.answer, rating_from_vote(vote.liked), surface, turn.answer_id)
            except Exception:  # Redis or the disk down: the vote is lost, the chat goes on
                log.exception("vote not recorded: the feedback store failed")

    hidden = {"api_visibility": "private"}  # the page's own plumbing, not a public API
    asked = [
        textbox.submit(ask, [textbox, turns, page_lang], [textbox, chatbot, pending], queue=False,
                       **hidden),
        chatbot.example_select(ask_example, [turns, page_lang], [textbox, chatbot, pending],
                               queue=False, **hidden),
    ]
    answering = [
        event.then(
            respond, [pending, turns, conversation, page_lang], [chatbot, turns],
            concurrency_limit=CONCURRENCY_LIMIT, show_progress="minimal", **hidden,
        )
        for event in asked
    ]
    lang_box = gr.Textbox(visible=False)  # the chosen language, for chat.js
    loading_check.tick(model_state, None, [loading, loading_check], queue=False, **hidden)
    # No progress shown for the restore: Gradio dims every output of a running event to 0.2
    # opacity, so the header and greeting flickered at each load, and a slow run caught the
    # dimmed header failing axe's contrast check.
    page.load(restore, [conversation, browser_lang],
              [conversation, chatbot, turns, loading, loading_check, page_lang, lang_box, *others],
              js=_READ_ID_AND_LANGUAGE, queue=False, show_progress="hidden", **hidden,
              ).then(None, [conversation, lang_box], None, js=_SAVE_ID_AND_LANGUAGE, **hidden)
    # Starting over cancels an answer still streaming (Gradio's `cancels`): it would otherwise
    # write itself into the new conversation when it ends.
    for cleared in (new_conversation.click, chatbot.clear):
        cleared(start_over, None, [conversation, chatbot, turns, textbox], queue=False,
                cancels=answering, **hidden).then(None, [conversation], None, js=_SAVE_ID, **hidden)
    if feedback is not None:
        chatbot.like(record_vote, [turns], None, queue=False, **hidden)
    return ChatView(chatbot=chatbot, textbox=textbox, turns=turns,
                    new_conversation=new_conversation)


def _keep_i18n_on_launch(page: gr.Blocks) -> None:
    """...but Blocks.launch sets it to its own `i18n` argument, None unless given, and the page
    would then show the keys ("NEW_CONVERSATION") instead of the texts. So a launch without one
    gets the page's (app.launch_options, which tests and a standalone launch use, has none)."""
    launch = page.launch

    def launch_with_i18n(*args, i18n: gr.I18n | None = None, **kwargs):
        return launch(*args, i18n=i18n or page.i18n_instance, **kwargs)

    page.launch = launch_with_i18n


def _new_conversation_id() -> str:
    return secrets.token_urlsafe(16)
