"""The chat's HTML: a user's message, a streaming draft and a final Answer with source cards.

Pure functions, no Gradio: the web chat (app.py) and the future widget view show what these
return. Every string that comes from a user, the model or the corpus is HTML-escaped here, so a
`<script>` in a message or a passage is shown as text; only the tags written in this module
reach the page. Each fragment is a single line of HTML, because the chat renders messages as
Markdown: a raw-HTML block there ends at a blank line, and indented lines become code blocks.
"""
from __future__ import annotations

import html
import re

from bot import texts
from bot.answer import Answer, Citation

# Labels of the chat page itself (not assistant replies); their wording in every language is in
# bot/locales/*.json. The constants are the English ones; the functions take a `lang`.
SEARCHING = texts.t("SEARCHING")
WRITING = texts.t("WRITING")
CHECKING = texts.t("CHECKING")
SOURCES = texts.t("SOURCES")
ORIGINAL_WORDING = texts.t("ORIGINAL_WORDING")
# Each badge names what the code checked, no more: word overlap and meaning similarity with the
# cited passage, and no number, negation or opposite the passage lacks. It does not prove a claim.
VERIFIED_BADGE = texts.t("VERIFIED_BADGE")
VERIFIED_BADGE_TITLE = texts.t("VERIFIED_BADGE_TITLE")
EXTRACTIVE_BADGE = texts.t("EXTRACTIVE_BADGE")
EXTRACTIVE_BADGE_TITLE = texts.t("EXTRACTIVE_BADGE_TITLE")
LEAD_BADGE = texts.t("LEAD_BADGE")
LEAD_BADGE_TITLE = texts.t("LEAD_BADGE_TITLE")
NO_SECTION = texts.t("NO_SECTION")

_CITATION_MARKER = re.compile(r"\[(\d+)\]")

# Styles for the classes below; app.py passes this to Gradio's launch (Gradio 6 takes CSS there).
CHAT_CSS = """
.cb-reply, .cb-user { line-height: 1.5; }
.cb-answer { margin: 0 0 .5em 0; }
.cb-answer.cb-urgent { border-left: 4px solid #c62828; padding: .4em .7em; background: rgba(198,40,40,.08); font-weight: 600; }
.cb-answer.cb-declined, .cb-answer.cb-error { border-left: 4px solid var(--border-color-primary); padding: .2em .7em; }
.cb-cite { font-size: .75em; font-weight: 600; color: var(--color-accent); white-space: nowrap; }
.cb-badges { margin: .2em 0 .5em 0; }
.cb-badge { display: inline-block; font-size: .75em; padding: .05em .6em; margin-right: .4em; border-radius: 999px; border: 1px solid var(--border-color-primary); color: var(--body-text-color-subdued); }
.cb-badge.cb-verified { border-color: #2e7d32; color: #2e7d32; }
.cb-status { color: var(--body-text-color-subdued); font-style: italic; }
.cb-draft-note { font-size: .8em; color: var(--body-text-color-subdued); font-style: italic; }
.cb-sources { margin-top: .6em; }
.cb-sources-title { font-size: .8em; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; color: var(--body-text-color-subdued); margin-bottom: .3em; }
.cb-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5em .7em; margin: .4em 0; background: var(--background-fill-secondary); font-size: .9em; }
.cb-card-head { font-weight: 600; }
.cb-card-num { color: var(--color-accent); margin-right: .3em; }
.cb-card-section { display: block; font-weight: 400; font-size: .85em; font-style: italic; }
.cb-passage { margin: .35em 0; }
.cb-passage mark { background: rgba(255, 213, 79, .55); color: inherit; padding: 0 .1em; border-radius: 2px; }
.cb-translation { margin: .35em 0; padding-left: .6em; border-left: 3px solid rgba(255, 213, 79, .9); }
.cb-translation-label { font-size: .8em; color: var(--body-text-color-subdued); font-style: italic; }
.cb-original summary { cursor: pointer; font-size: .85em; color: var(--body-text-color-subdued); }
.cb-original-text { font-style: italic; margin-top: .3em; }
.cb-disclaimer { margin-top: .7em; padding: .4em .6em; border-radius: 6px; background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); font-size: .85em; color: var(--body-text-color); }
"""


def escape_text(text: str) -> str:
    """Text shown literally: HTML-escaped, line breaks kept as <br> (one line of HTML)."""
    escaped = html.escape(text.strip(), quote=True)
    return re.sub(r"\r\n|\r|\n", "<br>", escaped)


def render_user_message(message: str) -> str:
    """The user's own words, exactly as typed, never interpreted as HTML or Markdown."""
    return f'<div class="cb-user">{escape_text(message)}</div>'


def render_status(text: str) -> str:
    """A progress line while nothing of the answer exists yet ("Loading the model...")."""
    return f'<div class="cb-reply"><div class="cb-status">{escape_text(text)}</div></div>'


def render_draft(draft: str, disclaimer: str, status: str | None = None, lang: str = "en") -> str:
    """The model's unverified text as it streams, marked as a draft, disclaimer already below."""
    parts = ['<div class="cb-reply">']
    if status:
        parts.append(f'<div class="cb-status">{escape_text(status)}</div>')
    parts.append(f'<div class="cb-answer cb-draft">{escape_text(draft)}</div>')
    parts.append(f'<div class="cb-draft-note">{escape_text(texts.t("CHECKING", lang))}</div>')
    parts.append(render_disclaimer(disclaimer))
    parts.append("</div>")
    return "".join(parts)


def render_answer(answer: Answer) -> str:
    """The final reply: answer text with citation marks, badges, source cards, disclaimer."""
    kind = ("cb-urgent" if answer.red_flag else "cb-error" if answer.error
            else "cb-declined" if answer.declined else "cb-grounded")
    numbers = {citation.number for citation in answer.citations}
    parts = [
        '<div class="cb-reply">',
        f'<div class="cb-answer {kind}">{_with_citation_marks(answer.text, numbers)}</div>',
        render_badges(answer),
    ]
    if answer.citations:
        parts.append(render_sources(answer.citations, answer.lang))
    parts.append(render_disclaimer(answer.disclaimer))
    parts.append("</div>")
    return "".join(parts)


def render_badges(answer: Answer) -> str:
    """Small pills that say how the answer was made and what was checked; green only when every
    model-written sentence passed its check."""
    badges, lang = [], answer.lang
    if answer.citations and answer.composed and not answer.extractive:
        badges.append(_badge("cb-verified", texts.t("LEAD_BADGE", lang),
                             texts.t("LEAD_BADGE_TITLE", lang)))
    elif answer.citations and not answer.extractive and answer.verified_fraction is not None:
        percent = round(100 * answer.verified_fraction)
        kind = "cb-verified" if percent == 100 else "cb-partly"
        badges.append(_badge(kind, texts.t("VERIFIED_BADGE", lang).format(percent=percent),
                             texts.t("VERIFIED_BADGE_TITLE", lang)))
    if answer.extractive or (answer.composed and answer.citations):
        badges.append(_badge("cb-extractive", texts.t("EXTRACTIVE_BADGE", lang),
                             texts.t("EXTRACTIVE_BADGE_TITLE", lang)))
    if answer.rendered is not None and not answer.rendered.english_note and answer.citations:
        badges.append(_badge("cb-translated", texts.t("TRANSLATED_BADGE", lang),
                             texts.t("TRANSLATED_BADGE_TITLE", lang)))
    return f'<div class="cb-badges">{"".join(badges)}</div>' if badges else ""


def _badge(kind: str, label: str, title: str) -> str:
    return (f'<span class="cb-badge {kind}" title="{html.escape(title)}">'
            f"{escape_text(label)}</span>")


def render_sources(citations: list[Citation], lang: str = "en") -> str:
    cards = "".join(render_source_card(citation, lang) for citation in citations)
    title = escape_text(texts.t("SOURCES", lang))
    return f'<div class="cb-sources"><div class="cb-sources-title">{title}</div>{cards}</div>'


def render_source_card(citation: Citation, lang: str = "en") -> str:
    """One cited passage: number, source title (a link to the source's page when it has one),
    section and page, who reviewed it and when, text with the supporting sentence highlighted,
    and the raw (machine-translated) wording behind a disclosure."""
    from corpus.library import card_link, card_page, card_review

    passage = citation.passage
    section, wording = passage.section or texts.t("NO_SECTION", lang), texts.t("ORIGINAL_WORDING", lang)
    title = escape_text(passage.title)
    if card_link(passage):  # only http(s) addresses become links
        title = (f'<a href="{html.escape(card_link(passage), quote=True)}" target="_blank" '
                 f'rel="noopener">{title}</a>')
    where = " · ".join(part for part in (section, card_page(passage, lang)) if part)
    review = card_review(passage, lang)
    head = (
        f'<div class="cb-card-head"><span class="cb-card-num">[{citation.number}]</span>'
        f'<span class="cb-card-title">{title}</span>'
        f'<span class="cb-card-section">{escape_text(where)}</span>'
        + (f'<span class="cb-card-section cb-card-review">{escape_text(review)}</span>'
           if review else "")
        + "</div>"
    )
    text = highlight_sentence(passage.text, citation.supporting_sentence)
    translation = ""
    if citation.supporting_translation:  # the highlighted sentence for a reader of `lang`
        translation = (
            f'<div class="cb-translation" lang="{html.escape(texts.language(lang))}">'
            f'<span class="cb-translation-label">{escape_text(texts.t("CARD_TRANSLATION", lang))}:'
            f'</span> {escape_text(citation.supporting_translation)}</div>')
    original = (
        f'<details class="cb-original"><summary>{escape_text(wording)}</summary>'
        f'<div class="cb-original-text">{escape_text(passage.original)}</div></details>'
    )
    return (f'<div class="cb-card">{head}<div class="cb-passage">{text}</div>{translation}'
            f'{original}</div>')


def highlight_sentence(text: str, sentence: str) -> str:
    """`text` escaped, with `sentence` wrapped in <mark> where it occurs (whitespace and case
    may differ); unchanged when the sentence is empty or not found."""
    text, words = text.strip(), sentence.split()
    if not words:
        return escape_text(text)
    found = re.search(r"\s+".join(map(re.escape, words)), text, flags=re.IGNORECASE)
    if found is None:
        return escape_text(text)
    before, match, after = text[: found.start()], found.group(0), text[found.end():]
    # Escape each piece separately so the <mark> tags are the only markup added.
    return (f"{_escape_inline(before)}<mark>{_escape_inline(match)}</mark>"
            f"{_escape_inline(after)}")


def render_disclaimer(disclaimer: str) -> str:
    return f'<div class="cb-disclaimer">{escape_text(disclaimer)}</div>'


def _with_citation_marks(text: str, numbers: set[int]) -> str:
    """Escaped text in which each [n] that refers to a shown source is styled as a citation."""
    def mark(found: re.Match) -> str:
        if int(found.group(1)) not in numbers:
            return found.group(0)
        return f'<sup class="cb-cite">[{found.group(1)}]</sup>'

    return _CITATION_MARKER.sub(mark, escape_text(text))


def _escape_inline(text: str) -> str:
    # Like escape_text but without stripping: the pieces around a highlight keep their spaces.
    return re.sub(r"\r\n|\r|\n", "<br>", html.escape(text, quote=True))
