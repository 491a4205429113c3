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

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.embeddings import Embedder
from assistant.index import Index
from assistant.recent import Recent
from assistant.settings import Settings
from assistant.titles import TitleIndex, TitleMatch
from assistant.types import Hit
from assistant.vocab import Vocabulary

FEEDBACK_COMMON = 0.2  # a term in this share of the chunks is too common to widen a query


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


@dataclass
class Retrieval:
    """What one search did: the query it ran (typos fixed), what it fixed, and the hits,
    every hit with a dense similarity (BM25-only and title-matched hits included)."""

    query: str  # as asked
    searched_for: str  # after spelling correction
    fixes: list[tuple[str, str]]
    hits: list[Hit]
    title_matches: list[TitleMatch] = field(default_factory=list)
    exclude: frozenset[str] = frozenset()


class Retriever:
    """Hybrid retrieval over one Index. The Answerer depends only on `retrieve`, `papers`
    and `vocabulary` (see RetrieverLike), which the eval baselines also provide."""

    def __init__(self, index: Index, embedder: Embedder, settings: Settings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._aux: tuple[int, Vocabulary, TitleIndex] | None = None
        self._aux_lock = threading.Lock()
        self._vectors: Recent[np.ndarray] = Recent(64)

    # --- what the answerer reads ---------------------------------------------------------

    def _auxiliary(self) -> tuple[Vocabulary, TitleIndex]:
        """Vocabulary and title index of the catalog version being served (rebuilt when an
        ingest changed it)."""
        version = self.index.catalog.version
        with self._aux_lock:
            if self._aux is None or self._aux[0] != version:
                catalog = self.index.catalog
                vocab = Vocabulary(self.index.keyword, lambda: (
                    f"{t} {x}" for _, _, t, x in catalog.chunk_rows()))
                def abstract_of(pid: str) -> str:
                    paper = catalog.papers([pid]).get(pid)
                    return paper.abstract if paper else ""

                titles = TitleIndex(catalog.titles(), abstract_of, lambda: (
                    (pid, f"{t} {x}") for _, pid, t, x in catalog.chunk_rows()))
                self._aux = (version, vocab, titles)
            return self._aux[1], self._aux[2]

    @property
    def vocabulary(self) -> Vocabulary:
        return self._auxiliary()[0]

    def papers(self, ids: list[str]) -> dict:
        return self.index.catalog.papers(ids)

    def corpus_version(self) -> int:
        return self.index.catalog.version

    def corpus(self) -> list[tuple[str, str]]:
        return [(p.title, p.abstract) for p in self.index.catalog.all_papers()]

    def texts_of(self, paper_ids) -> list[str]:
        """The indexed text (title + chunk) of each chunk of these papers."""
        catalog = self.index.catalog
        titles = {pid: p.title for pid, p in catalog.papers(list(paper_ids)).items()}
        chunk_ids = catalog.chunk_ids_of(list(paper_ids))
        owner = catalog.chunk_papers(chunk_ids)
        return [f"{titles.get(owner.get(cid) or '', '')}\n{text}"
                for cid, text in catalog.chunk_texts(chunk_ids).items()]

    def retrieve(self, query: str, k: int | None = None, exclude: frozenset[str] = frozenset(),
                 fusion: str | None = None) -> Retrieval:
        vocab, titles = self._auxiliary()
        fixed = vocab.correct(query)
        matches = titles.match(query, exclude) or (
            titles.match(fixed.text, exclude) if fixed.fixes else [])
        hits = self.search(fixed.text, k=k, fusion=fusion, exclude=exclude,
                           pinned=[m.paper_id for m in matches])
        return Retrieval(query, fixed.text, fixed.fixes, hits, matches, frozenset(exclude))

    # --- search ---------------------------------------------------------------------------

    def search(self, query: str, k: int | None = None, fusion: str | None = None,
               exclude: frozenset[str] | set[str] = frozenset(),
               pinned: list[str] | None = None, vector: np.ndarray | None = None,
               extra_terms: Sequence[str] = ()) -> list[Hit]:
        """Top-k papers for `query`. `pinned` papers (a title the query names) rank first;
        `exclude`d papers are never returned (near-miss evals hide a gold paper this way).
        `vector` replaces the query's own embedding and `extra_terms` (stemmed) widen its
        keyword query (search_around)."""
        k = k or self.settings.top_k
        fusion = fusion or self.settings.fusion
        n = max(self.settings.candidates, k * 3) + (3 * len(exclude))
        dense: list[_Ranked] = []
        keyword: list[_Ranked] = []
        if fusion in ("convex", "rrf", "dense"):
            if vector is None:
                vector = self.query_vector(query)
            dense = _per_paper([r for r in self.index.dense_search(vector.tolist(), n)
                                if r[1] not in exclude])
        else:
            vector = None
        if fusion in ("convex", "rrf", "bm25"):
            kw_rows = self.index.keyword.search(query, n, extra_terms)
            paper_of = self.index.catalog.chunk_papers(cid for cid, _ in kw_rows)
            keyword = _per_paper([(cid, paper_of[cid], s) for cid, s in kw_rows
                                  if cid in paper_of and paper_of[cid] not in exclude])
        if fusion in ("convex", "dense", "bm25"):
            alpha = {"dense": 1.0, "bm25": 0.0}.get(fusion, self.settings.dense_alpha)
            fused = convex(dense, keyword, alpha)
        else:
            lists = [(dense, self.settings.dense_weight), (keyword, self.settings.bm25_weight)]
            fused = fuse([(r, w) for r, w in lists if r], self.settings.rrf_k)
        if pinned:
            top = fused[0][1] if fused else 1.0
            first = [(pid, max(top, 1e-4)) for pid in pinned if pid not in exclude]
            fused = first + [(p, s) for p, s in fused if p not in set(pinned)]
        return self._hits(fused[:k], {r.paper_id: r for r in dense},
                          {r.paper_id: r for r in keyword}, vector)

    def query_vector(self, query: str) -> np.ndarray:
        """The query's embedding, kept for the last 64 queries: a survey searches twice."""
        return self._vectors.get(query, lambda: np.asarray(self.embedder.embed([query])[0],
                                                           dtype=np.float32))

    def search_around(self, query: str, hits: list[Hit], k: int,
                      exclude: frozenset[str] | set[str] = frozenset(),
                      pinned: list[str] | None = None) -> list[Hit]:
        """Search again with the query widened by what its best papers share (pseudo-relevance
        feedback): the dense query moves toward the mean vector of the first
        `feedback_papers` hits (Rocchio), and the keyword query gains the `feedback_terms`
        rarest terms at least two of them use. A survey question names a topic in its own
        words; the papers on it share words the question does not use. On dev synthesis
        questions, gold papers among the first 20 went 0.921 -> 0.937 (docs/benchmarks.md,
        Session 10). Falls back to `hits` when feedback is off or there is too little."""
        m = self.settings.feedback_papers
        if m < 2 or len(hits) < 2 or self.settings.fusion != "convex":
            return hits[:k]
        top = [h.paper_id for h in hits[:m]]
        centroid = self._paper_centroid(top)
        vector = self.query_vector(query)
        if centroid is not None:
            vector = vector / max(float(np.linalg.norm(vector)), 1e-9) \
                + self.settings.feedback_weight * centroid
            vector = vector / max(float(np.linalg.norm(vector)), 1e-9)
        terms = self._feedback_terms(query, [f"{h.title} {h.abstract}" for h in hits[:m]])
        return self.search(query, k=k, exclude=exclude, pinned=pinned, vector=vector,
                           extra_terms=terms)

    def _paper_centroid(self, paper_ids: list[str]) -> np.ndarray | None:
        """Unit mean of the papers' unit mean chunk vectors (each paper counts once)."""
        chunk_ids = self.index.catalog.chunk_ids_of(paper_ids)
        owner = self.index.catalog.chunk_papers(chunk_ids)
        got = self.index.collection.get(ids=chunk_ids, include=["embeddings"])
        per: dict[str, list[np.ndarray]] = {}
        for cid, vec in zip(got["ids"], got["embeddings"], strict=True):
            if cid in owner:
                per.setdefault(owner[cid], []).append(np.asarray(vec, dtype=np.float32))
        if not per:
            return None
        means = [np.mean(v, axis=0) for v in per.values()]
        c = np.mean([v / max(float(np.linalg.norm(v)), 1e-9) for v in means], axis=0)
        return c / max(float(np.linalg.norm(c)), 1e-9)

    def _feedback_terms(self, query: str, texts: list[str]) -> list[str]:
        """Stemmed terms at least two of `texts` use, weighted by how many do times their idf;
        terms in a fifth of the chunks or more say nothing of the topic."""
        vocab, keyword = self.vocabulary, self.index.keyword
        asked = set(keyword.terms(query))
        counts: dict[str, int] = {}
        for text in texts:
            for term in set(keyword.terms(text)) - asked:
                counts[term] = counts.get(term, 0) + 1
        n = vocab.n_docs
        weights = {t: c * math.log(n / max(1, vocab.df(t))) for t, c in counts.items()
                   if c >= 2 and 0 < vocab.df(t) < FEEDBACK_COMMON * n}
        return sorted(weights, key=lambda t: (-weights[t], t))[: self.settings.feedback_terms]

    def _hits(self, fused, dense: dict[str, _Ranked], keyword: dict[str, _Ranked],
              vector) -> list[Hit]:
        ids = [pid for pid, _ in fused]
        papers = self.index.catalog.papers(ids)
        best_chunk: dict[str, str] = {}
        for pid in ids:
            ranked = dense.get(pid) or keyword.get(pid)
            if ranked is not None:
                best_chunk[pid] = ranked.chunk_id
        texts = self.index.catalog.chunk_texts(best_chunk.values())
        sims = self._similarities(vector, {pid: cid for pid, cid in best_chunk.items()
                                           if pid not in dense},
                                  [pid for pid in ids if pid not in best_chunk])
        hits = []
        for rank, (pid, score) in enumerate(fused, start=1):
            paper = papers.get(pid)
            if paper is None:  # pruned between the two reads
                continue
            cos = dense[pid].score if pid in dense else sims.get(pid)
            hits.append(Hit(
                paper_id=pid, title=paper.title, abstract=paper.abstract,
                snippet=texts.get(best_chunk.get(pid, ""), paper.abstract[:300]),
                score=round(min(score, 1.0), 4),
                dense_score=round(cos, 4) if cos is not None else None,
                bm25_score=round(keyword[pid].score, 4) if pid in keyword else None,
                rank=rank,
            ))
        return hits

    def _similarities(self, vector, chunk_of: dict[str, str], no_chunk: list[str]
                      ) -> dict[str, float]:
        """Cosine of the query and the stored vector of each paper's best chunk (papers that
        BM25 or a title match found but the dense search did not return)."""
        if vector is None or not (chunk_of or no_chunk):
            return {}
        if no_chunk:  # a title match outside both candidate lists: its best chunk
            per_paper = self.index.catalog.chunk_ids_of(no_chunk)
            papers_of = self.index.catalog.chunk_papers(per_paper)
            chunk_ids = list(chunk_of.values()) + per_paper
        else:
            papers_of, chunk_ids = {}, list(chunk_of.values())
        paper_of = {cid: pid for pid, cid in chunk_of.items()} | papers_of
        got = self.index.collection.get(ids=chunk_ids, include=["embeddings"])
        out: dict[str, float] = {}
        for cid, vec in zip(got["ids"], got["embeddings"], strict=True):
            pid = paper_of.get(cid)
            if pid is not None:
                sim = float(np.asarray(vec, dtype=np.float32) @ vector)
                out[pid] = max(out.get(pid, -1.0), sim)
        return out

    def top_similarity(self, hits: list[Hit]) -> float:
        """The strongest dense similarity among the hits (the abstention signal)."""
        return max((h.dense_score for h in hits if h.dense_score is not None), default=0.0)
