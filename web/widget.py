"""The widget: a compact chat for a frame on a clinic's site, and the script that embeds it.

`build_widget` is the same chat as the full page (web/chat.py), in the clinic's name, colours
and greeting from settings.web, and in the visitor's language like the page (`?lang=` in its
address, which embed.js sets from data-lang, chooses it); app.py mounts it at /widget/ with `WIDGET_CSS`, `WIDGET_HEAD`
and `widget_theme` (Gradio 6 takes all three at mount time). `embed_script` is web/static/embed.js with
the clinic's defaults filled in; it adds the floating button that opens the widget.
"""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from bot import render, texts
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.chat import CONCURRENCY_LIMIT, QUEUE_MAX_SIZE, build_chat
from web.theme import widget_theme  # noqa: F401  (app.py mounts the widget with it)
from web.feedback import FeedbackStore
from web.security import RateLimiter

STATIC_DIR = Path(__file__).resolve().parent / "static"
WIDGET_PATH = "/widget"
_EMBED_DEFAULTS = "/*@defaults*/{}"  # replaced by the clinic's settings when served
_WIDGET_EXAMPLES = 3  # fewer example questions, so they fit a narrow frame

# Layout of the framed page; colours come from the theme (widget_theme), so values from
# settings never have to be pasted into CSS.
WIDGET_CSS = render.CHAT_CSS + """
html, body { height: 100%; overflow: hidden; }
.gradio-container { padding: 0 !important; max-width: none !important; height: 100vh; }
.gradio-container > .main, .gradio-container .contain { padding: 0 !important; gap: 0 !important; }
.gradio-container .contain > .column { gap: 0 !important; min-height: 0 !important; }
/* Flex items grow with their content unless allowed to shrink: without these the chat would
   push the message box out of the frame instead of scrolling. */
.gradio-container main.contain, #crampbot-chat > .wrapper { min-height: 0 !important; }
footer { display: none !important; }
.cb-widget-header-block, .cb-widget-header-block .html-container { padding: 0 !important; margin: 0 !important; border: 0 !important; border-radius: 0 !important; }
.cb-widget-head { display: flex; align-items: center; gap: .75em; padding: .8em 1em; background: var(--button-primary-background-fill); color: var(--button-primary-text-color); }
.cb-widget-head .cb-logo { flex: none; width: 2.2em; height: 2.2em; border-radius: 50%; display: grid; place-items: center; background: rgba(255,255,255,.2); font-weight: 700; color: var(--button-primary-text-color); }
.cb-widget-head h1.cb-widget-title { font-weight: 700; font-size: 1.05rem; line-height: 1.25; margin: 0; color: var(--button-primary-text-color) !important; }
.cb-widget-head p.cb-widget-subtitle { font-size: .8rem; line-height: 1.3; margin: .1em 0 0 0; opacity: .88; color: var(--button-primary-text-color) !important; }
#crampbot-widget-body { padding: .6em .6em .6em .6em !important; gap: .5em !important; min-height: 0 !important; background: var(--background-fill-primary); }
#crampbot-chat { min-height: 0 !important; border-radius: 10px; }
"""


# The frame's side of embed.js's panel: it says "ready" as soon as it loads (a frame the browser
# refused to show, on a site that is not allowed, never does, so embed.js can explain), keeps
# the keyboard inside the open panel with embed.js's help (Shift+Tab on the first control goes
# to the launcher, the launcher's Tab comes back in), and Escape asks the page to close the
# panel. Only fixed words cross the frame, nothing of the chat.
WIDGET_HEAD = "<script>" + (STATIC_DIR / "widget-frame.js").read_text(encoding="utf-8") + "</script>"


def build_widget(bot: CrampBot, web: WebSettings, *, limiter: RateLimiter | None = None,
                 feedback: FeedbackStore | None = None,
                 vote_limiter: RateLimiter | None = None) -> gr.Blocks:
    """The widget page; mount it with css=WIDGET_CSS, head=WIDGET_HEAD, theme=widget_theme(web)."""
    with gr.Blocks(title=web.clinic_name, analytics_enabled=False, fill_height=True,
                   fill_width=True) as page:
        header = gr.HTML(widget_header(web), padding=False, container=False,
                         elem_classes=["cb-widget-header-block"])
        with gr.Column(elem_id="crampbot-widget-body", scale=1):
            build_chat(bot, limiter=limiter, feedback=feedback, surface="widget",
                       vote_limiter=vote_limiter,
                       height="100%", example_count=_WIDGET_EXAMPLES, web=web,
                       localized={"WIDGET_HEADER_HTML": (
                           header, "value", lambda lang: widget_header(web, lang))})
    page.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return page


def widget_header(web: WebSettings, lang: str = "en") -> str:
    name = render.escape_text(web.clinic_name)
    initial = render.escape_text(web.clinic_name.strip()[:1].upper())
    return (
        f'<div class="cb-widget-head"><div class="cb-logo" aria-hidden="true">{initial}</div>'
        f'<div><h1 class="cb-widget-title">{name}</h1>'
        f'<p class="cb-widget-subtitle">{render.escape_text(texts.t("WIDGET_SUBTITLE", lang))}</p></div></div>'
    )


def embed_script(web: WebSettings) -> str:
    """embed.js with the clinic's button colour, label and language as defaults (data-*
    attributes on the script tag still win) and its words in every language. JSON with "<"
    escaped, so no value can end the script. A clinic's own launcher label is used in every
    language; the default one is the catalog's."""
    own_label = web.launcher_label if web.launcher_label != texts.WIDGET_LAUNCHER_LABEL else ""
    words = {lang: {"label": texts.t("WIDGET_LAUNCHER_LABEL", lang),
                    "notEnabled": texts.t("NOT_ENABLED", lang), "close": texts.t("CLOSE", lang)}
             for lang in texts.LANGUAGES}
    defaults = json.dumps({"color": web.primary_color, "textColor": web.on_primary_color,
                           "label": own_label, "title": web.clinic_name,
                           "path": WIDGET_PATH.strip("/") + "/",
                           "lang": "" if web.lang == "auto" else web.lang, "words": words})
    script = (STATIC_DIR / "embed.js").read_text(encoding="utf-8")
    return script.replace(_EMBED_DEFAULTS, defaults.replace("<", "\\u003c"), 1)
