"""The gaps report for the clinic: `crampbot gaps` writes gaps.md and gaps.html, both with a bar
chart of the largest groups (gaps.svg, made by matplotlib; the HTML holds it inline).

The questions are visitors' words (scrubbed, bot/gaps.py): escaped in both files, never put into
the chart (its bars are labelled by group number), and the files are readable by their owner
only. The HTML loads nothing: no script, no font, no stylesheet from the network.
"""
from __future__ import annotations

import html
import io
from pathlib import Path

from bot.gaps import GapGroup
from corpus.files import write_atomic

CHART_GROUPS = 20  # the chart shows the largest groups; the tables list them all
WORDINGS_SHOWN = 5  # other wordings listed under a group's most asked one
REPORT_NAMES = ("gaps.md", "gaps.html", "gaps.svg")

_TITLE = "Questions the sources did not answer"
_HOW = ("Each group holds paraphrases of one question that the assistant declined or a visitor "
        "voted down, grouped by meaning (`crampbot gaps`). The largest groups are the topics to "
        "write a source for first. Emails and phone numbers were removed before the questions "
        "were stored.")
_CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
        "color:#1f2937}table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid "
        "#e5e7eb;padding:.4rem;text-align:left;vertical-align:top}td.n{text-align:right}"
        "ul{margin:.3rem 0 0;padding-left:1.2rem;color:#4b5563}svg{max-width:100%;height:auto}")
# Nothing in the page may load or run anything: it shows visitors' words.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def write_reports(groups: list[GapGroup], log_path: Path, out_dir: Path) -> list[Path]:
    """Write gaps.md, gaps.html and gaps.svg into `out_dir`; the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = chart_svg(groups)
    written = []
    for name, text in zip(REPORT_NAMES, (markdown_report(groups, log_path),
                                         html_report(groups, log_path, chart), chart)):
        write_atomic(out_dir / name, text.encode("utf-8"))
        written.append(out_dir / name)
    return written


def chart_svg(groups: list[GapGroup]) -> str:
    """A horizontal bar chart of the largest groups' counts, bars labelled by group number."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    shown = groups[:CHART_GROUPS]
    with plt.rc_context({"svg.fonttype": "path", "svg.hashsalt": "crampbot-gaps"}):
        figure, axes = plt.subplots(figsize=(7, 0.35 * max(len(shown), 3) + 1.2))
        numbers = [f"#{n}" for n in range(1, len(shown) + 1)]
        axes.barh(numbers, [group.count for group in shown], color="#0f766e")
        axes.invert_yaxis()  # the largest group on top, as in the tables
        axes.set_xlabel("times asked")
        axes.set_title("Largest groups" if shown else "No questions logged")
        axes.xaxis.get_major_locator().set_params(integer=True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(figure)
    return buffer.getvalue()


def markdown_report(groups: list[GapGroup], log_path: Path) -> str:
    lines = [f"# {_TITLE}", "", _summary(groups, log_path), "", _HOW, "",
             "![Times asked, largest groups](gaps.svg)", ""]
    if groups:
        lines += ["| # | asked | languages | why | last asked | most asked wording |",
                  "| ---: | ---: | --- | --- | --- | --- |"]
        for number, group in enumerate(groups, 1):
            wording = _md_cell(group.example)
            others = _other_wordings(group)
            if others:
                wording += "<br>also: " + "; ".join(_md_cell(other) for other in others)
            cells = [str(number), str(group.count), _counts(group.languages),
                     _counts(group.reasons), group.last_seen or "?"]
            lines.append("| " + " | ".join([*map(_md_cell, cells), wording]) + " |")
    return "\n".join(lines) + "\n"


def html_report(groups: list[GapGroup], log_path: Path, chart: str) -> str:
    rows = []
    for number, group in enumerate(groups, 1):
        others = "".join(f"<li>{html.escape(text)}</li>" for text in _other_wordings(group))
        rows.append(
            f'<tr><td class="n">{number}</td><td class="n">{group.count}</td>'
            f"<td>{html.escape(_counts(group.languages))}</td>"
            f"<td>{html.escape(_counts(group.reasons))}</td>"
            f"<td>{html.escape(group.last_seen or '?')}</td>"
            f"<td>{html.escape(group.example)}{f'<ul>{others}</ul>' if others else ''}</td></tr>")
    table = ("<table><thead><tr><th>#</th><th>asked</th><th>languages</th><th>why</th>"
             "<th>last asked</th><th>most asked wording, and others</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if groups else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>{_TITLE}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_TITLE}</h1><p>{html.escape(_summary(groups, log_path))}</p>"
            f"<p>{html.escape(_HOW)}</p>"
            f'<figure role="img" aria-label="Times asked, largest groups">{_inline(chart)}</figure>'
            f"{table}</body></html>\n")


def _summary(groups: list[GapGroup], log_path: Path) -> str:
    total = sum(group.count for group in groups)
    return (f"{total} questions in {len(groups)} groups, largest first, from {log_path}."
            if groups else f"No declined or voted-down questions in {log_path}.")


def _counts(counter) -> str:
    return ", ".join(f"{key} {count}" for key, count in counter.most_common())


def _other_wordings(group: GapGroup) -> list[str]:
    wordings = sorted(set(group.questions) - {group.example})
    return wordings[:WORDINGS_SHOWN]


def _md_cell(text: str) -> str:
    # A visitor's words inside a table cell: no HTML, no cell break, no Markdown emphasis/link.
    escaped = html.escape(" ".join(text.split()), quote=False)
    for special in "\\|*_`[]":
        escaped = escaped.replace(special, "\\" + special)
    return escaped


def _inline(svg: str) -> str:
    """The SVG document without its XML declaration and DOCTYPE, to sit inside the HTML."""
    return svg[svg.index("<svg"):]


