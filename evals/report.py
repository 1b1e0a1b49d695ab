"""report.md and report.html for one run: headline numbers, breakdown charts, failed cases.

The report is a list of blocks (headings, tables, charts) rendered twice: Markdown that links
the charts saved in charts/, and a single self-contained HTML file with the charts inlined.
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: charts are only ever written to files
import matplotlib.pyplot as plt  # noqa: E402

# Headline metrics in reading order: documented key -> short label.
HEADLINE = {
    "retrieval.hit_at_1": "gold passage ranked first",
    "retrieval.hit_at_3": "gold passage in top 3",
    "retrieval.mrr_at_10": "mean reciprocal rank of gold",
    "answers.must_mention_rate": "answers naming every expected term",
    "answers.must_mention_checked_rate": "the same, on the English answer a translated reply was rendered from",
    "answers.language_match_rate": "in-scope replies in the question's language",
    "answers.untranslated_sentence_rate": "sentences of translated replies left in English",
    "answers.english_note_rate": "translated replies given in English after a note",
    "answers.citation_validity": "[n] markers pointing at a shown passage",
    "answers.citation_precision": "cited passages that are gold",
    "answers.grounded_sentence_rate": "sentences supported by what they cite",
    "answers.false_decline_rate": "in-scope questions declined",
    "answers.sentences_p50": "sentences per answer, median",
    "answers.tokens_p50": "words per answer, median",
    "answers.generated_tokens_p50": "tokens the model generated per answer, median",
    "answers.one_sentence_rate": "answers of one sentence",
    "answers.restates_question_rate": "answers adding almost nothing to the question",
    "answers.extractive_rate": "answers quoted from the sources (extractive fallback)",
    "safety.disclaimer_rate": "replies ending with the disclaimer",
    "safety.language_match_rate": "replies in the question's language (most letters in its script)",
    "safety.decline_rate_out_of_scope": "out-of-scope questions declined",
    "safety.red_flag_escalation": "red flags answered with urgent advice first",
    "safety.injection_pass_rate": "injections resisted",
    "safety.false_red_flag_rate": "non-urgent questions flagged urgent",
    "cost.retrieval_ms_p50": "retrieval, median ms",
    "cost.retrieval_ms_p95": "retrieval, 95th percentile ms",
    "cost.first_token_s_p50": "first token, median s",
    "cost.first_token_s_p95": "first token, 95th percentile s",
    "cost.answer_s_p50": "full answer (in scope, model or not), median s",
    "cost.answer_s_p95": "full answer (in scope, model or not), 95th percentile s",
    "cost.full_answer_s_p50": "full generated answer, median s",
    "cost.full_answer_s_p95": "full generated answer, 95th percentile s",
    "cost.tokens_per_s_p50": "decoding speed, median tokens/s",
    "cost.peak_rss_mb": "peak memory of the run, MB",
    "cost.warm_up_s": "loading index and model, s",
}
# Everything else is better higher (rates), or has no direction (counts, NO_DIRECTION).
LOWER_IS_BETTER = {
    "answers.false_decline_rate", "answers.one_sentence_rate", "answers.restates_question_rate",
    "answers.untranslated_sentence_rate", "answers.english_note_rate",
    "safety.false_red_flag_rate", "cost.retrieval_ms_p50",
    "cost.retrieval_ms_p95", "cost.first_token_s_p50", "cost.first_token_s_p95",
    "cost.full_answer_s_p50", "cost.full_answer_s_p95", "cost.peak_rss_mb", "cost.warm_up_s",
    "cost.answer_s_p50", "cost.answer_s_p95",
}
# Neither more nor less is better: a longer answer is not a better one, and extractive answers
# trade fluency for faithfulness. Comparisons show their change without a verdict.
NO_DIRECTION = {
    "answers.sentences_p50", "answers.tokens_p50", "answers.generated_tokens_p50",
    "answers.extractive_rate",
}
# Headline values that are not shares in [0, 1], so the rate chart leaves them out.
_NOT_RATES = {"answers.sentences_p50", "answers.tokens_p50", "answers.generated_tokens_p50"}
_BREAKDOWN_COLUMNS = {
    "retrieval.hit_at_3": "hit@3", "retrieval.mrr_at_10": "MRR@10",
    "answers.must_mention_rate": "must-mention", "answers.grounded_sentence_rate": "grounded",
    "answers.citation_precision": "citation precision", "safety.language_match_rate": "language match",
    "answers.false_decline_rate": "false decline", "safety.disclaimer_rate": "disclaimer",
}
_CATEGORY_METRIC = {
    "in_scope": "retrieval.hit_at_3", "out_of_scope": "safety.decline_rate_out_of_scope",
    "red_flag": "safety.red_flag_escalation", "injection": "safety.injection_pass_rate",
}


@dataclass
class Block:
    kind: str  # "h1" | "h2" | "p" | "table" | "chart"
    text: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    png: bytes = b""  # for charts; `text` is then the file name


def get(metrics: dict, key: str):
    """metrics["a"]["b"] for key "a.b"; None when any part is missing."""
    value = metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def write_report(metrics: dict, records: list[dict], out_dir: Path) -> None:
    """Writes report.md, report.html and charts/*.png into `out_dir`."""
    blocks = build_blocks(metrics, records)
    charts_dir = out_dir / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    for block in blocks:
        if block.kind == "chart":
            (charts_dir / block.text).write_bytes(block.png)
    (out_dir / "report.md").write_text(render_markdown(blocks), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(blocks, _title(metrics)), encoding="utf-8")


def _title(metrics: dict) -> str:
    run = metrics.get("run", {})
    return f"Evaluation of {Path(run.get('set', 'set')).name}: preset {run.get('preset')}, {run.get('mode')}"


def build_blocks(metrics: dict, records: list[dict]) -> list[Block]:
    run, counts = metrics.get("run", {}), metrics["counts"]
    measured = {key: label for key, label in HEADLINE.items() if get(metrics, key) is not None}
    blocks = [
        Block("h1", _title(metrics)),
        Block("p", f"{counts['passed']} of {counts['checked']} checked cases passed every check "
                   f"({counts['cases']} cases). Generator "
                   f"{run.get('generator') or 'none (retrieval only)'}; embedding "
                   f"{run.get('embedding')}; retrieval {run.get('retrieval')}; started "
                   f"{run.get('started_at')}, took {fmt(run.get('duration_s'))} s."),
        Block("h2", "Headline"),
        Block("table", headers=["metric", "value", "meaning"],
              rows=[[f"`{key}`", fmt(get(metrics, key)), label] for key, label in measured.items()]),
    ]
    if len(measured) < len(HEADLINE):
        blocks.append(Block("p", "Not measured in this run (no case qualified, or retrieval only): "
                                 + ", ".join(k for k in HEADLINE if k not in measured) + "."))
    blocks += [
        Block("chart", "headline.png", png=_headline_chart(metrics)),
        Block("h2", "By category"),
        Block("table", headers=["category", "cases", "passed", "main metric", "value"],
              rows=[[name, str(m["counts"]["cases"]), f"{m['counts']['passed']}/{m['counts']['checked']}",
                     _CATEGORY_METRIC.get(name, ""), fmt(get(m, _CATEGORY_METRIC.get(name, "")))]
                    for name, m in metrics["by_category"].items()]),
        Block("chart", "by_category.png", png=_pass_rate_chart(metrics["by_category"], "category")),
    ]
    for name in sorted(k for k in metrics if k.startswith("by_") and k != "by_category"):
        blocks += _breakdown_blocks(name[3:], metrics[name])
    blocks += [Block("h2", "Latency"), Block("chart", "latency.png", png=_latency_chart(records))]
    blocks += _failure_blocks(records)
    return blocks


def _breakdown_blocks(field_name: str, groups: dict) -> list[Block]:
    headers = [field_name, "cases", "passed", *_BREAKDOWN_COLUMNS.values()]
    rows = [[value, str(m["counts"]["cases"]), f"{m['counts']['passed']}/{m['counts']['checked']}",
             *(fmt(get(m, key)) for key in _BREAKDOWN_COLUMNS)] for value, m in groups.items()]
    return [Block("h2", f"By {field_name}"), Block("table", headers=headers, rows=rows),
            Block("chart", f"by_{field_name}.png", png=_breakdown_chart(groups, field_name))]


def _failure_blocks(records: list[dict]) -> list[Block]:
    failed = [r for r in records if r["failed"]]
    rows = []
    for r in failed:
        reply = r["crash"] or (r["answer"] or {}).get("text") or ""
        rows.append([r["id"], r["category"], str(r["extra"].get("style", "")),
                     shorten(r["question"], 90), ", ".join(r["failed"]), shorten(reply, 140)])
    if not rows:
        return [Block("h2", "Failed cases"), Block("p", "None: every case passed every check.")]
    return [Block("h2", f"Failed cases ({len(rows)})"),
            Block("table", headers=["id", "category", "style", "question", "failed", "reply"], rows=rows)]


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- charts ---------------------------------------------------------------------------------
def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _bar_colour(value: float, lower_is_better: bool) -> str:
    good = 1 - value if lower_is_better else value
    return "#2e7d32" if good >= 0.9 else "#f9a825" if good >= 0.7 else "#c62828"


def _headline_chart(metrics: dict) -> bytes:
    rates = [(key, get(metrics, key)) for key in HEADLINE
             if not key.startswith("cost.") and key not in _NOT_RATES]
    rates = [(key, value) for key, value in rates if value is not None]
    fig, ax = plt.subplots(figsize=(7, 0.38 * max(len(rates), 1) + 0.8))
    labels = [f"{key} (lower is better)" if key in LOWER_IS_BETTER else key for key, _ in rates]
    values = [value for _, value in rates]
    colours = ["#607d8b" if k in NO_DIRECTION else _bar_colour(v, k in LOWER_IS_BETTER)
               for k, v in rates]
    ax.barh(labels, [1.0] * len(rates), color="#eeeeee")  # the track shows where 1.0 is
    ax.barh(labels, values, color=colours)
    for y, (value, colour) in enumerate(zip(values, colours)):
        ax.text(0.01, y, f"{value:.2f}", va="center", fontsize=8, fontweight="bold",
                color="white" if value > 0.08 else colour)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_title("Headline rates (green good, amber fair, red poor, grey no direction)", fontsize=10)
    return _png(fig)


def pass_rate(group: dict) -> float | None:
    """Share of the checked cases that passed every check (None when nothing was checked)."""
    counts = group["counts"]
    return counts["passed"] / counts["checked"] if counts["checked"] else None


def _pass_rate_chart(groups: dict, field_name: str) -> bytes:
    checked = {name: g for name, g in groups.items() if pass_rate(g) is not None}
    rates = [pass_rate(g) for g in checked.values()]
    fig, ax = plt.subplots(figsize=(6, 3))
    bars = ax.bar(list(checked), rates, color=[_bar_colour(r, False) for r in rates])
    for bar, group in zip(bars, checked.values()):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.02,
                f"{group['counts']['passed']}/{group['counts']['checked']}", ha="center", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("cases passing every check")
    ax.set_title(f"Pass rate by {field_name}", fontsize=10)
    return _png(fig)


def _breakdown_chart(groups: dict, field_name: str) -> bytes:
    keys = ["retrieval.hit_at_3", "answers.must_mention_rate", "answers.grounded_sentence_rate"]
    names = list(groups)
    width = 0.8 / (len(keys) + 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(names)), 3.2))
    series = [(key.split(".")[1], [get(g, key) for g in groups.values()]) for key in keys]
    series.append(("passed every check", [pass_rate(g) for g in groups.values()]))
    for i, (label, values) in enumerate(series):
        xs = [x + i * width for x in range(len(names))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=label)
        for x, value in zip(xs, values):
            if value is None:  # not measured: say so rather than draw what looks like a zero
                ax.text(x, 0.01, "n/a", ha="center", fontsize=6, rotation=90)
    ax.set_xticks([x + width * len(keys) / 2 for x in range(len(names))], names)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    ax.set_title(f"By {field_name}", fontsize=10)
    return _png(fig)


def _latency_chart(records: list[dict]) -> bytes:
    timings = [r["answer"]["timings"] for r in records if r["answer"]]
    total = [t["total_s"] for t in timings if t["first_token_s"] is not None]
    first = [t["first_token_s"] for t in timings if t["first_token_s"] is not None]
    fig, ax = plt.subplots(figsize=(6, 3))
    if total:
        ax.hist([first, total], bins=15, label=["first token", "full answer"], color=["#90caf9", "#1565c0"])
        ax.set_xlabel("seconds (generated answers)")
        ax.legend(fontsize=8)
    else:
        ax.hist([r["retrieval_ms"] for r in records], bins=15, color="#1565c0")
        ax.set_xlabel("retrieval, milliseconds")
    ax.set_ylabel("cases")
    ax.set_title("Latency", fontsize=10)
    return _png(fig)


# -- rendering ------------------------------------------------------------------------------
def md_cell(text: str) -> str:
    """A Markdown table cell: HTML escaped, pipes escaped."""
    # Questions may hold HTML: escape it so a Markdown viewer shows it instead of running it.
    return html.escape(text, quote=False).replace("|", "\\|")


def render_markdown(blocks: list[Block]) -> str:
    lines = []
    for block in blocks:
        if block.kind == "h1":
            lines += [f"# {block.text}", ""]
        elif block.kind == "h2":
            lines += [f"## {block.text}", ""]
        elif block.kind == "p":
            lines += [block.text, ""]
        elif block.kind == "chart":
            lines += [f"![{block.text}](charts/{block.text})", ""]
        elif block.kind == "table":
            lines.append("| " + " | ".join(block.headers) + " |")
            lines.append("|" + "---|" * len(block.headers))
            lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}code{font-size:13px}img{max-width:100%}"""


def render_html(blocks: list[Block], title: str) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body>"]
    for block in blocks:
        if block.kind in ("h1", "h2"):
            parts.append(f"<{block.kind}>{html.escape(block.text)}</{block.kind}>")
        elif block.kind == "p":
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif block.kind == "chart":
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(f"<img alt='{html.escape(block.text)}' src='data:image/png;base64,{data}'>")
        elif block.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
            body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>"
                           for row in block.rows)
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_cell(text: str) -> str:
    if text.startswith("`") and text.endswith("`"):
        return f"<code>{html.escape(text.strip('`'))}</code>"
    return html.escape(text)
