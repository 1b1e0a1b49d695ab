"""The second red-flag detector: a message whose meaning is close to an emergency's description.

The rules (redflags.json) are exact on the phrasings they list and blind beside them. This
detector embeds the message with the project's sentence embedder and compares it with short
patient-style descriptions of each emergency (emergencies.json, reviewable data). It fires when
the closest description is similar enough (`threshold`) and clearly closer than every ordinary
cramp question in the same file (`margin`), so that questions *about* cramps do not fire.

The embedder is English-only: negated parts are removed first (the rules' negation cues), then
a Russian message is glossed word by word (bot/query_ru.tsv plus redflag_ru.tsv, whose
red-flag words the retrieval lexicon lacks).
"""
from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from bot.query_translate import RussianLexicon, load_russian_lexicon
from bot.safety.input_guard import detect_language
from bot.safety.redflags import (RULES_PATH, RedFlag, RedFlagRulesError, _Localized, _Review,
                                 _Strict, affirmed_text, load_rules, require_unique)

if TYPE_CHECKING:
    from index.embedding import Embedder

log = logging.getLogger(__name__)

EMERGENCIES_PATH = Path(__file__).with_name("emergencies.json")
RED_FLAG_LEXICON_PATH = Path(__file__).with_name("redflag_ru.tsv")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
# One word (what a greeting or a question the gloss barely knows comes down to) names a topic,
# not symptoms: its embedding is not compared.
_MIN_WORDS = 2


class EmergenciesFileError(RedFlagRulesError):
    """The emergency descriptions file is missing or malformed."""


# -- the descriptions file, validated -------------------------------------------------------
class _EmergencySpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    condition: str = Field(min_length=1)
    references: list[str] = []
    descriptions: list[str] = Field(min_length=3)
    # Only for emergencies without a rule: a rule's advice is reused, never written twice.
    advice: _Localized | None = None
    avoid: _Localized | None = None


class _EmergencyFile(_Strict):
    version: Literal[1]
    review: _Review
    about: list[str] = []
    model: str = Field(min_length=1)  # the embedding model threshold and margin were chosen for
    threshold: float = Field(gt=0, lt=1)
    margin: float = Field(ge=-1, le=1)
    emergencies: list[_EmergencySpec] = Field(min_length=1)
    ordinary: list[str] = Field(min_length=10)

    @model_validator(mode="after")
    def _unique_ids(self) -> "_EmergencyFile":
        require_unique([e.id for e in self.emergencies], "emergency ids")
        return self


@dataclass(frozen=True)
class Emergency:
    """One emergency: its descriptions and the advice to give (its own or its rule's)."""

    id: str
    name: str
    descriptions: tuple[str, ...]
    advice: _Localized
    avoid: _Localized
    has_rule: bool


@dataclass(frozen=True)
class Emergencies:
    """The validated descriptions file, with every emergency's advice resolved."""

    model: str
    threshold: float
    margin: float
    emergencies: tuple[Emergency, ...]
    ordinary: tuple[str, ...]

    def by_id(self, emergency_id: str) -> Emergency:
        return next(e for e in self.emergencies if e.id == emergency_id)


@functools.lru_cache(maxsize=4)
def load_emergencies(path: Path = EMERGENCIES_PATH, rules_path: Path = RULES_PATH) -> Emergencies:
    """Read and validate the descriptions file once; EmergenciesFileError says what is wrong."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmergenciesFileError(
            f"The emergencies file {path} is missing; restore it from git.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EmergenciesFileError(
            f"The emergencies file {path} is not valid JSON: {error}.") from None
    try:
        spec = _EmergencyFile.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise EmergenciesFileError(
            f"The emergencies file {path} is invalid at {where}: "
            f"{first['msg'].removeprefix('Value error, ')}.") from None
    rules = {rule.id: rule for rule in load_rules(rules_path).spec.rules}
    emergencies = []
    for item in spec.emergencies:
        rule = rules.get(item.id)
        if rule is not None and (item.advice or item.avoid):
            raise EmergenciesFileError(
                f"The emergencies file {path} is invalid at emergencies[{item.id}]: it has a rule "
                "in redflags.json, whose advice is used; remove its advice and avoid here.")
        if rule is None and not (item.advice and item.avoid):
            raise EmergenciesFileError(
                f"The emergencies file {path} is invalid at emergencies[{item.id}]: no rule has "
                "this id, so it needs its own advice and avoid in English and Russian.")
        emergencies.append(Emergency(
            id=item.id, name=item.name, descriptions=tuple(item.descriptions),
            advice=rule.advice if rule else item.advice, avoid=rule.avoid if rule else item.avoid,
            has_rule=rule is not None))
    return Emergencies(spec.model, spec.threshold, spec.margin, tuple(emergencies),
                       tuple(spec.ordinary))


# -- what is compared ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def red_flag_lexicon() -> RussianLexicon:
    """The retrieval lexicon with the red-flag words over it (theirs win on a clash)."""
    base, extra = load_russian_lexicon(), load_russian_lexicon(RED_FLAG_LEXICON_PATH)
    return RussianLexicon(words={**base.words, **extra.words}, stems={**base.stems, **extra.stems})


def comparison_text(text: str, search_text: str | None = None) -> str:
    """The English text the detector embeds for a message, without its negated parts.

    A Russian message is glossed from its own words: the pipeline's search text for it is a
    gloss that has already dropped "не"/"нет" (so negation would be lost) and most symptom
    words ("спутанность", "сухая"), so it is not used. An English message uses `search_text`
    when given (for a follow-up it carries the earlier question).
    """
    if _CYRILLIC.search(text):
        return red_flag_lexicon().gloss(affirmed_text(text))
    return affirmed_text(search_text or text).strip(" ,.;:")


# -- the detector -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    """How close a compared text is to the nearest emergency and to the nearest ordinary one."""

    emergency_id: str
    similarity: float  # cosine similarity to the closest description
    description: str
    ordinary: float  # cosine similarity to the closest ordinary question

    def fires(self, threshold: float, margin: float) -> bool:
        return self.similarity >= threshold and self.similarity - self.ordinary >= margin


class SimilarityDetector:
    """Descriptions and ordinary questions embedded once; `score` and `detect` per message."""

    def __init__(self, emergencies: Emergencies, embedder: "Embedder") -> None:
        self.emergencies = emergencies
        self.embedder = embedder
        self._labels = [(e.id, d) for e in emergencies.emergencies for d in e.descriptions]
        self._descriptions = embedder.embed([d for _, d in self._labels])
        self._ordinary = embedder.embed(list(emergencies.ordinary))

    def score(self, compared: str) -> Score | None:
        """The closest emergency to an already prepared text (see comparison_text)."""
        if len(compared.split()) < _MIN_WORDS:
            return None
        vector = self.embedder.embed([compared])[0]
        similarities = self._descriptions @ vector  # rows are L2-normalized: dot = cosine
        best = int(np.argmax(similarities))
        emergency_id, description = self._labels[best]
        return Score(emergency_id, float(similarities[best]), description,
                     float(np.max(self._ordinary @ vector)))

    def detect(self, text: str, *, emergency_number: str = "112", language: str | None = None,
               search_text: str | None = None, threshold: float | None = None,
               margin: float | None = None) -> RedFlag | None:
        """The red flag the message's meaning raises, with advice in its language; else None."""
        score = self.score(comparison_text(text, search_text))
        threshold = self.emergencies.threshold if threshold is None else threshold
        margin = self.emergencies.margin if margin is None else margin
        if score is None or not score.fires(threshold, margin):
            return None
        emergency = self.emergencies.by_id(score.emergency_id)
        language = language or detect_language(text)
        language = language if language in ("en", "ru") else "en"  # advice exists in en and ru
        return RedFlag(
            rule_id=emergency.id, name=emergency.name,
            advice=getattr(emergency.advice, language).format(emergency_number=emergency_number),
            avoid=getattr(emergency.avoid, language).format(emergency_number=emergency_number),
            matched=[score.description], detector="similarity", score=round(score.similarity, 3),
        )


# The descriptions are embedded once per embedder (about a second), not once per message.
@functools.lru_cache(maxsize=4)
def detector_for(embedder: "Embedder", path: Path = EMERGENCIES_PATH) -> SimilarityDetector:
    return SimilarityDetector(load_emergencies(path), embedder)


def similarity_triage(
    text: str, embedder: "Embedder", *, emergency_number: str = "112",
    language: str | None = None, search_text: str | None = None,
) -> RedFlag | None:
    """The similarity detector alone (redflags.triage calls it when no rule fires).

    Off, with a warning, for an embedder other than the one the threshold was calibrated for:
    another model's similarities live on another scale, so the threshold would mean nothing.
    """
    model = load_emergencies().model
    name = getattr(embedder, "name", None)
    if name != model:
        _warn_model_mismatch(name, model)
        return None
    return detector_for(embedder).detect(text, emergency_number=emergency_number,
                                         language=language, search_text=search_text)


@functools.lru_cache(maxsize=8)  # once per model name, not once per message
def _warn_model_mismatch(name: str | None, model: str) -> None:
    log.warning("red-flag similarity detector is off: it was calibrated for the embedding model "
                "%r, not %r (re-run `python -m bench.redflag_detector --calibrate`)", model, name)
