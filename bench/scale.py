"""Scale benchmark: ingest and search at 1k / 10k / 100k synthetic papers.

For each size: generate a corpus (bench/synth.py), ingest it as a fresh command (wall time,
papers/s, peak RSS), measure the index size on disk, then search in one warm process
(100 queries: p50/p95, split into query embedding, dense and keyword stages) and its RSS.
`--chroma-server` repeats the run against a `chroma run` server on loopback.

Usage: .venv/bin/python bench/scale.py --sizes 1000 10000 [--backend onnx] [--chroma-server]
Figures are printed and written to bench/results/scale.json (merged across runs by size).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BIN, RESULTS, pct, run_timed, write  # noqa: E402
from bench.synth import generate  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_chroma(path: Path) -> tuple[subprocess.Popen, int]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1",
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port,
                                settings=ChromaSettings(anonymized_telemetry=False)).heartbeat()
            return proc, port
        except Exception:  # noqa: BLE001 — not up yet
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("chroma run did not come up within 60 s")


def measure_search(settings, corpus: list[dict], n_queries: int = 100) -> dict:
    from assistant.services import Services

    services = Services(settings)
    retriever = services.retriever
    rng = random.Random(1)
    # Queries: a few words from a random abstract — like a user half-remembering a paper.
    queries = []
    for rec in rng.sample(corpus, min(n_queries, len(corpus))):
        words = rec["abstract"].split()
        start = rng.randrange(max(1, len(words) - 8))
        queries.append(" ".join(words[start:start + 8]))
    retriever.search("warm up the model and the indexes")
    total, embed, dense, keyword = [], [], [], []
    for q in queries:
        t0 = time.perf_counter()
        vec = services.embedder.embed([q])[0].tolist()
        t1 = time.perf_counter()
        services.index.dense_search(vec, settings.candidates)
        t2 = time.perf_counter()
        services.index.keyword.search(q, settings.candidates)
        t3 = time.perf_counter()
        retriever.search(q)
        t4 = time.perf_counter()
        embed.append((t1 - t0) * 1000)
        dense.append((t2 - t1) * 1000)
        keyword.append((t3 - t2) * 1000)
        total.append((t4 - t3) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    services.index.close()
    return {
        "search_ms": {"p50": pct(total, 50), "p95": pct(total, 95)},
        "embed_query_ms": {"p50": pct(embed, 50), "p95": pct(embed, 95)},
        "dense_ms": {"p50": pct(dense, 50), "p95": pct(dense, 95)},
        "keyword_ms": {"p50": pct(keyword, 50), "p95": pct(keyword, 95)},
        "search_process_rss_mb": round(rss),
        "queries": len(total),
    }


def search_only(n: int, backend: str, keep: Path, previous: dict) -> dict:
    """Re-measure search on a kept embedded index (ingest figures carried over)."""
    from assistant.settings import Settings

    data_dir = keep / f"{n}-embedded"
    if not (data_dir / "manifest.json").is_file():
        raise SystemExit(f"{data_dir} holds no index: run once with --keep {keep} first.")
    settings = Settings(data_dir=data_dir, embed_backend=backend)
    return {**previous, **measure_search(settings, list(generate(n)))}


def run_size(n: int, backend: str, chroma_server: bool, keep: Path | None) -> dict:
    from assistant.index import dir_size
    from assistant.settings import Settings

    work = Path(tempfile.mkdtemp(prefix=f"scale-{n}-"))
    corpus_file = work / "corpus.jsonl"
    corpus = list(generate(n))
    corpus_file.write_text("".join(json.dumps(r) + "\n" for r in corpus))
    data_dir = (keep / f"{n}-{'server' if chroma_server else 'embedded'}") if keep \
        else work / "data"
    env = {"ASSISTANT_DATA_DIR": str(data_dir), "ASSISTANT_EMBED_BACKEND": backend}
    proc = None
    if chroma_server:
        proc, port = start_chroma(work / "chroma-server")
        env |= {"ASSISTANT_CHROMA_HOST": "127.0.0.1", "ASSISTANT_CHROMA_PORT": str(port)}
    try:
        wall, rss, _ = run_timed([str(BIN / "assistant"), "ingest", str(corpus_file), "-q"], env)
        size = dir_size(data_dir) + (dir_size(work / "chroma-server") if chroma_server else 0)
        settings = Settings(data_dir=data_dir, embed_backend=backend,
                            chroma_host="127.0.0.1" if chroma_server else None,
                            chroma_port=int(env.get("ASSISTANT_CHROMA_PORT", 8000)))
        from assistant.index import Index

        idx = Index.open(settings)
        papers, chunks = idx.catalog.count()
        idx.close()
        row = {
            "papers": papers, "chunks": chunks, "backend": backend,
            "chroma": "server" if chroma_server else "embedded",
            "ingest_s": round(wall, 1), "ingest_papers_per_s": round(n / wall, 1),
            "ingest_peak_rss_mb": round(rss), "index_mb": round(size / 1e6, 1),
            **measure_search(settings, corpus),
        }
    finally:
        if proc:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--backend", default="onnx", choices=["onnx", "local"])
    ap.add_argument("--chroma-server", action="store_true")
    ap.add_argument("--keep", type=Path, help="Keep the data dirs under this folder.")
    ap.add_argument("--search-only", action="store_true",
                    help="Re-measure search on the embedded indexes kept under --keep.")
    args = ap.parse_args()
    if args.search_only and (args.keep is None or args.chroma_server):
        ap.error("--search-only needs --keep DIR (embedded indexes only)")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    existing = RESULTS / "scale.json"
    rows = json.loads(existing.read_text()).get("rows", []) if existing.exists() else []
    for n in args.sizes:
        if args.search_only:
            previous = next((r for r in rows if r["papers"] == n
                             and r["chroma"] == "embedded"), {})
            row = search_only(n, args.backend, args.keep, previous)
        else:
            row = run_size(n, args.backend, args.chroma_server, args.keep)
        rows = [r for r in rows if not (r["papers"] == row["papers"]
                                        and r["chroma"] == row["chroma"])] + [row]
        print(json.dumps(row))
    rows.sort(key=lambda r: (r["chroma"], r["papers"]))
    print(f"\n{'papers':>8} {'chroma':>9} {'ingest/s':>9} {'index MB':>9} {'RSS MB':>7} "
          f"{'p50 ms':>7} {'p95 ms':>7}")
    for r in rows:
        print(f"{r['papers']:>8} {r['chroma']:>9} {r['ingest_papers_per_s']:>9} "
              f"{r['index_mb']:>9} {r['search_process_rss_mb']:>7} {r['search_ms']['p50']:>7} "
              f"{r['search_ms']['p95']:>7}")
    write("scale", {"rows": rows})
    chart(rows)


def chart(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode in ("embedded", "server"):
        pts = sorted((r["papers"], r["search_ms"]["p50"], r["search_ms"]["p95"])
                     for r in rows if r["chroma"] == mode)
        if pts:
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] for p in pts], marker="o", label=f"{mode} p50")
            ax.plot(xs, [p[2] for p in pts], marker="s", linestyle="--", label=f"{mode} p95")
    ax.axhline(50, color="grey", linewidth=0.8, linestyle=":", label="50 ms target")
    ax.set_xscale("log")
    ax.set_xlabel("papers in the index")
    ax.set_ylabel("search latency (ms, warm, in process)")
    ax.set_title("Hybrid search latency vs corpus size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-latency.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
