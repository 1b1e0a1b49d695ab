"""The one sentence the model writes in a composed answer: the direct answer to the question,
written from the selected source sentences and kept only when the checks support it.

Checks, each of which drops the lead: it must be one whole sentence and no refusal; a claim that
`verify_answer` finds supported by the units it cites (word recall + meaning + number, negation
and antonym conflicts); no copy of a unit; no relation its units do not state ("X is Y", "X
helps", "X causes": `relation_conflict`); no yes/no to another kind of question and no negation
its units lack (`answer_form_conflict`); no certainty its units hedge (`modality_conflict`); no
number without its bound (`quantity_conflict`); no facts borrowed from a unit that does not name the
claim's subject (`borrowed_facts`); no source back-reference such as "in this case"
(`borrowed_reference`); not one cause alone for a broad why-question (`one_cause_of_many`); no
content words that neither the question nor the units
contain (beyond a few connective words); and something beyond the question's own words.

A draft is checked without a reference to its input and without a reason it adds after the
answer, and if that fails, also without a "Yes," to a question that is not a yes/no one
(`_readings`). On 103 dev and probe2 drafts of the default model 2 had been kept whole; with
those cuts 18 were (with the two worked examples of `texts.LEAD_EXAMPLES` and the hedge check),
and 15 are with the back-reference and one-cause checks (the three dropped were wrong or partial).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wordfreq import zipf_frequency

from bot import texts
from bot.citations import first_sentence_end, split_sentences
from bot.compose import Evidence, as_passages
from bot.generation.base import ChatMessage
from bot.grounding import COMMON_WORDS, content_words, is_decline, verify_answer
from bot.intents import asks_why, unasked_pregnancy
from corpus.passage import Passage

if TYPE_CHECKING:
    from index.embedding import Embedder

# Words a direct answer uses to connect what the sources say to the question.
_CONNECTIVES = content_words(
    "yes no main mainly common commonly usually often several many various different reason "
    "reasons cause causes include including such factor factors also can may might important "
    "happen happens possible sign signs way ways thing things")
_MAX_NEW_WORDS = 1
_MAX_SENTENCES = 1
# A lead that copies one of the units says nothing the answer does not already say: nearly all of
# it ("Massage has a positive effect on spasms."), or most of it in one stretch, reordered or
# behind the question's words ("You should tell the doctor about your spasms by carefully listing
# all the possible causes (all diseases, ...)"); on dev's kept leads the longest shared stretch
# was at most 0.42 of a lead that said something of its own.
_COPY_RATIO = 0.8
_COPY_STRETCH = 0.45
_ENDS_SENTENCE = re.compile(r"[.!]\s*(?:\[\d+\]\s*)*$|(?:\[\d+\]\s*)+[.!]?\s*$")


@dataclass(frozen=True)
class Lead:
    text: str  # without markers; "" when the model's sentence was dropped
    units: list[int]  # 1-based indexes into the evidence that support it


# Relation checks: word overlap cannot see who does what. "Pork, eggs and fish are the vitamins"
# shares every word with "include pork, eggs, fish to avoid vitamin deficiency", and "caffeine
# helps" every word with "caffeine abuse makes the calves cramp".
_COPULA = re.compile(r"\b(?:is|are|was|were)\s+(?:the\s+|a\s+|an\s+|one of the\s+)?([a-z]+)", re.IGNORECASE)
_BENEFIT = re.compile(r"\b(help\w*|prevent\w*|reliev\w*|ease\w*|reduc\w*|treat\w*|cure\w*|stop\w*|"
                      r"good for|useful|beneficial|recommended|improv\w*)\b", re.IGNORECASE)
_BENEFIT_IN_SOURCE = re.compile(r"\b(recommend\w*|help\w*|useful|prevent\w*|reliev\w*|positive|"
                                r"should|need to|eliminat\w*|avoid\w*|try|welcome|good|corrected|"
                                r"include|relax\w*)\b", re.IGNORECASE)
_CAUSE = re.compile(r"\b(caus\w*|lead\w* to|trigger\w*|result\w* in|provok\w*|due to|because|"
                    r"reason\w*|linked|responsible)\b", re.IGNORECASE)
_CAUSE_IN_SOURCE = re.compile(r"\b(caus\w*|lead\w*|result\w*|due to|because|reason\w*|provok\w*|"
                              r"trigger\w*|lack|loss|deficien\w*|shortage|disorder\w*|abuse|"
                              r"excessive|symptom|signal|can mean|occur\w*|explains)\b",
                              re.IGNORECASE)


# "Why do my calves cramp at night?" -> "No, the calf muscles do not cramp at night [1]." passed
# the word checks: its unit says cramps occur "not only at night". A yes or a no answers only a
# yes/no question, and a negation needs a unit that negates too ("not only" does not).
_YES_NO_QUESTION = re.compile(r"^\W*(?:and |but |so )?(?:do|does|did|can|could|is|are|was|were|"
                              r"should|will|would|may|might|has|have|had|must|shall|am)\b",
                              re.IGNORECASE)
_YES_OR_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_NEGATED = re.compile(r"\b(no|not|never|cannot|none|nor|without)\b|n't\b", re.IGNORECASE)
_NOT_A_NEGATION = re.compile(r"\bnot (?:only|just|always|necessarily)\b|\bno (?:matter|doubt)\b",
                             re.IGNORECASE)


# The source's own back-reference, copied into a lead that has nothing before it to refer to:
# "The potassium diet can help in this case" answered a student who eats at random times, where
# the source's case is another (leg pain from a lack of potassium and magnesium).
_BORROWED_REFERENCE = re.compile(r"\b(?:in (?:this|that|such a|these|those) cases?|"
                                 r"such (?:symptoms|cases|a diagnosis|complaints)|this condition)\b",
                                 re.IGNORECASE)


def borrowed_reference(claim: str) -> bool:
    """A back-reference the lead copied from its source ("in this case"), which points at
    nothing in the answer."""
    return bool(_BORROWED_REFERENCE.search(claim))


_MANY_CAUSES = 3
# "I drink eight mugs of tea a day, could that be why my legs seize up?" names its cause.
_ASKS_ABOUT_ITS_OWN = re.compile(r"\b(?:could|can|is|might|may|would|does) (?:that|this|it)\b",
                                 re.IGNORECASE)


def one_cause_of_many(claim_units: list[int], question: str, evidence: list[Evidence]) -> bool:
    """A why-question that names no cause of its own answered with one cause among the several
    its evidence gives: "Why do my calves cramp at night?" -> "Caffeine abuse can cause your
    calf muscles to cramp", above a list of seven causes, reads as the answer. (A yes/no
    question names its cause: "Can coffee cause calf cramps?" is answered by that one.)"""
    return (asks_why(question) and not _asks_yes_or_no(question)
            and not _ASKS_ABOUT_ITS_OWN.search(question)
            and len(set(claim_units)) == 1 and len(evidence) >= _MANY_CAUSES)


def _asks_yes_or_no(question: str) -> bool:
    """Whether a yes or a no answers the question. A follow-up is asked after the previous
    question ("Why ...? Is that dangerous ...?"): its own last sentence is what is asked."""
    asked = split_sentences(question) or [question]
    return bool(_YES_NO_QUESTION.match(asked[-1]))


def answer_form_conflict(claim: str, question: str, units: list[str]) -> bool:
    """A yes or no to a question that is not a yes/no question, or a negation (a "No, ...")
    that no unit states."""
    if _YES_OR_NO.match(claim) and not _asks_yes_or_no(question):
        return True
    negates = _NEGATED.search(_NOT_A_NEGATION.sub(" ", claim))
    return bool(negates and not any(_NEGATED.search(_NOT_A_NEGATION.sub(" ", u)) for u in units))


def relation_conflict(claim: str, units: list[str]) -> bool:
    """Whether the claim states a relation its units do not: "X is/are Y" where the units never
    predicate Y, or "X helps" / "X causes" where the units say nothing of the kind."""
    joined = " ".join(units)
    for predicate in _COPULA.findall(claim):
        stem_ = predicate.lower().rstrip("s")[:6]
        if len(stem_) >= 4 and not re.search(
                rf"\b(?:is|are|was|were|be)\s+(?:\w+\s+){{0,3}}{re.escape(stem_)}", joined, re.IGNORECASE):
            return True
    if _BENEFIT.search(claim) and not _CAUSE.search(claim) and not _BENEFIT_IN_SOURCE.search(joined):
        return True
    if _agent_missing(claim, joined):
        return True
    return bool(_CAUSE.search(claim) and not _BENEFIT.search(claim) and not _CAUSE_IN_SOURCE.search(joined))


# "5 cups of strong tea or coffee a day is too many" from "more than 5 cups ... may cramp": the
# number is the source's, its bound is not. A number the units bound must keep that bound.
_BOUNDED = re.compile(r"\b(more than|less than|fewer than|at least|at most|up to|over|under)\s+"
                      r"(\d+(?:[.,]\d+)?)", re.IGNORECASE)


def quantity_conflict(claim: str, units: list[str]) -> bool:
    """Whether the claim names a number that its units bound ("more than 5") without that bound."""
    claimed = {(bound.lower(), number) for bound, number in _BOUNDED.findall(claim)}
    for bound, number in _BOUNDED.findall(" ".join(units)):
        if re.search(rf"(?<![\d.,]){re.escape(number)}(?![\d])", claim) and (bound.lower(), number) not in claimed:
            return True
    return False


# "Yes, your calves cramping at night is a sign of gestational diabetes mellitus" from "in the last
# trimester, this can be a symptom of gestational diabetes mellitus" (the page's own follow-up,
# read in a screenshot): every word is the source's, its "can be" is not. A claim that something
# is a sign, a symptom or a cause must keep the hedge its units give it.
_FLAT_LINK = re.compile(r"\b(?:is|are)\s+(?:a\s+|an\s+|the\s+)?(?:\w+\s+)?(?:signs?|symptoms?|"
                        r"signals?|causes?|caused|results?|due)\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(?:can|may|might|could|possibl\w*|sometimes|often|some cases|perhaps|"
                    r"likely)\b", re.IGNORECASE)


def modality_conflict(claim: str, units: list[str]) -> bool:
    """Whether the claim states as certain a link ("is a sign of") that its units only hedge."""
    return bool(_FLAT_LINK.search(claim) and not _HEDGE.search(claim)
                and any(_HEDGE.search(unit) for unit in units))


def _agent_missing(claim: str, joined: str) -> bool:
    """"Swimming can help against leg cramps by relaxing the muscles" from "The water [of a warm
    bath] will relax the muscles": what the claim says helps or causes must be named by its
    units, not only by the question."""
    verb = _BENEFIT.search(claim) or _CAUSE.search(claim)
    if verb is None:
        return False
    agent = content_words(_YES_OR_NO.sub("", claim[:verb.start()])) - COMMON_WORDS - _CONNECTIVES
    if not agent:
        return False
    named = {word[:5] for word in content_words(joined)}
    return not any(word[:5] in named for word in agent)


def borrowed_facts(claim: str, question: str, units: list[str]) -> bool:
    """Whether the claim's own facts come from no unit that also names what it is about. "Yes,
    atherosclerosis can cause calf cramps, as it can lead to slow metabolism, lack of glucose and
    incipient Parkinson's disease [1]" took its subject from the atherosclerosis sentence and its
    facts from the old-age one: each a source sentence, together a falsehood that passed every
    word check (dev run, read as a patient would). So the words the claim adds to the question
    (beyond _MAX_NEW_WORDS) must all be in one cited unit, and that unit must name the claim's
    subject when it has one. Words are compared by their first five letters, as in _agent_missing."""
    verb = _BENEFIT.search(claim) or _CAUSE.search(claim)
    agent = {word[:5] for word in content_words(_YES_OR_NO.sub("", claim[:verb.start()]))
             - COMMON_WORDS - _CONNECTIVES} if verb else set()
    asked = {word[:5] for word in content_words(question)}
    own = {word[:5] for word in content_words(claim) - COMMON_WORDS - _CONNECTIVES} - asked - agent
    if not own:
        return False

    def states_it(unit: str) -> bool:
        words = {word[:5] for word in content_words(unit)}
        return len(own - words) <= _MAX_NEW_WORDS and (not agent or bool(agent & words))

    return not any(states_it(unit) for unit in units)


def lead_messages(question: str, evidence: list[Evidence]) -> list[ChatMessage]:
    """System rules, the worked examples, then the units and the question (user text last)."""
    def numbered(lines) -> str:
        return "\n".join(texts.LEAD_LINE.format(n=k, text=t) for k, t in enumerate(lines, start=1))

    messages: list[ChatMessage] = [{"role": "system", "content": texts.LEAD_PROMPT}]
    for sentences, example_question, answer in texts.LEAD_EXAMPLES:
        messages += [
            {"role": "user", "content": texts.LEAD_INPUT.format(sentences=numbered(sentences),
                                                                question=example_question)},
            {"role": "assistant", "content": answer},
        ]
    messages.append({"role": "user", "content": texts.LEAD_INPUT.format(
        sentences=numbered(unit.text for unit in evidence), question=question)})
    return messages


def _copies(lead: str, piece: str) -> bool:
    lead, piece = lead.lower(), piece.lower()
    matcher = difflib.SequenceMatcher(None, lead, piece, autojunk=False)
    stretch = matcher.find_longest_match(0, len(lead), 0, len(piece)).size
    return matcher.ratio() > _COPY_RATIO or stretch > _COPY_STRETCH * len(lead)


def check_lead(draft: str, question: str, evidence: list[Evidence], shown: list[Passage],
               embedder: "Embedder") -> Lead:
    """The model's lead if every check passes, else the first of its shorter readings that
    passes (`_readings`), else an empty one (the quoted units stand alone)."""
    draft = draft.strip()
    first_line = next((line for line in draft.splitlines() if line.strip()), "")
    # Cut off mid-sentence (token budget, a stray "[") or a refusal: nothing worth keeping.
    if not first_line or not _ENDS_SENTENCE.search(first_line) or is_decline(first_line):
        return Lead("", [])
    for reading in _readings(first_line, question):
        lead = _checked(reading, question, evidence, shown, embedder)
        if lead.text:
            return Lead(_spelled_as_the_sources(lead.text, [u.text for u in evidence]), lead.units)
    return Lead("", [])


# The model copies the asker's typos ("Magnesum deficiency can lead to calf cramps"); a word
# that is no English word (wordfreq) and that the units spell almost the same way is written
# their way (difflib's ratio, as the query's spelling corrector does).
_SAME_WORD = 0.85
_ENGLISH_ZIPF = 2.5


def _spelled_as_the_sources(lead: str, units: list[str]) -> str:
    spelled = {w.lower(): w for unit in units for w in re.findall(r"[A-Za-z]{4,}", unit)}

    def respell(match: re.Match) -> str:
        word = match.group(0)
        if word.lower() in spelled or zipf_frequency(word.lower(), "en") >= _ENGLISH_ZIPF:
            return word
        near = difflib.get_close_matches(word.lower(), list(spelled), n=1, cutoff=_SAME_WORD)
        if not near:
            return word
        return near[0].capitalize() if word[0].isupper() else near[0]

    return re.sub(r"[A-Za-z]{4,}", respell, lead)


# What a small model adds to a right answer: a reference to its input ("as mentioned in the
# source sentence"), a "Yes," to a question that is not a yes/no one (the first worked example
# starts with one), and a reason after the answer ("Yes, coffee can cause calf cramps, as it can
# increase muscle tension"). The reason is cut even when the checks would pass it: the quoted
# sentences that follow the lead give the sources' own reason, and the model's was where it went
# wrong ("varicose veins can cause calf cramps, as they can compress the inferior vena cava", which
# the source says of the growing uterus) or hid a copy of a unit behind a tail of its own. What
# remains is checked in full.
_META = re.compile(r",?\s*(?:as\s+)?(?:(?:mentioned|stated|said|described|noted|shown)\s+in|"
                   r"according\s+to)\s+(?:the\s+)?(?:\w+\s+)?(?:source|sentence|text|passage)s?\b.*$",
                   re.IGNORECASE)
_REASON = re.compile(r",\s+(?:as(?!\s+well\b)|because|since|which|due to|leading to|so)\b.*$",
                     re.IGNORECASE)
_MARKERS_AT_END = re.compile(r"\s*((?:\[\d+\]\s*)+)[.!]?\s*$")


def _readings(line: str, question: str) -> list[str]:
    """The line without its meta reference and its reason, then also without a "Yes,"/"No,"
    that answers no yes/no question, each with the line's markers."""
    ending = _MARKERS_AT_END.search(line)
    if ending is None:
        return [line]
    markers = "".join(dict.fromkeys(re.findall(r"\[\d+\]", ending.group(1))))
    body = _META.sub("", line[:ending.start()]).rstrip(" ,.;")
    cut = _REASON.sub("", body)
    if cut.count("(") == cut.count(")"):
        body = cut
    readings: list[str] = []

    def add(text: str) -> None:
        text = text.strip(" ,;")
        if text and len(text.split()) >= 3:
            reading = f"{text[0].upper()}{text[1:]} {markers}."
            if reading not in readings:
                readings.append(reading)

    add(body)
    if _YES_OR_NO.match(body) and not _asks_yes_or_no(question):
        add(_YES_OR_NO.sub("", body, count=1).lstrip(" ,"))
    return readings or [line]


def _checked(line: str, question: str, evidence: list[Evidence], shown: list[Passage],
             embedder: "Embedder") -> Lead:
    checked = verify_answer(line, as_passages(evidence, shown), embedder)
    claims = [s for s in checked.sentences if s.kind == "claim"]
    if checked.declined or not claims or len(claims) > _MAX_SENTENCES or not all(s.supported for s in claims):
        return Lead("", [])
    pieces = [u.text for u in evidence] + [s for u in evidence for s in split_sentences(u.text)]
    if any(_copies(claims[0].text, piece) for piece in pieces):
        return Lead("", [])
    order = [int(p.id.rsplit("~", 1)[1]) for p in checked.used_passages]
    units = [order[n - 1] for n in claims[0].cited]
    cited = [evidence[k - 1].text for k in units]
    if (relation_conflict(claims[0].text, cited) or answer_form_conflict(claims[0].text, question, cited)
            or borrowed_facts(claims[0].text, question, cited) or quantity_conflict(claims[0].text, cited)
            or modality_conflict(claims[0].text, cited) or borrowed_reference(claims[0].text)
            or one_cause_of_many(units, question, evidence)
            # "Varicose veins and calf cramping are common among expectant mothers" answers no
            # question about varicose veins: the units' pregnancy rule (bot/intents.py) holds here.
            or unasked_pregnancy(question, claims[0].text)):
        return Lead("", [])
    known = content_words(question) | set().union(*(content_words(u.text) for u in evidence))
    new = content_words(claims[0].text) - known - _CONNECTIVES - COMMON_WORDS
    if len(new) > _MAX_NEW_WORDS or _restates(claims[0].text, question):
        return Lead("", [])
    return Lead(claims[0].text, units)


def _restates(claim: str, question: str) -> bool:
    """Whether the claim only gives the question back ("The potassium diet is for leg cramps"
    to "what is the potassium diet for leg cramps"); a yes or no to a yes/no question is an
    answer even in the question's words. Words compared by their first five letters, so that
    the asker's typos count as the same words."""
    if _asks_yes_or_no(question) or _YES_OR_NO.match(claim):
        return False
    own = {w[:5] for w in content_words(claim) - COMMON_WORDS - _CONNECTIVES} - {
        w[:5] for w in content_words(question)}
    # A letter or a number is a fact of its own: "Vitamin D helps" answers "Which vitamins help?"
    return not own and not set(_NAMED_BY_LETTER.findall(claim)) - set(_NAMED_BY_LETTER.findall(question))


_NAMED_BY_LETTER = re.compile(r"\b(?:[B-HJ-Z]\d*|\d+)\b")


def stream_lead(generate: "Iterator[str]") -> Iterator[str]:
    """Pieces of the draft up to the end of its first sentence (the lead is one sentence): at a
    line break, or where a second one starts (the answer splitter's own boundaries). A small
    model asked a follow-up ("Why do my calves cramp at night? And what can I do about it?")
    went on copying the passage for the whole token budget, 6 s of a 6.5 s turn, and a draft
    cut off mid-sentence is dropped anyway."""
    text, emitted = "", 0
    for piece in generate:
        head, newline, _ = piece.partition("\n")
        text += head
        cut = first_sentence_end(text)
        end = len(text) if cut is None else cut
        if end > emitted:
            yield text[emitted:end]
            emitted = end
        if newline or cut is not None:
            return
