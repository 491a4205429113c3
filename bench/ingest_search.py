"""Ingest and search figures (issue: ingestion/retrieval).

- ingest of seeds/ from scratch and again (incremental): wall time, papers/s, peak RSS;
- search latency p50/p95 over 100 queries in one process; cold start of `assistant search`;
- retrieval quality (hit@5, recall@5, MRR) on the golden questions for BM25, dense and
  hybrid fusions with several weightings.

Usage: .venv/bin/python bench/ingest_search.py [--data-dir DIR] [--skip-ingest]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, golden, pct, run_timed, write  # noqa: E402


def quality(retriever, rows, fusion: str, k: int = 10) -> dict:
    from assistant.corpus import paper_id

    hit5 = rec5 = rr = 0.0
    n = 0
    for row in rows:
        gold = {paper_id(t) for t in row["gold_titles"]}
        if not gold:
            continue
        ids = [h.paper_id for h in retriever.search(row["question"], k=k, fusion=fusion)]
        n += 1
        hit5 += any(i in gold for i in ids[:5])
        rec5 += len(gold & set(ids[:5])) / len(gold)
        rank = next((r for r, i in enumerate(ids, start=1) if i in gold), None)
        rr += 1 / rank if rank else 0.0
    return {"hit@5": round(hit5 / n, 3), "recall@5": round(rec5 / n, 3),
            "mrr": round(rr / n, 3), "questions": n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--skip-ingest", action="store_true")
    args = ap.parse_args()
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="bench-")
        data_dir = Path(tmp)
    out: dict = {}
    assistant = str(BIN / "assistant")
    env = {"ASSISTANT_DATA_DIR": str(data_dir)}
    if not args.skip_ingest:
        wall, rss, _ = run_timed([assistant, "ingest", "-q"], env)
        out["ingest_scratch"] = {"seconds": round(wall, 1), "papers_per_s": round(633 / wall, 1),
                                 "peak_rss_mb": round(rss)}
        wall2, rss2, _ = run_timed([assistant, "ingest", "-q"], env)
        out["ingest_incremental"] = {"seconds": round(wall2, 2), "peak_rss_mb": round(rss2)}
        print(f"ingest from scratch: {wall:.1f} s ({633 / wall:.1f} papers/s, peak {rss:.0f} MB)")
        print(f"ingest again (nothing new): {wall2:.2f} s")

    cold = []
    for _ in range(3):
        t0 = time.perf_counter()
        run_timed([assistant, "search", "prefix caching for hybrid LLMs", "--json"], env)
        cold.append(time.perf_counter() - t0)
    out["search_cold_start_s"] = {"p50": pct(cold, 50), "runs": [round(c, 2) for c in cold]}
    print(f"`assistant search` cold start: p50 {pct(cold, 50):.2f} s over {len(cold)} runs")

    from assistant.services import Services
    from assistant.settings import Settings

    settings = Settings(data_dir=data_dir)
    services = Services(settings)
    retriever = services.retriever
    rows = golden()
    queries = [r["question"] for r in rows if r["type"] != "offcorpus"][:100]
    retriever.search("warm up")
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.search(q)
        lat.append((time.perf_counter() - t0) * 1000)
    out["search_warm_ms"] = {"p50": pct(lat, 50), "p95": pct(lat, 95), "queries": len(lat)}
    print(f"search in process: p50 {pct(lat, 50)} ms, p95 {pct(lat, 95)} ms ({len(lat)} queries)")

    variants = {
        "bm25": ("bm25", {}),
        "dense": ("dense", {}),
        "convex (alpha 0.4, default)": ("convex", {}),
        "convex (alpha 0.2)": ("convex", {"dense_alpha": 0.2}),
        "convex (alpha 0.6)": ("convex", {"dense_alpha": 0.6}),
        "rrf (1:1, k=60)": ("rrf", {}),
        "rrf (dense 1.5 : bm25 1)": ("rrf", {"dense_weight": 1.5}),
        "rrf (dense 1 : bm25 1.5)": ("rrf", {"bm25_weight": 1.5}),
        "rrf (1:1, k=20)": ("rrf", {"rrf_k": 20}),
    }
    table = {}
    print("\nretrieval quality on the golden questions (paper level):")
    print(f"{'config':28} {'hit@5':>6} {'rec@5':>6} {'MRR':>6}")
    for name, (fusion, upd) in variants.items():
        retriever.settings = settings.model_copy(update=upd)
        table[name] = quality(retriever, rows, fusion)
        q = table[name]
        print(f"{name:28} {q['hit@5']:>6} {q['recall@5']:>6} {q['mrr']:>6}")
    out["retrieval_quality"] = table
    write("ingest_search", out)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
