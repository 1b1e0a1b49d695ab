"""Every fixed text the assistant shows or sends to the model, in one place.

The code, never the model, appends one of DISCLAIMERS to every reply (answers, refusals, errors).
Tests assert on these constants, so change wording here and nowhere else.
"""

DISCLAIMER = (
    "This is general information from the sources shown, not medical advice. "
    "Please consult a physician about your symptoms."
)
# A decline or an error shows no source; an urgent reply is safety advice, not the sources'.
DISCLAIMER_NO_SOURCES = (
    "This is general information, not medical advice. Please consult a physician about your "
    "symptoms."
)
DISCLAIMER_URGENT = (
    "This is general safety information, not a diagnosis. If this may be an emergency, call "
    "your local emergency number now; otherwise please consult a physician today."
)
DISCLAIMERS = (DISCLAIMER, DISCLAIMER_NO_SOURCES, DISCLAIMER_URGENT)


def without_disclaimer(reply: str) -> str:
    """An earlier reply as the conversation history gives it back, without its disclaimer."""
    for disclaimer in DISCLAIMERS:
        reply = reply.replace(disclaimer, "")
    return reply

# Sentinel for "the sources do not cover this"; evaluation counts declines by this phrase.
CANNOT_ANSWER = "My sources don't cover that question, so I can't answer it reliably."
CANNOT_ANSWER_HINT = (
    "I can answer questions about calf and leg cramps: their causes, prevention and what helps."
)

# The question names something the sources never mention (bot/scope.py): say what, and who can
# answer it. Evaluation counts it as a decline through Answer.declined.
NOT_COVERED = (
    "My sources don't cover {focus}, so I can't answer that reliably; a physician or pharmacist "
    "can."
)
NOT_COVERED_JOIN = " or "

EMPTY_MESSAGE = "Please type a question about leg or calf cramps."
MESSAGE_TOO_LONG = (
    "Your message is {length:,} characters long; please keep it under {limit:,} characters "
    "and ask one question at a time."
)
NOT_TEXT = "Your message does not look like text; please type your question in words."
INTERNAL_ERROR = "Something went wrong on our side while answering; please try again in a moment."
MODEL_LOADING = "The language model is loading (about a minute the first time)..."
MODEL_MISSING = (
    "The language model '{model}' is not available: {reason} Install it with "
    "`bash scripts/run.sh chat` or point CRAMPBOT_GENERATION__MODEL at a model folder or .gguf file."
)
EXTRACTIVE_INTRO = "Here is what the sources say:"
UNVERIFIED_TAG = "(unverified)"  # marks a kept sentence no shown passage supports

# Measured with the default 1.5B model (/tmp probes, then bench/prompt_formats.py): any prompt that
# told the model to "reply exactly <refusal>" made it refuse EVERY question, in scope or not. The
# code decides coverage instead: the calibrated relevance gate declines before the model runs,
# and verification drops what the sources do not support (falling back to quoting them).
# "Answer in English": the sources are English and only English sentences can be checked
# against them. The model answered Russian questions in Russian even with this rule, every
# sentence failed verification, and 7 of 10 Russian dev questions ended as "sources don't cover
# that"; so the pipeline also gives the model the English search text of a non-English question.
SYSTEM_PROMPT = (
    "You answer questions about leg cramps using only the given sources. "
    "Cite sources like [1]. Answer in English in 2 to 4 short sentences."
)

# User text only ever appears here, after the sources, as the question: never in the rules.
USER_PROMPT = "Sources:\n{sources}\n\nQuestion: {question}"

SOURCE_LINE = "[{n}] {text}"

# Query rewriting (bot/query.py): the local model turns a follow-up into one standalone English
# question, or translates a question into English, so retrieval searches the English sources for
# what the user means. Short replies only: the rewrite runs before retrieval, on the user's clock.
REWRITE_FOLLOW_UP = (
    "Rewrite the user's last message as one complete English question that can be understood "
    "without the conversation. Keep its meaning; add only what the conversation says it refers "
    "to. Reply with the question only."
)
REWRITE_FOLLOW_UP_INPUT = "Conversation:\n{conversation}\n\nLast message: {message}"
# No topic hint: told "it is about cramps" (or "икры means calves"), the model put cramps or
# calves into unrelated questions ("как вылечить кашель" -> "how can you treat cramps").
TRANSLATE_QUESTION = (
    "Translate the user's message into English. Keep its meaning exactly and add nothing. "
    "Reply with the English translation only."
)

# The web widget, the JSON API and their controls (web/, app.py).
WIDGET_GREETING = (
    "Hello! I answer questions about leg and calf cramps from our clinic's sources, and show "
    "you the passages each answer comes from."
)
WIDGET_LAUNCHER_LABEL = "Questions about leg cramps?"
WIDGET_SUBTITLE = "Answers from our sources · not a diagnosis"
RATE_LIMITED = (
    "You have asked a lot of questions in a short time; please try again in a minute."
)
REQUEST_TOO_LARGE = "This request is too large; please send a shorter question."
ORIGIN_NOT_ALLOWED = "This website is not allowed to use the assistant."
CONVERSATION_NOT_FOUND = (
    "This conversation has expired or does not exist; please start a new one without a "
    "conversation_id."
)
ANSWER_NOT_FOUND = "That answer is no longer known; feedback can be given on recent answers only."
HISTORY_AND_CONVERSATION = "Send either a conversation_id or a history, not both."

# Composed answers (bot/compose.py, bot/lead.py): the code picks the source sentences that
# answer the question and shows them, cited; the model only writes one short sentence in front
# that answers the question directly, from those sentences, and that sentence is checked against
# them (dropped when it fails). Tried on the page's five example questions on 2 CPU cores: a
# model that rewrote every source sentence took 9-18 s and invented facts in 3 of 5 answers.
# The worked example is a real pair of source sentences, so the model sees the form wanted
# without a fact that could leak, unchecked, into another answer.
LEAD_PROMPT = (
    "You answer a patient's question about leg cramps in one short sentence, using only the "
    "numbered source sentences. Give the direct answer (yes or no, the main reason, or the main "
    "advice) and cite the sentence numbers like [1]. Add nothing the sentences do not say."
)
LEAD_INPUT = "Source sentences:\n{sentences}\n\nQuestion: {question}"
LEAD_LINE = "[{n}] {text}"
LEAD_EXAMPLE_QUESTION = "Can standing all day at work cause leg cramps?"
LEAD_EXAMPLE_SENTENCES = (
    "Sitting or standing work. Both can cause night cramps.",
    "In the case of standing work, on the contrary, the muscles of the legs are in a state of "
    "static tension.",
)
LEAD_EXAMPLE_ANSWER = (
    "Yes, standing work can cause night cramps, because it keeps the leg muscles in static "
    "tension [1][2]."
)
