"""Every fixed text the assistant shows or sends to the model, in one place.

What a visitor sees is in one catalog per language, bot/locales/<lang>.json (same keys in each;
a language is added by adding its catalog). `t(key, lang)` looks a text up; the English texts
also keep their constant names here (DISCLAIMER, CANNOT_ANSWER...), which tests and callers use.
The model prompts below are English only and are not in the catalogs.

The code, never the model, appends one of DISCLAIMERS to every reply (answers, refusals, errors).
"""
from __future__ import annotations

import json
from pathlib import Path

LOCALES_DIR = Path(__file__).resolve().parent / "locales"


def _load_catalogs() -> dict[str, dict]:
    catalogs = {}
    for path in sorted(LOCALES_DIR.glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        catalogs[path.stem] = {k: v for k, v in entries.items() if not k.startswith("_")}
    return catalogs


CATALOGS: dict[str, dict] = _load_catalogs()
# English first: it is the fallback, and the language of the sources every answer is checked on.
# (No string constant names it: evals/metrics.py reads every upper-case string here as a shown text.)
LANGUAGES: tuple[str, ...] = ("en", *sorted(set(CATALOGS) - {"en"}))


def language(lang: str | None) -> str:
    """`lang` if a catalog exists for it ("ru", "ru-RU" -> "ru"), else English."""
    lang = (lang or "").strip().lower().replace("_", "-")
    if lang in CATALOGS:
        return lang
    base = lang.split("-")[0]
    return base if base in CATALOGS else LANGUAGES[0]


def t(key: str, lang: str | None = None):
    """The text `key` in `lang` (English when there is no catalog for it); KeyError if unknown."""
    return CATALOGS[language(lang)][key]


def about(key: str, lang: str | None, topics: dict[str, str]) -> str:
    """The text `key` in `lang`, naming what the clinic's sources cover when settings.web.topic
    gives it for that language (the catalog's `<key>_TOPIC` form, "... about {topic}..."); else
    the catalog's own text, which names leg and calf cramps."""
    topic = topics.get(language(lang))
    return t(f"{key}_TOPIC", lang).format(topic=topic) if topic else t(key, lang)


def in_every_language(key: str) -> tuple[str, ...]:
    return tuple(CATALOGS[lang][key] for lang in LANGUAGES)


def _load_focus_names() -> dict[str, dict[str, str]]:
    """Per language, the names of uncovered topics (bot/focus_terms.tsv names them in English)."""
    names: dict[str, dict[str, str]] = {}
    for path in sorted(LOCALES_DIR.glob("focus_names.*.tsv")):
        rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
        names[path.name.split(".")[1]] = {en.strip(): local.strip() for en, local in rows[1:]}
    return names


FOCUS_NAMES: dict[str, dict[str, str]] = _load_focus_names()


def focus_name(name: str, lang: str | None = None) -> str:
    """An uncovered topic's name in `lang` (as bot/focus_terms.tsv has it when none is listed)."""
    return FOCUS_NAMES.get(language(lang), {}).get(name, name)


_EN = CATALOGS["en"]

DISCLAIMER = _EN["DISCLAIMER"]
# A decline or an error shows no source; an urgent reply is safety advice, not the sources'.
DISCLAIMER_NO_SOURCES = _EN["DISCLAIMER_NO_SOURCES"]
DISCLAIMER_URGENT = _EN["DISCLAIMER_URGENT"]
_DISCLAIMER_KEYS = ("DISCLAIMER", "DISCLAIMER_NO_SOURCES", "DISCLAIMER_URGENT")
# Every disclaimer in every language: evaluation checks a reply's disclaimer is one of them.
DISCLAIMERS = tuple(text for key in _DISCLAIMER_KEYS for text in in_every_language(key))


def without_disclaimer(reply: str) -> str:
    """An earlier reply as the conversation history gives it back, without its disclaimer."""
    for disclaimer in DISCLAIMERS:
        reply = reply.replace(disclaimer, "")
    return reply

# Sentinel for "the sources do not cover this"; evaluation counts declines by Answer.declined.
CANNOT_ANSWER = _EN["CANNOT_ANSWER"]
CANNOT_ANSWER_HINT = _EN["CANNOT_ANSWER_HINT"]

# The question names something the sources never mention (bot/scope.py): say what, and who can
# answer it. Evaluation counts it as a decline through Answer.declined.
NOT_COVERED = _EN["NOT_COVERED"]
NOT_COVERED_JOIN = _EN["NOT_COVERED_JOIN"]
# Who can answer depends on what was asked: a veterinarian for an animal, the clinic or an
# insurer for a price, and nobody needs naming for where a word comes from.
NOT_COVERED_ANIMAL = _EN["NOT_COVERED_ANIMAL"]
NOT_COVERED_COST = _EN["NOT_COVERED_COST"]
NOT_COVERED_NO_ONE = _EN["NOT_COVERED_NO_ONE"]
_NOT_COVERED_BY_KIND = {"animal": "NOT_COVERED_ANIMAL", "cost": "NOT_COVERED_COST",
                        "word": "NOT_COVERED_NO_ONE"}


def not_covered_key(kinds: set[str]) -> str:
    """The catalog key of the decline for uncovered topics of these kinds (bot/scope.py): one
    that names who can answer all of them, else the physician or pharmacist."""
    keys = {_NOT_COVERED_BY_KIND.get(kind, "NOT_COVERED") for kind in kinds}
    return keys.pop() if len(keys) == 1 else "NOT_COVERED"

EMPTY_MESSAGE = _EN["EMPTY_MESSAGE"]
MESSAGE_TOO_LONG = _EN["MESSAGE_TOO_LONG"]
NOT_TEXT = _EN["NOT_TEXT"]
INTERNAL_ERROR = _EN["INTERNAL_ERROR"]
MODEL_LOADING = _EN["MODEL_LOADING"]
MODEL_MISSING = _EN["MODEL_MISSING"]
EXTRACTIVE_INTRO = _EN["EXTRACTIVE_INTRO"]
# Before quotes that answer "what helps" with no advice: the sources say why swimmers cramp,
# not what helps them, and the reader is told so instead of reading causes as advice.
NO_ADVICE_NOTE = _EN["NO_ADVICE_NOTE"]
UNVERIFIED_TAG = _EN["UNVERIFIED_TAG"]  # marks a kept sentence no shown passage supports

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
WIDGET_GREETING = _EN["WIDGET_GREETING"]
WIDGET_LAUNCHER_LABEL = _EN["WIDGET_LAUNCHER_LABEL"]
WIDGET_SUBTITLE = _EN["WIDGET_SUBTITLE"]
RATE_LIMITED = _EN["RATE_LIMITED"]
REQUEST_TOO_LARGE = _EN["REQUEST_TOO_LARGE"]
ORIGIN_NOT_ALLOWED = _EN["ORIGIN_NOT_ALLOWED"]
CONVERSATION_NOT_FOUND = _EN["CONVERSATION_NOT_FOUND"]
ANSWER_NOT_FOUND = _EN["ANSWER_NOT_FOUND"]
HISTORY_AND_CONVERSATION = _EN["HISTORY_AND_CONVERSATION"]

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
# Worked examples, each (source sentences, question, answer): a yes/no question answered yes,
# then a what-question answered with the advice and no "Yes" (with the first one alone the model
# began nearly every lead with "Yes," whatever the question).
LEAD_EXAMPLES = (
    (("Sitting or standing work. Both can cause night cramps.",
      "In the case of standing work, on the contrary, the muscles of the legs are in a state of "
      "static tension."),
     "Can standing all day at work cause leg cramps?",
     "Yes, standing work can cause night cramps, because it keeps the leg muscles in static "
     "tension [1][2]."),
    (("Massage has a positive effect on spasms.",
      "To avoid vitamin deficiency and prevent calf muscle cramps, you should include pork, eggs, "
      "fish in your diet."),
     "What should I eat so my calves stop cramping?",
     "Include pork, eggs and fish in your diet to avoid the vitamin deficiency behind calf "
     "cramps [2]."),
)

# Russian (or another catalog's) answers (bot/translation.py): the local model renders each
# source sentence once, into the translation memory, never per request; the rendering is then
# checked (bot/translation_check.py: numbers, codes, named things, negation) and a shipped
# sentence's rendering is reviewed by reading. The terms line gives the lexicon's words for the
# named things the sentence holds (bot/locales/terms.<lang>.tsv), so "calf" is not a young cow.
TRANSLATE_SENTENCE = (
    "You translate one sentence of a patient leaflet about leg cramps from English into "
    "{language} ({code}). Render its meaning plainly, in natural {language}, as one sentence. "
    "Keep every number, vitamin, food, test, medicine, disease and specialist it names; add "
    "nothing and leave nothing out. Reply with the translation only."
)
TRANSLATE_SENTENCE_INPUT = "Terms: {terms}\n\nSentence: {sentence}"
