"""External retrieval benchmark: SciFact claims and PubMedQA questions (ScholarQABench).

Per ../shared/external/README.md: every gold abstract of both files (about 1,025) becomes one
corpus, ingested as JSON Lines into its own index under <data dir>/evals/external (never the
main index); each claim / question is a query, and we score whether its gold abstract comes
back: hit@1, hit@5 and MRR (over the top 10) for ours (settings.fusion), dense only, BM25
only and — when ours is not already RRF — plain reciprocal-rank fusion, the README's third
reference point.

SciFact abstracts have titles. PubMedQA abstracts do not, and a PubMedQA question is usually
the source article's title — using it as the title would hand retrieval the answer — so the
title is derived from the abstract's first sentence instead.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.corpus import normalise, paper_id
from assistant.jsonl import read_jsonl
from assistant.settings import Fusion, Settings
from evals import external_dir
from evals.metrics import hit_at_k, mean, reciprocal_rank

# No default location: the files are passed in (--external-dir) or configured
# (ASSISTANT_EXTERNAL_DIR); see evals.external_dir. The name stays for old imports.
DEFAULT_EXTERNAL_DIR: Path | None = None
FILES = {"scifact": "scifact_test.jsonl", "pubmedqa": "pubmed_test.jsonl"}
DEPTH = 10
# Measured with the full sets by the README's author (plain bm25s / MiniLM / plain RRF),
# keyed by fusion.
REFERENCE_MRR = {
    "scifact": {"bm25": 0.853, "dense": 0.871, "rrf": 0.890},
    "pubmedqa": {"bm25": 0.965, "dense": 0.983, "rrf": 0.979},
}
REFERENCE_NOTE = ("README reference MRR (full sets): bm25 = bm25s, dense = all-MiniLM-L6-v2, "
                  "rrf = plain reciprocal-rank fusion of the two")


def configs_for(settings: Settings) -> dict[str, str]:
    """Configuration name -> fusion: ours (the configured fusion), dense, bm25 [, rrf]."""
    out = {"ours": settings.fusion, "dense": "dense", "bm25": "bm25"}
    if settings.fusion == Fusion.CONVEX:  # plain RRF is the README's third reference point
        out["rrf"] = Fusion.RRF.value
    return out
TITLE_CHARS = 120

_FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def gold_text(ctx: dict[str, Any]) -> str:
    text = ctx.get("text", "")
    if isinstance(text, dict):
        text = " ".join(str(p) for p in text.get("contexts", []))
    return normalise(str(text))


def derive_title(text: str, limit: int = TITLE_CHARS) -> str:
    """The abstract's first sentence, cut at a word boundary (for untitled abstracts)."""
    first = _FIRST_SENTENCE.split(text.strip(), maxsplit=1)[0].strip()
    if len(first) <= limit:
        return first.rstrip(".")
    cut = first[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def load(path: Path) -> list[dict[str, Any]]:
    rows = []
    for _, value, error in read_jsonl(path):
        if error:
            raise ValueError(error)
        rows.append(value)
    return rows


def build_corpus(datasets: dict[str, list[dict[str, Any]]]
                 ) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(papers for JSONL ingest, queries per dataset with their gold paper id).

    Abstracts are deduplicated by text (SciFact has several claims per abstract). Titles are
    made unique so that two abstracts never collapse into one paper id.
    """
    papers: list[dict[str, Any]] = []
    by_text: dict[str, str] = {}
    titles: set[str] = set()
    queries: dict[str, list[dict[str, Any]]] = {}
    for name, records in datasets.items():
        queries[name] = []
        for no, rec in enumerate(records):
            ctx = rec["gold_ctx"][0]
            text = gold_text(ctx)
            if text not in by_text:
                title = normalise(ctx.get("title") or "") or derive_title(text)
                base, i = title, 2
                while title.casefold() in titles:
                    title, i = f"{base} ({i})", i + 1
                titles.add(title.casefold())
                by_text[text] = paper_id(title)
                papers.append({"title": title, "abstract": text, "dataset": name,
                               "derived_title": not ctx.get("title")})
            queries[name].append({"no": no, "query": rec["input"], "gold": by_text[text]})
    return papers, queries


def sample(items: list, limit: int | None, seed: int = 0) -> list:
    """A fixed random subset (same for every run), in the original order."""
    if limit is None or limit >= len(items):
        return list(items)
    keep = set(random.Random(seed).sample(range(len(items)), limit))
    return [x for i, x in enumerate(items) if i in keep]


def score(queries: list[dict[str, Any]], search: Callable[[str], list[str]]
          ) -> tuple[dict[str, float | None], list[int | None]]:
    """hit@1, hit@5, MRR@10 of a search function (query -> ranked paper ids)."""
    h1, h5, rr, ranks = [], [], [], []
    t0 = time.perf_counter()
    for q in queries:
        ranked = search(q["query"])[:DEPTH]
        h1.append(hit_at_k(ranked, [q["gold"]], 1))
        h5.append(hit_at_k(ranked, [q["gold"]], 5))
        rr.append(reciprocal_rank(ranked, [q["gold"]]))
        ranks.append(ranked.index(q["gold"]) + 1 if q["gold"] in ranked else None)
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(queries))
    return {"hit@1": mean(h1), "hit@5": mean(h5), "mrr": mean(rr),
            "ms_per_query": round(ms, 1)}, ranks


def external_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "data_dir": settings.data_dir / "evals" / "external",
        # A Chroma server is shared: keep these vectors out of the main collections.
        "collection": f"{settings.collection}-external-eval",
    })


def run_external(settings: Settings, embedder, limit: int | None = None,
                 source_dir: Path | None = None, progress: bool = True,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build/refresh the external index, query it, return figures (and per-query ranks)."""
    from assistant.index import Index, ingest
    from assistant.retrieve import Retriever

    t0 = time.perf_counter()
    source = external_dir(source_dir)
    missing = [f for f in FILES.values() if not (source / f).is_file()]
    if missing:
        raise ValueError(f"external benchmark: {', '.join(missing)} not found in {source}")
    datasets = {name: load(source / f) for name, f in FILES.items()}
    papers, queries = build_corpus(datasets)
    ext = external_settings(settings)
    ext.data_dir.mkdir(parents=True, exist_ok=True)
    corpus_file = ext.data_dir / "corpus.jsonl"
    content = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in papers)
    if not corpus_file.exists() or corpus_file.read_text(encoding="utf-8") != content:
        corpus_file.write_text(content, encoding="utf-8")
    log(f"External corpus: {len(papers)} abstracts -> {ext.data_dir}")
    report = ingest(ext, [corpus_file], embedder, prune=True, progress=progress)
    ingest_s = time.perf_counter() - t0
    index = Index.open(ext)
    try:
        retriever = Retriever(index, embedder, ext)
        out: dict[str, Any] = {"datasets": {}, "rows": []}
        configs = configs_for(ext)
        out["fusions"] = configs
        for name, qs in queries.items():
            chosen = sample(qs, limit)
            refs = REFERENCE_MRR[name]
            entry: dict[str, Any] = {"n": len(chosen), "total": len(qs), "configs": {},
                                     "reference_mrr": {c: refs.get(f)
                                                       for c, f in configs.items()}}
            ranks_by_config = {}
            for config, fusion in configs.items():
                def search(q: str, fusion: str = fusion) -> list[str]:
                    return [h.paper_id for h in retriever.search(q, k=DEPTH, fusion=fusion)]

                entry["configs"][config], ranks_by_config[config] = score(chosen, search)
            out["datasets"][name] = entry
            for i, q in enumerate(chosen):
                out["rows"].append({"dataset": name, "no": q["no"], "query": q["query"],
                                    "gold": q["gold"],
                                    "rank": {c: r[i] for c, r in ranks_by_config.items()}})
        papers_n, chunks_n = index.catalog.count()
    finally:
        index.close()
    out.update({
        "corpus": {"papers": papers_n, "chunks": chunks_n, "data_dir": str(ext.data_dir),
                   "derived_titles": sum(p["derived_title"] for p in papers),
                   "newly_embedded_chunks": report.chunks_embedded},
        "limit": limit, "ingest_seconds": round(ingest_s, 1),
        "seconds": round(time.perf_counter() - t0, 1), "reference_note": REFERENCE_NOTE,
    })
    return out
