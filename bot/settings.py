"""Typed settings for the whole assistant, with named presets and environment overrides.

Precedence, highest first: environment (CRAMPBOT_*, nested with "__", e.g.
CRAMPBOT_GENERATION__MODEL=/models/my-model), then a config file (CRAMPBOT_CONFIG or --config,
JSON), then the named preset (bot/presets/<name>.json), then the defaults below.
Unknown keys anywhere are errors, so a typo in a config fails loudly.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot import texts
from corpus.settings import CorpusSettings
from index.settings import EmbeddingSettings, IndexSettings

PROJECT_DIR = Path(__file__).resolve().parent.parent
PRESETS_DIR = Path(__file__).resolve().parent / "presets"


class RetrievalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(4, ge=1, le=20, description="Passages retrieved for a question.")
    context_margin: float | None = Field(
        None, ge=0,
        description="Give the model only the passages scoring within this margin of the best "
        "one (the best is always given); None gives all top_k. A passage far below the best "
        "is rarely about the question, yet the model and the extractive answer cite it.",
    )
    mode: Literal["dense", "hybrid"] = Field(
        "hybrid", description="Dense only, or dense fused with BM25 (reciprocal rank fusion)."
    )
    fusion: Literal["score", "rrf"] = Field(
        "score",
        description="How hybrid mode combines dense and BM25: dense cosine + bm25_weight * "
        "BM25 / best BM25 ('score'), or weighted reciprocal rank fusion ('rrf').",
    )
    bm25_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of the scaled BM25 score in score fusion."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(
        0.5, ge=0, le=1, description="Weight of the dense ranking in RRF (BM25 gets the rest)."
    )
    gate: bool = Field(True, description="Decline without calling the model when relevance is low.")
    gate_threshold: float = Field(
        0.35, description="Minimum best dense cosine score to answer (see `crampbot calibrate`)."
    )
    query_normalization: bool = Field(
        True, description="Map lay words and common misspellings to the corpus's terms."
    )
    rare_term_zipf_en: float | None = Field(
        3.0, ge=0, le=8,
        description="Decline a question naming an English word the sources never use that is "
        "rarer than this Zipf frequency (wordfreq; 3.0 = once per million words: drug names, "
        "brands, diagnoses), naming it (bot/rare_terms.py). None: off.",
    )
    rare_term_zipf_ru: float | None = Field(
        2.0, ge=0, le=8,
        description="The same for a Russian word the Russian lexicon does not know (stricter: a "
        "Russian misspelling cannot be checked against the English sources). None: off.",
    )
    intent_weight: float = Field(
        0.25, ge=0, le=1,
        description="Reorder a wider pool of retrieved passages by the kind of answer the "
        "question asks for (advice, causes, mechanism, first aid): a passage made only of "
        "sentences of that kind gains this much (bot/rerank.py). 0: retrieval order.",
    )
    rewrite_with_model: bool = Field(
        True,
        description="Let the local model condense a follow-up into a standalone question "
        "(else the previous question is searched along with it).",
    )
    translate_with_model: bool = Field(
        False,
        description="Let the local model translate Russian questions (searched together with "
        "the lexicon gloss). Off: the 1.5B model mistranslated cramp words and put cramps into "
        "unrelated questions, with no retrieval gain over the gloss (see the README).",
    )
    rewrite_max_new_tokens: int = Field(
        48, ge=8, le=256, description="Token budget of one query rewrite."
    )


class GenerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["transformers", "llamacpp", "openai", "fake"] = Field(
        "transformers",
        description="Which Generator answers: transformers (default install), llamacpp (the "
        "optional llama-cpp-python extra, runs the GGUF directly), openai (an OpenAI-compatible "
        "inference server at base_url), fake (tests).",
    )
    model: str = Field(
        "qwen2.5-coder-1.5b-instruct",
        description=(
            "A packaged model name ('qwen2.5-coder-1.5b-instruct', 'smollm2-135m-instruct'), a "
            "transformers model folder, or a .gguf file."
        ),
    )
    max_new_tokens: int = Field(160, ge=8, le=2048, description="Answer budget in tokens.")
    threads: int = Field(0, ge=0, description="torch threads; 0 = all cores.")
    dtype: Literal["bfloat16", "float32", "auto"] = Field(
        "bfloat16", description="Weights dtype after loading (GGUF is dequantized to it)."
    )
    cache_dequantized: bool = Field(
        True, description="Save a dequantized copy of a GGUF model once, for fast later loads."
    )
    history_turns: int = Field(3, ge=0, description="Earlier turns sent back to the model.")
    prompt_cache: bool = Field(
        True,
        description="transformers only: keep the key/value cache of the last prompts and let "
        "the next prompt reuse its shared beginning (system rules, worked example), so only the "
        "rest is read (bot/generation/prompt_cache.py).",
    )
    prompt_lookup_tokens: int = Field(
        0, ge=0, le=20,
        description="transformers only: draft this many tokens by copying from the prompt "
        "(prompt-lookup decoding, transformers' own assisted generation); 0 = off. A composed "
        "answer rephrases the source sentences in its prompt, so most drafts are accepted.",
    )
    max_passage_chars: int = Field(
        600, ge=100, description="Each passage is cut to this many characters in the prompt."
    )
    quantization: Literal["none", "int8-dynamic", "int4-weight"] = Field(
        "none",
        description="transformers only: 'int8-dynamic' stores the linear layers' weights as int8 "
        "(torch dynamic quantization, float32 activations) after loading; 'int4-weight' as 4-bit "
        "groups (torchao, optional: requirements-int4.txt). The default preset uses 'int8-dynamic'.",
    )
    int4_prefill_bfloat16: bool = Field(
        True,
        description="With 'int4-weight': keep a bfloat16 copy to read the prompt (torch's int4 CPU "
        "kernel is slow on many tokens at once); costs the bfloat16 weights' memory again.",
    )
    context_tokens: int = Field(
        4096, ge=512, le=32768, description="llama.cpp context window (prompt + answer) in tokens."
    )
    base_url: str | None = Field(
        None,
        description="openai backend: the server's OpenAI API root, e.g. http://127.0.0.1:8080/v1; "
        "`model` is the model name sent to it.",
    )
    api_key_env: str = Field(
        "CRAMPBOT_INFERENCE_API_KEY",
        description="openai backend: environment variable holding the server's API key "
        "(unset or empty = send none). The key itself never goes into a config file.",
    )
    request_timeout_s: float = Field(
        120.0, gt=0, description="openai backend: seconds to wait for the server between two pieces."
    )


class AnswerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["composed", "generated"] = Field(
        "composed",
        description="'composed': the code picks the source sentences that answer the question "
        "and shows them, cited, after one direct-answer sentence the model writes from them and "
        "the code checks (bot/compose.py, bot/lead.py); 'generated': the model writes the whole "
        "answer from the passages and each sentence is checked afterwards (the earlier design, "
        "kept for comparison and for larger models).",
    )
    lead_sentence: bool = Field(
        True, description="composed mode: let the model write the checked direct-answer sentence."
    )
    lead_max_new_tokens: int = Field(
        60, ge=8, le=256, description="Token budget of the direct-answer sentence."
    )
    max_evidence: int = Field(
        4, ge=1, le=8, description="composed mode: at most this many source sentences (units)."
    )
    # 0.7 rather than 0.5: on dev (selection only) one-sentence answers 0.184 -> 0.136 with
    # must-mention and citation precision unchanged (a unit nearly as good as the best was left out).
    evidence_margin: float = Field(
        0.7, ge=0,
        description="composed mode: keep units scoring within this margin of the best one.",
    )
    evidence_other_margin: float | None = Field(
        0.25, ge=0,
        description="composed mode: a unit from another passage than the best unit's must score "
        "within this (smaller) margin of the best; None applies evidence_margin to all.",
    )
    evidence_floor: float = Field(
        0.3, description="composed mode: no unit below this relevance; none left -> decline."
    )
    verify: bool = Field(
        True,
        description="Check every sentence against the passage it cites and drop unsupported ones; "
        "False keeps the model's text (markers to unshown passages are still removed).",
    )
    min_verified_fraction: float = Field(
        0.5, ge=0, le=1,
        description="Below this share of supported sentences the answer becomes extractive.",
    )
    extractive_fallback: bool = Field(
        True, description="Answer with cited source sentences when too little is verified."
    )
    gaps_log_enabled: bool = Field(
        False,
        description="Keep visitors' declined questions and thumbs-down answers in gaps_log (emails "
        "and phone numbers replaced) for `crampbot gaps`. Off by default: no visitor's words are "
        "stored unless the clinic turns this on.",
    )
    gaps_log: Path | None = Field(
        Path("gaps") / "gaps.jsonl",
        description="Where the gaps log is kept (JSON Lines), relative to data_dir unless "
        "absolute; empty keeps nothing even when gaps_log_enabled.",
    )
    gaps_retention_days: int = Field(
        90, ge=1, le=3650,
        description="Lines of the gaps log older than this many days are deleted when the log "
        "is written to or read.",
    )

    lead_translation: Literal["none", "model"] = Field(
        "none",
        description="composed mode, a reply in another language than English: 'none' gives no "
        "model lead (the answer is the rendered source sentences, and the model does not run); "
        "'model' lets the model write the English lead, checks it, then renders it at request "
        "time and checks the rendering (an English lead stays when its rendering fails).",
    )
    max_untranslated: float = Field(
        0.34, ge=0, le=1,
        description="A reply in another language keeps an English sentence whose rendering is "
        "missing or fails its checks; above this share of such sentences the whole reply is "
        "the English answer with a one-line note in the reply's language.",
    )
    translation_cache: Path | None = Field(
        Path("translations"),
        description="Folder of the model's renderings of added sources' sentences (<lang>.jsonl), "
        "relative to data_dir unless absolute; the shipped sources' reviewed renderings are "
        "corpus/translations.<lang>.tsv. Empty: no cache, no background rendering.",
    )
    translate_in_background: bool = Field(
        True, description="Render sentences an answer lacked in a background thread while no "
        "visitor waits for the model; the visitor who lacked them gets them in English.",
    )

    @field_validator("gaps_log", "translation_cache", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if value is None or (isinstance(value, str) and not value.strip()) else value


class SafetySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emergency_number: str = Field("112", description="Number named in urgent-care advice.")
    max_message_chars: int = Field(
        6000, ge=100, description="Longer messages are refused with a clear message."
    )


class AppSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Interface the web app listens on.")
    port: int = Field(7860, ge=0, le=65535, description="Port of the web app (0 = any free).")


_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?$")
_COLOUR = r"^#[0-9a-fA-F]{6}$"
_HOST = re.compile(r"^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$|^\[[0-9a-f:.]+\]$")


def _catalog_language(lang: str) -> str:
    lang = lang.strip().lower()
    if lang not in texts.CATALOGS:
        raise ValueError(f"'{lang}' has no catalog; use one of: {', '.join(texts.LANGUAGES)}")
    return lang


class WebSettings(BaseModel):
    """The embeddable widget, the JSON API and their controls (web/, app.py)."""

    model_config = ConfigDict(extra="forbid")

    clinic_name: str = Field(
        "Crampbot", min_length=1, max_length=80, description="Name shown in the chat and widget."
    )
    greeting: str = Field(
        texts.WIDGET_GREETING, min_length=1, max_length=400,
        description="First words of the widget, shown until the first question.",
    )
    topic: dict[str, str] = Field(
        default_factory=dict,
        description="What the sources cover, per language, as it reads after 'about' (Russian: "
        "after «о», in the prepositional case), e.g. {\"en\": \"leg cramps and varicose veins\", "
        "\"ru\": \"судорогах в ногах и варикозе\"}: named by the greeting, the page's intro, the "
        "message box and the decline hint. A language without one keeps the catalog's texts "
        "(leg and calf cramps).",
    )
    examples: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Example questions offered in the empty chat, per language, replacing the "
        "catalog's EXAMPLE_QUESTIONS for that language (the widget shows the first three).",
    )
    launcher_label: str = Field(
        texts.WIDGET_LAUNCHER_LABEL, min_length=1, max_length=40,
        description="Text of the floating button that embed.js adds to a page.",
    )
    lang: str = Field(
        "auto",
        description="Language of the chat page's and the widget's own texts: 'auto' follows the "
        "visitor's browser (navigator.language, then Accept-Language); a language with a catalog "
        "in bot/locales ('en', 'ru') is used for every visitor. An embed's data-lang wins over "
        "it. Replies are in the language of each question either way.",
    )
    primary_color: str = Field(
        "#0f766e", pattern=_COLOUR,
        description="Clinic colour (#rrggbb): widget header, button, user messages.",
    )
    on_primary_color: str = Field(
        "#ffffff", pattern=_COLOUR, description="Text colour on the clinic colour (#rrggbb)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Sites allowed to frame the widget and call the API from a browser, as "
        "scheme://host[:port] (e.g. https://www.example-clinic.org); our own origin always is.",
    )
    rate_limit_per_minute: int = Field(
        10, ge=1, le=10_000, description="Questions one client (IP address) may ask per minute."
    )
    max_request_bytes: int = Field(
        65_536, ge=1024, description="Larger request bodies are refused with 413."
    )
    conversation_ttl_minutes: int = Field(
        30, ge=1, description="An API conversation is forgotten after this long unused."
    )
    max_conversations: int = Field(
        1000, ge=1, description="API conversations kept in memory; the least recent go first."
    )
    feedback_file: Path = Field(
        Path("feedback") / "feedback.jsonl",
        description="Thumbs up/down log (JSON Lines), relative to data_dir unless absolute.",
    )
    feedback_per_minute: int = Field(
        30, ge=1, le=10_000, description="Votes one client (IP address) may send per minute (API and the chat's thumbs)."
    )
    feedback_max_bytes: int = Field(
        5_000_000, ge=10_000,
        description="When the feedback log would grow past this size it is rotated "
        "(feedback.jsonl -> feedback.jsonl.1 ...).",
    )
    feedback_backups: int = Field(
        3, ge=0, le=100, description="Rotated feedback logs kept; older ones are deleted."
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "[::1]"],
        description="Host names this server answers to (the Host header; Starlette's "
        "TrustedHostMiddleware): any other gets 400, which defeats DNS rebinding. Add the "
        "public name behind your proxy, e.g. assistant.example-clinic.org; '*.example.org' "
        "admits subdomains, '*' any host (not recommended).",
    )
    history_turn_chars: int = Field(
        1500, ge=100,
        description="Each earlier question and answer is cut to this many characters before it "
        "reaches the model (API history, stored conversations and the chat alike).",
    )
    history_chars: int = Field(
        4000, ge=200,
        description="All earlier turns together: the oldest are dropped beyond this many "
        "characters, so the prompt stays within the model's budget.",
    )
    history_tokens: int = Field(
        1000, ge=50,
        description="All earlier turns together, counted by the model's own tokenizer: the "
        "oldest are dropped, and the last one cut, beyond this many tokens before the prompt is "
        "made (characters are not tokens: Russian text takes about twice as many).",
    )
    keep_alive_timeout_s: float = Field(
        5, gt=0, description="An idle keep-alive connection is closed after this long."
    )
    header_timeout_s: float = Field(
        10, gt=0,
        description="A connection that has not sent a request's headers within this long "
        "(from connecting, or from its previous response) is closed (slow-header clients).",
    )
    body_timeout_s: float = Field(
        15, gt=0, description="A request body not received in full within this long gets 408."
    )
    max_connections: int = Field(
        200, ge=1,
        description="Open connections and running requests beyond this get 503 (uvicorn's "
        "limit_concurrency).",
    )
    answer_concurrency: int = Field(
        2, ge=1, le=16,
        description="Answers the API (/api/v1/ask, /ask/stream, /v1/chat/completions) makes at "
        "once; the chat page and the widget answer one at a time each in Gradio's queue.",
    )
    answer_queue: int = Field(
        16, ge=0, le=32,
        description="API questions that may wait for one of those; beyond this a question gets "
        "503 with Retry-After at once, instead of an answer that would come after the visitor "
        "gave up (waiting ones hold no thread).",
    )
    max_header_bytes: int = Field(
        16_384, ge=1024, description="Request line and headers larger than this get 400."
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at GET /metrics.")
    state: Literal["memory", "redis"] = Field(
        "memory",
        description="Where rate limits, API conversations and recent answers are kept: in this "
        "process, or in Redis (redis_url) so that several replicas share them (web/state.py).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="The Redis server when state = 'redis'."
    )
    redis_prefix: str = Field(
        "crampbot:", max_length=64, description="Prefix of every Redis key this server writes."
    )
    log_questions: bool = Field(
        False, description="Write visitors' questions into the server log (off: never)."
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="Server log lines: JSON objects (with a request_id) or plain text."
    )

    @field_validator("lang")
    @classmethod
    def _known_language(cls, lang: str) -> str:
        lang = lang.strip().lower()
        if lang != "auto" and lang not in texts.CATALOGS:
            raise ValueError(f"'{lang}' has no catalog; write 'auto' or one of: "
                             f"{', '.join(texts.LANGUAGES)}")
        return lang

    @field_validator("topic")
    @classmethod
    def _topics(cls, topics: dict[str, str]) -> dict[str, str]:
        cleaned = {_catalog_language(lang): " ".join(topic.split()) for lang, topic in topics.items()}
        for lang, topic in cleaned.items():
            if not 0 < len(topic) <= 120:
                raise ValueError(f"the {lang} topic must be 1 to 120 characters")
        return cleaned

    @field_validator("examples")
    @classmethod
    def _example_questions(cls, examples: dict[str, list[str]]) -> dict[str, list[str]]:
        cleaned = {_catalog_language(lang): [" ".join(q.split()) for q in questions]
                   for lang, questions in examples.items()}
        for lang, questions in cleaned.items():
            if not 0 < len(questions) <= 8 or not all(0 < len(q) <= 200 for q in questions):
                raise ValueError(f"give 1 to 8 {lang} example questions of 1 to 200 characters")
        return cleaned

    @field_validator("allowed_origins")
    @classmethod
    def _origins_only(cls, origins: list[str]) -> list[str]:
        # Exact origins only: a wildcard or a path would make the browser checks meaningless.
        cleaned = [origin.strip().rstrip("/").lower() for origin in origins]
        for origin in cleaned:
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"'{origin}' is not an origin; write scheme://host[:port], no path, no '*'")
        return cleaned

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_only(cls, hosts: list[str]) -> list[str]:
        cleaned = [host.strip().lower() for host in hosts]
        for host in cleaned:
            if host != "*" and not _HOST.match(host):
                raise ValueError(f"'{host}' is not a host name; write e.g. assistant.example.org, "
                                 "*.example.org or [::1], no scheme, no port")
        return cleaned


class Settings(BaseSettings):
    """Everything crampbot can be told, one typed tree."""

    model_config = SettingsConfigDict(
        env_prefix="CRAMPBOT_", env_nested_delimiter="__", extra="forbid"
    )

    preset: str = Field("default", description="Name of the preset these settings started from.")
    data_dir: Path = Field(
        PROJECT_DIR / ".data", description="Where built indexes and model caches are written."
    )
    corpus: CorpusSettings = Field(default_factory=CorpusSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    app: AppSettings = Field(default_factory=AppSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats what `load` passes in (preset + config file), as documented above.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _library_in_data_dir(self) -> "Settings":
        # A clinic's added sources live with its other data unless corpus.library_dir says where.
        if self.corpus.library_dir is None:
            self.corpus.library_dir = self.data_dir / "sources"
        return self

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index" / self.preset

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    preset: str | None = None, config_file: str | Path | None = None, **overrides: Any
) -> Settings:
    """Settings from a preset, an optional JSON config file, the environment and overrides."""
    from bot.errors import ConfigError

    name = preset or os.environ.get("CRAMPBOT_PRESET") or "default"
    preset_path = PRESETS_DIR / f"{name}.json"
    if not preset_path.is_file():
        raise ConfigError(f"Unknown preset '{name}'; choose one of: {', '.join(preset_names())}.")
    values = json.loads(preset_path.read_text(encoding="utf-8"))
    config_file = config_file or os.environ.get("CRAMPBOT_CONFIG")
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"Config file {path} does not exist.")
        values = _deep_merge(values, json.loads(path.read_text(encoding="utf-8")))
    values = _deep_merge(values, overrides)
    values["preset"] = name
    return Settings(**values)
