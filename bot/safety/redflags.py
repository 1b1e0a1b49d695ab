"""Red-flag triage: spot messages that describe symptoms needing urgent care, before retrieval.

The rules live in redflags.json so that a clinician can review them without reading code;
this module loads and validates them once, then applies them with a small negation check
("no chest pain" must not fire). The file's "about" list explains the term syntax.
"""
from __future__ import annotations

import bisect
import json
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError
from bot.safety.input_guard import clean_text, detect_language

if TYPE_CHECKING:
    from index.embedding import Embedder

RULES_PATH = Path(__file__).with_name("redflags.json")
_PLACEHOLDER = "emergency_number"
_WORD = re.compile(r"[\w']+")
# Typed apostrophes vary by keyboard; the rules are written with the plain one.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})


class RedFlagRulesError(ConfigError):
    """The red-flag rules file is missing or malformed."""


Detector = Literal["rules", "similarity"]


@dataclass(frozen=True)
class RedFlag:
    """A red flag: the urgent advice to give first, what to avoid, and why it fired.

    `detector` says which detector fired: "rules" (redflags.json) or "similarity" (the meaning of
    the message was close to a description in emergencies.json; see redflag_similarity.py).
    """

    rule_id: str  # the rule's id, or the emergency's id for the similarity detector
    name: str
    advice: str
    avoid: str
    # rules: the words of the message that made each part of the rule match;
    # similarity: the description the message was closest to
    matched: list[str]
    detector: Detector = "rules"
    score: float | None = None  # similarity to the closest description (similarity detector)


# -- the rules file, validated -------------------------------------------------------------------
class _Strict(BaseModel):
    # Unknown keys are errors, so a misspelt "needs_contxt" cannot silently weaken a rule.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _term_regex(term: str) -> str:
    """Translate the rules' term syntax into a regular expression (see "about" in the file)."""
    out: list[str] = []
    in_class = escaped = False
    for char in term.replace("ё", "е").replace("Ё", "Е"):
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif in_class:  # inside [...] everything is literal regex
            out.append(char)
            in_class = char != "]"
        elif char == "[":
            out.append(char)
            in_class = True
        elif char == "*":
            out.append(r"\w*")
        elif char == " ":
            out.append(r"(?:[\s-]+)")
        else:
            out.append(char)
    return "".join(out)


def _compile_terms(terms: list[str]) -> re.Pattern[str]:
    """A whole-word, case-insensitive regex matching any of `terms`; ValueError names a bad one."""
    return _compile_group(tuple(terms))


@lru_cache(maxsize=None)  # validation and the compiled rule book share each compiled group
def _compile_group(terms: tuple[str, ...]) -> re.Pattern[str]:
    body = "|".join(f"(?:{_term_regex(term)})" for term in terms)
    try:
        any_term = re.compile(body, re.IGNORECASE)
    except re.error:
        any_term = None
    if any_term is None or any_term.fullmatch(""):
        _raise_for_bad_term(terms)
    # (?=\w) lets the engine skip every position that is not a word start before trying the
    # alternatives one by one, which keeps a 6,000-character message of punctuation fast.
    return re.compile(rf"(?<!\w)(?=\w)(?:{body})(?!\w)", re.IGNORECASE)


def _raise_for_bad_term(terms: tuple[str, ...]) -> None:
    for term in terms:
        try:
            regex = re.compile(_term_regex(term), re.IGNORECASE)
        except re.error as error:
            raise ValueError(f"term {term!r} is not a valid pattern ({error})") from None
        if regex.fullmatch(""):
            raise ValueError(f"term {term!r} matches empty text")


class _Localized(_Strict):
    en: str = Field(min_length=1)
    ru: str = Field(min_length=1)

    @field_validator("en", "ru")
    @classmethod
    def _only_known_placeholder(cls, text: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        if fields - {_PLACEHOLDER}:
            raise ValueError(f"only {{{_PLACEHOLDER}}} may be in braces, found {sorted(fields)}")
        return text


class _Cue(_Strict):
    window: int = Field(ge=1, le=10)
    terms: list[str] = Field(min_length=1)

    @field_validator("terms")
    @classmethod
    def _compiles(cls, terms: list[str]) -> list[str]:
        _compile_terms(terms)
        return terms


class _NegationSpec(_Strict):
    before: list[_Cue]
    after: list[_Cue] = []
    pseudo: list[str] = []
    clause_words: list[str] = []
    clause_punctuation: str = ".!?;:,"

    @field_validator("pseudo", "clause_words")
    @classmethod
    def _compiles(cls, terms: list[str]) -> list[str]:
        if terms:
            _compile_terms(terms)
        return terms


class _PatternSpec(_Strict):
    all_of: list[str] = Field(min_length=1)
    # Term groups that stop the pattern when one is affirmed: "my feet are always icy and
    # bluish" is long-standing, not the sudden loss of blood supply the rule is for.
    none_of: list[str] = []
    needs_context: bool = False


class _RuleSpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    condition: str = Field(min_length=1)
    references: list[str] = []
    terms: dict[str, list[str]] = Field(min_length=1)
    context: list[str] = []
    patterns: list[_PatternSpec] = Field(min_length=1)
    advice: _Localized
    avoid: _Localized

    @field_validator("terms")
    @classmethod
    def _groups_compile(cls, terms: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, group in terms.items():
            if not group:
                raise ValueError(f"term group {name!r} is empty")
            try:
                _compile_terms(group)
            except ValueError as error:
                raise ValueError(f"in term group {name!r}, {error}") from None
        return terms

    @field_validator("context")
    @classmethod
    def _context_compiles(cls, context: list[str]) -> list[str]:
        if context:
            _compile_terms(context)
        return context

    @model_validator(mode="after")
    def _patterns_fit_terms(self) -> "_RuleSpec":
        used = {name for pattern in self.patterns for name in (*pattern.all_of, *pattern.none_of)}
        if unknown := used - self.terms.keys():
            raise ValueError(f"patterns name term groups that do not exist: {sorted(unknown)}")
        if unused := self.terms.keys() - used:
            raise ValueError(f"term groups no pattern uses: {sorted(unused)}")
        if any(p.needs_context for p in self.patterns) and not self.context:
            raise ValueError("a pattern needs context but the rule has no context terms")
        return self


class _Review(_Strict):
    status: str
    reviewed_by: str = ""
    reviewed_on: str = ""


class _RuleFile(_Strict):
    version: Literal[1]
    review: _Review
    about: list[str] = []
    negation: _NegationSpec
    rules: list[_RuleSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "_RuleFile":
        require_unique([rule.id for rule in self.rules], "rule ids")
        return self


def require_unique(ids: list[str], what: str) -> None:
    """A ValueError naming the repeated ids (pydantic reports it with its place in the file)."""
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"{what} are not unique: {duplicates}")


# -- matching ---------------------------------------------------------------------------------
class _Clauses:
    """Where the clauses of one message begin and end, so negation never crosses a clause."""

    def __init__(self, text: str, breaks: re.Pattern[str]) -> None:
        spans = [m.span() for m in breaks.finditer(text)]
        self._ends = [end for _, end in spans]
        self._starts = [start for start, _ in spans]
        self._length = len(text)

    def start_before(self, position: int) -> int:
        i = bisect.bisect_right(self._ends, position)
        return self._ends[i - 1] if i else 0

    def end_after(self, position: int) -> int:
        i = bisect.bisect_left(self._starts, position)
        return self._starts[i] if i < len(self._starts) else self._length


_WORD_BOUND_WINDOW = 2  # a cue with this short a window negates just the next words


class _Negation:
    """NegEx-style check: a cue within a few words before (or after) a term, in its clause."""

    def __init__(self, spec: _NegationSpec) -> None:
        self._before = [(cue.window, _compile_terms(cue.terms)) for cue in spec.before]
        self._after = [(cue.window, _compile_terms(cue.terms)) for cue in spec.after]
        self._pseudo = _compile_terms(spec.pseudo) if spec.pseudo else None
        words = "|".join(f"(?:{_term_regex(w)})" for w in spec.clause_words) or "(?!)"
        punctuation = re.escape(spec.clause_punctuation) if spec.clause_punctuation else ""
        self.breaks = re.compile(
            (f"[{punctuation}]|" if punctuation else "") + rf"(?<!\w)(?:{words})(?!\w)",
            re.IGNORECASE,
        )

    def negates(self, text: str, clauses: _Clauses, start: int, end: int) -> bool:
        before = self._without_pseudo(text[clauses.start_before(start):start])
        starts = [m.start() for m in _WORD.finditer(before)]
        for window, cue in self._before:
            if cue.search(before[starts[-window]:] if len(starts) >= window else before):
                return True
        after = self._without_pseudo(text[end:clauses.end_after(end)])
        ends = [m.end() for m in _WORD.finditer(after)]
        for window, cue in self._after:
            if cue.search(after[:ends[window - 1]] if len(ends) >= window else after):
                return True
        return False

    def _without_pseudo(self, text: str) -> str:
        return self._pseudo.sub(" ", text) if self._pseudo else text

    def affirmed(self, text: str) -> str:
        """`text` without its negated parts, for detectors that cannot read negation themselves.

        A cue before ("no chest pain") silences the rest of its clause; a cue after ("одышки
        нет") silences the clause up to it. Coarser than `negates` on purpose: an embedding sees
        a whole clause, so a negated symptom must leave the text, not just be skipped.
        """
        kept: list[str] = []
        position = 0
        for clause_break in [*self.breaks.finditer(text), None]:
            end = clause_break.start() if clause_break else len(text)
            kept.append(self._affirmed_clause(text[position:end]))
            if clause_break:
                kept.append(clause_break.group(0))
                position = clause_break.end()
        return "".join(kept)

    def _affirmed_clause(self, clause: str) -> str:
        # Pseudo-negations are blanked to the same length, so positions still fit `clause`.
        masked = (self._pseudo.sub(lambda m: " " * len(m.group(0)), clause) if self._pseudo
                  else clause)
        before = [(window, m) for window, cue in self._before for m in cue.finditer(masked)
                  if _WORD.search(masked, m.end())]  # a cue with nothing after it negates nothing
        # Russian "не" negates the word it stands before ("пот не идет и путаются мысли": the
        # sweating stopped, the confusion is there); only its short window leaves the text.
        for window, m in sorted(before, key=lambda wm: -wm[1].start()):
            if window <= _WORD_BOUND_WINDOW and m.start() < len(clause):
                words = list(_WORD.finditer(masked, m.end()))[:window]
                stop = words[-1].end() if words else m.end()
                clause = clause[:m.start()] + " " * (stop - m.start()) + clause[stop:]
                masked = masked[:m.start()] + " " * (stop - m.start()) + masked[stop:]
        wide = [m for window, m in before if window > _WORD_BOUND_WINDOW]
        if wide:
            cut = min(m.start() for m in wide)
            clause, masked = clause[:cut], masked[:cut]
        after = [m.end() for _, cue in self._after for m in cue.finditer(masked)]
        return clause[max(after):] if after else clause


@dataclass(frozen=True)
class _Rule:
    spec: _RuleSpec
    groups: dict[str, re.Pattern[str]]
    context: re.Pattern[str] | None

    @property
    def id(self) -> str:
        return self.spec.id

    def match(self, text: str, negation: _Negation, clauses: _Clauses) -> list[str] | None:
        """The matched words when any pattern of the rule fires, else None."""
        found: dict[str, str | None] = {}

        def affirmed(name: str) -> str | None:
            if name not in found:
                found[name] = _first_affirmed(self.groups[name], text, negation, clauses)
            return found[name]

        context = _first_affirmed(self.context, text, negation, clauses) if self.context else None
        for pattern in self.spec.patterns:
            if pattern.needs_context and context is None:
                continue
            if any(affirmed(name) for name in pattern.none_of):
                continue
            if all(affirmed(name) for name in pattern.all_of):  # stops at the first miss
                hits = [found[name] for name in pattern.all_of]
                return hits + ([context] if context else [])
        return None


def _first_affirmed(
    regex: re.Pattern[str], text: str, negation: _Negation, clauses: _Clauses
) -> str | None:
    for match in regex.finditer(text):
        if not negation.negates(text, clauses, match.start(), match.end()):
            return match.group(0)
    return None


class RuleBook:
    """The validated, compiled rules of one rules file."""

    def __init__(self, spec: _RuleFile) -> None:
        self.spec = spec
        self.negation = _Negation(spec.negation)
        self.rules = tuple(
            _Rule(
                spec=rule,
                groups={name: _compile_terms(terms) for name, terms in rule.terms.items()},
                context=_compile_terms(rule.context) if rule.context else None,
            )
            for rule in spec.rules
        )

    def triage(
        self, text: str, emergency_number: str = "112", language: str | None = None
    ) -> RedFlag | None:
        normalized = _normalize(text)
        if not normalized:
            return None
        clauses = _Clauses(normalized, self.negation.breaks)
        for rule in self.rules:  # file order is priority order
            matched = rule.match(normalized, self.negation, clauses)
            if matched is not None:
                language = language or detect_language(normalized)
                return _red_flag(rule.spec, matched, language, emergency_number)
        return None


def _red_flag(rule: _RuleSpec, matched: list[str], language: str, emergency_number: str) -> RedFlag:
    # Advice exists in English and Russian; any other language gets the English text.
    language = language if language in ("en", "ru") else "en"
    advice, avoid = getattr(rule.advice, language), getattr(rule.avoid, language)
    return RedFlag(
        rule_id=rule.id,
        name=rule.name,
        advice=advice.format(emergency_number=emergency_number),
        avoid=avoid.format(emergency_number=emergency_number),
        matched=matched,
    )


def _normalize(text: str) -> str:
    return clean_text(text.translate(_APOSTROPHES)).lower().replace("ё", "е")


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_PATH) -> RuleBook:
    """Read, validate and compile a rules file once; RedFlagRulesError says what is wrong."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RedFlagRulesError(
            f"The red-flag rules file {path} is missing; restore it from git."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RedFlagRulesError(
            f"The red-flag rules file {path} is not valid JSON: {error}."
        ) from None
    try:
        return RuleBook(_RuleFile.model_validate(raw))
    except ValidationError as error:
        raise RedFlagRulesError(
            f"The red-flag rules file {path} is invalid at {_where(error, raw)}."
        ) from None


def _where(error: ValidationError, raw: object) -> str:
    """The first problem as 'rules[leg_clot].terms: why', naming rules by id rather than index."""
    first = error.errors()[0]
    parts: list[str] = []
    location = list(first["loc"])
    for i, key in enumerate(location):
        if isinstance(key, int):
            name = key
            if location[:i] == ["rules"] and isinstance(raw, dict):
                rules = raw.get("rules")
                if isinstance(rules, list) and key < len(rules) and isinstance(rules[key], dict):
                    name = rules[key].get("id", key)
            parts[-1] = f"{parts[-1]}[{name}]" if parts else f"[{name}]"
        else:
            parts.append(str(key))
    message = first["msg"].removeprefix("Value error, ")
    return f"{'.'.join(parts) or 'top level'}: {message}"


def affirmed_text(text: str, path: Path = RULES_PATH) -> str:
    """The cleaned, lower-cased message without its negated parts, by the rules' negation cues."""
    return load_rules(path).negation.affirmed(_normalize(text))


def triage(
    text: str, emergency_number: str = "112", language: str | None = None, *,
    embedder: "Embedder | None" = None, search_text: str | None = None,
) -> RedFlag | None:
    """The red flag the message raises, with advice in its language; None if it raises none.

    The rules (redflags.json) are tried first. When none fires and an `embedder` is given, the
    similarity detector (redflag_similarity.py) compares the message's meaning with descriptions
    of emergencies; `search_text` is the English text the pipeline searches for the message
    (bot/query.py), used for English messages. `language` ("en" or "ru") overrides the language
    detected from the message. `RedFlag.detector` says which detector fired.
    """
    flag = load_rules().triage(text, emergency_number, language)
    if flag is not None or embedder is None:
        return flag
    # Imported here: the similarity module builds on this one (RedFlag, the negation cues).
    from bot.safety.redflag_similarity import similarity_triage

    return similarity_triage(text, embedder, emergency_number=emergency_number,
                             language=language, search_text=search_text)
