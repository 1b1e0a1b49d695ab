"""The assistant end to end: guard -> red flags -> retrieve -> gate -> generate -> verify -> cite.

Every reply, whatever path it takes, is an `Answer` whose `full_text` ends with the disclaimer:
the code adds it, never the model.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Generator as Generator_
from collections.abc import Iterator, Sequence
from contextlib import closing

from bot import texts
from bot.answer import Answer, Citation, RetrievedPassage, Timings
from bot.errors import CrampbotError
from bot.events import BotEvent, Delta, Done, Retrieved, Status
from bot.compose import compose_answer, select_evidence, topic_vector, with_following
from bot.extractive import extractive_answer
from bot.gaps import note_gap
from bot.generation.base import Generator
from bot.generation.factory import make_generator
from bot.grounding import GroundedAnswer, verify_answer
from bot.intents import advises, asks_first_aid, asks_help_only, reorder_cues
from bot.lead import Lead, check_lead, lead_messages, stream_lead
from bot.localize import localize_answer
from bot.prompt import build_messages
from bot.query import SearchQuery, is_misspelling, known_query_words, russian_known, search_query
from bot.rare_terms import RareTerms
from bot.rerank import POOL_FACTOR, prefer_intent
from bot.retrieval import PassageRetriever
from bot.safety.input_guard import Message, check_message
from bot.safety.redflags import RedFlag, triage
from bot.scope import ScopeChecker
from bot.settings import Settings
from bot.translation import TranslationMemory, memory_for
from bot.translator import BackgroundTranslator, translate_sentence

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]


# Where a long question's clauses part: sentence ends, and "... and now ..." in a story.
_CLAUSE_BREAK = re.compile(r"[.?!;]+|\b(?:and now|but now|and then)\b", re.IGNORECASE)
_MIN_CLAUSE_WORDS = 4


class CrampBot:
    """One assistant instance; thread-safe for concurrent chats (generation is serialized)."""

    def __init__(self, settings: Settings, generator: Generator | None = None) -> None:
        self.settings = settings
        self.retriever = PassageRetriever(settings)
        self._generator = generator
        self._generator_lock = threading.Lock()
        self._model_ready = generator is not None
        self._model_loading = False  # a load is under way (the page says so only then)
        self._scope: tuple | None = None  # (the index it was read from, its ScopeChecker)
        self._topic: tuple | None = None  # (the index it was read from, its topic vector)
        self._rare: tuple | None = None  # (the index it was read from, its RareTerms)
        self._memories: dict[str, TranslationMemory] = {}  # reply language -> its renderings
        self._language_lock = threading.Lock()
        self._translators: dict[str, BackgroundTranslator] = {}
        self._asking = 0  # questions being answered now: background rendering waits for none
        self._asking_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------
    @property
    def generator(self) -> Generator:
        with self._generator_lock:
            if self._generator is None:
                self._generator = make_generator(self.settings.generation, self.settings.models_dir)
            if not self._model_ready:
                load = getattr(self._generator, "load", None)
                if load is not None:
                    self._model_loading = True
                    try:
                        load()
                    finally:
                        self._model_loading = False
                self._model_ready = True
            return self._generator

    @property
    def scope(self) -> ScopeChecker:
        """What the indexed passages cover, read once from the index this bot answers from."""
        index = self.retriever.load()
        if self._scope is None or self._scope[0] is not index:  # reopened: its sources changed
            self._scope = (index, ScopeChecker(f"{p.section} {p.text}" for p in index.passages))
        return self._scope[1]

    @property
    def rare_terms(self) -> RareTerms | None:
        """Rare words the indexed passages never use (bot/rare_terms.py), read once per index."""
        retrieval = self.settings.retrieval
        if retrieval.rare_term_zipf_en is None and retrieval.rare_term_zipf_ru is None:
            return None
        index = self.retriever.load()
        if self._rare is None or self._rare[0] is not index:
            settings = self.settings
            self._rare = (index, RareTerms(
                (f"{p.section} {p.text}" for p in index.passages), known_query_words(),
                lambda word: is_misspelling(word, settings),
                max_zipf_en=retrieval.rare_term_zipf_en if retrieval.rare_term_zipf_en is not None else -1,
                max_zipf_ru=retrieval.rare_term_zipf_ru if retrieval.rare_term_zipf_ru is not None else -1))
        return self._rare[1]

    @property
    def topic(self):
        """What every unit of the indexed sources shares (bot/compose.py, topic_vector), read once."""
        index = self.retriever.load()
        if self._topic is None or self._topic[0] is not index:
            self._topic = (index, topic_vector(index.passages, self.retriever.embedder))
        return self._topic[1]

    def _memory(self, lang: str) -> TranslationMemory:
        with self._language_lock:  # two first Russian questions must share one memory
            if lang not in self._memories:
                self._memories[lang] = memory_for(self.settings, lang)
            return self._memories[lang]

    def _translator(self, memory: TranslationMemory) -> BackgroundTranslator:
        with self._language_lock:  # and one background translator
            if memory.lang not in self._translators:
                self._translators[memory.lang] = BackgroundTranslator(
                    memory, lambda: self.generator, busy=lambda: self._asking > 0)
            return self._translators[memory.lang]

    @property
    def model_ready(self) -> bool:
        return self._model_ready

    @property
    def model_loading(self) -> bool:
        """True while the model is being loaded. Not loaded is not loading: a server started
        without warm-up that has only answered Russian questions (no model needed) has no
        model and loads none."""
        return self._model_loading

    def warm_up(self) -> None:
        """Load the index, the embedder and the model now instead of on the first question."""
        self.retriever.load()
        _ = self.topic  # embeds every unit of the sources: at start-up, not in a visitor's question
        _ = self.rare_terms
        _ = self.generator

    # -- public API ------------------------------------------------------------------------
    def retrieve(self, question: str, history: History = (), *, use_model: bool = False
                 ) -> list[RetrievedPassage]:
        """Passages for a question; use_model=False never loads the LLM (retrieval-only runs)."""
        return self._searched(question, history, use_model)[1]

    def ask(self, question: str, history: History = (), lang: str | None = None) -> Answer:
        answer = None
        for event in self.stream(question, history, lang):
            if isinstance(event, Done):
                answer = event.answer
        assert answer is not None  # stream always ends with Done
        return answer

    def stream(self, question: str, history: History = (), lang: str | None = None
               ) -> Iterator[BotEvent]:
        """The answer's events; `lang` sets the reply language instead of the question's."""
        started = time.perf_counter()
        # Checked once: the cleaned text, the search text and the language travel together.
        message = check_message(question, self.settings.safety.max_message_chars)
        if lang:
            message = dataclasses.replace(message, asked_lang=lang)
        lang = message.reply_lang
        with self._asking_lock:
            self._asking += 1
        try:
            yield from self._stream(question, message, history, started)
        except CrampbotError as error:
            log.warning("refused: %s", error)
            # The message tells the operator what to fix; the sentence around it is the visitor's.
            text = texts.t("SETUP_ERROR", lang).format(detail=error)
            yield Done(self._error_answer(question, text, started, lang))
        except Exception:  # never a traceback in front of a user
            log.exception("internal error while answering")
            yield Done(self._error_answer(question, texts.t("INTERNAL_ERROR", lang), started, lang))
        finally:
            with self._asking_lock:
                self._asking -= 1

    # -- steps -----------------------------------------------------------------------------
    def _stream(self, question: str, message: Message, history: History, started: float
                ) -> Iterator[BotEvent]:
        lang = message.reply_lang
        if not message.ok:
            yield Done(self._error_answer(question, self._guard_message(message), started, lang))
            return
        cleaned = message.cleaned
        # The rules first; beside them, similarity to descriptions of each emergency catches
        # wordings no rule lists (bot/safety/redflag_similarity.py).
        red_flag = triage(cleaned, self.settings.safety.emergency_number,
                          message.lang if message.lang != "other" else None,
                          embedder=self.retriever.embedder, search_text=message.search_text)
        if red_flag is not None:
            yield Done(self._red_flag_answer(question, red_flag, started, lang))
            return

        query, results, retrieval_ms = self._searched(cleaned, history, use_model=True)
        timings = Timings(retrieval_ms=retrieval_ms + query.rewrite_ms)
        yield Retrieved(results)
        uncovered = self.scope.uncovered(query.text, cleaned)
        if not uncovered and self.rare_terms is not None:
            # A drug, brand or diagnosis no lexicon row names and no source uses.
            uncovered = self.rare_terms.find(cleaned, russian_known)
        if uncovered and self.settings.retrieval.gate:
            named = (texts.focus_name(name, lang) for name in uncovered)
            focus = texts.t("NOT_COVERED_JOIN", lang).join(named)
            key = texts.not_covered_key({self.scope.kind_of(name) for name in uncovered})
            text = texts.t(key, lang).format(focus=focus)
            yield Done(self._with_query(self._decline(question, results, timings, started, lang, text), query))
            return
        if not self._passes_gate(results) and not self._clause_passes_gate(query.text):
            yield Done(self._with_query(self._decline(question, results, timings, started, lang), query))
            return

        context = self._context(results)
        # What the model reads as the question: a non-English question reaches it as its English
        # search text (asked in Russian, the model answered in Russian, which cannot be checked
        # against the English sources: bot/texts.py, SYSTEM_PROMPT).
        english = message.lang == "en"
        # A follow-up the model could not condense is asked together with the previous question.
        asked = query.standalone_question or (
            query.text if query.follow_up or not english else message.search_text)
        if self.settings.answer.mode == "generated":
            answer = yield from self._generated(asked, question, [r.passage for r in context],
                                                results, history, timings, started, lang)
        else:
            # A follow-up searched with the previous question: its own words lead the choice
            # (a model rewrite already says what it asks). A Russian one's own words are their
            # English gloss: «а что можно сделать чтобы снять?» asks what relieves, not why.
            focus = ((message.search_text if english else query.own_text or None)
                     if query.follow_up and not query.standalone_question else None)
            # Its sentences are weighed against its own words with the conversation's topic.
            search_text = query.also[0] if focus and query.also else query.text
            answer = yield from self._composed(asked, search_text, question, context, results,
                                               timings, started, lang, focus)
        timings.total_s = time.perf_counter() - started
        yield Done(self._with_query(answer, query))

    def _composed(self, asked: str, search_text: str, question: str, context: list[RetrievedPassage],
                  results: list[RetrievedPassage], timings: Timings, started: float,
                  lang: str, focus: str | None = None) -> Generator_[BotEvent, None, Answer]:
        """The source sentences that answer the question, after the model's checked lead."""
        checks = self.settings.answer
        # The retrieved passages, then the chunk after each, whose first sentence may complete
        # a chosen one (bot/compose.py, with_following); it is cited and shown only then.
        retrieved = [r.passage for r in context]
        shown, nexts = with_following(retrieved, self.retriever.following(retrieved))
        # A first-aid question keeps the rerank's lift in each passage's prior (bot/compose.py):
        # retrieval ranks "What to do if my calf cramped at night?" by "night", with the massage
        # 0.27 below the night causes, and a first-aid answer admits no unit without first aid
        # anyway. For advice the lift let general advice crowd in (dev citation precision -0.02).
        first_aid = asks_first_aid(focus or search_text)
        # The search text, not a Russian message: it is English and normalized to the corpus's words.
        evidence = select_evidence(search_text, shown, self.retriever.embedder,
                                   max_units=checks.max_evidence, margin=checks.evidence_margin,
                                   floor=checks.evidence_floor,
                                   other_margin=checks.evidence_other_margin, focus=focus,
                                   topic=self.topic,
                                   retrieval_scores=[r.score if first_aid else r.retrieval_score
                                                     for r in context],
                                   nexts=nexts, brought=len(shown) - len(retrieved))
        if not evidence:
            return self._decline(question, results, timings, started, lang)
        # "What helps against leg cramps when swimming?": the sources say why swimmers cramp, not
        # what helps them (bot/compose.py, _off_kind), so the quotes follow a note that says so
        # and are not read as advice.
        no_advice = (asks_help_only(focus or search_text)
                     and not any(advises(unit.text) for unit in evidence))
        lead = Lead("", [])
        # A reply in another language renders the checked English answer; the model's lead is
        # written (and later rendered) only when answer.lead_translation asks for it. A
        # follow-up searched with the previous question (`focus`) gets none: the model reads the
        # two questions as one and answered both ("Yes, pregnancy can cause leg cramps, and a
        # diet that helps with that is pork, eggs, fish" for "is there a diet that helps with
        # that?"), or the first ("Pork, eggs and fish prevent calf cramps" for "can anything wash
        # the vitamin D out?"); dev's three follow-up leads kept were those two and a repeat of
        # the quote after it, and before leads stopped at one sentence none was kept at all.
        if (checks.lead_sentence and focus is None
                and (lang == "en" or checks.lead_translation == "model")):
            if not self._model_ready:
                yield Status(texts.t("MODEL_LOADING", lang))
            generator = self.generator
            pieces: list[str] = []
            with closing(generator.stream(lead_messages(asked, evidence), checks.lead_max_new_tokens)) as stream:
                yield from self._drafted(stream_lead(stream), timings, started, pieces)
            draft = "".join(pieces).strip()
            timings.generated_tokens = generator.count_tokens(draft) if draft else 0
            lead = check_lead(draft, asked, evidence, shown, self.retriever.embedder)
        grounded = compose_answer(evidence, shown, lead.text, lead.units)
        answer = self._answer_from(question, grounded, results, timings, lang)
        answer.extractive, answer.composed = grounded.extractive, True
        if lang != "en":
            answer = self._in_reply_language(answer, lang)
        if no_advice:
            answer.text = f"{texts.t('NO_ADVICE_NOTE', lang)} {answer.text}"
        return answer

    def _in_reply_language(self, answer: Answer, lang: str) -> Answer:
        """The composed answer rendered in `lang` from the translation memory (bot/localize.py);
        sentences it lacks are rendered in the background for the next visitor."""
        memory = self._memory(lang)
        render_lead = None
        if self.settings.answer.lead_translation == "model":
            def render_lead(sentence: str) -> tuple[str, list[str]]:
                try:
                    return translate_sentence(self.generator, sentence, lang, memory.example())
                except Exception:  # the checked English answer is ready: keep its lead in English
                    log.exception("rendering the lead failed")
                    return "", ["the model failed"]
        answer, missing = localize_answer(answer, memory, has_lead=not answer.extractive,
                                          render_lead=render_lead,
                                          max_untranslated=self.settings.answer.max_untranslated)
        if missing and self.settings.answer.translate_in_background and memory.cache_path:
            self._translator(memory).request(missing)
        return answer

    def _generated(self, asked: str, question: str, shown: list, results: list[RetrievedPassage],
                   history: History, timings: Timings, started: float, lang: str
                   ) -> Generator_[BotEvent, None, Answer]:
        """The model writes the answer from the passages; each sentence is checked afterwards."""
        if not self._model_ready:
            yield Status(texts.t("MODEL_LOADING", lang))
        generator = self.generator
        messages = build_messages(
            asked, shown, history,
            history_turns=self.settings.generation.history_turns,
            max_passage_chars=self.settings.generation.max_passage_chars,
        )
        draft: list[str] = []
        yield from self._drafted(generator.stream(messages, self.settings.generation.max_new_tokens),
                                 timings, started, draft)
        draft_text = "".join(draft).strip()
        timings.generated_tokens = generator.count_tokens(draft_text) if draft_text else 0

        checks = self.settings.answer
        grounded = verify_answer(draft_text, shown, self.retriever.embedder,
                                 keep_unverified=not checks.verify)
        if grounded.declined:
            return self._decline(question, results, timings, started, lang)
        extractive = False
        too_little = not grounded.used_passages or (grounded.verified_fraction or 0) < checks.min_verified_fraction
        if checks.verify and checks.extractive_fallback and too_little:
            grounded = extractive_answer(asked, shown, self.retriever.embedder)
            extractive = True
            if grounded.declined:  # no source sentence fits: a decline, in the question's language
                return self._decline(question, results, timings, started, lang)
        answer = self._answer_from(question, grounded, results, timings, lang)
        answer.extractive = extractive
        return answer

    @staticmethod
    def _drafted(stream: Iterator[str], timings: Timings, started: float, pieces: list[str]
                 ) -> Iterator[BotEvent]:
        """The draft's pieces as Deltas, as they come; records the first token's time and
        collects the text into `pieces`."""
        for piece in stream:
            if timings.first_token_s is None:
                timings.first_token_s = time.perf_counter() - started
            pieces.append(piece)
            yield Delta(piece)

    @staticmethod
    def _with_query(answer: Answer, query: SearchQuery) -> Answer:
        answer.standalone_question = query.standalone_question
        return answer

    def _searched(self, message: str, history: History, use_model: bool
                  ) -> tuple[SearchQuery, list[RetrievedPassage], float]:
        """The search query, its passages and the retrieval time (ms)."""
        query = self._search_query(message, history, use_model)
        results, retrieval_ms = self._search(query)
        if history and not query.follow_up and not self._passes_gate(results):
            # "does coffee count?" names nothing the sources answer on its own: read it in the
            # context of the conversation before declining.
            query = self._search_query(message, history, use_model, force_follow_up=True)
            results, more_ms = self._search(query)
            retrieval_ms += more_ms
        return query, results, retrieval_ms

    def _search(self, query: SearchQuery) -> tuple[list[RetrievedPassage], float]:
        """The query's passages, ordered for the kind of answer it asks for (bot/rerank.py)."""
        retrieval = self.settings.retrieval
        cues = reorder_cues(query.intent_text) if retrieval.intent_weight else []
        k = retrieval.top_k
        results, ms = self.retriever.search_all(query.texts, k * POOL_FACTOR if cues else k)
        return prefer_intent(results, cues, k, retrieval.intent_weight), ms

    def _search_query(self, message: str, history: History, use_model: bool,
                      force_follow_up: bool = False) -> SearchQuery:
        rewriter = self._rewrite if use_model else None
        return search_query(message, history, self.settings, rewriter,
                            force_follow_up=force_follow_up)

    def _rewrite(self, instructions: list, max_new_tokens: int) -> str:
        """Let the local model rewrite a query (translation, follow-up condensing)."""
        return "".join(self.generator.stream(instructions, max_new_tokens)).strip()

    def _passes_gate(self, results: list[RetrievedPassage]) -> bool:
        retrieval = self.settings.retrieval
        if not results:
            return False
        if not retrieval.gate:
            return True
        return self.retriever.relevance(results) >= retrieval.gate_threshold

    def _clause_passes_gate(self, text: str) -> bool:
        """Whether one clause of a long question passes the gate on its own. One embedding of a
        long story dilutes its point: "my brother quit drinking cold turkey last week after years
        of heavy boozing and now he gets these bad spasms in his legs. is that part of it?" had a
        best cosine of 0.36 (gate 0.42) though its first passage was the right one. The question
        still goes through the scope check first, and is answered from its own search."""
        clauses = [c for c in _CLAUSE_BREAK.split(text) if len(c.split()) >= _MIN_CLAUSE_WORDS]
        if len(clauses) < 2:
            return False
        return any(self._passes_gate(self.retriever.search(c)[0]) for c in clauses)

    def _context(self, results: list[RetrievedPassage]) -> list[RetrievedPassage]:
        """The retrieved passages the model sees: those close enough to the best one's score,
        with or without what they gained for the kind of answer asked (bot/rerank.py): a passage
        of advice joins the causes that outrank it, and the causes' own ranking is kept."""
        margin = self.settings.retrieval.context_margin
        if margin is None:
            return results
        best = max(r.score for r in results)
        best_retrieved = max(r.retrieval_score for r in results)
        return [r for r in results
                if r.score >= best - margin or r.retrieval_score >= best_retrieved - margin]

    # -- answers ---------------------------------------------------------------------------
    def _answer_from(
        self, question: str, grounded: GroundedAnswer, results: list[RetrievedPassage],
        timings: Timings, lang: str,
    ) -> Answer:
        scores = {r.passage.id: r.score for r in results}
        # Keep retrieval's score for display; the supporting sentence comes from verification.
        citations = [
            Citation(number=c.number, passage=c.passage, score=scores.get(c.passage.id, 0.0),
                     supporting_sentence=c.supporting_sentence)
            for c in grounded.citations
        ]
        # A chunk cited for the sentence that completes a retrieved one is shown with them.
        given = {r.passage.id for r in results}
        brought = [RetrievedPassage(c.passage, score=0.0, dense_score=0.0)
                   for c in grounded.citations if c.passage.id not in given]
        return Answer(
            question=question, text=grounded.text, citations=citations, retrieved=results + brought,
            verified_fraction=grounded.verified_fraction, timings=timings,
            disclaimer=texts.t("DISCLAIMER", lang), lang=lang,
        )

    def _decline(
        self, question: str, results: list[RetrievedPassage], timings: Timings, started: float,
        lang: str, reason: str | None = None,
    ) -> Answer:
        timings.total_s = time.perf_counter() - started
        note_gap(self.settings, question, lang, "not_covered" if reason else "no_sources")
        reason = reason or texts.t("CANNOT_ANSWER", lang)
        return Answer(
            question=question, text=f"{reason} {texts.about('CANNOT_ANSWER_HINT', lang, self.settings.web.topic)}",
            retrieved=results, declined=True, timings=timings,
            disclaimer=texts.t("DISCLAIMER_NO_SOURCES", lang), lang=lang,
        )

    def _red_flag_answer(self, question: str, flag: RedFlag, started: float, lang: str) -> Answer:
        # Urgent advice only: the sources' self-care tips (massage, warm baths, exercise) could
        # hurt with a clot or a stroke, so no background is added to a red-flag reply.
        text = " ".join(part for part in (flag.advice, flag.avoid) if part)
        return Answer(question=question, text=text, red_flag=True,
                      disclaimer=texts.t("DISCLAIMER_URGENT", lang), lang=lang,
                      timings=Timings(total_s=time.perf_counter() - started))

    def _error_answer(self, question: str, message: str, started: float, lang: str) -> Answer:
        return Answer(question=question, text=message, error=True,
                      disclaimer=texts.t("DISCLAIMER_NO_SOURCES", lang), lang=lang,
                      timings=Timings(total_s=time.perf_counter() - started))

    def _guard_message(self, message: Message) -> str:
        lang = message.reply_lang
        if message.problem == "empty":
            return texts.about("EMPTY_MESSAGE", lang, self.settings.web.topic)
        if message.problem == "too_long":
            return texts.t("MESSAGE_TOO_LONG", lang).format(
                length=message.length, limit=self.settings.safety.max_message_chars)
        return texts.t("NOT_TEXT", lang)
