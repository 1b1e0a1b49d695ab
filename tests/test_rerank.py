"""Retrieved passages reordered by the kind of answer asked for (bot/rerank.py)."""
from __future__ import annotations

from bot.answer import RetrievedPassage
from bot.intents import reorder_cues
from bot.rerank import prefer_intent
from corpus.passage import Passage


def _result(pid: str, text: str, score: float) -> RetrievedPassage:
    passage = Passage(id=pid, source="t.txt", title="Test", section="S", text=text,
                      raw_start=0, raw_end=len(text), original=text)
    return RetrievedPassage(passage, score=score, dense_score=score - 0.3)


CAUSES = [_result(f"c{n}", f"Cause number {n} of night cramps. It leads to a lack of salts.",
                  1.0 - n / 100) for n in range(6)]
ADVICE = _result("a", "It is recommended to use herbal teas. Gently stroke the cramped limb.", 0.8)


def test_advice_asked_for_rises_above_causes_that_share_the_question_words():
    cues = reorder_cues("what helps calf cramps at night")
    kept = prefer_intent([*CAUSES, ADVICE], cues, k=6, weight=0.25)
    assert [r.passage.id for r in kept[:2]] == ["c0", "a"]  # retrieval's best stays first
    advice = kept[1]
    assert advice.intent_boost == 0.25 and advice.retrieval_score == 0.8
    assert advice.dense_score == ADVICE.dense_score  # the gate reads what retrieval found


def test_a_question_that_asks_why_keeps_retrieval_order():
    results = [*CAUSES, ADVICE]
    assert reorder_cues("Why do my calves cramp at night?") == []
    kept = prefer_intent(results, reorder_cues("Why do my calves cramp at night?"), k=6, weight=0.25)
    assert kept == results[:6]
    assert prefer_intent(results, reorder_cues("what helps?"), k=6, weight=0.0) == results[:6]
