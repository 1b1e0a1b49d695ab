"""Texts of the web layer's own replies (timeouts, readiness, feedback limits), beside the
ones in bot/texts.py that the bot and the pages share."""

REQUEST_TIMEOUT = "The request took too long to arrive; please send it again."
FEEDBACK_RATE_LIMITED = "Too many votes from your address; please wait a minute."
HEADERS_TOO_LARGE = "The request's headers are too large."
STATE_UNAVAILABLE = "The assistant is briefly unavailable; please try again in a few seconds."
