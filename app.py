"""The web chat: a Gradio page that streams grounded answers with source cards and the disclaimer.

`python app.py` (or `crampbot serve`) serves it on settings.app.host:port, 127.0.0.1:7860 by
default, with no share link and no analytics. The page holds no retrieval logic: it shows what
`CrampBot.stream` yields, rendered by bot/render.py.

Built on Blocks + gr.Chatbot rather than gr.ChatInterface, because ChatInterface puts the user's
raw message into the chat, where Gradio renders it as sanitized HTML (a `<script>` would vanish
instead of showing as text), and it hands the chat function the rendered conversation, from
which the plain answers would have to be parsed back out.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

# Before Gradio is imported: it reads these at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr  # noqa: E402

from bot import render, texts  # noqa: E402
from bot.answer import Answer  # noqa: E402
from bot.errors import CrampbotError  # noqa: E402
from bot.events import Delta, Done, Retrieved, Status  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402

log = logging.getLogger("crampbot.app")

EXAMPLE_QUESTIONS = [
    "Why do my calves cramp at night?",
    "What helps against leg cramps when swimming?",
    "Which vitamins prevent calf cramps?",
    "What should I do when my calf cramps right now?",
    "Can pregnancy cause leg cramps?",
]
_INTRO = (
    "Ask about leg and calf cramps. Answers come only from the clinic's sources, which are "
    "shown under each answer."
)
_PLACEHOLDER = "Ask about leg or calf cramps..."
# One answer at a time: generation uses every CPU core, so a second concurrent answer would
# only halve both speeds; waiting users see their place in Gradio's queue instead.
_CONCURRENCY_LIMIT = 1
_QUEUE_MAX_SIZE = 32


@dataclass(frozen=True)
class Turn:
    """One exchange as the server keeps it; the page only ever shows `reply_html`."""

    question: str
    answer: Answer
    reply_html: str


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


@dataclass
class ChatView:
    """The components of one chat, for pages that embed it (the full page, a widget)."""

    chatbot: gr.Chatbot
    textbox: gr.Textbox
    turns: gr.State


def build_chat(bot: CrampBot) -> ChatView:
    """Render the chat into the current Blocks and wire its events.

    The conversation lives in a per-session gr.State of `Turn`s; the Chatbot is only a view of
    it, rebuilt on every update. So the history sent back to the model is the plain answer
    text by construction, whatever HTML the page shows.
    """
    turns = gr.State([])
    pending = gr.State("")
    chatbot = gr.Chatbot(
        show_label=False, scale=1, height="70vh", autoscroll=True, layout="bubble",
        examples=[{"text": question} for question in EXAMPLE_QUESTIONS],
        sanitize_html=True, allow_tags=False, latex_delimiters=[], buttons=[],
        elem_id="crampbot-chat",
    )
    textbox = gr.Textbox(placeholder=_PLACEHOLDER, show_label=False, submit_btn=True,
                         autofocus=True, elem_id="crampbot-message")

    def ask(message: str, history: list[Turn]):
        view = conversation_view(history, message, render.render_status(render.SEARCHING))
        return gr.update(value="", interactive=False), view, message

    def ask_example(selected: gr.SelectData, history: list[Turn]):
        return ask(selected.value["text"], history)

    def respond(message: str, history: list[Turn]):
        for reply_html, answer in reply_stream(bot, message, history):
            if answer is None:
                yield conversation_view(history, message, reply_html), history
            else:
                done = [*history, Turn(message, answer, reply_html)]
                yield conversation_view(done), done

    hidden = {"api_visibility": "private"}  # the page's own plumbing, not a public API
    asked = [
        textbox.submit(ask, [textbox, turns], [textbox, chatbot, pending], queue=False, **hidden),
        chatbot.example_select(ask_example, [turns], [textbox, chatbot, pending], queue=False,
                               **hidden),
    ]
    for event in asked:
        event.then(
            respond, [pending, turns], [chatbot, turns],
            concurrency_limit=_CONCURRENCY_LIMIT, show_progress="minimal", **hidden,
        ).then(lambda: gr.update(interactive=True), None, textbox, queue=False, **hidden)
    chatbot.clear(lambda: [], None, turns, queue=False, **hidden)
    return ChatView(chatbot=chatbot, textbox=textbox, turns=turns)


def build_app(bot: CrampBot, settings: Settings) -> gr.Blocks:
    """The full chat page. Launch it with `launch_options(settings)` (Gradio 6 takes the CSS
    at launch), or mount it with the same css."""
    name = settings.app.clinic_name
    with gr.Blocks(title=name, analytics_enabled=False, fill_height=True) as page:
        gr.HTML(
            f'<div class="cb-header"><h1>{render.escape_text(name)}</h1>'
            f"<p>{render.escape_text(_INTRO)}</p></div>"
        )
        build_chat(bot)
    page.queue(default_concurrency_limit=_CONCURRENCY_LIMIT, max_size=_QUEUE_MAX_SIZE)
    return page


def launch_options(settings: Settings) -> dict:
    """Keyword arguments for `Blocks.launch`: local only, no share link, no API page link."""
    return {
        "server_name": settings.app.host,
        "server_port": settings.app.port or None,
        "share": False,
        "show_error": False,
        "css": render.CHAT_CSS,
        "footer_links": ["gradio", "settings"],
    }


def _warm_up(bot: CrampBot) -> None:
    # Loads the index and the model while the page is already open; a question asked before it
    # finishes shows "loading" instead of hanging. A missing model is reported per question.
    try:
        bot.warm_up()
        log.info("model and index ready")
    except CrampbotError as error:
        log.warning("warm-up: %s", error)
    except Exception:
        log.exception("warm-up failed")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description="Serve the crampbot web chat.")
    parser.add_argument("--preset", help="named preset from bot/presets (default: default)")
    parser.add_argument("--config", help="JSON config file overriding the preset")
    parser.add_argument("--host", help="interface to listen on (default: settings.app.host)")
    parser.add_argument("--port", type=int, help="port (default: settings.app.port)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="load the model on the first question instead of at start")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve the chat until interrupted; 2 when the settings are wrong."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(preset=args.preset, config_file=args.config)
    except CrampbotError as error:
        print(f"crampbot: {error}", file=sys.stderr)
        return 2
    # Command-line flags win over everything, including CRAMPBOT_APP__* variables.
    app_settings = settings.app.model_copy(update={
        key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None
    })
    settings = settings.model_copy(update={"app": app_settings})

    bot = CrampBot(settings)
    page = build_app(bot, settings)
    if not args.no_warm_up:
        threading.Thread(target=_warm_up, args=(bot,), name="warm-up", daemon=True).start()
    page.launch(**launch_options(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
