"""The web server: the chat page, the embeddable widget and the JSON API on one FastAPI app.

`python app.py` (or `crampbot serve`) serves on settings.app.host:port, 127.0.0.1:7860 by
default, with no share link and no analytics:

    /                      the full chat page (Gradio)
    /widget/               the compact chat for a frame on a clinic's site (Gradio)
    /embed.js              the one-line embed script: a floating button that opens the widget
    /api/v1/ask, /feedback, /health, /ready   the JSON API; schema at /api/v1/openapi.json
    /api/v1/ask/stream     the answer as Server-Sent Events (status, retrieved, delta, done)
    /v1/chat/completions, /v1/models   OpenAI-compatible chat API; schema at /v1/openapi.json
    /metrics               Prometheus metrics (settings.web.metrics)

Both Gradio apps are mounted with Gradio's own helper (gr.mount_gradio_app) into the one
FastAPI app, and web/security.py wraps all of it in the host, origin, framing, CORS, size and
deadline controls; web/limits.py bounds what reaches the bot, web/server.py how uvicorn meets
slow and flooding clients, web/state.py where limits and conversations live. The pages hold no retrieval logic: they show what `CrampBot.stream` yields,
rendered by bot/render.py.
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import threading

# Before Gradio is imported: it reads these at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gradio as gr  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import FastAPI, Response  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import RedirectResponse  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from bot import render, texts  # noqa: E402
from bot.errors import CrampbotError  # noqa: E402
from bot.gaps import note_thumbs_down  # noqa: E402
from bot.pipeline import CrampBot  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from web.api import PREFIX as API_PREFIX, ApiMethods, api_router  # noqa: E402
# The chat's pieces live in web/chat.py (the widget reuses them); re-exported for callers of app.
from web.chat import (  # noqa: E402,F401
    CONCURRENCY_LIMIT, EXAMPLE_QUESTIONS, QUEUE_MAX_SIZE, ChatView, Turn, build_chat,
    conversation_view, history_for_bot, reply_stream,
)
from web.feedback import FeedbackStore, feedback_path  # noqa: E402
from web.limits import BoundedBot, validation_problem  # noqa: E402
from web.logs import RequestId, configure_logging  # noqa: E402
from web.metrics import MeteredBot, Metrics, RequestMetrics  # noqa: E402
from web.security import RateLimiter, protect  # noqa: E402
from web.server import AnswerSlots, install_log_flood_guard, uvicorn_options  # noqa: E402
from web.state import make_state, shared_state_unavailable  # noqa: E402
from web.theme import require_readable  # noqa: E402
from web.widget import (  # noqa: E402
    WIDGET_CSS, WIDGET_HEAD, WIDGET_PATH, build_widget, embed_script, widget_theme,
)

log = logging.getLogger("crampbot.app")

_API_DESCRIPTION = (
    "Grounded answers about leg and calf cramps for a clinic's own front end. Every answer "
    "comes with its cited source passages and a disclaimer to show with it. Browsers may call "
    "it only from the origins in settings.web.allowed_origins; each client may ask "
    "settings.web.rate_limit_per_minute questions per minute (429 with Retry-After beyond)."
)


def build_app(bot: CrampBot, settings: Settings, *, limiter: RateLimiter | None = None,
              feedback: FeedbackStore | None = None,
              vote_limiter: RateLimiter | None = None) -> gr.Blocks:
    """The full chat page. Launch it with `launch_options(settings)` (Gradio 6 takes the CSS
    at launch), or mount it with the same css, as `build_server` does."""
    require_readable(settings.web)
    name, topics = settings.web.clinic_name, settings.web.topic
    with gr.Blocks(title=name, analytics_enabled=False, fill_height=True) as page:
        header = gr.HTML(_page_header(name, topics=topics))
        # The header follows the page's language like the chat's own texts (web/chat.py).
        build_chat(bot, limiter=limiter, feedback=feedback, surface="chat", vote_limiter=vote_limiter,
                   localized={"PAGE_HEADER_HTML": (
                       header, "value", lambda lang: _page_header(name, lang, topics))})
    page.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return page


def _page_header(clinic_name: str, lang: str = "en", topics: dict[str, str] | None = None) -> str:
    intro = texts.about("PAGE_INTRO", lang, topics or {})
    return (f'<div class="cb-header"><h1>{render.escape_text(clinic_name)}</h1>'
            f'<p>{render.escape_text(intro)}</p></div>')


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


def build_server(bot: CrampBot, settings: Settings, *, limiter: RateLimiter | None = None,
                 feedback: FeedbackStore | None = None, metrics: Metrics | None = None,
                 warmed: threading.Event | None = None) -> FastAPI:
    """The one app that serves everything (routes in the module docstring). The rate limiter,
    the feedback store and the metrics are shared by the API, the widget and the chat page,
    which all ask one bot bounded by web/limits.py (history size) and counted by web/metrics.py.
    With `warmed`, GET /api/v1/ready says ready only once it is set (see `warm_up`)."""
    web = settings.web
    state = make_state(web)
    limiter = limiter or state.ask_limiter
    feedback = feedback or FeedbackStore(feedback_path(settings), max_bytes=web.feedback_max_bytes,
                                         backups=web.feedback_backups, votes=state.votes)
    if feedback.on_thumbs_down is None:  # the gaps log takes voted-down questions (when it is on)
        feedback.on_thumbs_down = functools.partial(note_thumbs_down, settings)
    metrics = metrics or Metrics()
    slots = AnswerSlots(web.answer_concurrency, web.answer_queue)
    metrics.watch_queue(slots)
    bot = MeteredBot(BoundedBot(bot, web), metrics)
    server = FastAPI(
        title=f"{web.clinic_name} assistant API", version="1", description=_API_DESCRIPTION,
        # The interactive docs pages load their scripts from a CDN, which an offline clinic
        # network cannot reach; the schema itself is served and works in any OpenAPI viewer.
        openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None,
    )
    # FastAPI's own 422 echoes the input back (30 KB for a 1,000-turn history).
    server.add_exception_handler(RequestValidationError, validation_problem)
    if web.state == "redis":
        import redis

        server.add_exception_handler(redis.RedisError, shared_state_unavailable)
    ready = None if warmed is None else (lambda: bot.model_ready and warmed.is_set())
    api = api_router(bot, web, limiter=limiter, feedback=feedback, state=state, slots=slots,
                     ready_check=ready)
    server.include_router(api)
    if web.metrics:
        @server.get("/metrics", include_in_schema=False)
        def prometheus_metrics() -> Response:
            return Response(metrics.exposition(), media_type=metrics.content_type)

    script = embed_script(web)

    @server.get(WIDGET_PATH, include_in_schema=False)
    def widget_without_slash() -> RedirectResponse:
        return RedirectResponse(f"{WIDGET_PATH}/")

    @server.get("/embed.js", include_in_schema=False)
    def embed() -> Response:
        return Response(script, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=300"})

    common = {"show_error": False, "ssr_mode": False, "server_name": settings.app.host,
              "server_port": settings.app.port}
    # The widget first: a mount at "/" would otherwise catch /widget too.
    gr.mount_gradio_app(server, build_widget(bot, web, limiter=limiter, feedback=feedback,
                                             vote_limiter=state.vote_limiter),
                        WIDGET_PATH, css=WIDGET_CSS, head=WIDGET_HEAD, theme=widget_theme(web),
                        footer_links=[],
                        **common)
    gr.mount_gradio_app(server, build_app(bot, settings, limiter=limiter, feedback=feedback,
                                          vote_limiter=state.vote_limiter),
                        "/", css=render.CHAT_CSS, footer_links=["gradio", "settings"], **common)
    server.add_middleware(ApiMethods, routes=[*api.routes, *server.routes])
    protect(server, web, framable_prefixes=(WIDGET_PATH,), gradio_mounts=(WIDGET_PATH, "/"))
    server.add_middleware(RequestMetrics, metrics=metrics)
    server.add_middleware(RequestId)  # outermost: every log line of a request carries its id
    return server


def warm_up(bot: CrampBot, done: threading.Event | None = None) -> None:
    """Load the index and the model, then answer one example question, so that what the bot
    builds on its first question (the red-flag detector's embedded descriptions, ...) is built
    once, before visitors ask; `done` is set after. Runs while the page is already open: a
    question asked before the model is loaded shows "loading" instead of hanging."""
    # Visitors' first questions each built those at the same time: six questions at once
    # right after start took 10-20 s each instead of 1-3 s.
    try:
        bot.warm_up()
        bot.ask(EXAMPLE_QUESTIONS[0])
        log.info("model and index ready")
    except CrampbotError as error:  # e.g. a missing model, reported per question
        log.warning("warm-up: %s", error)
    except Exception:
        log.exception("warm-up failed")
    finally:
        if done is not None:
            done.set()


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
    try:
        settings = load_settings(preset=args.preset, config_file=args.config)
    except (CrampbotError, ValidationError) as error:  # e.g. an allowed origin with a path
        print(f"crampbot: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.web)  # JSON lines with request ids (settings.web.log_format)
    # Command-line flags win over everything, including CRAMPBOT_APP__* variables.
    app_settings = settings.app.model_copy(update={
        key: value for key, value in (("host", args.host), ("port", args.port)) if value is not None
    })
    settings = settings.model_copy(update={"app": app_settings})

    bot = CrampBot(settings)
    warmed = None if args.no_warm_up else threading.Event()
    server = build_server(bot, settings, warmed=warmed)
    if warmed is not None:
        threading.Thread(target=warm_up, args=(bot, warmed), name="warm-up", daemon=True).start()
    base = f"http://{settings.app.host}:{settings.app.port}"
    log.info("chat %s/  widget %s%s/  embed %s/embed.js  API schema %s%s/openapi.json",
             base, base, WIDGET_PATH, base, base, API_PREFIX)
    # log_config=None: uvicorn's loggers keep propagating to the handler configured above.
    config = uvicorn.Config(server, host=settings.app.host, port=settings.app.port,
                            log_level="info", log_config=None, **uvicorn_options(settings.web))
    install_log_flood_guard()
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
