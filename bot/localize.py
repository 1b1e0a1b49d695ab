"""A composed answer in the reply's language, rendered from the checked English answer.

The English answer is what was composed and checked against the sources; its reply in another
language is made sentence by sentence: each source sentence is looked up in the translation
memory (bot/translation.py, renderings made once and checked by bot/translation_check.py), and
the sentence's own `[n]` markers are put back on its rendering, so every claim keeps the
citations it had. A sentence without a rendering that passes stays English; when more than
`max_untranslated` of the sentences stay English, the reply is the English answer after a
one-line note in the reply's language. The model's lead, when there is one, is rendered at
request time by `render_lead` and checked the same way.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bot import texts
from bot.answer import Answer, Citation, Rendered
from bot.citations import AnswerSentence, join_sentences, parse_citations, split_answer, with_markers
from bot.translation import TranslationMemory, card_sentences, sentence_key

# (English sentence) -> (its rendering, what its checks found wrong)
LeadRenderer = Callable[[str], tuple[str, list[str]]]


def localize_answer(answer: Answer, memory: TranslationMemory, *, has_lead: bool,
                    render_lead: LeadRenderer | None = None, max_untranslated: float = 0.34
                    ) -> tuple[Answer, list[str]]:
    """`answer` (English, composed) with its body in `memory.lang`; also the source sentences
    the memory has nothing for, to be rendered later."""
    lang, english = memory.lang, answer.text
    pieces = split_answer(english)
    shown: list[AnswerSentence] = []
    kept_english, lead, missing = 0, "none", []
    for index, piece in enumerate(pieces):
        sentence, numbers = parse_citations(piece.text)
        if index == 0 and has_lead:
            rendered, problems = render_lead(sentence) if render_lead else ("", ["not rendered"])
            rendered = "" if problems else rendered
            lead = "rendered" if rendered else "english"
        else:
            rendered = memory.rendering(sentence) or ""
            if not rendered and memory.missing([sentence]):
                missing.append(sentence_key(sentence))
        kept_english += not rendered
        text = with_markers(rendered, numbers) if rendered else piece.text
        shown.append(dataclasses.replace(piece, text=text))
    note = bool(pieces) and kept_english / len(pieces) > max_untranslated
    body = (f"{texts.t('ANSWER_IN_ENGLISH', lang)}\n\n{english}" if note
            else join_sentences(shown))
    citations = english_citations = answer.citations
    if not note:
        citations = [card_translated(c, memory) for c in english_citations]
    localized = dataclasses.replace(
        answer, text=body, checked_text=english, citations=citations,
        rendered=Rendered(lang, len(pieces), kept_english, lead, note))
    return localized, missing


def card_translated(citation: Citation, memory: TranslationMemory) -> Citation:
    """The citation with its highlighted sentence's rendering, when every sentence of it has one
    that passes (a half-translated highlight would be read as the whole of it)."""
    renderings = [memory.rendering(s) for s in card_sentences(citation.supporting_sentence)]
    if not renderings or not all(renderings):
        return citation
    return dataclasses.replace(citation, supporting_translation=" ".join(renderings))
