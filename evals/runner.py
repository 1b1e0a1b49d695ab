"""Runs an evaluation set through the bot exactly as a user reaches it, and writes the results.

Per case, with the case's conversation `history` if it has one: `CrampBot.retrieve` (the
retrieval metrics always come from it, so a full run and a --retrieval-only run report the same
retrieval numbers) and, unless retrieval-only, `CrampBot.ask` (everything else). Writes metrics.json, cases.jsonl, report.md and report.html.
"""
from __future__ import annotations

import hashlib
import json
import logging
import resource
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from bot.settings import Settings
from evals.dataset import EvalCase, EvalSetError, load_cases
from evals.judge import GroundingJudge
from evals.metrics import CaseOutcome, score_case, summarize
from evals.report import write_report

log = logging.getLogger(__name__)

_WARM_UP_QUESTION = "Why do calves cramp?"


def run_eval(
    set_path: Path,
    out_dir: Path,
    settings: Settings,
    *,
    retrieval_only: bool = False,
    limit: int | None = None,
    progress: bool = True,
    bot=None,
    judge: GroundingJudge | None = None,
) -> dict:
    """Evaluate `settings` (or an injected `bot`) on a set; returns the metrics it wrote.

    The set is validated completely first (EvalSetError lists every malformed line). `judge`
    defaults to the grounding judge on the configured embedder.
    """
    set_path, out_dir = Path(set_path), Path(out_dir)
    cases = load_cases(set_path, raw_dir=settings.corpus.raw_dir)
    if limit is not None:
        if limit < 1:
            raise EvalSetError(f"The case limit must be at least 1; got {limit}.")
        cases = cases[:limit]
    started_at, started = datetime.now(timezone.utc), time.perf_counter()
    # An evaluation's declines are not visitors' questions: they stay out of the gaps log.
    settings = settings.model_copy(update={
        "answer": settings.answer.model_copy(update={"gaps_log": None})})
    bot = bot if bot is not None else _make_bot(settings)
    warm_up_s = _warm_up(bot, retrieval_only)
    if judge is None and not retrieval_only:
        from index.embedding import load_embedder  # loads torch: only when answers are judged

        judge = GroundingJudge(load_embedder(settings.embedding))

    records = []
    for case in tqdm(cases, desc="eval", unit="case", disable=not progress, file=sys.stderr):
        outcome = _run_case(bot, case, retrieval_only)
        records.append(score_case(outcome, judge, settings.safety.emergency_number))

    metrics = {"run": _run_info(set_path, settings, retrieval_only, limit, len(cases), started_at)}
    metrics.update(summarize(records))
    metrics["cost"]["warm_up_s"] = round(warm_up_s, 2)
    metrics["cost"]["peak_rss_mb"] = _peak_rss_mb()
    metrics["run"]["duration_s"] = round(time.perf_counter() - started, 2)
    _write(out_dir, metrics, records)
    return metrics


def _make_bot(settings: Settings):
    # Imported here: the pipeline pulls in torch and the model stack, which `evals.dataset`
    # users and tests with an injected bot do not need.
    from bot.pipeline import CrampBot

    return CrampBot(settings)


def _warm_up(bot, retrieval_only: bool) -> float:
    """Load the index (and the model) before timing, so the first case is not charged for it."""
    started = time.perf_counter()
    bot.retrieve(_WARM_UP_QUESTION)
    if not retrieval_only:
        bot.warm_up()
    return time.perf_counter() - started


def _run_case(bot, case: EvalCase, retrieval_only: bool) -> CaseOutcome:
    started = time.perf_counter()
    try:
        retrieved = bot.retrieve(case.question, case.history)
        retrieval_ms = (time.perf_counter() - started) * 1000
        answer = None if retrieval_only else bot.ask(case.question, case.history)
    except Exception as error:  # a crash is a finding to report, not a reason to stop the run
        log.exception("case %s crashed", case.id)
        crash = f"{type(error).__name__}: {error}"
        return CaseOutcome(case, [], (time.perf_counter() - started) * 1000, None, crash)
    return CaseOutcome(case, retrieved, retrieval_ms, answer)


def _run_info(set_path: Path, settings: Settings, retrieval_only: bool, limit: int | None,
              cases: int, started_at: datetime) -> dict:
    generation = settings.generation
    return {
        "set": str(set_path),
        "set_sha256": hashlib.sha256(set_path.read_bytes()).hexdigest(),
        "cases": cases,
        "limit": limit,
        "mode": "retrieval-only" if retrieval_only else "full",
        "preset": settings.preset,
        "generator": None if retrieval_only else f"{generation.backend}:{generation.model}",
        "embedding": settings.embedding.model,
        "retrieval": f"{settings.retrieval.mode}, top {settings.retrieval.top_k}",
        "started_at": started_at.isoformat(timespec="seconds"),
    }


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB: the peak of this whole process, model included.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _write(out_dir: Path, metrics: dict, records: list[dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(
        json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    with (out_dir / "cases.jsonl").open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    write_report(metrics, records, out_dir)
