"""The chat as Gradio components: used by the full page (app.py) and the widget (web/widget.py).

Built on Blocks + gr.Chatbot rather than gr.ChatInterface, because ChatInterface puts the user's
raw message into the chat, where Gradio renders it as sanitized HTML (a `<script>` would vanish
instead of showing as text), and it hands the chat function the rendered conversation, from
which the plain answers would have to be parsed back out.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import gradio as gr

from bot import render, texts
from bot.answer import Answer
from bot.events import Delta, Done, Retrieved, Status
from bot.pipeline import CrampBot
from web.feedback import FeedbackStore, Surface, rating_from_vote
from web.security import RateLimiter, client_key

log = logging.getLogger("crampbot.chat")

EXAMPLE_QUESTIONS = [
    "Why do my calves cramp at night?",
    "What helps against leg cramps when swimming?",
    "Which vitamins prevent calf cramps?",
    "What should I do when my calf cramps right now?",
    "Can pregnancy cause leg cramps?",
]
_PLACEHOLDER = "Ask about leg or calf cramps..."
# One answer at a time: generation uses every CPU core, so a second concurrent answer would
# only halve both speeds; waiting users see their place in Gradio's queue instead.
CONCURRENCY_LIMIT = 1
QUEUE_MAX_SIZE = 32


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


@dataclass
class ChatView:
    """The components of one chat, for pages that embed it (the full page, a widget)."""

    chatbot: gr.Chatbot
    textbox: gr.Textbox
    turns: gr.State


def build_chat(bot: CrampBot, *, limiter: RateLimiter | None = None,
               feedback: FeedbackStore | None = None, surface: Surface = "chat",
               height: int | str = "70vh", examples: Sequence[str] = EXAMPLE_QUESTIONS,
               greeting_html: str | None = None) -> ChatView:
    """Render the chat into the current Blocks and wire its events.

    The conversation lives in a per-session gr.State of `Turn`s; the Chatbot is only a view of
    it, rebuilt on every update. So the history sent back to the model is the plain answer
    text by construction, whatever HTML the page shows. With a `limiter`, a client over its
    rate gets a polite chat reply instead of an answer; with `feedback`, each answer has
    thumbs up/down that are appended to that store.
    """
    turns = gr.State([])
    pending = gr.State("")
    chatbot = gr.Chatbot(
        show_label=False, scale=1, height=height, autoscroll=True, layout="bubble",
        examples=[{"text": question} for question in examples] or None,
        placeholder=greeting_html, sanitize_html=True, allow_tags=False, latex_delimiters=[],
        buttons=[], elem_id="crampbot-chat",
    )
    textbox = gr.Textbox(placeholder=_PLACEHOLDER, show_label=False, submit_btn=True,
                         autofocus=True, elem_id="crampbot-message")

    def ask(message: str, history: list[Turn]):
        view = conversation_view(history, message, render.render_status(render.SEARCHING))
        return gr.update(value="", interactive=False), view, message

    def ask_example(selected: gr.SelectData, history: list[Turn]):
        return ask(selected.value["text"], history)

    def respond(message: str, history: list[Turn], request: gr.Request):
        wait = limiter.retry_after(client_key(request)) if limiter is not None else None
        replies = (reply_stream(bot, message, history) if wait is None
                   else iter([polite_refusal(message, texts.RATE_LIMITED)]))
        for reply_html, answer in replies:
            if answer is None:
                yield conversation_view(history, message, reply_html), history
            else:
                done = [*history, Turn(message, answer, reply_html)]
                yield conversation_view(done), done

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
            respond, [pending, turns], [chatbot, turns],
            concurrency_limit=CONCURRENCY_LIMIT, show_progress="minimal", **hidden,
        ).then(lambda: gr.update(interactive=True), None, textbox, queue=False, **hidden)
    chatbot.clear(lambda: [], None, turns, queue=False, **hidden)
    if feedback is not None:
        chatbot.like(record_vote, [turns], None, queue=False, **hidden)
    return ChatView(chatbot=chatbot, textbox=textbox, turns=turns)
