"""Retrieved passages reordered by the kind of answer the question asks for.

"What helps calf cramps at night?" shares "night" and "calves" with every passage of the source's
"Causes of night pain in the calves" section, and nothing with its "What to do about calf muscle
cramps" section, which never says "night": hybrid retrieval ranks the seven cause passages first
and the advice 0.2 lower, below the context margin, so the answer listed causes. A question's kind
(bot/intents.py) is no word a retriever matches, so a wider pool of candidates is reordered
here: each passage gains retrieval.intent_weight times the share of its units that give the
asked kind of answer. No library reranker fits: no cross-encoder ships in a PyPI wheel (README,
"Evaluation"), and LangChain's document compressors rerank with such a model or an LLM call.
"""
from __future__ import annotations

import dataclasses
import re

from bot.answer import RetrievedPassage
from bot.compose import passage_units

# Candidates reordered per passage finally kept: the advice above sat at ranks 8-14 of 14.
POOL_FACTOR = 3


def intent_share(result: RetrievedPassage, cues: list[re.Pattern[str]]) -> float:
    """The share of the passage's units that give the kind of answer `cues` stand for."""
    units = passage_units(result.passage)
    if not units:
        return 0.0
    return sum(any(cue.search(unit) for cue in cues) for unit in units) / len(units)


def prefer_intent(results: list[RetrievedPassage], cues: list[re.Pattern[str]], k: int,
                  weight: float) -> list[RetrievedPassage]:
    """`k` of `results`: retrieval's best as it is, then the rest by their score plus what they
    gain for the asked kind of answer; `results[:k]` when the question asks for no particular
    kind. Retrieval's best stays because it holds the question's topic: "calves cramp after
    training, what to do?" is answered inside a cause passage ("It is therefore important to
    increase the load on the legs gradually"), which passages of general advice (herbal teas,
    valerian) would push out. The dense score, which the gate reads, is kept."""
    if not cues or not weight:
        return results[:k]
    kept = results[:1]
    boosted = []
    for result in results[1:]:
        boost = weight * intent_share(result, cues)
        boosted.append(dataclasses.replace(result, score=result.score + boost, intent_boost=boost))
    return kept + sorted(boosted, key=lambda r: r.score, reverse=True)[:k - len(kept)]
