"""What an answer is made of: the source sentences that answer the question, chosen by the code.

An answer is composed, not free-written: the code picks the units of passage text that answer
the question (`select_evidence`) and shows them cited (`compose_answer`); the model only writes
one direct-answer sentence in front of them, which bot/lead.py checks against the units. A
relation error such as "pork, eggs and fish are vitamins" needs a writer joining two facts; a
quoted "include pork, eggs, fish in your diet to avoid vitamin deficiency" has none.

A unit is one source sentence, with the sentence before it when it leans on it ("It helps to
absorb calcium...") and headed by the one before it when that is a bare heading-like fragment
("Caffeine abuse: when you drink more than 5 cups..."). A unit's relevance: the embedding cosine
of question and unit, plus 0.3 x the share of the question's content words it contains, plus
0.3 x the cosine of the question and the passage's section heading, plus 0.2 when the unit is
the kind of answer asked for (a cause for "why", advice for "what helps"), minus the gap between
its passage's retrieval score and the best passage's. The cosine is taken after removing the
sources' common direction (`topic_vector`), so a unit that is only "about cramps" does not match
every question. Units within `margin` of the best (and above `floor`) are kept, most relevant
first; a unit from another passage than the best one's must be within the smaller
`other_margin`, so fewer passages are cited; each kept unit brings the next unit of its passage
when that one goes on about the same thing (the mechanism after the claim).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from bot.answer import Citation
from bot.citations import renumber, split_sentences, strip_markers, with_markers
from bot.grounding import COMMON_WORDS, GroundedAnswer, SentenceCheck, content_words, lexical_recall
from bot.intents import (ADVICE_OFF, advises, advises_for, asks_help, asks_why, intent_cues,
                         off_intent, TIME_WORDS)
from corpus.passage import Passage

if TYPE_CHECKING:
    from index.embedding import Embedder

_LEXICAL_WEIGHT = 0.3
_SECTION_WEIGHT = 0.3  # "Causes of night pain..." or "What to do when...": the section says what a unit answers
_MIN_NEW_WORDS = 2  # "Complaints that calves cramp at night are common." only restates the question
_RANK_BONUS = 0.02  # per retrieval rank: a tie goes to the passage retrieval trusted more
_DUPLICATE_COSINE = 0.9  # neighbouring passages overlap, so one sentence can appear twice
_FRAGMENT_WORDS = 5  # "Prolonged stress, irregular meals." is a heading for the next sentence
_MAX_UNIT_CHARS = 420
# A list item's heading is a bare noun phrase ("Caffeine abuse.", "Old age."); a short sentence
# that opens with an article or an adverb, or says "then", is a clause: "A phlebologist then
# prescribes treatment." is the step after the ultrasound, not the heading of the next sentence.
_CLAUSE = re.compile(r"^(?:a|an|the|\w+ly)\b|\bthen\b", re.IGNORECASE)
_ASKS = re.compile(r"\?[\"'”»)]*$")  # a question the source asks itself, often in quotes
# "It helps to absorb calcium." or "Both can cause night cramps." mean little on their own.
# "Most often it occurs in pregnant women" leans back too: a pronoun within its first words.
# "After all, such a symptom can mean..." leans back past its opening connective.
_LEANS_BACK = re.compile(
    r"^(?:(?:after all|in fact|indeed|however|moreover|besides|at the same time),?\s+)?"
    r"(?:(?:most|more|very|also|usually|often|especially)\s+){0,2}"
    r"(it|its|this|these|that|those|they|their|such|both|and|but|so|then|therefore|thus|"
    r"as a result|in this case|exactly because|because of this|there is also|to do this|for this)\b"
    r"|^\w+(?:\s+\w+)?\s+(?:then|them|those)\b"  # "A phlebologist then...", "Choose only those"
    r"|^the (?:aim|goal|purpose|point) (?:is|of)\b"  # "The aim is to relieve..."
    r"|^[^.,;]{0,60},\s+(?:on the contrary|in contrast|by contrast)\b",  # contrasts the one before
    re.IGNORECASE)
# "It is recommended to use herbal teas." names no antecedent: its "it" is the expletive one.
_EXPLETIVE = re.compile(r"^it is (?:\w+ )?(?:recommended|necessary|important|useful|worth|best|"
                        r"advisable|compulsory|essential|good|better)\b", re.IGNORECASE)
# At the start of a chunk a pronoun needs the sentence before it ("This in turn will eliminate
# the pain."), and so do a consequence ("As a result, the swollen muscle fibers squeeze the
# vessels", which after a sweating sentence read as if sweating swelled them) and a step after
# one not shown ("After the massage, a cold compress..."); "And during pregnancy..." reads well.
_NEEDS_ANTECEDENT = re.compile(
    r"^(?:(?:most|more|very|also|usually|often|especially)\s+){0,2}"
    r"(it|its|this|these|those|they|their|such|both)\b"
    r"|^(?:as a result|in turn|after (?:the|this|that) \w+)\b",
    re.IGNORECASE)

# A consequence whose own subject is a full noun phrase ("As a result, the swollen muscle fibers
# squeeze the vessels") still states its fact without the connective, which at the start of a
# chunk points at a sentence not shown: the connective is dropped, the sentence kept.
_CONSEQUENCE = re.compile(r"^(?:as a result|consequently|therefore|thus|hence),\s+(?=(?:the|a|an)\s+\w)",
                          re.IGNORECASE)


# A unit of the kind of answer the question asks for (bot/intents.py) gains this much; one off
# that kind loses bot/intents.py's off_intent penalty.
_INTENT_BONUS = 0.2


@dataclass(frozen=True)
class Evidence:
    """A unit of source text the answer may say, and the passage ([n] before renumbering) it is in."""

    number: int  # 1-based position in the passages shown
    text: str
    score: float


def passage_units(passage: Passage) -> list[str]:
    """The passage's sentences joined into units that read on their own; a question the source
    asks itself stays with the answer after it, which it says the subject of."""
    sentences = [strip_markers(s).strip() for s in split_sentences(passage.text)]
    sentences = [s for s in sentences if s]
    if sentences and _CONSEQUENCE.match(sentences[0]):
        rest = _CONSEQUENCE.sub("", sentences[0])
        sentences[0] = rest[:1].upper() + rest[1:]
    # A chunk can start mid-sentence: a leading piece in lower case belongs to a sentence we lack.
    # and a leading "This in turn will eliminate the pain." leans on a sentence of the chunk before.
    while sentences and (not sentences[0][:1].isupper() and not sentences[0][:1].isdigit()
                         or _NEEDS_ANTECEDENT.match(sentences[0]) and not _EXPLETIVE.match(sentences[0])):
        sentences.pop(0)
    units: list[str] = []
    pending = ""
    for sentence in sentences:
        if pending:
            sentence = f"{pending} {sentence}"
            pending = ""
        if units and _LEANS_BACK.match(sentence) and _ASKS.search(units[-1]):
            # "Why do swimmers cramp?" "This is due to...": the answer with the question it
            # answers, which says what its "this" is (display_sentences shows the question alone).
            units[-1] = f"{units[-1]} {sentence}"
        elif (units and (_LEANS_BACK.match(sentence) or _names_the_last(units[-1], sentence))
              and len(units[-1]) + len(sentence) < _MAX_UNIT_CHARS):
            units[-1] = f"{units[-1]} {sentence}"
        elif _is_heading(sentence):
            pending = sentence
        else:
            units.append(sentence)
    if pending and units:
        units[-1] = f"{units[-1]} {pending}"
    # Headings and questions the source asks itself are not claims.
    return [u for u in units if not _ASKS.search(u) and len(content_words(u)) >= 3]


def _is_heading(sentence: str) -> bool:
    """"Caffeine abuse." heads the sentence after it: a few words, not a question, not a clause."""
    return (len(sentence.split()) <= _FRAGMENT_WORDS and not _ASKS.search(sentence)
            and not _CLAUSE.search(sentence))


_DEFINITE = re.compile(r"^the\s+([a-z]{3,})\b", re.IGNORECASE)


def _names_the_last(previous: str, sentence: str) -> bool:
    """"... stroke them under the water." "The water will relax the muscles": "the" + a noun
    the sentence before just named refers back to it, so the two read only together."""
    match = _DEFINITE.match(sentence)
    return bool(match and re.search(rf"\b{re.escape(match.group(1))}\b", previous, re.IGNORECASE))


def _headed(heading: str, sentence: str) -> str:
    """"Caffeine abuse." + "When you drink..." -> "Caffeine abuse: when you drink...": one
    sentence, so its citation marker covers the heading too."""
    if sentence[1:2].islower() or sentence.startswith("A "):
        sentence = sentence[0].lower() + sentence[1:]
    return f"{heading.rstrip('.!; ')}: {sentence}"


# 'Well, another question ... interests those who have cramps: "Why do swimmers so often get
# these cramps?"': the question the source quotes, without the sentence around it.
_QUOTED_QUESTION = re.compile(r"[\"“«]([^\"“”«»]+\?)[\"”»]$")


def display_sentences(unit: str) -> list[str]:
    """A unit's sentences as the answer shows them, a leading heading fragment joined to the
    sentence it heads, and a question the source quotes before its answer shown alone. The unit
    itself keeps the passage's wording, so the source card can highlight it."""
    sentences = split_sentences(unit)
    quoted = _QUOTED_QUESTION.search(sentences[0]) if len(sentences) > 1 else None
    if quoted:
        sentences[0] = quoted.group(1)
    if len(sentences) > 1 and _is_heading(sentences[0]):
        sentences[:2] = [_headed(sentences[0], sentences[1])]
    return sentences


@dataclass(frozen=True)
class Scored:
    """Every candidate unit of the shown passages with its relevance, and the unit vectors
    (row k + 1 of `vectors` is candidate k; row 0 is the question)."""

    candidates: list[tuple[int, str]]  # (passage number, unit)
    scores: list[float]
    vectors: np.ndarray


def score_units(
    question: str, shown: list[Passage], embedder: "Embedder", *, focus: str | None = None,
    topic: np.ndarray | None = None, retrieval_scores: list[float] | None = None,
) -> Scored | None:
    """Each unit of the shown passages scored for how well it answers `question` (the module
    docstring lists the terms); None when no unit says more than the question."""
    asked = content_words(focus or question)
    candidates = [
        (number, unit)
        for number, passage in enumerate(shown, start=1)
        for unit in passage_units(passage)
        if len(content_words(unit) - asked - COMMON_WORDS) >= _MIN_NEW_WORDS
    ]
    if not candidates:
        return None
    sections = [passage.section or passage.title for passage in shown]
    vectors = embedder.embed([question] + sections + [unit for _, unit in candidates])
    # Only a real heading says what a passage answers: the text before a source's first heading
    # files under the source's title ("Night cramps in the calves: causes and what to do"), which
    # matches every question of the source and would lift its introduction above the answers.
    headed = np.array([1.0 if p.section and p.section != p.title else 0.0 for p in shown])
    section_cosines = (vectors[1:1 + len(sections)] @ vectors[0]) * headed
    vectors = np.concatenate([vectors[:1], vectors[1 + len(sections):]])
    cosines = _cosines(vectors, topic)
    asked -= COMMON_WORDS
    cues = intent_cues(focus or question)
    lexical = _LEXICAL_WEIGHT * (2 if focus else 1)
    top = max(retrieval_scores or [0.0])
    prior = [0.0] * len(shown) if retrieval_scores is None else [
        _PRIOR_WEIGHT * (score - top) for score in retrieval_scores]
    unit_words = [content_words(unit) for _, unit in candidates]
    named = _named_words(focus or question)
    # A follow-up's `question` is it searched with its subject: the previous question's when it
    # names none (bot/query.py), else the conversation's topic words.
    subject = question if focus else ""
    scores = [
        float(cosine) + lexical * lexical_recall(asked, words) + prior[number - 1]
        + _SECTION_WEIGHT * float(section_cosines[number - 1]) - _RANK_BONUS * (number - 1)
        + _INTENT_BONUS * any(cue.search(unit) for cue in cues)
        - _off_kind(focus or question, unit, number, named & words, subject)
        for (number, unit), cosine, words in zip(candidates, cosines, unit_words)
    ]
    return Scored(candidates, scores, vectors)


# Words of asking for help, which name no topic ("what helps", "what can I do").
_ASKING_WORDS = content_words("help helps can do prevent avoid stop relieve treat against")
# Words of when, which name no situation either: "What to do if my calf cramped at night?" was
# answered with "Wearing uncomfortable shoes ... at night can't relax" alone (a cause sharing
# "night"), though the sources advise for night cramps (massage, a warm bath).
_TIME_WORDS = content_words(TIME_WORDS)


def _named_words(question: str) -> set[str]:
    """What the question is about, not how or when it asks."""
    return content_words(question) - COMMON_WORDS - _ASKING_WORDS - _TIME_WORDS


def _off_kind(question: str, unit: str, number: int, names_it: set[str], subject: str = "") -> float:
    """bot/intents.py's penalty for a unit off the asked kind, but for a mere lack of advice in
    retrieval's best passage (number 1) when the unit is about what the question names
    (`names_it`: the question's topic words the unit's subject shares): "What helps against leg
    cramps when swimming?" is answered by why swimmers cramp (cold water, a temperature
    difference), since the sources give no advice for the water, not by a warm bath at home. A
    follow-up's own words ("And what can I do about it?") name nothing: advice."""
    penalty = off_intent(question, unit, subject)
    if number == 1 and penalty == ADVICE_OFF and names_it:
        return 0.0
    return penalty


def select_evidence(
    question: str, shown: list[Passage], embedder: "Embedder", *, max_units: int = 4,
    margin: float = 0.5, floor: float = 0.3, other_margin: float | None = 0.25,
    focus: str | None = None, topic: np.ndarray | None = None,
    retrieval_scores: list[float] | None = None, nexts: dict[int, int] | None = None,
    brought: int = 0,
) -> list[Evidence]:
    """The units that answer `question`, most relevant first; [] when none does.

    `nexts` maps a passage number to the number of the source's next passage; the last
    `brought` of `shown` were appended by `with_following` for that alone and are not chosen on
    their own (`retrieval_scores` covers the retrieved ones only). The chunker
    can cut a paragraph between a claim and the sentence that completes it ("...an ultrasound of
    the veins, Doppler or scanning." | "A phlebologist then prescribes treatment."): a unit that
    ends its passage may bring the first new unit of the next one, which is then cited (and
    shown) too; such a passage is never chosen on its own.

    `focus`: what a follow-up itself asks, when `question` is it searched together with the
    previous question ("Why do my calves cramp at night? Is that dangerous in pregnancy?"): its
    words and its kind of answer count double, so the answer is about pregnancy, not night.
    """
    nexts = nexts or {}
    followers_only = set(range(len(shown) - brought + 1, len(shown) + 1))
    if retrieval_scores is not None and brought:
        # A follower-only passage scores as the one it follows, not as retrieval ranked it.
        behind = {after: retrieval_scores[before - 1] for before, after in nexts.items()
                  if before <= len(retrieval_scores)}
        retrieval_scores = [*retrieval_scores[:len(shown) - brought],
                            *(behind.get(n, min(retrieval_scores)) for n in sorted(followers_only))]
    scored = score_units(question, shown, embedder, focus=focus, topic=topic,
                         retrieval_scores=retrieval_scores)
    if scored is None:
        return []
    candidates, scores, vectors = scored.candidates, scored.scores, scored.vectors
    primary = [number not in followers_only for number, _ in candidates]
    if not any(primary):
        return []
    best_index = max((i for i in range(len(scores)) if primary[i]), key=scores.__getitem__)
    best, best_passage = scores[best_index], candidates[best_index][0]

    # "can my shoes be causing my calf cramps?" names its item of the causes list; the items
    # beside it ("Metabolic disorders", "Caffeine abuse") name nothing it asks and are no answer.
    named = _named_words(focus or question)
    best_unit = candidates[best_index][1]
    names_best = _starts_item(best_unit) and bool(named & content_words(best_unit))

    def other_list_item(index: int) -> bool:
        unit = candidates[index][1]
        return (names_best and index != best_index and _starts_item(unit)
                and not named & content_words(unit))

    def eligible(index: int) -> bool:
        # Another passage is cited only for a unit nearly as good as the best: each passage
        # cited is one more the reader must check, and a weaker one is more often off the point.
        # So is another item of the best unit's list ("Caffeine abuse. ..." then "Metabolic
        # disorders. ..."): a claim of its own, which rode along with coffee questions.
        if other_list_item(index):
            return False
        if other_margin is None or scores[index] >= best - other_margin:
            return True
        return (_neighbours(shown[candidates[index][0] - 1], shown[best_passage - 1])
                and not (_starts_item(candidates[index][1])
                         and _starts_item(candidates[best_index][1])))

    # "How do I prevent them?": the best unit's passage goes on with more of the same advice
    # ("...eliminate provoking factors." | "You can take a course of valerian..."), which scores
    # far below a best unit that repeats the question's words: the advice that follows it, up to
    # the first unit that advises nothing or advises for an unasked condition, comes too.
    help_asked = asks_help(focus or question)
    more_advice: set[int] = set()
    if help_asked and advises(candidates[best_index][1]):
        index = best_index + 1
        while (index < len(candidates) and candidates[index][0] == best_passage
               and scores[index] > 0 and advises_for(focus or question, candidates[index][1])):
            more_advice.add(index)
            index += 1

    chosen: list[int] = []
    for index in np.argsort(scores)[::-1]:
        score = scores[index]
        if len(chosen) == max_units:
            break
        if score < max(best - margin, floor) and index not in more_advice:
            continue
        if not primary[index] or not eligible(index):
            continue
        if any(float(vectors[1 + index] @ vectors[1 + other]) > _DUPLICATE_COSINE for other in chosen):
            continue
        chosen.append(int(index))
    items = [i for i in _listed_causes(focus or question, shown, candidates, best_index, scores)
             if primary[i]]
    if items:
        return [Evidence(candidates[i][0], _item_claim(candidates[i][1]), round(scores[i], 3))
                for i in items]
    # A unit off the asked kind is no completion of one chosen ("...precursors of varicose
    # veins." | "And during pregnancy, future mothers..." for a question about no pregnancy).
    subject = question if focus else ""
    off = {i for i, (_, unit) in enumerate(candidates)
           if off_intent(focus or question, unit, subject) > 0}
    chosen = _with_followers(chosen, candidates, scores, max(best - _FOLLOWER_MARGIN, floor),
                             nexts, shown, off, help_asked)
    # A unit nearly as good as the best is not left out for length: "For example, massage:
    # gently stroke the cramped limb..." (0.22 below the warm bath's five sentences) had been
    # cut from "what do I do when my calf cramps right now?".
    close = {i for i in chosen if scores[i] >= best - _CLOSE_MARGIN
             and _neighbours(shown[candidates[i][0] - 1], shown[best_passage - 1])}
    chosen = _within_sentences(chosen, candidates, _MAX_SENTENCES, close)
    chosen = _with_their_examples(chosen, candidates, nexts, shown)
    chosen = _neighbours_in_source_order(chosen, candidates, nexts, shown)
    # Most relevant first: the reader meets the answer before its context.
    return [Evidence(candidates[i][0], candidates[i][1], round(scores[i], 3)) for i in chosen]


# "Causes of night pain in the calves", "Possible reasons": a heading that announces causes.
_CAUSES_HEADING = re.compile(r"\b(causes?|reasons?)\b", re.IGNORECASE)
_MIN_ITEMS = 3
_MAX_ITEMS = 6  # one shown sentence each: within the answer's six (_MAX_SENTENCES)


def with_following(shown: list[Passage], following: list[Passage | None]
                   ) -> tuple[list[Passage], dict[int, int]]:
    """`shown` and, after them, each one's next passage in the source (`following`, from the
    retriever) that is not shown already; and which number follows which (1-based)."""
    extended = list(shown)
    numbers = {p.id: n for n, p in enumerate(extended, start=1)}
    nexts: dict[int, int] = {}
    for number, successor in enumerate(following, start=1):
        if successor is None:
            continue
        if successor.id not in numbers:
            extended.append(successor)
            numbers[successor.id] = len(extended)
        nexts[number] = numbers[successor.id]
    return extended, nexts


def _listed_causes(question: str, shown: list[Passage], candidates: list, best: int | None = None,
                   scores: list[float] | None = None) -> list[int]:
    """"Why do my calves cramp at night?" asks for the list the source gives under "Causes of
    night pain in the calves": every item of it the shown passages hold, one sentence each, in
    the source's order (its first six: the answer's length). It applies when the question asks
    why and names no item of the list (an "elderly" or "atherosclerosis" question wants its own
    item, not the list): either it says nothing the heading does not, or its best unit (`best`)
    is in the list, no item stands out by its `scores` and its other words are a story ("i keep
    waking up at 3am ... im 34 and pretty healthy"); [] when no shown section is such a list.
    Scoring sentence by sentence picked the two items that repeat the question's words ("at
    night") and the introduction, never the list."""
    if not asks_why(question):
        return []
    asked = content_words(question) - COMMON_WORDS
    for section in dict.fromkeys(p.section for p in shown if p.section and p.section != p.title):
        heading = content_words(section)
        if not (_CAUSES_HEADING.search(section) and asked & heading):
            continue
        # Neighbouring passages overlap, so an item can be in two of them: keep it once.
        first = {}
        for i, (number, unit) in enumerate(candidates):
            if shown[number - 1].section == section and _starts_item(unit):
                first.setdefault(unit, i)
        if len(first) < _MIN_ITEMS:
            continue
        if not asked <= heading and not _a_story_about(section, asked - heading, shown, candidates,
                                                       first.values(), best, scores):
            continue
        # The whole list is the answer, whatever retrieval thought of the chunk an item fell in.
        items = sorted(first.values(), key=lambda i: (shown[candidates[i][0] - 1].raw_start, i))
        return items[:_MAX_ITEMS]
    return []


# How far one item's score must lead the next for a question to be about that item.
_ITEM_LEAD = 0.1


def _a_story_about(section: str, extra: set[str], shown: list[Passage], candidates: list,
                   items, best: int | None, scores: list[float] | None) -> bool:
    """Whether the words a question adds to a causes list's heading only tell the asker's story:
    its best unit is in the list, no item's words are among them ("sedentary", "sit": a prefix
    counts, as the stems are crude) and no item leads the others by `_ITEM_LEAD`."""
    if best is None or scores is None or shown[candidates[best][0] - 1].section != section:
        return False
    item_words = set().union(*(content_words(candidates[i][1]) for i in items))
    item_words -= COMMON_WORDS | _TIME_WORDS
    if any(v.startswith(w) or w.startswith(v)
           for w in extra - _TIME_WORDS if len(w) >= 3 for v in item_words if len(v) >= 3):
        return False
    ranked = sorted((scores[i] for i in items), reverse=True)
    return len(ranked) < 2 or ranked[0] - ranked[1] < _ITEM_LEAD


def _item_claim(unit: str) -> str:
    """A list item's heading and its first sentence: "Caffeine abuse. When you drink more than 5
    cups..." (the mechanism after it is for a question about that item)."""
    return " ".join(split_sentences(unit)[:2])


def _neighbours(passage: Passage, other: Passage) -> bool:
    """The same passage, or one that overlaps it: the chunker cut a paragraph there ("...the
    lack of which can lead to cramps. This is vitamin B6." | "This is vitamin B6. It is also
    needed for the nervous system..."), so the reader checks one text. Passages that only touch
    are the source's own paragraphs (a list's items), each a claim of its own."""
    if passage.source != other.source or passage.section != other.section:
        return False
    first, second = sorted((passage, other), key=lambda p: p.raw_start)
    return second.raw_start < first.raw_end


_FOLLOWER_MARGIN = 0.6
_MAX_FOLLOWERS = 2
# A reader takes in a handful of sentences; past six quoted ones (plus the lead) the extra units
# were rarely the ones a good answer needs (dev must-mention equal at 6 and 99, 0.631 at 5).
_MAX_SENTENCES = 6
_CLOSE_MARGIN = 0.25
_MAX_CLOSE_SENTENCES = 9


def _within_sentences(chosen: list[int], candidates: list, limit: int,
                      close: set[int] = frozenset()) -> list[int]:
    """The chosen units, in order, while the answer stays within `limit` sentences (the first
    unit always stays: a long unit is still the answer); a `close` one may take it up to
    `_MAX_CLOSE_SENTENCES`."""
    kept: list[int] = []
    total = 0
    for index in chosen:
        count = len(display_sentences(candidates[index][1]))
        if kept and total + count > (_MAX_CLOSE_SENTENCES if index in close else limit):
            continue
        kept.append(index)
        total += count
    return kept


# "For example, massage. Gently stroke the cramped limb." gives what the unit before announced.
_FOR_EXAMPLE = re.compile(r"^(?:for example|for instance|e\.g\.)\b", re.IGNORECASE)


def _gives_example(unit: str) -> bool:
    return bool(_FOR_EXAMPLE.match(unit))


def _with_their_examples(chosen: list[int], candidates: list, nexts: dict[int, int],
                         shown: list[Passage]) -> list[int]:
    """The chosen units without one whose example did not come: "Besides treatment, other
    remedies can also relieve the pain." ended answers whose sentence budget left out "For
    example, massage...", naming remedies the reader never sees. The first unit stays."""
    def dangling(index: int) -> bool:
        follower = _next_unit(index, candidates, nexts, shown)
        return (follower is not None and _gives_example(candidates[follower][1])
                and follower not in chosen)

    return chosen[:1] + [index for index in chosen[1:] if not dangling(index)]


# "Alternatively, try warm baths" is the alternative to the unit before it; "After the massage, a
# cold compress" the step after it.
_POINTS_BACK = re.compile(r"^(?:alternatively|instead|after (?:the|this|that|it)\b)", re.IGNORECASE)


def _neighbours_in_source_order(chosen: list[int], candidates: list, nexts: dict[int, int],
                                shown: list[Passage]) -> list[int]:
    """The chosen units, most relevant first, but a unit whose sentence before it in the source is
    chosen too comes right after that one: "Alternatively, try to relieve pain with warm baths"
    had opened a first-aid answer, with the massage it is the alternative to three units later."""
    before = {}
    for index in chosen:
        follower = _next_unit(index, candidates, nexts, shown)
        if follower in chosen and _POINTS_BACK.match(candidates[follower][1]):
            before[follower] = index
    ordered: list[int] = []

    def place(index: int) -> None:
        if index in ordered:
            return
        if index in before:
            place(before[index])
        ordered.append(index)

    for index in chosen:
        place(index)
    return ordered


def _starts_item(unit: str) -> bool:
    """"Caffeine abuse. When you drink..." opens the next item of a list the source gives."""
    return _is_heading(split_sentences(unit)[0])


def _with_followers(chosen: list[int], candidates: list, scores: list[float], threshold: float,
                    nexts: dict[int, int] | None = None, shown: list[Passage] | None = None,
                    off: set[int] = frozenset(), help_asked: bool = False) -> list[int]:
    """Each chosen unit followed by the next one of its passage when that one goes on about the
    same thing: "Sitting or standing work. Both can cause night cramps." is the claim, "In the
    case of sedentary work, immobility slows the blood circulation..." the why of it. The same
    idea as a sentence window (LlamaIndex's SentenceWindowNodeParser), over units, not tokens.
    `nexts` maps a passage number to its follower-only next passage (select_evidence).
    When the question asks what to do, advice that follows a unit that gives none comes too:
    "...pregnant women do not get enough calcium. This leads to cramps" is followed by "As a
    rule, the situation is corrected by taking additional vitamins and mineral complexes.",
    which scored low against "is this normal, what can i do" but is the answer's second half."""
    out: list[int] = []
    added = 0
    for index in chosen:
        index = _completed(index, candidates, nexts or {})
        if index in out:  # two chosen units can end as the same completed one
            continue
        out.append(index)
        follower = _next_unit(index, candidates, nexts or {}, shown or [])
        # A sentence the chunker cut off from the unit ("A phlebologist then...") would have
        # been part of it: it comes whatever its own score.
        cut_off = (follower is not None and candidates[follower][0] != candidates[index][0]
                   and follower not in off)
        then_advice = (help_asked and follower is not None and advises(candidates[follower][1])
                       and not advises(candidates[index][1]))
        # What the unit announced ("other remedies can also relieve the pain" | "For example,
        # massage...") is part of it.
        example = follower is not None and _gives_example(candidates[follower][1])
        if (follower is not None and added < _MAX_FOLLOWERS and follower not in chosen
                and follower not in out and not _starts_item(candidates[follower][1])
                and (scores[follower] >= threshold or _starts_item(candidates[index][1]) or cut_off
                     or then_advice or example)):
            out.append(follower)
            added += 1
    return out


def _ends_passage(index: int, candidates: list) -> bool:
    return index + 1 >= len(candidates) or candidates[index + 1][0] != candidates[index][0]


def _completed(index: int, candidates: list, nexts: dict[int, int]) -> int:
    """The same unit as the next chunk holds it, when the chunk cut it short: "...Doppler or
    scanning." is "...Doppler or scanning. A phlebologist then prescribes treatment." there."""
    number, unit = candidates[index][0], candidates[index][1]
    if not _ends_passage(index, candidates) or number not in nexts:
        return index
    for k, (other, longer) in enumerate(candidates):
        if other == nexts[number] and longer != unit and longer.startswith(unit):
            return k
    return index


def _next_unit(index: int, candidates: list, nexts: dict[int, int], shown: list[Passage]
               ) -> int | None:
    """The unit after candidate `index` in its passage; when it ends its passage, the first unit
    of the source's next passage that this one does not hold, if it leans back on it."""
    number = candidates[index][0]
    if not _ends_passage(index, candidates):
        return index + 1
    if number not in nexts:
        return None
    held, after = shown[number - 1].text, shown[nexts[number] - 1].text
    # Where this unit ends in the next chunk (they overlap), or its start when they only touch.
    end = after.find(candidates[index][1])
    rest = after[end + len(candidates[index][1]):] if end >= 0 else after
    for k, (other, unit) in enumerate(candidates):
        if other == nexts[number] and unit not in held:
            # Only the sentence right after it (one opening with a question of the source's own,
            # "...: "Why do swimmers cramp?" This is due to...", leans on nothing before it).
            adjacent = rest.lstrip().startswith(unit)
            return k if adjacent and _LEANS_BACK.match(unit) else None
    return None


_CENTRE_WEIGHT = 1.0  # 0.5 / 0.8 / 1.0 / 1.2 measured on dev: precision rose up to 1.0, flat after
# Retrieval ranks passages with BM25 and the passage's whole context; a unit's own cosine cannot
# see that context. A unit pays the gap between its passage's retrieval score and the best one.
_PRIOR_WEIGHT = 1.0


def _cosines(vectors: np.ndarray, topic: np.ndarray | None) -> np.ndarray:
    """Cosine of the question (row 0) with each unit, after removing what every unit of the
    sources shares (`topic`): the sources are all about leg cramps, so that part matches every
    question and tells none of their units apart. Measured on dev (and on fresh-v1), it lowers
    all cosines and leaves the other signals (the question's words, the section, the kind of
    answer, retrieval's rank) more say: citation precision 0.574 -> 0.638 (0.616 -> 0.667),
    must-mention 0.689 -> 0.699 (0.905 -> 0.881)."""
    if topic is None or not _CENTRE_WEIGHT:
        return vectors[1:] @ vectors[0]
    centred = vectors - _CENTRE_WEIGHT * topic
    centred /= np.linalg.norm(centred, axis=1, keepdims=True) + 1e-9
    return centred[1:] @ centred[0]


def topic_vector(passages: list[Passage], embedder: "Embedder") -> np.ndarray:
    """The mean embedding of every unit of the sources: what they all have in common."""
    units = [unit for passage in passages for unit in passage_units(passage)]
    return embedder.embed(units).mean(axis=0)


def compose_answer(evidence: list[Evidence], shown: list[Passage], lead: str = "",
                   lead_units: list[int] | None = None) -> GroundedAnswer:
    """The answer shown: an optional checked lead sentence, then every unit, each cited.

    `lead_units` are the 1-based indexes into `evidence` that the lead was checked against.
    """
    parts = []
    if lead:
        numbers = sorted({evidence[k - 1].number for k in (lead_units or [])})
        parts.append(with_markers(lead, numbers))
    # Every sentence of a unit carries its marker: each one is a claim the reader can check.
    parts += [with_markers(sentence, [unit.number])
              for unit in evidence for sentence in display_sentences(unit.text)]
    final = renumber(" ".join(parts))
    new_number = {old: k + 1 for k, old in enumerate(final.order)}
    sentences = [
        SentenceCheck(text=unit.text, cited=[new_number[unit.number]], support=1.0, supported=True,
                      best_passage_sentence=unit.text, model_cited=[unit.number], kind="quote")
        for unit in evidence
    ]
    citations = []
    for old in final.order:
        best = max((u for u in evidence if u.number == old), key=lambda u: u.score)
        citations.append(Citation(new_number[old], shown[old - 1], best.score, best.text))
    return GroundedAnswer(
        text=final.text, sentences=sentences, verified_fraction=1.0 if lead else 0.0,
        used_passages=[shown[old - 1] for old in final.order], citations=citations,
        extractive=not lead,
    )


def as_passages(evidence: list[Evidence], shown: list[Passage]) -> list[Passage]:
    """Each unit as a passage of its own, so a sentence written from units is checked per unit."""
    return [
        replace(shown[unit.number - 1], id=f"{shown[unit.number - 1].id}~{k}", text=unit.text)
        for k, unit in enumerate(evidence, start=1)
    ]
