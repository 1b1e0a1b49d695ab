"""The widget: a compact chat for a frame on a clinic's site, and the script that embeds it.

`build_widget` is the same chat as the full page (web/chat.py), in the clinic's name, colours
and greeting from settings.web; app.py mounts it at /widget/ with `WIDGET_CSS`, `WIDGET_HEAD`
and `widget_theme` (Gradio 6 takes all three at mount time). `embed_script` is web/static/embed.js with
the clinic's defaults filled in; it adds the floating button that opens the widget.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import gradio as gr

from bot import render, texts
from bot.pipeline import CrampBot
from bot.settings import WebSettings
from web.chat import CONCURRENCY_LIMIT, EXAMPLE_QUESTIONS, QUEUE_MAX_SIZE, build_chat
from web.feedback import FeedbackStore
from web.security import RateLimiter

STATIC_DIR = Path(__file__).resolve().parent / "static"
WIDGET_PATH = "/widget"
_EMBED_DEFAULTS = "/*@defaults*/{}"  # replaced by the clinic's settings when served
_WIDGET_EXAMPLES = EXAMPLE_QUESTIONS[:3]  # fewer, so they fit a narrow frame

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
.cb-widget-head p.cb-widget-title { font-weight: 700; font-size: 1.05rem; line-height: 1.25; margin: 0; color: var(--button-primary-text-color) !important; }
.cb-widget-head p.cb-widget-subtitle { font-size: .8rem; line-height: 1.3; margin: .1em 0 0 0; opacity: .88; color: var(--button-primary-text-color) !important; }
#crampbot-widget-body { padding: .6em .6em .6em .6em !important; gap: .5em !important; min-height: 0 !important; background: var(--background-fill-primary); }
#crampbot-chat { min-height: 0 !important; border-radius: 10px; }
#crampbot-message button.submit-button, #crampbot-message button[aria-label="Submit"] { background: var(--button-primary-background-fill) !important; color: var(--button-primary-text-color) !important; }
.cb-greeting { text-align: left; max-width: 26em; margin: 0 auto; padding: 0 .5em; }
.cb-greeting p { margin: 0 0 .6em 0; }
.cb-greeting .cb-greeting-note { font-size: .82em; color: var(--body-text-color-subdued); }
"""


# Escape inside the frame closes the panel: the key event stays in the frame's document, so the
# frame asks embed.js (in the page) to close it. Only a fixed word is sent, nothing of the chat.
WIDGET_HEAD = """<script>
document.addEventListener("keydown", function (event) {
  if (event.key === "Escape" && window.parent !== window)
    window.parent.postMessage({crampbot: "close"}, "*");
});
</script>"""


def build_widget(bot: CrampBot, web: WebSettings, *, limiter: RateLimiter | None = None,
                 feedback: FeedbackStore | None = None) -> gr.Blocks:
    """The widget page; mount it with css=WIDGET_CSS, head=WIDGET_HEAD, theme=widget_theme(web)."""
    with gr.Blocks(title=web.clinic_name, analytics_enabled=False, fill_height=True,
                   fill_width=True) as page:
        gr.HTML(widget_header(web), padding=False, container=False,
                elem_classes=["cb-widget-header-block"])
        with gr.Column(elem_id="crampbot-widget-body", scale=1):
            build_chat(bot, limiter=limiter, feedback=feedback, surface="widget",
                       height="100%", examples=_WIDGET_EXAMPLES,
                       greeting_html=greeting_html(web))
    page.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return page


def widget_header(web: WebSettings) -> str:
    name = render.escape_text(web.clinic_name)
    initial = render.escape_text(web.clinic_name.strip()[:1].upper())
    return (
        f'<div class="cb-widget-head"><div class="cb-logo" aria-hidden="true">{initial}</div>'
        f'<div><p class="cb-widget-title">{name}</p>'
        f'<p class="cb-widget-subtitle">{render.escape_text(texts.WIDGET_SUBTITLE)}</p></div></div>'
    )


def greeting_html(web: WebSettings) -> str:
    """Shown in the empty chat: the clinic's greeting and the disclaimer, escaped."""
    return (
        f'<div class="cb-greeting"><p>{render.escape_text(web.greeting)}</p>'
        f'<p class="cb-greeting-note">{render.escape_text(texts.DISCLAIMER)}</p></div>'
    )


def widget_theme(web: WebSettings) -> gr.themes.Base:
    """Gradio's default theme in the clinic's colour (accent, buttons, the user's bubbles)."""
    primary, on_primary = web.primary_color, web.on_primary_color
    hover = _mix(primary, 0.85, "#000000")
    light = {
        "color_accent_soft": _mix(primary, 0.12),
        "border_color_accent_subdued": _mix(primary, 0.35),
        # The default subdued grey is too faint for the disclaimer in the greeting and the
        # source labels on a small panel (WCAG AA asks 4.5:1; this is 5:1 on white).
        "body_text_color_subdued": "#667085",
    }
    dark_only = {"color_accent_soft": _mix(primary, 0.35, "#111827"),
                 "border_color_accent_subdued": _mix(primary, 0.6, "#111827")}
    same = {  # the clinic's colour in light and dark mode alike
        "color_accent": primary, "border_color_accent": primary, "loader_color": primary,
        "button_primary_background_fill": primary, "button_primary_background_fill_hover": hover,
        "button_primary_text_color": on_primary, "button_primary_border_color": primary,
        "input_border_color_focus": primary, "link_text_color": primary,
    }
    theme = gr.themes.Default()
    names = set(inspect.signature(theme.set).parameters)  # not every variable has a _dark twin
    dark = {f"{name}_dark": value for name, value in {**same, **dark_only}.items()
            if f"{name}_dark" in names}
    return theme.set(**light, **same, **dark)


def embed_script(web: WebSettings) -> str:
    """embed.js with the clinic's button colour and label as defaults (data-* attributes on
    the script tag still win). JSON with "<" escaped, so no value can end the script."""
    defaults = json.dumps({"color": web.primary_color, "textColor": web.on_primary_color,
                           "label": web.launcher_label, "title": web.clinic_name,
                           "path": WIDGET_PATH.strip("/") + "/"})
    script = (STATIC_DIR / "embed.js").read_text(encoding="utf-8")
    return script.replace(_EMBED_DEFAULTS, defaults.replace("<", "\\u003c"), 1)


def _mix(colour: str, share: float, other: str = "#ffffff") -> str:
    """`share` of `colour` blended into `other` (both #rrggbb, validated by the settings)."""
    channels = [
        round(share * int(colour[i:i + 2], 16) + (1 - share) * int(other[i:i + 2], 16))
        for i in (1, 3, 5)
    ]
    return "#" + "".join(f"{value:02x}" for value in channels)
