"""The chat as Gradio components: used by the full page (app.py) and the widget (web/widget.py).

Built on Blocks + gr.Chatbot rather than gr.ChatInterface, because ChatInterface puts the user's
raw message into the chat, where Gradio renders it as sanitized HTML (a `<script>` would vanish
instead of showing as text), and it hands the chat function the rendered conversation, from
which the plain answers would have to be parsed back out.
"""
from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from bot import render, texts
from bot.answer import Answer
from bot.events import Delta, Done, Retrieved, Status
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web import labels
from web.conversations import ExpiringStore
from web.feedback import FeedbackStore, Surface, rating_from_vote
from web.security import RateLimiter, client_key
from web.theme import clinic_css

log = logging.getLogger("crampbot.chat")

EXAMPLE_QUESTIONS = [
    "Why do my calves cramp at night?",
    "What helps against leg cramps when swimming?",
    "Which vitamins prevent calf cramps?",
    "What should I do when my calf cramps right now?",
    "Can pregnancy cause leg cramps?",
]
STATIC_DIR = Path(__file__).resolve().parent / "static"
# One answer at a time: generation uses every CPU core, so a second concurrent answer would
# only halve both speeds; waiting users see their place in Gradio's queue instead.
CONCURRENCY_LIMIT = 1
QUEUE_MAX_SIZE = 32
LOADING_CHECK_S = 2.0  # how often an open page asks whether the model has finished loading


@dataclass(frozen=True)
class Turn:
    """One exchange as the server keeps it; the page only ever shows `reply_html`."""

    question: str
    answer: Answer
    reply_html: str
    answer_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # names it in feedback


def history_for_bot(turns: list[Turn]) -> list[tuple[str, str]]:
    """Earlier (question, answer text) pairs for `CrampBot.stream`: no disclaimer, no source
    cards, and no refused inputs or internal errors, which are not part of the conversation."""
    return [(turn.question, turn.answer.text) for turn in turns if not turn.answer.error]


def reply_stream(
    bot: CrampBot, message: str, turns: list[Turn]
) -> Iterator[tuple[str, Answer | None]]:
    """The reply's HTML as it grows; the last item also carries the final Answer.

    Never raises: whatever goes wrong is logged and shown as the polite internal-error reply
    with the disclaimer, never as a traceback.
    """
    yield render.render_status(render.SEARCHING), None
    draft, status = "", None
    try:
        for event in bot.stream(message, history_for_bot(turns)):
            if isinstance(event, Done):
                yield render.render_answer(event.answer), event.answer
                return
            if isinstance(event, Status):
                status = event.text
            elif isinstance(event, Retrieved):
                status = render.WRITING.format(count=len(event.passages))
            elif isinstance(event, Delta):
                draft += event.text
                status = None
            if draft:
                yield render.render_draft(draft, texts.DISCLAIMER, status), None
            else:
                yield render.render_status(status or render.SEARCHING), None
        log.error("the bot's stream ended without a final answer")
    except Exception:
        log.exception("internal error while answering")
    answer = Answer(question=message, text=texts.INTERNAL_ERROR, error=True)
    yield render.render_answer(answer), answer


def polite_refusal(message: str, text: str) -> tuple[str, Answer]:
    """A reply that never reached the bot (e.g. the rate limit), shaped like any other."""
    answer = Answer(question=message, text=text, error=True)
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


@dataclass
class ChatView:
    """The components of one chat, for pages that embed it (the full page, a widget)."""

    chatbot: gr.Chatbot
    textbox: gr.Textbox
    turns: gr.State
    new_conversation: gr.Button


def greeting_html(web: WebSettings) -> str:
    """Shown in the empty chat: the clinic's greeting and the disclaimer, escaped."""
    return (
        f'<div class="cb-greeting"><p>{render.escape_text(web.greeting)}</p>'
        f'<p class="cb-greeting-note">{render.escape_text(texts.DISCLAIMER_NO_SOURCES)}</p></div>'
    )


def chat_head(web: WebSettings) -> str:
    """The chat's own styles and script (web/static/chat.css, chat.js) and the clinic's colours,
    for the page's <head>: the full page gets them from the chat itself, since its theme and
    CSS are set where app.py mounts it."""
    names = json.dumps({"examples": labels.EXAMPLES, "waiting": labels.WAITING}).replace("<", "\\u003c")
    script = (STATIC_DIR / "chat.js").read_text(encoding="utf-8").replace(
        "/*@labels*/{}", names, 1)
    style = (STATIC_DIR / "chat.css").read_text(encoding="utf-8") + clinic_css(web)
    return f"<style>{style}</style><script>{script}</script>"


def build_chat(bot: CrampBot, *, limiter: RateLimiter | None = None,
               feedback: FeedbackStore | None = None, surface: Surface = "chat",
               height: int | str = "70vh", examples: Sequence[str] = EXAMPLE_QUESTIONS,
               greeting_html: str | None = None, web: WebSettings | None = None) -> ChatView:
    """Render the chat into the current Blocks and wire its events.

    The conversation lives in a per-session gr.State of `Turn`s; the Chatbot is only a view of
    it, rebuilt on every update. So the history sent back to the model is the plain answer
    text by construction, whatever HTML the page shows. With a `limiter`, a client over its
    rate gets a polite chat reply instead of an answer; with `feedback`, each answer has
    thumbs up/down that are appended to that store. The turns are also kept by conversation
    id for a while, so that a reload of the browser tab shows them again.
    """
    if web is None:  # the clinic's name, colours and greeting, from the bot's settings
        settings = getattr(bot, "settings", None)
        web = settings.web if settings is not None else WebSettings()
    greeting = greeting_html if greeting_html is not None else _greeting(web)
    saved: ExpiringStore[list[Turn]] = ExpiringStore(
        web.max_conversations, web.conversation_ttl_minutes * 60)
    gr.HTML("", head=chat_head(web), js_on_load=None, elem_id="crampbot-assets")
    turns = gr.State([])
    pending = gr.State("")
    conversation = gr.Textbox(visible=False)  # the browser tab's conversation id
    new_conversation = gr.Button(labels.NEW_CONVERSATION, size="sm", variant="secondary",
                                 elem_id="crampbot-new-conversation", scale=0)
    chatbot = gr.Chatbot(
        label=labels.CHAT_LOG, show_label=False, scale=1, height=height, autoscroll=False,
        layout="bubble",
        examples=[{"text": question} for question in examples] or None,
        placeholder=greeting, sanitize_html=True, allow_tags=False, latex_delimiters=[],
        buttons=[], elem_id="crampbot-chat",
    )
    # Until the model is loaded, the page says so before anyone asks (and stops asking the
    # server once it is).
    loading = gr.HTML(f'<p class="cb-status" role="status">{render.escape_text(texts.MODEL_LOADING)}</p>',
                      visible=False, js_on_load=None, elem_id="crampbot-loading")
    loading_check = gr.Timer(LOADING_CHECK_S, active=False)
    gr.HTML('<p id="crampbot-waiting" role="status" hidden></p>', js_on_load=None,
            elem_id="crampbot-waiting-block")  # filled by chat.js while a question waits
    textbox = gr.Textbox(label=labels.MESSAGE_BOX, placeholder=labels.MESSAGE_PLACEHOLDER,
                         show_label=False, submit_btn=labels.SEND, autofocus=True,
                         elem_id="crampbot-message")

    def ask(message: str, history: list[Turn]):
        view = conversation_view(history, message, render.render_status(render.SEARCHING))
        # The box stays usable: web/static/chat.js holds a question sent during an answer
        # until that answer is finished.
        return "", view, message

    def ask_example(selected: gr.SelectData, history: list[Turn]):
        return ask(selected.value["text"], history)

    def respond(message: str, history: list[Turn], conversation_id: str, request: gr.Request):
        wait = limiter.retry_after(client_key(request)) if limiter is not None else None
        replies = (reply_stream(bot, message, history) if wait is None
                   else iter([polite_refusal(message, texts.RATE_LIMITED)]))
        for reply_html, answer in replies:
            if answer is None:
                yield conversation_view(history, message, reply_html), history
            else:
                done = [*history, Turn(message, answer, reply_html)]
                if conversation_id:
                    saved.put(conversation_id, done)
                yield conversation_view(done), done

    def restore(conversation_id: str):
        kept = saved.get(conversation_id) if conversation_id else None
        if kept is None:
            return (_new_conversation_id(), [], [], *model_state())
        return (conversation_id, conversation_view(kept), kept, *model_state())

    def model_state():
        waiting = not getattr(bot, "model_ready", True)
        return gr.update(visible=waiting), gr.Timer(active=waiting)

    def start_over():
        return _new_conversation_id(), [], [], ""

    def record_vote(vote: gr.LikeData, history: list[Turn]) -> None:
        turn = voted_turn(history, vote.index)
        if turn is not None:
            feedback.record(turn.answer, rating_from_vote(vote.liked), surface, turn.answer_id)

    hidden = {"api_visibility": "private"}  # the page's own plumbing, not a public API
    asked = [
        textbox.submit(ask, [textbox, turns], [textbox, chatbot, pending], queue=False, **hidden),
        chatbot.example_select(ask_example, [turns], [textbox, chatbot, pending], queue=False,
                               **hidden),
    ]
    for event in asked:
        event.then(
            respond, [pending, turns, conversation], [chatbot, turns],
            concurrency_limit=CONCURRENCY_LIMIT, show_progress="minimal", **hidden,
        )
    page = gr.context.Context.root_block
    loading_check.tick(model_state, None, [loading, loading_check], queue=False, **hidden)
    page.load(restore, [conversation], [conversation, chatbot, turns, loading, loading_check],
              js=_READ_ID, queue=False, **hidden).then(None, [conversation], None, js=_SAVE_ID, **hidden)
    for cleared in (new_conversation.click, chatbot.clear):
        cleared(start_over, None, [conversation, chatbot, turns, textbox], queue=False,
                **hidden).then(None, [conversation], None, js=_SAVE_ID, **hidden)
    if feedback is not None:
        chatbot.like(record_vote, [turns], None, queue=False, **hidden)
    return ChatView(chatbot=chatbot, textbox=textbox, turns=turns,
                    new_conversation=new_conversation)


_greeting = greeting_html  # build_chat's parameter of the same name hides the function


def _new_conversation_id() -> str:
    return secrets.token_urlsafe(16)
