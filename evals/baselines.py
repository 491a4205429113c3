"""The retrieval configurations compared on the same questions, in the same run.

ours              the product: hybrid dense + BM25 retrieval fused per paper (settings.fusion),
                  answered by our Answerer in the requested mode.
llamaindex-dense  a plain llama-index VectorStoreIndex (default in-memory vector store, dense
                  only) over the very same chunks and vectors of the same model (queries go
                  through a small BaseEmbedding adapter around our embedder); chunk hits
                  collapsed to papers.
bm25-only         our Retriever with fusion="bm25".

Every configuration is handed to the same Answerer as its retriever (a ConfigRetriever), so
follow-up resolution, numbering, abstention and the extractive composer are shared and the
answer-level metrics differ only by what was retrieved. Two details keep that fair:

* Abstention (with the corpus-vocabulary check) and the composer read each hit's dense
  similarity (cosine of the query and the best chunk). BM25 hits carry none, so it is filled
  in for the hits handed to the answerer (the query and those chunks embedded by the same
  model) — otherwise a BM25-only system would abstain on every question for want of a
  signal, which says nothing about BM25.
* A chunk-level top-k collapses to fewer than k papers when a paper has two chunks in it;
  the llama-index retriever therefore fetches 3 chunks per wanted paper before collapsing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from assistant.embeddings import Embedder
from assistant.retrieve import Retrieval, Retriever
from assistant.types import Hit

OURS = "ours"
LLAMAINDEX = "llamaindex-dense"
BM25 = "bm25-only"
CONFIGS = (OURS, LLAMAINDEX, BM25)
LABELS = {
    OURS: "ours (hybrid)",
    LLAMAINDEX: "llama-index dense",
    BM25: "BM25 only",
}
CHUNKS_PER_PAPER = 3  # chunk over-fetch before collapsing a dense chunk ranking to papers

SearchFn = Callable[[str, int], list[Hit]]


class EmbedderAdapter(BaseEmbedding):
    """llama-index view of an assistant Embedder (same vectors, same model, no prefixes)."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", getattr(embedder, "name", "assistant-embedder"))
        kwargs.setdefault("embed_batch_size", 64)
        super().__init__(**kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "AssistantEmbedderAdapter"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed(list(texts)).tolist()


class LlamaIndexDense:
    """A default llama-index VectorStoreIndex over the catalog's chunks.

    The chunk vectors are the ones our embedder wrote at ingest (read back from the index,
    keyed by chunk id) so the baseline does not spend a minute re-embedding identical texts;
    any chunk without a stored vector is embedded by llama-index through the adapter, as
    are the queries.
    """

    def __init__(self, index, embedder: Embedder) -> None:
        from llama_index.core import VectorStoreIndex
        from llama_index.core.schema import TextNode

        self.catalog = index.catalog
        rows = self.catalog.chunk_rows()
        stored = stored_vectors(index, [r[0] for r in rows])
        nodes = [
            TextNode(id_=cid, text=f"{title}\n{text}", metadata={"paper_id": pid},
                     embedding=stored.get(cid),
                     excluded_embed_metadata_keys=["paper_id"],
                     excluded_llm_metadata_keys=["paper_id"])
            for cid, pid, title, text in rows
        ]
        # embed_model passed explicitly: llama-index's global Settings stay untouched.
        self.index = VectorStoreIndex(nodes, embed_model=EmbedderAdapter(embedder))
        self.chunks = len(nodes)
        self.reused = len(stored)
        self._retrievers: dict[int, Any] = {}

    def search(self, query: str, k: int) -> list[Hit]:
        top = k * CHUNKS_PER_PAPER
        if top not in self._retrievers:
            self._retrievers[top] = self.index.as_retriever(similarity_top_k=top)
        best: dict[str, tuple[str, float]] = {}
        for nws in self._retrievers[top].retrieve(query):
            pid = nws.node.metadata["paper_id"]
            if pid not in best:
                text = nws.node.get_content()
                best[pid] = (text.split("\n", 1)[-1], float(nws.score or 0.0))
        ids = list(best)[:k]
        papers = self.catalog.papers(ids)
        return [
            Hit(paper_id=pid, title=papers[pid].title, abstract=papers[pid].abstract,
                snippet=best[pid][0], score=round(best[pid][1], 4),
                dense_score=round(best[pid][1], 4), rank=rank)
            for rank, pid in enumerate((p for p in ids if p in papers), start=1)
        ]


def stored_vectors(index, chunk_ids: list[str]) -> dict[str, list[float]]:
    """chunk id -> the vector stored in the index at ingest ({} when it cannot be read)."""
    out: dict[str, list[float]] = {}
    try:
        for i in range(0, len(chunk_ids), 500):
            got = index.collection.get(ids=chunk_ids[i : i + 500], include=["embeddings"])
            for cid, vec in zip(got["ids"], got["embeddings"], strict=True):
                out[cid] = [float(x) for x in vec]
    except Exception:  # noqa: BLE001 — fall back to embedding every chunk through the adapter
        return {}
    return out


def add_dense_scores(hits: list[Hit], query: str, embedder: Embedder) -> list[Hit]:
    """Fill a missing dense_score with the cosine of the query and the hit's best chunk."""
    missing = [h for h in hits if h.dense_score is None]
    if not missing:
        return hits
    vectors = embedder.embed([query] + [f"{h.title}\n{h.snippet}" for h in missing])
    sims = {h.paper_id: round(float(v @ vectors[0]), 4) for h, v in zip(missing, vectors[1:],
                                                                        strict=True)}
    return [h if h.dense_score is not None
            else h.model_copy(update={"dense_score": sims[h.paper_id]}) for h in hits]


class _OnProductCorpus:
    """What every configuration reads from the product's Retriever unchanged: the papers,
    their indexed text and the corpus vocabulary (abstention statistics)."""

    base: Retriever

    def papers(self, ids: list[str]) -> dict:
        return self.base.papers(ids)

    def texts_of(self, paper_ids) -> list[str]:
        return self.base.texts_of(paper_ids)

    @property
    def vocabulary(self):
        return self.base.vocabulary

    def corpus_version(self) -> int:
        return self.base.corpus_version()

    def corpus(self) -> list[tuple[str, str]]:
        return self.base.corpus()


class ConfigRetriever(_OnProductCorpus):
    """A baseline's search behind the interface the Answerer uses: the Retriever protocol
    (assistant/protocols.py: retrieve, search, papers, texts_of, vocabulary, corpus,
    embedder). It
    has no spelling correction and no title matching; the corpus statistics for abstention
    are the product's, so the answers differ only by what was retrieved."""

    def __init__(self, name: str, base: Retriever, search_fn: SearchFn, depth: int = 10,
                 description: str = "",
                 prepare: Callable[[str, list[Hit]], list[Hit]] | None = None) -> None:
        self.name = name
        self.base = base
        self.embedder = base.embedder
        self.settings = base.settings
        self.depth = depth
        self.description = description
        self._search = search_fn
        self._prepare = prepare

    def retrieve(self, query: str, k: int | None = None, exclude: frozenset[str] = frozenset(),
                 fusion: str | None = None) -> Retrieval:
        k = k or self.settings.top_k
        hits = [h for h in self._search(query, max(k, self.depth) + len(exclude))
                if h.paper_id not in exclude][:k]
        hits = self._prepare(query, hits) if self._prepare else hits
        return Retrieval(query, query, [], hits, [], frozenset(exclude))

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        return self.retrieve(query, k).hits

    def search_around(self, query: str, hits: list[Hit], k: int,
                      exclude: frozenset[str] = frozenset(), pinned: list[str] | None = None
                      ) -> list[Hit]:
        return hits[:k]  # a baseline is its search alone: no second, widened search


class Ours(_OnProductCorpus):
    """The product's Retriever, unchanged, with the name the report uses."""

    def __init__(self, base: Retriever) -> None:
        self.name = OURS
        self.base = base
        self.embedder = base.embedder
        self.settings = base.settings
        self.description = (f"our Retriever, fusion={base.settings.fusion} (hybrid dense + "
                            "BM25, title matching, spelling correction)")

    def retrieve(self, query: str, k: int | None = None, exclude: frozenset[str] = frozenset(),
                 fusion: str | None = None) -> Retrieval:
        return self.base.retrieve(query, k, exclude, fusion)

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        return self.base.search(query, k)

    def search_around(self, query: str, hits: list[Hit], k: int,
                      exclude: frozenset[str] = frozenset(), pinned: list[str] | None = None
                      ) -> list[Hit]:
        return self.base.search_around(query, hits, k, exclude, pinned)


def build_configs(base: Retriever, names: Sequence[str] = CONFIGS,
                  depth: int = 10) -> dict[str, ConfigRetriever | Ours]:
    """One ConfigRetriever per configuration name (the llama-index index is built here)."""
    out: dict[str, ConfigRetriever] = {}
    embedder = base.embedder
    for name in names:
        if name == OURS:
            out[name] = Ours(base)
        elif name == BM25:
            def bm25(q: str, k: int) -> list[Hit]:
                return base.search(q, k=k, fusion="bm25")

            def scored(q: str, hits: list[Hit]) -> list[Hit]:
                return add_dense_scores(hits, q, embedder)

            out[name] = ConfigRetriever(name, base, bm25, depth,
                                        'our Retriever, fusion="bm25" (keyword only)', scored)
        elif name == LLAMAINDEX:
            dense = LlamaIndexDense(base.index, embedder)
            out[name] = ConfigRetriever(
                name, base, dense.search, depth,
                f"llama-index VectorStoreIndex (SimpleVectorStore, default settings) over the "
                f"same {dense.chunks} chunks ({dense.reused} vectors reused from the index, "
                f"same model), as_retriever(similarity_top_k="
                f"{CHUNKS_PER_PAPER}×k) collapsed to papers")
        else:
            raise ValueError(f"unknown configuration {name!r}; expected one of {CONFIGS}")
    return out
