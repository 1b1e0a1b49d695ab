"""`crampbot` command line: serve, ingest, ask, eval, eval-compare, calibrate, feedback-summary,
gaps, sources (add, list, show, remove a clinic's own files), translate-sources."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Offline by construction: nothing may reach a model hub, whatever the environment says.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _settings(args: argparse.Namespace):
    from bot.settings import load_settings

    return load_settings(preset=args.preset, config_file=args.config)


def cmd_serve(args: argparse.Namespace) -> int:
    import app

    argv = ["--preset", args.preset] if args.preset else []
    if args.config:
        argv += ["--config", args.config]
    return app.main(argv)


def cmd_ingest(args: argparse.Namespace) -> int:
    from bot.retrieval import PassageRetriever

    settings = _settings(args)
    started = time.perf_counter()
    index = PassageRetriever(settings).load(progress=True, force_rebuild=True)
    seconds = time.perf_counter() - started
    print(f"Indexed {len(index.passages)} passages into {settings.index_dir} in {seconds:.1f} s")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from bot.pipeline import CrampBot

    answer = CrampBot(_settings(args)).ask(args.question)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.full_text.replace(answer.disclaimer, "").rstrip())
    for citation in answer.citations:
        p = citation.passage
        print(f"\n[{citation.number}] {p.title} — {p.section or 'introduction'}\n    {p.text}")
    print(f"\n{answer.disclaimer}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.compare import check_thresholds, parse_thresholds
    from evals.runner import run_eval

    # Parsed before the run: a typo in a threshold must not cost a whole evaluation.
    thresholds = parse_thresholds(args.fail_under, args.fail_over)
    settings = _settings(args)
    out = Path(args.out or f"evals/runs/{settings.preset}{'-retrieval' if args.retrieval_only else ''}")
    metrics = run_eval(Path(args.set), out, settings, retrieval_only=args.retrieval_only,
                       limit=args.limit)
    print(f"Wrote {out}/metrics.json, cases.jsonl, report.md and report.html")
    lines, passed = check_thresholds(metrics, thresholds, str(out))
    if lines:
        print("\n".join(lines))
    return 0 if passed else 1


def cmd_eval_compare(args: argparse.Namespace) -> int:
    from evals.compare import check_thresholds, compare_runs, load_metrics, parse_thresholds

    thresholds = parse_thresholds(args.fail_under, args.fail_over)
    out = Path(args.out) if args.out else None
    print(compare_runs([Path(d) for d in args.dirs], out))
    lines, passed = check_thresholds(load_metrics(Path(args.dirs[-1])), thresholds, args.dirs[-1])
    if lines:
        print("\n".join(lines))
    return 0 if passed else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    from bot.calibrate import calibrate_gate

    result = calibrate_gate(Path(args.set), _settings(args), Path(args.out))
    print(json.dumps({k: v for k, v in result.items() if k not in ("curve", "signals")}, indent=2))
    print(f"Wrote {args.out}/gate.json and {args.out}/gate_curve.png")
    return 0


def cmd_feedback_summary(args: argparse.Namespace) -> int:
    from web.feedback import feedback_path, summarize

    print(summarize(Path(args.file) if args.file else feedback_path(_settings(args))))
    return 0


def cmd_gaps(args: argparse.Namespace) -> int:
    from bot.errors import ConfigError
    from bot.gaps import format_groups, gaps_path, group_gaps, prune_gaps, read_gaps
    from bot.gaps_report import write_reports
    from index.embedding import load_embedder

    settings = _settings(args)
    path = Path(args.log) if args.log else gaps_path(settings)
    if path is None:
        raise ConfigError("The gaps log is off (answer.gaps_log_enabled is false or "
                          "answer.gaps_log is empty); pass --log PATH.")
    retention = settings.answer.gaps_retention_days
    if not args.log:  # the clinic's own log: its retention is applied; a file given is only read
        prune_gaps(path, retention)
    records = read_gaps(path, retention) if path.is_file() else []
    groups = group_gaps(records, load_embedder(settings.embedding), args.threshold) if records else []
    groups = [group for group in groups if group.count >= args.min_count]
    if args.json:
        print(json.dumps([group.to_dict() for group in groups], ensure_ascii=False, indent=2))
    else:
        print(format_groups(groups, path))
    written = write_reports(groups, path, Path(args.out) if args.out else path.parent)
    print(f"Wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def _similarity(text: str) -> float:
    value = float(text)
    if not -1 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a cosine similarity between -1 and 1")
    return value


def cmd_sources_add(args: argparse.Namespace) -> int:
    from corpus.convert import convert_file
    from corpus.errors import CorpusError
    from corpus.library import SourceLibrary
    from corpus.sources import discover_sources

    settings = _settings(args)
    paths = [Path(p) for p in args.paths]
    if len(paths) > 1 and (args.title or args.url):
        raise CorpusError("--title and --url describe one file; add the files one at a time.")
    # Every file is converted before anything is stored: one that fails changes nothing.
    converted = [(path, convert_file(path)) for path in paths]
    for warning in (w for _, text in converted for w in text.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    library = SourceLibrary(settings.corpus.library_dir)
    shipped = frozenset(path.stem for path in discover_sources(settings.corpus.raw_dir))
    changed = []
    for path, text in converted:
        entry, status = library.add(path, text, title=args.title, url=args.url or "",
                                    language=args.lang, reviewed_by=args.reviewed_by or "",
                                    reviewed_on=args.reviewed_on, taken_ids=shipped)
        pages = f", {len(entry.page_starts)} pages" if entry.page_starts else ""
        print(f"{status} {entry.id}: {entry.title} ({entry.converter} {entry.converter_version}"
              f"{pages})")
        if status != "unchanged":
            changed.append(entry)
    if changed:
        index = _refresh_index(settings)
        for entry in changed:
            count = sum(p.source == entry.file for p in index.passages)
            print(f"  {entry.id}: {count} passages indexed")
        print(_index_change(index))
    return 0


def cmd_sources_list(args: argparse.Namespace) -> int:
    from datetime import date

    from corpus.library import SourceLibrary

    settings = _settings(args)
    sources = SourceLibrary(settings.corpus.library_dir).sources()
    if not sources:
        print("No sources added yet; add one with `crampbot sources add FILE`.")
        return 0
    limit = settings.corpus.review_after_days
    for source in sources:
        age = source.review_age_days(date.today())
        if age is None:
            flag = "NOT REVIEWED"
        elif age > limit:
            flag = f"REVIEW DUE: reviewed {age} days ago (corpus.review_after_days = {limit})"
        else:
            flag = f"reviewed by {source.reviewed_by or 'unnamed'} on {source.reviewed_on}"
        print(f"{source.id}\t{source.title}\t{source.original_name}\t{flag}")
    return 0


def cmd_sources_show(args: argparse.Namespace) -> int:
    from corpus.library import SourceLibrary

    settings = _settings(args)
    library = SourceLibrary(settings.corpus.library_dir)
    source = library.get(args.id)
    print(json.dumps(source.model_dump(mode="json", exclude={"page_starts"}), indent=2,
                     ensure_ascii=False))
    for passage in library.passages(settings.corpus):
        if passage.source != source.file:
            continue
        page = f" page {passage.page}" if passage.page else ""
        print(f"\n[{passage.id}]{page} ({passage.section}) chars {passage.raw_start}-"
              f"{passage.raw_end}\n{passage.text}")
    return 0


def cmd_sources_remove(args: argparse.Namespace) -> int:
    from corpus.library import SourceLibrary

    settings = _settings(args)
    source = SourceLibrary(settings.corpus.library_dir).remove(args.id)
    index = _refresh_index(settings)
    print(f"removed {source.id}: {source.title}\n{_index_change(index)}")
    return 0


def cmd_translate_sources(args: argparse.Namespace) -> int:
    from bot import texts
    from bot.errors import ConfigError
    from bot.generation.factory import make_generator
    from bot.retrieval import PassageRetriever
    from bot.translation import answer_sentences, memory_for
    from bot.translator import fill_memory, seed_shipped
    from bot.translation_check import rendering_problems
    from corpus.sources import discover_sources

    settings = _settings(args)
    lang = texts.language(args.lang)
    if lang == texts.LANGUAGES[0] or lang != args.lang:
        raise ConfigError(f"'{args.lang}' is not a language with a catalog to render into; use "
                          f"one of {', '.join(texts.LANGUAGES[1:])}.")
    memory = memory_for(settings, lang)
    shipped_files = {path.name for path in discover_sources(settings.corpus.raw_dir)}
    sentences = answer_sentences(PassageRetriever(settings).load().passages)
    shipped = [s for s, source in sentences.items() if source in shipped_files]
    added = [s for s, source in sentences.items() if source not in shipped_files]
    chosen = shipped if args.shipped else added
    if args.check:
        renderings = memory.renderings()
        problems = [(s, ["no rendering"] if s not in renderings or not renderings[s].text
                     else rendering_problems(s, renderings[s].text, lang)) for s in chosen]
        problems = [(s, p) for s, p in problems if p]
        for english, found in problems:
            print(f"{'; '.join(found)}\t{english}")
        print(f"{len(chosen) - len(problems)} of {len(chosen)} sentences have a rendering in "
              f"{lang} that passes its checks.")
        return 1 if problems else 0
    generator = make_generator(settings.generation, settings.models_dir)
    getattr(generator, "load", lambda: None)()

    def progress(english: str, text: str, found: list[str]) -> None:
        print(f"{'ok' if not found else '; '.join(found)}\t{english}\t{text}", flush=True)

    if args.shipped:
        dropped = seed_shipped(memory, shipped, generator, progress)
        print(f"Wrote {memory.shipped_path} ({len(shipped)} sentences; {len(dropped)} lines of "
              "sentences no answer shows any more dropped). Read every line marked 'model'.")
    else:
        passed = fill_memory(memory, chosen, generator, progress)
        print(f"Rendered {passed} sentences of the added sources into {memory.cache_path}.")
    return 0


def _refresh_index(settings):
    """Bring the index in line with the sources after one was added, replaced or removed."""
    from corpus.ingest import chunker_settings, corpus_fingerprint, load_passages
    from index.embedding import load_embedder
    from index.store import update_index

    return update_index(
        settings.index_dir, passages=load_passages(settings.corpus),
        corpus_fingerprint=corpus_fingerprint(settings.corpus),
        chunker_settings=chunker_settings(settings.corpus),
        embedder=load_embedder(settings.embedding), embedding=settings.embedding,
        index=settings.index,
    )


def _index_change(index) -> str:
    change = index.manifest.last_change
    return (f"Index: {len(index.passages)} passages; {change.get('embedded', 0)} embedded, "
            f"{change.get('removed', 0)} removed, {change.get('kept', 0)} kept as they were")


def _iso_date(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; write it as YYYY-MM-DD") from None


def _add_sources_parser(sub, common: argparse.ArgumentParser) -> None:
    sources = sub.add_parser("sources", help="add, list, show or remove a clinic's own files")
    actions = sources.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[common],
                             help="convert and index .pdf, .docx, .html, .md or .txt files")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--title", help="title shown with citations (default: the first heading)")
    add.add_argument("--url", help="where the clinic publishes it; citations link to it")
    add.add_argument("--reviewed-by", help="who last reviewed the content")
    add.add_argument("--reviewed-on", type=_iso_date, help="when, as YYYY-MM-DD")
    add.add_argument("--lang", default="en", help="language of the text (default: en)")
    add.set_defaults(func=cmd_sources_add)
    actions.add_parser("list", parents=[common], help="the added sources and their review state"
                       ).set_defaults(func=cmd_sources_list)
    for name, func, what in (("show", cmd_sources_show, "a source and the passages it became"),
                             ("remove", cmd_sources_remove, "remove a source and its passages")):
        action = actions.add_parser(name, parents=[common], help=what)
        action.add_argument("id", help="the id `crampbot sources list` shows")
        action.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crampbot", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--preset", help="named preset from bot/presets (default: default)")
    common.add_argument("--config", help="JSON config file overriding the preset")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", parents=[common], help="start the web chat").set_defaults(func=cmd_serve)
    sub.add_parser("ingest", parents=[common], help="build or rebuild the index").set_defaults(func=cmd_ingest)
    ask = sub.add_parser("ask", parents=[common], help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.set_defaults(func=cmd_ask)

    ev = sub.add_parser("eval", parents=[common], help="run an evaluation set")
    ev.add_argument("set", help="evaluation set (JSON Lines)")
    ev.add_argument("--out", help="folder for the results (default: evals/runs/<preset>)")
    ev.add_argument("--retrieval-only", action="store_true", help="skip the language model")
    ev.add_argument("--limit", type=int, help="only the first N cases")
    ev.add_argument("--fail-under", action="append", default=[], metavar="NAME=MIN,...",
                    help="exit 1 if a metric is below MIN, e.g. must_mention=0.85,decline_oos=0.95")
    ev.add_argument("--fail-over", action="append", default=[], metavar="NAME=MAX,...",
                    help="exit 1 if a lower-is-better metric is above MAX, e.g. false_decline=0.05")
    ev.set_defaults(func=cmd_eval)

    cmp_ = sub.add_parser("eval-compare", help="side-by-side table of evaluation runs")
    cmp_.add_argument("dirs", nargs="+", help="run folders; the first is the reference")
    cmp_.add_argument("--out", help="also write the table to this file")
    cmp_.add_argument("--fail-under", action="append", default=[], metavar="NAME=MIN,...",
                      help="exit 1 if a metric of the last run is below MIN")
    cmp_.add_argument("--fail-over", action="append", default=[], metavar="NAME=MAX,...",
                      help="exit 1 if a lower-is-better metric of the last run is above MAX")
    cmp_.set_defaults(func=cmd_eval_compare)

    cal = sub.add_parser("calibrate", parents=[common],
                         help="choose the relevance-gate threshold from an evaluation set")
    cal.add_argument("set", nargs="?", default="evals/sets/dev.jsonl", help="evaluation set")
    cal.add_argument("--out", default="evals/calibration", help="folder for gate.json and the plot")
    cal.set_defaults(func=cmd_calibrate)

    fb = sub.add_parser("feedback-summary", parents=[common], help="summarize thumbs up/down")
    fb.add_argument("--file", help="feedback JSON Lines file (default: the configured one)")
    fb.set_defaults(func=cmd_feedback_summary)
    from bot.gaps import DEFAULT_THRESHOLD

    gaps = sub.add_parser("gaps", parents=[common],
                          help="declined questions, paraphrases grouped, most asked first")
    gaps.add_argument("--log", help="gaps JSON Lines file (default: the configured answer.gaps_log)")
    gaps.add_argument("--min-count", type=int, default=1, metavar="N",
                      help="only groups asked at least N times (default: 1)")
    gaps.add_argument("--threshold", type=_similarity, default=DEFAULT_THRESHOLD,
                      help="cosine similarity at which two questions are grouped "
                      f"(default: {DEFAULT_THRESHOLD})")
    gaps.add_argument("--json", action="store_true", help="print the groups as JSON")
    gaps.add_argument("--out", metavar="DIR",
                      help="where to write gaps.md, gaps.html and gaps.svg (default: the log's folder)")
    gaps.set_defaults(func=cmd_gaps)
    _add_sources_parser(sub, common)
    tr = sub.add_parser("translate-sources", parents=[common],
                        help="render the sources' sentences in another language (translation memory)")
    tr.add_argument("--lang", default="ru", help="the language to render into (default: ru)")
    tr.add_argument("--shipped", action="store_true",
                    help="the shipped sources, into corpus/translations.<lang>.tsv for review "
                    "(default: the added sources, into the cache under the data dir)")
    tr.add_argument("--check", action="store_true",
                    help="render nothing; list the sentences without a rendering that passes")
    tr.set_defaults(func=cmd_translate_sources)
    return parser


def main(argv: list[str] | None = None) -> int:
    from bot.errors import CrampbotError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CrampbotError as error:
        print(f"crampbot: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
