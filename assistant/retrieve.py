"""Hybrid retrieval: dense (Chroma via llama-index) + BM25, fused per paper.

Fusion happens at paper level: each retriever's chunk ranking is collapsed to a paper
ranking (a paper's score is that of its best chunk), then the two are combined. A paper
therefore appears once, with the chunk that matched best.

Two fusions: "convex" (default) mixes the scores themselves — cosine min-max normalised over
the candidates, BM25 divided by its maximum — weighted by `dense_alpha`; "rrf" is weighted
reciprocal-rank fusion. On abstracts BM25 alone is hard to beat; rank fusion only ties it on
our golden set while the convex mix beats it (bench/ingest_search.py prints the table),
because it keeps *how much* better the top keyword match is, which ranks throw away.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.embeddings import Embedder
from assistant.index import Index
from assistant.settings import Settings
from assistant.types import Hit


@dataclass
class _Ranked:
    paper_id: str
    chunk_id: str
    score: float


def _per_paper(rows: list[tuple[str, str, float]]) -> list[_Ranked]:
    """Chunk rows (chunk id, paper id, score), best first -> one row per paper."""
    seen: dict[str, _Ranked] = {}
    for chunk_id, paper_id, score in rows:
        if paper_id not in seen:
            seen[paper_id] = _Ranked(paper_id, chunk_id, score)
    return list(seen.values())


def convex(dense: list[_Ranked], keyword: list[_Ranked], alpha: float) -> list[tuple[str, float]]:
    """alpha * normalised cosine + (1 - alpha) * normalised BM25; 1.0 = top in both."""
    totals: dict[str, float] = {}
    if dense:
        lo, hi = min(r.score for r in dense), max(r.score for r in dense)
        for r in dense:
            # All candidates equally similar (e.g. a one-chunk index): all count as best.
            norm = (r.score - lo) / (hi - lo) if hi - lo > 1e-9 else 1.0
            totals[r.paper_id] = alpha * norm
    if keyword:
        top = max(r.score for r in keyword) or 1.0
        for r in keyword:
            totals[r.paper_id] = totals.get(r.paper_id, 0.0) + (1 - alpha) * r.score / top
    # No rescaling when one list is empty: a query no keyword matches has lost that share of
    # its relevance (otherwise the best of nothing would score 1.0).
    # The weakest candidate normalises to 0; keep every returned paper's score positive.
    return sorted(((p, max(v, 1e-4)) for p, v in totals.items()), key=lambda x: -x[1])


def fuse(rankings: list[tuple[list[_Ranked], float]], rrf_k: int) -> list[tuple[str, float]]:
    """Weighted RRF over paper rankings; scores normalised so 1.0 = first in every list."""
    totals: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, r in enumerate(ranking, start=1):
            totals[r.paper_id] = totals.get(r.paper_id, 0.0) + weight / (rrf_k + rank)
    best = sum(w / (rrf_k + 1) for _, w in rankings) or 1.0
    return sorted(((pid, s / best) for pid, s in totals.items()), key=lambda x: -x[1])


class Retriever:
    def __init__(self, index: Index, embedder: Embedder, settings: Settings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def search(self, query: str, k: int | None = None, fusion: str | None = None) -> list[Hit]:
        k = k or self.settings.top_k
        fusion = fusion or self.settings.fusion
        n = max(self.settings.candidates, k * 3)
        dense: list[_Ranked] = []
        keyword: list[_Ranked] = []
        if fusion in ("convex", "rrf", "dense"):
            vector = self.embedder.embed([query])[0].tolist()
            dense = _per_paper(self.index.dense_search(vector, n))
        if fusion in ("convex", "rrf", "bm25"):
            kw_rows = self.index.keyword.search(query, n)
            paper_of = self.index.catalog.chunk_papers(cid for cid, _ in kw_rows)
            keyword = _per_paper([(cid, paper_of[cid], s) for cid, s in kw_rows
                                  if cid in paper_of])
        if fusion in ("convex", "dense", "bm25"):
            alpha = {"dense": 1.0, "bm25": 0.0}.get(fusion, self.settings.dense_alpha)
            fused = convex(dense, keyword, alpha)[:k]
            return self._hits(fused, {r.paper_id: r for r in dense},
                              {r.paper_id: r for r in keyword})
        lists = [(dense, self.settings.dense_weight), (keyword, self.settings.bm25_weight)]
        fused = fuse([(r, w) for r, w in lists if r], self.settings.rrf_k)[:k]
        return self._hits(fused, {r.paper_id: r for r in dense}, {r.paper_id: r for r in keyword})

    def _hits(self, fused, dense: dict[str, _Ranked], keyword: dict[str, _Ranked]) -> list[Hit]:
        ids = [pid for pid, _ in fused]
        papers = self.index.catalog.papers(ids)
        best_chunk = {pid: (dense.get(pid) or keyword[pid]).chunk_id for pid in ids}
        texts = self.index.catalog.chunk_texts(best_chunk.values())
        hits = []
        for rank, (pid, score) in enumerate(fused, start=1):
            paper = papers.get(pid)
            if paper is None:  # pruned between the two reads
                continue
            hits.append(Hit(
                paper_id=pid, title=paper.title, abstract=paper.abstract,
                snippet=texts.get(best_chunk[pid], paper.abstract[:300]),
                score=round(score, 4),
                dense_score=round(dense[pid].score, 4) if pid in dense else None,
                bm25_score=round(keyword[pid].score, 4) if pid in keyword else None,
                rank=rank,
            ))
        return hits

    def top_similarity(self, hits: list[Hit]) -> float:
        """The strongest dense similarity among the hits (the abstention signal)."""
        return max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)
