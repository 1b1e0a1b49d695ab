"""Find the passages for a question: dense FAISS search, BM25, fused by reciprocal rank.

Both searches are LangChain retrievers (langchain_core's BaseRetriever) and the fusion is
langchain-classic's EnsembleRetriever (weighted reciprocal rank fusion), so other retrievers can
be swapped in. Scores travel in each Document's metadata.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from typing import Any

from langchain_classic.retrievers import EnsembleRetriever
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from rank_bm25 import BM25Okapi
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from bot.answer import RetrievedPassage
from bot.settings import Settings
from corpus.ingest import chunker_settings, corpus_fingerprint, corpus_stamp, load_passages
from corpus.errors import CorpusError
from corpus.passage import Passage
from index.embedding import Embedder, load_embedder
from index.store import PassageIndex, embedding_text, open_index

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Function words carry no topic: "why" would otherwise pull every "Why the calves cramp" section.
# scikit-learn's list is written for documents; people's questions add verbs and fillers that
# say nothing about cramps ("can a bad back make...", "what can I do right when..."), and BM25
# rewarded the passages that happened to use them (dev paraphrase MRR 0.833 -> 0.883, fresh
# hit@3 0.905 -> 0.929 without them; README "Evaluation").
_CONVERSATIONAL = frozenset(
    "make makes made lot lots get gets getting got really right want wants need "
    "needs just go goes going thing things way keep keeps help helps use take try like feel "
    "know tell anything something say good ok okay".split()
)
_STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | _CONVERSATIONAL
# Dense candidates fetched before fusion: the whole corpus is small, so this covers it; on a big
# corpus a passage that only BM25 finds gets its dense score from this list or counts as 0.
_DENSE_CANDIDATES = 50
ALSO_DISCOUNT = 0.05


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased content words, light-stemmed so 'cramps'/'cramping'/'cramped' meet 'cramp'."""
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOP_WORDS]


def _stem(word: str) -> str:
    """Plural and -ed/-ing endings off, then a final "e" (so "cause"/"caused"/"causes" agree).

    The first steps of Porter's stemmer, written out (about ten lines) rather than adding a
    stemming package: the corpus is small, English, and only needs its inflections to meet.
    """
    if len(word) <= 3:
        return word
    if word.endswith("lves"):
        word = word[:-3] + "f"  # calves -> calf
    elif word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "er"):
        stem = word[: -len(suffix)]
        # "-er" too ("swimmers" -> "swim", "older" -> "old"); it also cuts "water" to "wat", which
        # is harmless because both sides of the match are cut the same way.
        if word.endswith(suffix) and len(stem) >= 3 and any(c in "aeiouy" for c in stem):
            word = stem[:-1] if stem[-1] == stem[-2] and stem[-1] not in "aeiouls" else stem
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word



class DenseRetriever(BaseRetriever):
    """Cosine search in the FAISS index."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    index: Any
    embedder: Any
    k: int = _DENSE_CANDIDATES

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        vector = self.embedder.embed([query])
        hits = self.index.search(vector, min(self.k, len(self.index.passages)))[0]
        return [
            Document(page_content=self.index.passages[pos].text,
                     metadata={"position": pos, "dense_score": float(score)})
            for pos, score in hits
        ]


class BM25PassageRetriever(BaseRetriever):
    """BM25 over passage text and section title (rank_bm25's Okapi BM25)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    passages: list[Passage]
    bm25: Any
    k: int = _DENSE_CANDIDATES

    @classmethod
    def build(cls, passages: list[Passage], k: int = _DENSE_CANDIDATES) -> "BM25PassageRetriever":
        corpus = [bm25_tokens(embedding_text(p, True)) for p in passages]
        return cls(passages=passages, bm25=BM25Okapi(corpus), k=k)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        scores = self.bm25.get_scores(bm25_tokens(query))
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: self.k]
        return [
            Document(page_content=self.passages[i].text,
                     metadata={"position": i, "bm25_score": float(scores[i])})
            for i in order
            if scores[i] > 0
        ]


def fuse_scores(dense_docs: list[Document], sparse_docs: list[Document], bm25_weight: float
                ) -> list[tuple[int, float]]:
    """(position, dense cosine + bm25_weight * BM25 / best BM25), best first.

    Score fusion rather than reciprocal rank fusion (langchain-classic's EnsembleRetriever, still
    available as retrieval.fusion="rrf"): most questions share "leg" and "cramp" with every
    passage, so BM25's ranking below its top few is noise, and RRF weighs that noise as much as
    a confident dense ranking. Scaled by its best score, BM25 adds up to `bm25_weight` where its
    words really match and little elsewhere. Measured on evals/sets/dev.jsonl, see the README.
    """
    dense = {d.metadata["position"]: d.metadata["dense_score"] for d in dense_docs}
    sparse = {d.metadata["position"]: d.metadata["bm25_score"] for d in sparse_docs}
    best_sparse = max(sparse.values(), default=0.0)
    # A passage only BM25 found gets the lowest dense score seen, not 0 (it was merely ranked
    # below the dense candidates, which on this corpus never happens: they cover every passage).
    floor = min(dense.values(), default=0.0)
    fused = {
        position: dense.get(position, floor)
        + (bm25_weight * sparse.get(position, 0.0) / best_sparse if best_sparse > 0 else 0.0)
        for position in dense.keys() | sparse.keys()
    }
    return sorted(fused.items(), key=lambda item: -item[1])


class PassageRetriever:
    """Loads (or builds) the index once and answers queries with ranked passages."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._index: PassageIndex | None = None
        self._stamp: tuple | None = None  # corpus_stamp of the sources self._index was opened for
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedding)
        return self._embedder

    def load(self, progress: bool = False, force_rebuild: bool = False) -> PassageIndex:
        """The index, opened again when its sources changed since it was opened (a clinic's
        `crampbot sources add` or `remove` while the server runs): a running server answers
        from the new leaflet without a restart. Looking costs a few `stat` calls."""
        with self._lock:
            try:
                stamp = corpus_stamp(self.settings.corpus)
            except CorpusError:  # the folder went away under a running server: keep what it has
                stamp = self._stamp if self._index is not None else None
            if self._index is None or force_rebuild or stamp != self._stamp:
                if self._index is not None and not force_rebuild:
                    log.info("the sources changed since the index was opened; opening it again")
                self._index = self._open(progress, force_rebuild)
                self._stamp = stamp
                self._make_retriever(self._index)
            return self._index

    def _open(self, progress: bool, force_rebuild: bool) -> PassageIndex:
        s = self.settings
        kwargs = dict(
            passages=lambda: load_passages(s.corpus),
            corpus_fingerprint=corpus_fingerprint(s.corpus),
            chunker_settings=chunker_settings(s.corpus),
            embedder=self.embedder,
            embedding=s.embedding,
            index=s.index,
            progress=progress,
        )
        if force_rebuild:
            from index.store import build_index

            return build_index(s.index_dir, **{**kwargs, "passages": load_passages(s.corpus)})
        return open_index(s.index_dir, **kwargs)

    def _make_retriever(self, index: PassageIndex) -> None:
        self._dense = DenseRetriever(index=index, embedder=self.embedder)
        self._sparse = BM25PassageRetriever.build(index.passages)
        retrieval = self.settings.retrieval
        self._fusion = EnsembleRetriever(
            retrievers=[self._dense, self._sparse],
            weights=[retrieval.dense_weight, 1 - retrieval.dense_weight], c=retrieval.rrf_k,
            id_key="position",
        )

    def search(self, query: str, k: int | None = None) -> tuple[list[RetrievedPassage], float]:
        """Top passages for `query` and the milliseconds it took (embedding + search + fusion)."""
        index = self.load()
        retrieval = self.settings.retrieval
        k = k or retrieval.top_k
        started = time.perf_counter()
        dense_docs = self._dense.invoke(query)
        dense_scores = {d.metadata["position"]: d.metadata["dense_score"] for d in dense_docs}
        if retrieval.mode == "dense":
            ranked = [(d.metadata["position"], d.metadata["dense_score"]) for d in dense_docs]
        elif retrieval.fusion == "rrf":
            # Each retriever runs once; the ensemble only fuses their ranked lists.
            fused = self._fusion.weighted_reciprocal_rank([dense_docs, self._sparse.invoke(query)])
            # Rank order is all RRF gives; expose a monotone score in (0, 1].
            ranked = [(d.metadata["position"], 1.0 / (1 + r)) for r, d in enumerate(fused)]
        else:
            ranked = fuse_scores(dense_docs, self._sparse.invoke(query), retrieval.bm25_weight)
        results = [
            RetrievedPassage(index.passages[position], score=score,
                             dense_score=dense_scores.get(position, 0.0))
            for position, score in ranked[:k]
        ]
        return results, (time.perf_counter() - started) * 1000

    def search_all(self, queries: tuple[str, ...] | list[str], k: int | None = None
                   ) -> tuple[list[RetrievedPassage], float]:
        """Top passages for any of `queries` (a follow-up with and without the previous
        question): each passage at its best score over them, the milliseconds of all searches.
        Scores of one fusion method over one index compare across queries; the first query is
        the main one, the others' scores pay ALSO_DISCOUNT (a follow-up's own words alone, "which
        doctor should I see?", also find "doctors separate this phenomenon...")."""
        k = k or self.settings.retrieval.top_k
        best: dict[str, RetrievedPassage] = {}
        total_ms = 0.0
        for number, query in enumerate(dict.fromkeys(queries)):
            results, ms = self.search(query, k)
            total_ms += ms
            if number:
                results = [dataclasses.replace(r, score=r.score - ALSO_DISCOUNT) for r in results]
            for result in results:
                kept = best.get(result.passage.id)
                if kept is None or result.score > kept.score:
                    best[result.passage.id] = result
        ranked = sorted(best.values(), key=lambda r: r.score, reverse=True)
        return ranked[:k], total_ms

    def following(self, passages: list[Passage]) -> list[Passage | None]:
        """Each passage's successor in its source and section (the chunk after it), or None."""
        index = self.load()
        out: list[Passage | None] = []
        for passage in passages:
            later = [p for p in index.passages if p.source == passage.source
                     and p.section == passage.section and p.raw_start > passage.raw_start]
            out.append(min(later, key=lambda p: p.raw_start, default=None))
        return out

    def relevance(self, results: list[RetrievedPassage]) -> float:
        """The gate's signal: how well the best passage matches (calibrated by `crampbot calibrate`)."""
        return max((r.dense_score for r in results), default=0.0)

    best_dense_score = relevance  # the name the pipeline used first
