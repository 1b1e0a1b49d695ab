"""Hybrid retrieval on the real corpus and index, its fusion, and the gate's calibration."""
from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document

from bot.calibrate import calibrate_gate, choose_threshold, decline_curve
from bot.query import search_query
from bot.retrieval import PassageRetriever, bm25_tokens, fuse_scores
from evals.dataset import GoldQuote
from evals.metrics import first_hit_rank

RAW_000 = "000_7043fe233292e3e7.txt"
RAW_002 = "002_155f91860faa0152.txt"
CAFFEINE = [GoldQuote(RAW_002, "When consuming in a day more than 5 cups of strong tea or coffee")]
SWIMMING = [GoldQuote(RAW_000, "This is due to narrowing of the blood vessels.")]
ELDERLY = [GoldQuote(RAW_002, "Old age. Slow metabolism, lack of glucose, incipient Parkinson's"),
           GoldQuote(RAW_002, "Such is more often heard from the elderly")]


def with_retrieval(settings, **changes):
    return settings.model_copy(update={"retrieval": settings.retrieval.model_copy(update=changes)})


def test_bm25_tokens_drop_function_words_and_meet_across_inflections():
    assert bm25_tokens("Why do my calves start cramping?") == ["calf", "start", "cramp"]
    assert bm25_tokens("swimming swimmers older") == ["swim", "swim", "old"]
    assert bm25_tokens("causes caused cause") == ["caus", "caus", "caus"]


def doc(position, **scores):
    return Document(page_content=str(position), metadata={"position": position, **scores})


def test_bm25_ignores_the_verbs_and_fillers_of_a_spoken_question():
    # Only the topic words count, however the question is phrased around them.
    assert bm25_tokens("what can I do right when my calf knots up") == ["calf", "knot"]
    assert bm25_tokens("can a bad back really make my calves cramp") == ["bad", "calf", "cramp"]
    assert bm25_tokens("I need to know if it would help to take magnesium") == ["magnesium"]


def test_score_fusion_keeps_a_confident_dense_match_above_bm25_noise():
    dense = [doc(0, dense_score=0.85), doc(1, dense_score=0.50), doc(2, dense_score=0.48)]
    sparse = [doc(2, bm25_score=2.1), doc(1, bm25_score=2.0)]  # generic words, weak matches
    ranked = fuse_scores(dense, sparse, bm25_weight=0.3)
    # Reciprocal rank fusion would put 2 and 1 (in both lists) above 0; the scores keep 0 first.
    assert [position for position, _ in ranked] == [0, 1, 2]
    assert ranked[2][1] == pytest.approx(0.48 + 0.3)


def test_score_fusion_lets_a_strong_word_match_decide_a_close_call():
    dense = [doc(0, dense_score=0.70), doc(1, dense_score=0.66)]
    sparse = [doc(1, bm25_score=9.0), doc(0, bm25_score=1.0)]
    assert [p for p, _ in fuse_scores(dense, sparse, bm25_weight=0.3)] == [1, 0]


@pytest.mark.parametrize("question, gold", [
    ("Can coffee cause calf cramps?", CAFFEINE),
    ("Why do I get leg cramps when swimming?", SWIMMING),
    ("why do old people get cramps in bed", ELDERLY),
])
def test_hybrid_retrieval_finds_the_passage(fake_settings, shared_retriever, question, gold):
    results, ms = shared_retriever.search(search_query(question, [], fake_settings).text)
    assert len(results) == fake_settings.retrieval.top_k and ms > 0
    assert first_hit_rank(results, gold) is not None and first_hit_rank(results, gold) <= 3
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


@pytest.mark.parametrize("mode, fusion", [("dense", "score"), ("hybrid", "rrf")])
def test_other_modes_still_rank_the_obvious_question(fake_settings, shared_retriever, embedder,
                                                     mode, fusion):
    retriever = PassageRetriever(with_retrieval(fake_settings, mode=mode, fusion=fusion),
                                 embedder=embedder)
    results, _ = retriever.search("When you drink more than 5 cups of strong tea or coffee a day")
    assert first_hit_rank(results, CAFFEINE) == 1


def test_gate_signal_separates_a_cramp_question_from_an_unrelated_one(fake_settings,
                                                                      shared_retriever):
    threshold = fake_settings.retrieval.gate_threshold

    def signal(question: str) -> float:
        results, _ = shared_retriever.search(search_query(question, [], fake_settings).text)
        return shared_retriever.relevance(results)

    assert signal("what is the capital of australia") < threshold
    assert signal("как лечить насморк у ребенка") < threshold
    assert signal("leg cramp at nite why") >= threshold
    assert signal("почему сводит икры ночью") >= threshold


# -- calibration --------------------------------------------------------------------------------
def test_threshold_declines_most_out_of_scope_within_the_in_scope_budget():
    curve = decline_curve(answerable=[0.5, 0.6, 0.7, 0.8], unanswerable=[0.1, 0.2, 0.3, 0.55])
    choice = choose_threshold(curve, max_in_scope_decline=0.25)
    # Declining 0.55 would cost the answerable 0.5 (25% allowed): best is all four declined.
    assert choice["out_of_scope_declined"] == 1.0
    assert choice["in_scope_declined"] == 0.25
    assert 0.55 < choice["threshold"] <= 0.6
    strict = choose_threshold(curve, max_in_scope_decline=0.0)
    assert strict["in_scope_declined"] == 0.0 and strict["out_of_scope_declined"] == 0.75
    assert strict["threshold"] == pytest.approx((0.3 + 0.5) / 2, abs=0.01)


def test_calibrate_writes_the_curve_and_the_choice(fake_settings, shared_retriever, tmp_path):
    cases = [("in-1", "Why do my calves cramp at night?", "in_scope"),
             ("in-2", "Can coffee cause calf cramps?", "in_scope"),
             ("out-1", "what is the capital of australia", "out_of_scope"),
             ("out-2", "write me a short poem about autumn", "out_of_scope"),
             ("flag", "my calf is swollen, red and hot", "red_flag")]
    set_path = tmp_path / "set.jsonl"
    set_path.write_text("\n".join(json.dumps({"id": i, "question": q, "category": c})
                                  for i, q, c in cases), encoding="utf-8")
    result = calibrate_gate(set_path, fake_settings, tmp_path / "out", retriever=shared_retriever)
    assert result["in_scope_cases"] == 2 and result["out_of_scope_cases"] == 2
    assert result["in_scope_declined"] == 0.0 and result["out_of_scope_declined"] == 1.0
    written = json.loads((tmp_path / "out" / "gate.json").read_text(encoding="utf-8"))
    assert written["threshold"] == result["threshold"]
    assert written["configured"]["threshold"] == fake_settings.retrieval.gate_threshold
    assert written["configured"]["out_of_scope_declined"] == 1.0
    assert (tmp_path / "out" / "gate_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_ingest_rebuilds_the_index_from_the_corpus(tmp_path, fake_settings, embedder):
    # `crampbot ingest` forces a rebuild; it once handed the corpus loader itself, not its passages.
    settings = fake_settings.model_copy(update={"data_dir": tmp_path})
    index = PassageRetriever(settings, embedder=embedder).load(force_rebuild=True)
    assert len(index.passages) > 20 and index.manifest.file_sha256
    assert PassageRetriever(settings, embedder=embedder).load().manifest == index.manifest
