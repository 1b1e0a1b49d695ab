"""Texts of the web layer's own replies (timeouts, readiness, feedback limits), beside the
ones in bot/texts.py that the bot and the pages share. Every language's wording is in
bot/locales/*.json; these are the English ones."""
from bot import texts

REQUEST_TIMEOUT = texts.t("REQUEST_TIMEOUT")
FEEDBACK_RATE_LIMITED = texts.t("FEEDBACK_RATE_LIMITED")
HEADERS_TOO_LARGE = texts.t("HEADERS_TOO_LARGE")
STATE_UNAVAILABLE = texts.t("STATE_UNAVAILABLE")
# The API turning a question away because too many wait for an answer: the same "briefly
# unavailable, try again in a few seconds" is true of it.
BUSY = STATE_UNAVAILABLE
