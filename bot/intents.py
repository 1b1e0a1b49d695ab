"""What kind of answer a question asks for, read from its words.

A "why" question is answered by a cause ("due to", "lack of"), a "what helps" question by advice
("it is recommended", "massage"), a "what happens in the muscle" question by the mechanism, and
"what do I do right now" by first aid. bot/compose.py weighs each source unit by whether it is
of the asked kind. English patterns: a Russian question arrives here as its English gloss.
"""
from __future__ import annotations

import re

from bot.citations import split_sentences

# What kind of answer a question asks for, and the words a source sentence of that kind uses: a
# "why" question is answered by a cause ("due to", "lack of"), a "what helps" question by advice
# ("it is recommended", "massage"). Without it, a sentence that merely names the question's topic
# ("cramps often happen when swimming") outranks the one that explains it.
# "stroke" as the verb only ("Gently stroke the cramped limb"): "the onset of a stroke" is no
# advice and no first aid.
_STROKE_VERB = r"stroking|stroke (?:the|them|it|your)"
# A duration: "often last for three minutes or more".
_DURATION = re.compile(r"\b(minutes?|seconds?|hours?|last(?:s|ed)? for)\b", re.IGNORECASE)

_INTENTS = (
    (re.compile(r"\b(why|cause[sd]?|causing|reasons?|what makes|trigger|lead to|due to|"
                r"what'?s going on|linked|related)\b", re.IGNORECASE),
     re.compile(r"\b(due to|caused?|because|reasons?|leads? to|results?|lack|loss|deficien\w*|"
                r"shortage|disorders?|disturb\w*|violation|dysfunction\w*|can (?:also )?(?:cause|lead)|"
                r"symptom|signal|trigger\w*|provoke)\b", re.IGNORECASE)),
    # "he has to stop and rest" when walking is a symptom, not a request to stop the cramps.
    (re.compile(r"\b(what (?:can|should|do) i do|what to do|help|helps|relieve|"
                r"(?<!has to )(?<!have to )(?<!had to )stop(?! and\b| to rest\b)|treat\w*|"
                r"get rid|ease|prevent\w*|avoid|remedy|remedies|cure)\b", re.IGNORECASE),
     re.compile(r"\b(recommend\w*|should|need to|helps?|useful|try|effect|relieve|prevent|avoid|"
                rf"include|massage|{_STROKE_VERB}|bath|compress|exercise\w*|stretch\w*|"
                r"knead\w*|drink|"
                r"eat|diet|eliminat\w*|adjust|treat\w*|take|taking)\b", re.IGNORECASE)),
    # "What happens inside the muscle during a cramp?" is answered by the mechanism (impulses,
    # nerves, squeezed vessels), not by "Muscle cramps are an unpleasant phenomenon".
    (re.compile(r"\bwhat (?:\w+ )?happens (?:(?:in|inside|to|within) )?(?:(?:the|my|a) )?muscles?\b|"
                r"\bmechanism\b|\bhow (?:does|do) (?:a |the )?(?:cramps?|spasms?) "
                r"(?:happen|work|develop|occur)\b|"
                r"\binside the muscle", re.IGNORECASE),
     re.compile(r"\b(impulses?|neurons?|motoneurons?|nerv\w*|vessels?|blood|oxygen|anoxia|"
                r"contract\w*|fibers?|tens(?:es|ion))\b", re.IGNORECASE)),
    # "How long does one usually last?" is answered by a duration ("often last for three
    # minutes or more"), which no word of the question names.
    (_ASKS_DURATION := re.compile(r"\bhow long\b|\bduration\b|\bhow many (?:minutes|seconds)\b",
                                  re.IGNORECASE),
     _DURATION),
)


# "What do I do when it cramps right now?" asks for relief, not prevention: advice "to prevent
# cramps from recurring" answers another question (the valerian course is not first aid).
_RELIEF_NOW = re.compile(r"\b(right now|at the moment|when it happens|while it happens|during a "
                         r"cramp|immediately|right away|quickly|in the moment|mid-cramp)\b"
                         r"|\bright when\b|прямо сейчас|сразу|немедленно|быстро", re.IGNORECASE)
# A leg or part of it, as a question names it.
_LIMB_NOUNS = r"calf|calves|leg|legs|foot|feet|muscles?"
_LIMB = rf"(?:my|your|the|a|one) (?:\w+ )?(?:{_LIMB_NOUNS}|shin|toes?)"
# "What to do if my calf cramped at night?", "my leg is cramping, what do I do?": one cramp, and
# the question asks what to do about it, not its causes or a prevention course (the first had been
# answered by the shoes cause alone). "...if my calves cramp every night?" asks about a pattern.
_ONE_CRAMP = re.compile(rf"\b(?:if|when) {_LIMB} (?:\w+ )?(?:cramp(?:s|ed)?|seize[sd]?|spasms?|"
                        r"knot(?:s|ted))\b"
                        rf"|\b{_LIMB} (?:(?:just|has|is|was|got) )?(?:cramped|cramping|seized|knotted)\b"
                        # "a cramped calf"; also the gloss of «свело икру» (bot/query_ru.tsv).
                        rf"|\bcramped (?:{_LIMB_NOUNS}|limb)\b",
                        re.IGNORECASE)
_RECURRING = re.compile(r"\b(every|always|often|regularly|keeps?|frequent\w*|constantly|each|"
                        r"again|recurr\w*|all the time)\b", re.IGNORECASE)
# What a hand can do during the cramp; "relieved by a balanced diet" or "relax" is no first aid.
_RELIEF = re.compile(rf"\b(massage\w*|{_STROKE_VERB}|tapping|bath\w*|"
                     r"warm water|compress|knead\w*|stretch\w*)\b", re.IGNORECASE)


# What advises: a recommendation or an action, not "drink" or "eat" alone, which causes use too.
_ADVICE = re.compile(r"\b(recommend\w*|should|need to|must|important to|try|helps?|useful|"
                     rf"relieve\w*|prevent\w*|avoid|massage\w*|{_STROKE_VERB}|"
                     r"bath\w*|compress|"
                     r"exercises?|stretch\w*|knead\w*|adjust|eliminat\w*|include|treat\w*|"
                     r"remed\w*|course of|corrected|(?:is|are) (?:also )?good)\b", re.IGNORECASE)
# Advice for a condition: "In some cases, pain in the calf is a signal of ... a blood pressure
# disorder. Such symptoms are relieved by a balanced diet" advises, but only those who have it.
_CONDITION = re.compile(r"\b(blood pressure|varicose|venous|veins?|phlebolog\w*|atherosclerosis|"
                        r"pregnan\w*|expectant|gestation\w*|diabet\w*|anemia|parkinson\w*|"
                        r"osteochondrosis|spin(?:e|al)|alcohol\w*|serious disease)\b",
                        re.IGNORECASE)
# Score penalties of bot/compose.py for a unit off the asked kind (see off_intent).
FIRST_AID_OFF = 1.0
ADVICE_OFF = 0.3
DURATION_GAIN = 0.3

POPULATION_OFF = 0.3
CONDITION_OFF = 0.6
_PREGNANCY = re.compile(r"\b(pregnan\w*|expectant|gestation\w*|future mothers?|trimester|"
                        r"uterus|preeclampsia|eclampsia)\b", re.IGNORECASE)

_ASKS_WHY = _INTENTS[0][0]
_ASKS_HELP, _ADVICE_CUE = _INTENTS[1]


# Words of when, which name no situation: "at night" says when the cramps come (bot/compose.py,
# bot/query.py).
TIME_WORDS = ("night nights nightly nocturnal evening evenings morning mornings day daytime sleep "
              "sleeping asleep bed bedtime")


def strip_asking(question: str) -> str:
    """The question without the words that say what kind of answer it asks for."""
    for asked, _ in _INTENTS:
        question = asked.sub(" ", question)
    return question


def asks_why(question: str) -> bool:
    """A question that asks for causes ("why", "what causes", "what's going on")."""
    return bool(_ASKS_WHY.search(question))


def asks_first_aid(question: str) -> bool:
    """"What can I do right when my calf knots up?"; not "...goes rock hard right when I wake
    up, what's going on?", where "right when" only says when."""
    now = _RELIEF_NOW.search(question) or (
        _ONE_CRAMP.search(question) and not _RECURRING.search(question))
    return bool(now and _ASKS_HELP.search(question) and not _ASKS_WHY.search(question))


def asks_help(question: str) -> bool:
    """A question that asks what to do ("what can I do", "how do I avoid them"), with or without
    asking why."""
    return bool(_ASKS_HELP.search(question))


def advises(unit: str) -> bool:
    """A unit that recommends something (bot/compose.py's followers)."""
    return bool(_ADVICE.search(unit))


def advises_for(question: str, unit: str) -> bool:
    """A unit that recommends something, and not for a condition the question does not name."""
    return advises(unit) and not _unasked_condition(question, unit)


def intent_cues(question: str) -> list[re.Pattern[str]]:
    """Patterns of the source sentences that give the kind of answer `question` asks for."""
    if asks_first_aid(question):
        return [_RELIEF]
    return [cue for asks, cue in _INTENTS if asks.search(question)]


def asks_help_only(question: str) -> bool:
    """What to do, and not why: "what helps at night?", not "why, and what helps?"."""
    return bool(_ASKS_HELP.search(question)) and not _ASKS_WHY.search(question)


def reorder_cues(question: str) -> list[re.Pattern[str]]:
    """The patterns of the sentences that answer a question of a kind its words do not find:
    advice for one that asks what to do (and not why), a duration for "how long"; [] otherwise.
    Retrieval is reordered by these alone (bot/rerank.py): a "why" question's words already
    find the causes, while "what helps at night?" shares its words with the causes."""
    if asks_first_aid(question):
        return [_RELIEF]
    if _ASKS_DURATION.search(question):
        return [_DURATION]
    if asks_help_only(question):
        return [_ADVICE_CUE]
    return []


def off_intent(question: str, unit: str, subject: str = "") -> float:
    """How far a unit is from the kind of answer asked for, as a score penalty. For a question
    that asks what to do right now, a unit that names no first aid (prevention "to prevent cramps
    from recurring", treatment "If the cause is a serious disease, it needs to be treated" or an
    outcome "After recovery, the cramps will disappear") is out. For one that asks what helps, a
    unit that advises nothing ("Caffeine abuse. When you drink more than 5 cups ... may cramp",
    which matched "drink") goes below those that do. `subject`: the conversation's, for a
    follow-up that names none ("How can I prevent them?" after a pregnancy question asks about
    pregnancy)."""
    named = f"{question} {subject}"
    if asks_first_aid(question):
        return 0.0 if _RELIEF.search(unit) else FIRST_AID_OFF
    if _ASKS_DURATION.search(question):
        # "How long...?": a duration is the answer wherever retrieval ranked its passage (a
        # negative penalty lifts it); the monthly check-up answers nothing of it.
        return -DURATION_GAIN if _DURATION.search(unit) else FIRST_AID_OFF
    if asks_help_only(question):
        if _unasked_condition(named, unit):
            return CONDITION_OFF  # advice for a condition the asker did not say they have
        return 0.0 if _ADVICE.search(unit) else ADVICE_OFF
    return POPULATION_OFF if unasked_pregnancy(named, unit) else 0.0


# Words of one condition: a question about "veins" asks about varicose disease and phlebologists.
_SAME_CONDITION = {"vein": "vein", "venou": "vein", "varic": "vein", "phleb": "vein",
                   "expec": "pregn", "gesta": "pregn"}


def _conditions(text: str) -> set[str]:
    return {_SAME_CONDITION.get(m.lower()[:5].rstrip("s"), m.lower()[:5])
            for m in _CONDITION.findall(text)}


def _unasked_condition(question: str, unit: str) -> bool:
    """Whether the unit's advice is for a condition the question does not name."""
    return bool(_conditions(unit) - _conditions(question))


def unasked_pregnancy(question: str, unit: str) -> bool:
    """A unit about pregnancy for a question that does not speak of it. Its first sentence says
    what it is about: "Cramping calf muscles can result from severe anemia. Most often it occurs
    in pregnant women..." answers a question about anemia."""
    first = next(iter(split_sentences(unit)), "")
    return bool(_PREGNANCY.search(first)) and not _PREGNANCY.search(question)
