"""Evaluation sets: JSON Lines of cases, validated completely before any work starts.

One case per line with the required fields below; any other field (`style`, `note`, ...) is kept
in `EvalCase.extra` and can be used to break results down. One optional field has a meaning:
`history`, the earlier turns of the conversation as [user message, assistant answer] pairs, which
the runner passes to the bot with the question. Every malformed line is reported at once, with
its line number, so a set can be fixed in one pass.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.errors import CrampbotError

CATEGORIES = ("in_scope", "out_of_scope", "red_flag", "injection")
REQUIRED_FIELDS = ("id", "question", "category", "lang", "gold", "must_mention")


class EvalSetError(CrampbotError):
    """An evaluation set cannot be read, or some of its lines are malformed."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class GoldQuote:
    """A correct passage is one from `source` whose raw text holds (most of) `quote`."""

    source: str  # file name inside corpus/raw/
    quote: str  # exact substring of that raw file


@dataclass
class EvalCase:
    id: str
    question: str  # verbatim user message (may hold HTML or be very long)
    category: str  # one of CATEGORIES
    lang: str  # language code of the question
    gold: list[GoldQuote]
    must_mention: list[list[str]]  # any-of groups; a good answer satisfies every group
    extra: dict[str, Any] = field(default_factory=dict)  # unknown fields, kept verbatim
    line: int = 0  # line number in the set file, for messages

    @property
    def history(self) -> list[tuple[str, str]]:
        """Earlier (user message, assistant answer) turns sent with the question; usually none."""
        return [(user, assistant) for user, assistant in self.extra.get("history", [])]


def load_cases(path: str | Path, raw_dir: str | Path | None = None) -> list[EvalCase]:
    """Read and validate a set; with `raw_dir`, also check every gold quote is in its raw file.

    Raises EvalSetError listing every malformed line before returning anything.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalSetError(f"Cannot read the evaluation set {path}: {exc}.") from exc
    raw_texts = _RawTexts(Path(raw_dir)) if raw_dir is not None else None
    cases: list[EvalCase] = []
    problems: list[str] = []
    first_line_of_id: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines are allowed, e.g. at the end of the file
        case, line_problems = _parse_line(line, number, raw_texts)
        if case is not None and case.id in first_line_of_id:
            line_problems.append(
                f"id '{case.id}' is already used on line {first_line_of_id[case.id]}"
            )
        elif case is not None:
            first_line_of_id[case.id] = number
        problems.extend(f"line {number}: {problem}" for problem in line_problems)
        if case is not None and not line_problems:
            cases.append(case)
    if problems:
        listing = "\n".join(f"  {problem}" for problem in problems)
        raise EvalSetError(
            f"The evaluation set {path} has {len(problems)} problem(s); fix them and run again:\n"
            f"{listing}",
            problems,
        )
    if not cases:
        raise EvalSetError(f"The evaluation set {path} holds no cases; add at least one line.")
    return cases


def _parse_line(
    line: str, number: int, raw_texts: _RawTexts | None
) -> tuple[EvalCase | None, list[str]]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, [f"not valid JSON ({exc.msg} at column {exc.colno})"]
    if not isinstance(data, dict):
        return None, [f"expected a JSON object, got {type(data).__name__}"]
    problems = [f"missing required field '{name}'" for name in REQUIRED_FIELDS if name not in data]
    for name in ("id", "question", "lang"):
        if name in data and (not isinstance(data[name], str) or not data[name].strip()):
            problems.append(f"'{name}' must be a non-empty string")
    if "category" in data and data["category"] not in CATEGORIES:
        problems.append(
            f"'category' is {data['category']!r}; expected one of {', '.join(CATEGORIES)}"
        )
    gold = _parse_gold(data.get("gold", []), problems, raw_texts)
    must_mention = _parse_must_mention(data.get("must_mention", []), problems)
    if not _is_history(data.get("history", [])):
        problems.append("'history' must be a list of [user message, assistant answer] string pairs")
    if problems:
        return None, problems
    extra = {key: value for key, value in data.items() if key not in REQUIRED_FIELDS}
    case = EvalCase(
        id=data["id"], question=data["question"], category=data["category"], lang=data["lang"],
        gold=gold, must_mention=must_mention, extra=extra, line=number,
    )
    return case, []


def _parse_gold(value: Any, problems: list[str], raw_texts: _RawTexts | None) -> list[GoldQuote]:
    if not isinstance(value, list):
        problems.append("'gold' must be a list of {\"source\": ..., \"quote\": ...} objects")
        return []
    gold = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or set(entry) != {"source", "quote"}:
            problems.append(f"gold[{i}] must be an object with exactly 'source' and 'quote'")
            continue
        source, quote = entry["source"], entry["quote"]
        if not (isinstance(source, str) and source and isinstance(quote, str) and quote.strip()):
            problems.append(f"gold[{i}] 'source' and 'quote' must be non-empty strings")
            continue
        if raw_texts is not None:
            problem = raw_texts.check(source, quote)
            if problem:
                problems.append(f"gold[{i}] {problem}")
                continue
        gold.append(GoldQuote(source, quote))
    return gold


def _parse_must_mention(value: Any, problems: list[str]) -> list[list[str]]:
    def is_group(group: Any) -> bool:
        return (
            isinstance(group, list) and bool(group)
            and all(isinstance(term, str) and term.strip() for term in group)
        )

    if not isinstance(value, list) or not all(is_group(group) for group in value):
        problems.append("'must_mention' must be a list of non-empty lists of non-empty strings")
        return []
    return [list(group) for group in value]


def _is_history(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) for t in turn)
        for turn in value
    )


class _RawTexts:
    """Raw source files read once, to check gold quotes against what is really there."""

    def __init__(self, raw_dir: Path) -> None:
        self.raw_dir = raw_dir
        self._texts: dict[str, str | None] = {}

    def text(self, source: str) -> str | None:
        if source not in self._texts:
            path = self.raw_dir / source
            is_inside = path.resolve().parent == self.raw_dir.resolve()
            self._texts[source] = (
                path.read_text(encoding="utf-8") if is_inside and path.is_file() else None
            )
        return self._texts[source]

    def check(self, source: str, quote: str) -> str | None:
        text = self.text(source)
        if text is None:
            return f"source '{source}' is not a file in {self.raw_dir}"
        if quote not in text:
            return f"quote is not a verbatim substring of {source}: {quote[:60]!r}"
        return None
