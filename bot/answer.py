"""What the assistant returns: the answer text, its verified citations, flags and timings."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from corpus.passage import Passage
from bot.texts import DISCLAIMER


@dataclass(frozen=True)
class RetrievedPassage:
    """A passage as retrieval returned it: its rank, fused score and dense cosine score."""

    passage: Passage
    score: float  # the score retrieval ranked by (fused when hybrid)
    dense_score: float  # cosine similarity of query and passage embeddings
    # What `score` gained for giving the kind of answer asked for (bot/rerank.py); the context
    # margin also admits a passage close to the best one without it (pipeline._context), and
    # the choice of sentences weighs retrieval without it.
    intent_boost: float = 0.0

    @property
    def retrieval_score(self) -> float:
        return self.score - self.intent_boost


@dataclass(frozen=True)
class Citation:
    """Source number [n] as shown to the user, and the passage behind it."""

    number: int
    passage: Passage
    score: float
    supporting_sentence: str = ""  # the passage sentence that best supports the answer
    # Its machine translation in the reply's language (bot/translation.py), "" when the reply
    # is English or the sentence has no rendering that passes its checks.
    supporting_translation: str = ""


@dataclass
class Timings:
    retrieval_ms: float = 0.0
    first_token_s: float | None = None
    total_s: float = 0.0
    generated_tokens: int = 0

    @property
    def tokens_per_s(self) -> float | None:
        if self.first_token_s is None or self.generated_tokens < 2:
            return None
        decode = self.total_s - self.first_token_s
        return (self.generated_tokens - 1) / decode if decode > 0 else None


@dataclass
class Rendered:
    """How a reply in another language was made from the checked English answer (bot/localize.py)."""

    lang: str
    sentences: int = 0  # sentences of the English answer
    kept_english: int = 0  # shown in English: no rendering, or one that failed its checks
    lead: str = "none"  # the model's lead: "none", "rendered" at request time, or "english"
    english_note: bool = False  # too much stayed English: the English answer after a note


@dataclass
class Answer:
    """One reply. `text` is the body without the disclaimer; `full_text` always ends with it."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    retrieved: list[RetrievedPassage] = field(default_factory=list)
    declined: bool = False  # sources do not cover the question (gate or model said so)
    red_flag: bool = False  # urgent-care advice given first
    error: bool = False  # input refused or an internal error, explained in `text`
    extractive: bool = False  # built from source sentences only, nothing generated
    composed: bool = False  # source sentences chosen by the code (+ a checked model lead)
    verified_fraction: float | None = None  # share of answer sentences supported by citations
    standalone_question: str | None = None  # rewritten follow-up / translated question, if any
    timings: Timings = field(default_factory=Timings)
    disclaimer: str = DISCLAIMER
    # The question's language ("en", "ru": a catalog of bot/locales), told once by the input
    # guard: the disclaimer, declines, labels and a composed answer's body are in it.
    lang: str = "en"
    # A composed answer in another language: `text` is rendered from this English text, which is
    # what was composed and checked against the sources ("" when `text` is that text).
    checked_text: str = ""
    rendered: Rendered | None = None

    @property
    def full_text(self) -> str:
        return f"{self.text.rstrip()}\n\n{self.disclaimer}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["full_text"] = self.full_text
        data["timings"]["tokens_per_s"] = self.timings.tokens_per_s
        return data
