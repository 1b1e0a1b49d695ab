"""Names of the chat's own controls, shown to visitors or read out by screen readers (the page,
the widget and embed.js). What the assistant says is in bot/texts.py."""
from __future__ import annotations

MESSAGE_BOX = "Your question"
MESSAGE_PLACEHOLDER = "Ask about leg or calf cramps..."
SEND = "Send"
NEW_CONVERSATION = "New conversation"
EXAMPLES = "Example questions"
CHAT_LOG = "Conversation"
WAITING = "Your next question will be sent when this answer is finished."
# embed.js: the frame gave no sign of life, which is what a site not in
# settings.web.allowed_origins gets (the browser refuses to show the frame).
NOT_ENABLED = "This assistant is not enabled for this website."
CLOSE = "Close"
