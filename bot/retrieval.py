"""Find the passages for a question: dense FAISS search, BM25, fused by reciprocal rank.

Both searches are LangChain retrievers (langchain_core's BaseRetriever) and the fusion is
langchain-classic's EnsembleRetriever (weighted reciprocal rank fusion), so other retrievers can
be swapped in. Scores travel in each Document's metadata.
"""
from __future__ import annotations

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

from bot.answer import RetrievedPassage
from bot.settings import Settings
from corpus.ingest import corpus_fingerprint, load_passages
from corpus.passage import Passage
from index.embedding import Embedder, load_embedder
from index.store import PassageIndex, open_index

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Dense candidates fetched before fusion: the whole corpus is small, so this covers it; on a big
# corpus a passage that only BM25 finds gets its dense score from this list or counts as 0.
_DENSE_CANDIDATES = 50


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased word tokens with a crude suffix strip, so 'cramps'/'cramping' meet 'cramp'."""
    tokens = []
    for word in _WORD.findall(text.lower()):
        for suffix in ("ing", "es", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        tokens.append(word)
    return tokens


def embedded_text(passage: Passage, include_section_title: bool) -> str:
    """The text a passage is indexed under (section title carried when configured)."""
    if include_section_title and passage.section:
        return f"{passage.section}: {passage.text}"
    return passage.text


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
        corpus = [bm25_tokens(embedded_text(p, True)) for p in passages]
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


class PassageRetriever:
    """Loads (or builds) the index once and answers queries with ranked passages."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._index: PassageIndex | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedding)
        return self._embedder

    def load(self, progress: bool = False, force_rebuild: bool = False) -> PassageIndex:
        with self._lock:
            if self._index is None or force_rebuild:
                self._index = self._open(progress, force_rebuild)
                self._make_retriever(self._index)
            return self._index

    def _open(self, progress: bool, force_rebuild: bool) -> PassageIndex:
        s = self.settings
        kwargs = dict(
            passages=lambda: load_passages(s.corpus),
            corpus_fingerprint=corpus_fingerprint(s.corpus),
            chunker_settings=s.corpus.model_dump(mode="json", exclude={"raw_dir", "sources_file", "glossary_file"}),
            embedder=self.embedder,
            embedding=s.embedding,
            index=s.index,
            progress=progress,
        )
        if force_rebuild:
            from index.store import build_index

            return build_index(s.index_dir, **kwargs)
        return open_index(s.index_dir, **kwargs)

    def _make_retriever(self, index: PassageIndex) -> None:
        self._dense = DenseRetriever(index=index, embedder=self.embedder)
        self._sparse = BM25PassageRetriever.build(index.passages)
        retrieval = self.settings.retrieval
        self._fusion = EnsembleRetriever(
            retrievers=[self._dense, self._sparse], weights=[0.5, 0.5], c=retrieval.rrf_k,
            id_key="position",
        )

    def search(self, query: str, k: int | None = None) -> tuple[list[RetrievedPassage], float]:
        """Top passages for `query` and the milliseconds it took (embedding + search + fusion)."""
        index = self.load()
        k = k or self.settings.retrieval.top_k
        started = time.perf_counter()
        dense_docs = self._dense.invoke(query)
        dense_scores = {d.metadata["position"]: d.metadata["dense_score"] for d in dense_docs}
        if self.settings.retrieval.mode == "hybrid":
            # Each retriever runs once; the ensemble only fuses their ranked lists.
            ranked = self._fusion.weighted_reciprocal_rank([dense_docs, self._sparse.invoke(query)])
        else:
            ranked = dense_docs
        results = []
        for rank, doc in enumerate(ranked[:k]):
            position = doc.metadata["position"]
            dense = dense_scores.get(position, 0.0)
            # Rank order is what matters; for fused lists expose a monotone score in (0, 1].
            score = dense if self.settings.retrieval.mode == "dense" else 1.0 / (1 + rank)
            results.append(RetrievedPassage(index.passages[position], score=score, dense_score=dense))
        return results, (time.perf_counter() - started) * 1000

    def best_dense_score(self, results: list[RetrievedPassage]) -> float:
        return max((r.dense_score for r in results), default=0.0)
