"""Every fixed text the assistant shows or sends to the model, in one place.

The code, never the model, appends DISCLAIMER to every reply (answers, refusals, errors).
Tests assert on these constants, so change wording here and nowhere else.
"""

DISCLAIMER = (
    "This is general information from the sources shown, not medical advice. "
    "Please consult a physician about your symptoms."
)

# Sentinel for "the sources do not cover this"; evaluation counts declines by this phrase.
CANNOT_ANSWER = "My sources don't cover that question, so I can't answer it reliably."
CANNOT_ANSWER_HINT = (
    "I can answer questions about calf and leg cramps: their causes, prevention and what helps."
)

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

SYSTEM_PROMPT = (
    "You are a careful medical-information assistant about leg and calf cramps. "
    "Answer ONLY from the numbered sources the user gives you. "
    "After every sentence, cite the source it comes from as [1], [2], etc. "
    "If the sources do not answer the question, reply exactly: "
    f"\"{CANNOT_ANSWER}\" "
    "Write 2 to 4 short plain-English sentences. Do not add a disclaimer."
)

# The rules are repeated at the END of the user turn: measured to keep small models grounded
# (they follow the most recent instruction best). The question is quoted as data, never as rules.
USER_PROMPT = (
    "Sources:\n{sources}\n\n"
    "Question: {question}\n\n"
    "Answer the question using only the sources above, in 2 to 4 short sentences, each ending "
    "with its source number like [1]. If the sources do not answer it, reply exactly: "
    f"\"{CANNOT_ANSWER}\""
)

SOURCE_LINE = "[{n}] ({section}) {text}"

# Query rewriting (bot/query.py): the local model turns a follow-up into one standalone English
# question, or translates a question into English, so retrieval searches the English sources for
# what the user means. Short replies only: the rewrite runs before retrieval, on the user's clock.
REWRITE_FOLLOW_UP = (
    "Rewrite the user's last message as one complete English question that can be understood "
    "without the conversation. Keep its meaning; add only what the conversation says it refers "
    "to. Reply with the question only."
)
REWRITE_FOLLOW_UP_INPUT = "Conversation:\n{conversation}\n\nLast message: {message}"
# No topic hint beyond the one word: told "it is about cramps", the model put cramps into an
# unrelated question ("как вылечить кашель" -> "how can you treat cramps"), fooling the gate.
TRANSLATE_QUESTION = (
    "Translate the user's message into English. Keep its meaning exactly and add nothing. "
    "(\"икры\" means calves of the legs.) Reply with the English translation only."
)

