"""Names of the chat's own controls, shown to visitors or read out by screen readers (the page,
the widget and embed.js), and the choice of the interface's language. Their wording in every
language is in bot/locales/*.json; the constants here are the English ones."""
from __future__ import annotations

from bot import texts

MESSAGE_BOX = texts.t("MESSAGE_BOX")
MESSAGE_PLACEHOLDER = texts.t("MESSAGE_PLACEHOLDER")
SEND = texts.t("SEND")
NEW_CONVERSATION = texts.t("NEW_CONVERSATION")
EXAMPLES = texts.t("EXAMPLES")
CHAT_LOG = texts.t("CHAT_LOG")
WAITING = texts.t("WAITING")
# embed.js: the frame gave no sign of life, which is what a site not in
# settings.web.allowed_origins gets (the browser refuses to show the frame).
NOT_ENABLED = texts.t("NOT_ENABLED")
CLOSE = texts.t("CLOSE")


def interface_language(forced: str | None = None, setting: str | None = None,
                       browser: str | None = None, accept_language: str | None = None) -> str:
    """The language the page speaks: the embed's data-lang (`forced`), else settings.web.lang,
    else the browser's (navigator.language), else its Accept-Language header; English when
    none has a catalog (bot/locales)."""
    for wanted in (forced, setting, browser):
        if wanted and texts.language(wanted) == _base(wanted):
            return texts.language(wanted)
    for wanted in _by_preference(accept_language or ""):
        if texts.language(wanted) == _base(wanted):
            return texts.language(wanted)
    return texts.LANGUAGES[0]


def _base(tag: str) -> str:
    return tag.strip().lower().replace("_", "-").split("-")[0]


def _by_preference(header: str) -> list[str]:
    """Accept-Language's tags, most wanted first ("ru-RU,ru;q=0.9,en;q=0.8"). Hand-written:
    Starlette has no parser for it, and the header's grammar (RFC 9110 12.5.4) is this small."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]
