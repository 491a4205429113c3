"""Hybrid retrieval: dense (Chroma via llama-index) + BM25, fused per paper.

Fusion happens at paper level: each retriever's chunk ranking is collapsed to a paper
ranking (a paper's rank is that of its best chunk), then weighted reciprocal-rank fusion
combines them. A paper therefore appears once, with the chunk that matched best.
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
        if fusion in ("rrf", "dense"):
            vector = self.embedder.embed([query])[0].tolist()
            dense = _per_paper(self.index.dense_search(vector, n))
        if fusion in ("rrf", "bm25"):
            kw_rows = self.index.keyword.search(query, n)
            paper_of = self.index.catalog.chunk_papers(cid for cid, _ in kw_rows)
            keyword = _per_paper([(cid, paper_of[cid], s) for cid, s in kw_rows
                                  if cid in paper_of])
        lists = []
        if dense:
            lists.append((dense, self.settings.dense_weight if fusion == "rrf" else 1.0))
        if keyword:
            lists.append((keyword, self.settings.bm25_weight if fusion == "rrf" else 1.0))
        fused = fuse(lists, self.settings.rrf_k)[:k]
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
