"""What retrieval searches for: the user's message made standalone (follow-ups) and English.

Steps, each skipped when it does not apply:
1. tags out (the input guard's plain text);
2. a long message is focused on its question sentences;
3. a follow-up is condensed with the conversation into one standalone question (the local model
   when allowed, else the previous question is searched along with it);
4. a Russian message is glossed into English by the lexicon (bot/query_ru.tsv), together with
   the local model's translation when retrieval.translate_with_model is on (off by default:
   measured no better, much slower, and it sometimes invented cramps in unrelated questions);
5. the English text is normalized to the corpus's words (bot/query_normalize.py).
The rewritten question is returned as `standalone_question`, for the user to see what was searched.
"""
from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from bot import texts
from bot.generation.base import ChatMessage
from bot.intents import TIME_WORDS, strip_asking
from bot.query_normalize import (QueryNormalizer, SpellingCorrector, known_english_words,
                                 phrase_words, states_old_age, term_words)
from bot.query_translate import RussianLexicon, load_russian_lexicon
from bot.retrieval import bm25_tokens
from bot.safety.input_guard import detect_language, plain_text_for_retrieval
from bot.settings import Settings
from corpus.ingest import corpus_stamp, load_passages
from corpus.settings import CorpusSettings

log = logging.getLogger(__name__)

# Runs the local model on chat messages with a token budget and returns its text; None when the
# model must not be used (retrieval-only evaluation).
Rewriter = Callable[[list[ChatMessage], int], str]

# Longer messages are focused on their question sentences: a typical question is under 200
# characters, and a story around it would pull retrieval towards the story.
_FOCUS_ABOVE_CHARS = 400
_FOCUS_MAX_CHARS = 300
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_QUESTION_WORDS = re.compile(
    r"\b(why|what|how|which|when|can|could|should|is|are|does|do|will|would)\b|"
    r"(почему|что|как|какие|можно|может|нужно|ли)(?![а-я])", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Words that point back into the conversation, or open a message that continues it.
_BACK_REFERENCES = re.compile(
    r"^(and|but|also|so|what about|how about|and what|then|и|а|но|тогда|а если)\b|"
    r"\b(it|its|that|this|these|those|they|them|there|same|else|other|это|этого|этом|"
    r"они|их|там|тоже|еще)\b", re.IGNORECASE)
# A message this short is read as a follow-up when the conversation has started; a longer one
# that names no back-reference is taken as a new question.
_FOLLOW_UP_MAX_WORDS = 12
_HISTORY_CHARS = 300  # of each earlier turn given to the rewriter: enough to name the topic


@dataclass(frozen=True)
class SearchQuery:
    text: str  # what the retrievers see
    standalone_question: str | None = None  # shown to the user when it differs from the message
    rewrite_ms: float = 0.0
    follow_up: bool = False  # read in the context of the conversation
    # A follow-up searched along with the previous question is also searched on its own words
    # with the conversation's topic words ("what about at night?" after a swimming question:
    # the swimming words would outweigh "night" in the joint search). Empty otherwise.
    also: tuple[str, ...] = ()
    # The message's own words in English: what kind of answer it asks for is read from them, not
    # from the previous question searched along with a follow-up ("Why do my calves cramp at
    # night?" then "And what can I do about it?" asks for advice, not causes). "" = `text`.
    own_text: str = ""

    @property
    def intent_text(self) -> str:
        return self.own_text or self.text

    @property
    def texts(self) -> tuple[str, ...]:
        return (self.text, *self.also)


def search_query(
    message: str, history: Sequence[tuple[str, str]], settings: Settings,
    rewriter: Rewriter | None = None, *, force_follow_up: bool = False,
) -> SearchQuery:
    """The text to search for `message`, given the earlier turns of the conversation.

    With retrieval.query_normalization off (the baseline) only the model rewrites apply.
    `force_follow_up` reads a message that names no back-reference as a follow-up all the same
    (the pipeline asks for it when the message alone is not answerable: "does coffee count?").
    """
    retrieval = settings.retrieval
    normalize = retrieval.query_normalization
    text = plain_text_for_retrieval(message)
    if normalize and len(text) > _FOCUS_ABOVE_CHARS:
        text = focus_on_question(text)
    started = time.perf_counter()
    standalone = None
    follow_up = bool(history) and (force_follow_up or is_follow_up(text)
                                   or _names_no_topic(text, settings))
    own = previous = ""
    if follow_up:
        condenser = rewriter if retrieval.rewrite_with_model else None
        standalone = _condense(text, history, condenser, retrieval.rewrite_max_new_tokens)
        if standalone is None and normalize:
            # No model: search the previous question along with this one, which carries the topic.
            previous = plain_text_for_retrieval(history[-1][0])[:_HISTORY_CHARS]
            own = text
            text = f"{previous} {text}"
    elif detect_language(text) == "ru" and retrieval.translate_with_model:
        standalone = _translate(text, rewriter, retrieval.rewrite_max_new_tokens)
    # Charged even when the rewrite was discarded: the user waited for it all the same.
    rewrite_ms = (time.perf_counter() - started) * 1000
    english = standalone or text
    also: tuple[str, ...] = ()
    own_english = ""
    if normalize:
        # A stated age of 60 or more searches the sources' "Old age" too; in a follow-up only
        # when the follow-up itself states it (the previous question's age is not what it asks).
        english = _in_corpus_words(text, standalone, settings, old_age=states_old_age(own or text))
        if own:
            own_english = _in_corpus_words(own, None, settings)
            previous_english = _in_corpus_words(previous, None, settings)
            topic = topic_words(previous_english, settings)
            # "Why does that happen?" after "Can standing all day cause calf cramps?" names no
            # subject of its own: it asks about the previous question's, standing work. Not
            # about its time: "And what can I do about it?" after "Why do my calves cramp at
            # night?" asks for advice, which the night causes would outrank.
            if not subject_words(own_english, settings):
                previous_subject = subject_words(previous_english, settings, with_time=False)
                topic = " ".join(dict.fromkeys([*previous_subject,
                                                *topic.split()]))
            anchored = f"{own_english} {topic}"
            also = (anchored.strip(),) if anchored.strip() else ()
    return SearchQuery(text=english.strip() or text, standalone_question=standalone,
                       rewrite_ms=rewrite_ms, follow_up=follow_up, also=also,
                       own_text=own_english.strip())


def _names_no_topic(text: str, settings: Settings) -> bool:
    """A short question in a conversation that names nothing the sources are about ("how long
    does one usually last?") asks about the conversation's topic."""
    if len(_WORD.findall(text)) > _FOLLOW_UP_MAX_WORDS:
        return False
    english = _in_corpus_words(text, None, settings) if settings.retrieval.query_normalization else text
    return not topic_words(english, settings)


# Words that ask (why, prevent, happen) or point back (again, then): what a follow-up asks
# about is the rest. The intents' own question words are taken out first.
_ASKING_WORDS = frozenset(bm25_tokens(
    "does did doing happen happens happening keep keeps coming come back again then still now "
    "thing things anything something okay ok normal worry worried mean means bad dangerous serious "
    "usually often ever stops stopping doesn don isn right away"))
_TIME_WORDS = frozenset(bm25_tokens(TIME_WORDS))


def subject_words(text: str, settings: Settings, *, with_time: bool = True) -> list[str]:
    """What an English question names beyond what it asks and the sources' topic ("what about
    swimming?": swimming; "why does that happen?" and "how can I prevent them?": nothing);
    `with_time=False` leaves out when it asks about ("at night") too."""
    common = _common_words_of(settings)
    left_out = _ASKING_WORDS if with_time else _ASKING_WORDS | _TIME_WORDS
    return [word for word in _WORD.findall(strip_asking(text))
            if (tokens := bm25_tokens(word)) and tokens[0] not in common
            and tokens[0] not in left_out]


def _in_corpus_words(text: str, standalone: str | None, settings: Settings, *,
                     old_age: bool = False) -> str:
    """English in the corpus's words: a Russian message glossed (with the model's translation
    when there is one), then normalized; with "old age" when the asker gave such an age."""
    english = standalone or text
    if _has_cyrillic(text):
        # The lexicon's terms go along with the model's translation: a small model sometimes
        # drops or mistranslates the one word that matters ("бассейн" -> "bathtub").
        gloss = _english_words(text, _lexicon())
        english = f"{standalone} {gloss}" if standalone else gloss
    normalized = _normalizer(settings).normalize(english)
    return f"{normalized} old age" if old_age else normalized


# A word in at least this share of the passages names what the sources are about ("cramp",
# "calf", "leg"), not what one question asks.
_TOPIC_SHARE = 0.25


def topic_words(text: str, settings: Settings) -> str:
    """The words of `text` that the sources use everywhere: the conversation's topic, without
    what its question asked ("What causes leg cramps when swimming?" -> "leg cramps")."""
    common = _common_words_of(settings)
    words = [w for w in _WORD.findall(text) if set(bm25_tokens(w)) & common]
    return " ".join(dict.fromkeys(w.lower() for w in words))


_COMMON_WORDS: dict[object, frozenset[str]] = {}


def _common_words_of(settings: Settings) -> frozenset[str]:
    key = corpus_stamp(settings.corpus)
    if key not in _COMMON_WORDS:
        _COMMON_WORDS.clear()  # one corpus at a time: a changed source replaces the entry
        _COMMON_WORDS[key] = _common_words(settings.corpus)
    return _COMMON_WORDS[key]


def _common_words(corpus: CorpusSettings) -> frozenset[str]:
    """Stemmed words (retrieval's BM25 tokens) in at least _TOPIC_SHARE of the passages."""
    passages = load_passages(corpus)
    counts: dict[str, int] = {}
    for passage in passages:
        for key in set(bm25_tokens(passage.text)):
            counts[key] = counts.get(key, 0) + 1
    return frozenset(k for k, n in counts.items() if n >= _TOPIC_SHARE * len(passages))


def focus_on_question(text: str, max_chars: int = _FOCUS_MAX_CHARS) -> str:
    """The question sentences of a long message (or its first sentences when it asks none)."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    asked = [_question_part(s) for s in sentences if s.endswith("?")]
    if not asked:
        asked = [s for s in sentences if _QUESTION_WORDS.match(s)] or sentences
    focused = []
    for sentence in dict.fromkeys(asked):  # repeated paragraphs ask the same thing once
        if focused and sum(len(s) + 1 for s in focused) + len(sentence) > max_chars:
            break
        focused.append(sentence[:max_chars])
    return " ".join(focused)


def _question_part(sentence: str) -> str:
    """"So my real question is: why do calves cramp?" -> "why do calves cramp?"."""
    head, colon, tail = sentence.rpartition(": ")
    return tail if colon and _QUESTION_WORDS.search(tail) else sentence


def is_follow_up(text: str) -> bool:
    """A short message, or one that refers back ("that", "and what about...")."""
    words = _WORD.findall(text)
    return len(words) <= 4 or (len(words) <= _FOLLOW_UP_MAX_WORDS
                               and bool(_BACK_REFERENCES.search(text.strip())))


def _condense(text: str, history: Sequence[tuple[str, str]], rewriter: Rewriter | None,
              max_new_tokens: int) -> str | None:
    if rewriter is None:
        return None
    turns = []
    for user, assistant in history[-2:]:
        turns.append(f"User: {plain_text_for_retrieval(user)[:_HISTORY_CHARS]}")
        # The disclaimer is the code's, not part of the answer: it would only spend the budget.
        answer = plain_text_for_retrieval(texts.without_disclaimer(assistant))
        turns.append(f"Assistant: {answer[:_HISTORY_CHARS]}")
    messages: list[ChatMessage] = [
        {"role": "system", "content": texts.REWRITE_FOLLOW_UP},
        {"role": "user", "content": texts.REWRITE_FOLLOW_UP_INPUT.format(
            conversation="\n".join(turns), message=text)},
    ]
    rewritten = _rewrite(messages, rewriter, max_new_tokens)
    if rewritten is not None and not _condenses(rewritten, text, history):
        log.debug("follow-up rewrite discarded: %r", rewritten[:80])
        return None
    return rewritten


def _condenses(rewritten: str, message: str, history: Sequence[tuple[str, str]]) -> bool:
    """Whether a rewrite is the follow-up made standalone. The small model sometimes answers it
    ("You should see a specialist."), hands it back ("Where do you get those from in food?"),
    or returns the previous question and drops the follow-up ("is that dangerous in pregnancy?"
    -> "Why do my calves cramp at night?"). Then the previous question is searched along with
    the message instead."""
    words = _content(rewritten)
    asked = _content(message) - _content(" ".join(user for user, _ in history))
    earlier = _content(" ".join(user for user, _ in history[-2:]))
    return (_is_question(rewritten) and asked <= words      # keeps what the follow-up asks
            and bool(words - _content(message))               # adds the conversation's topic
            and bool(words & earlier))


def _content(text: str) -> set[str]:
    """Lower-cased content words (their first 4 letters, so "food" ~ "foods"), minus stop words
    and back-references: enough to compare a rewrite with the message."""
    return {w[:4] for w in _WORD.findall(text.lower()) if len(w) >= 4
            and w not in ENGLISH_STOP_WORDS and not _BACK_REFERENCES.fullmatch(w)}


def _is_question(text: str) -> bool:
    """A question mark, or a question's first word ("Are night cramps dangerous in pregnancy")."""
    text = text.strip()
    return text.endswith("?") or bool(_QUESTION_WORDS.match(text))


def _translate(text: str, rewriter: Rewriter | None, max_new_tokens: int) -> str | None:
    if rewriter is None:
        return None
    messages: list[ChatMessage] = [
        {"role": "system", "content": texts.TRANSLATE_QUESTION},
        {"role": "user", "content": text},
    ]
    return _rewrite(messages, rewriter, max_new_tokens)


def _rewrite(messages: list[ChatMessage], rewriter: Rewriter, max_new_tokens: int) -> str | None:
    """The model's one-line rewrite, or None (search the message as it is) when it fails."""
    try:
        reply = rewriter(messages, max_new_tokens)
    except Exception:  # a failed rewrite must not cost the user the answer
        log.exception("query rewrite failed; searching the message as written")
        return None
    lines = [line.strip().strip('"').strip() for line in (reply or "").splitlines()]
    line = next((line for line in lines if line), "")
    for prefix in ("Question:", "Standalone question:", "Translation:", "English:"):
        if line.lower().startswith(prefix.lower()):
            line = line[len(prefix):].strip()
    if not line or detect_language(line) != "en":
        # Small models sometimes answer in the user's language instead of rewriting; such a
        # reply is neither searchable English nor worth showing as "what was searched".
        log.debug("query rewrite discarded: %r", line[:80])
        return None
    return line


def is_misspelling(word: str, settings: Settings) -> bool:
    """Whether the spelling corrector bends `word` into a corpus word ("pregnent")."""
    corrector = _normalizer(settings).corrector
    return corrector is not None and corrector.correct_word(word).lower() != word.lower()


def known_query_words() -> set[str]:
    """Every word the query lexicons know: lay phrases and their replacements, the Russian
    gloss's English terms."""
    return phrase_words() | term_words() | _lexicon().english_words()


def russian_known(word: str) -> bool:
    """Whether the Russian lexicon glosses `word`."""
    return bool(_lexicon().gloss(word))


def _has_cyrillic(text: str) -> bool:
    return any("а" <= c <= "я" or c in "ёЁ" or "А" <= c <= "Я" for c in text)


def _english_words(text: str, lexicon: RussianLexicon) -> str:
    """Russian words glossed through the lexicon; Latin-script words (B6, Doppler) kept."""
    latin = " ".join(w for w in _WORD.findall(text) if not _has_cyrillic(w))
    return f"{lexicon.gloss(text)} {latin}".strip()


@functools.lru_cache(maxsize=1)
def _lexicon() -> RussianLexicon:
    return load_russian_lexicon()


_NORMALIZERS: dict[tuple, QueryNormalizer] = {}


def _normalizer(settings: Settings) -> QueryNormalizer:
    """Built once per corpus: keyed on the source files' sizes and times (`corpus_stamp`), so a
    question costs a few `stat` calls, not a read of every source, and a changed source or
    glossary still gets a new normalizer."""
    key = (corpus_stamp(settings.corpus), settings.embedding.model)
    if key not in _NORMALIZERS:
        _NORMALIZERS[key] = _build_normalizer(settings.corpus, settings.embedding.model)
    return _NORMALIZERS[key]


def _build_normalizer(corpus: CorpusSettings, embedding_model: str) -> QueryNormalizer:
    vocabulary = set()
    for passage in load_passages(corpus):
        vocabulary.update(w.lower() for w in _WORD.findall(f"{passage.section} {passage.text}"))
    vocabulary |= term_words() | phrase_words() | _lexicon().english_words()
    known = phrase_words() | known_english_words(embedding_model)
    corrector = SpellingCorrector(vocabulary, known_words=known)
    return QueryNormalizer(corpus, corrector)
