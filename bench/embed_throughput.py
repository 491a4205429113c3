"""Embedding throughput: sentence-transformers (PyTorch) vs ONNX Runtime fp32 vs ONNX int8.

    .venv/bin/python bench/embed_throughput.py [--limit 512] [--runs 2] [--no-recall]

Texts are what ingest embeds: ``Chunk.embed_text`` ("title\\nchunk") of every chunk of the seed
corpus (~1100), or an evenly spread subset of ``--limit`` of them (default 512, for speed).
Each backend embeds them in calls of 64 texts (ingest's batch size); runs interleave the
backends (order reversed every other run) and the figures kept are each backend's best run,
because other processes may share the CPU. Also reported:

* cosine of every ONNX vector to the PyTorch vector of the same text (chunks and queries);
* dense-only retrieval quality on evals/datasets/dev.jsonl over all chunks: recall@5/@10
  per backend, and mixed (index built by PyTorch, queries embedded by ONNX and back), since
  both backends share one manifest name;
* cold start: a fresh ``python`` that imports, builds the embedder through ``make_embedder``
  and embeds one query (ONNX files already exported), wall time including interpreter start,
  and whether torch got imported.

Writes bench/results/embed_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from assistant.corpus import normalise, read_corpus  # noqa: E402
from assistant.settings import Settings  # noqa: E402

BACKENDS = ("pytorch", "onnx-fp32", "onnx-int8")
CALL_SIZE = 64
QUERY = "Which paper speeds up protein structure prediction by splitting the CPU and GPU work?"

COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
from assistant.embeddings import make_embedder
from assistant.settings import Settings
embedder = make_embedder(Settings(_env_file=None, embed_backend=sys.argv[1]))
vector = embedder.embed([sys.argv[2]])
print(json.dumps({"in_process_s": time.perf_counter() - t0, "dim": int(vector.shape[1]),
                  "torch_imported": "torch" in sys.modules,
                  "sentence_transformers_imported": "sentence_transformers" in sys.modules}))
"""


def make(backend: str, settings: Settings):
    from assistant.embeddings import SentenceTransformerEmbedder
    from assistant.onnx_embedder import OnnxEmbedder

    if backend == "pytorch":
        return SentenceTransformerEmbedder(settings)
    return OnnxEmbedder(settings, precision=backend.removeprefix("onnx-"))


def chunk_texts(settings: Settings) -> tuple[list[str], list[str], dict[str, str]]:
    from assistant.index import Chunker

    papers = read_corpus([ROOT / "seeds"]).papers
    chunker = Chunker(settings)
    chunks = [c for p in papers for c in chunker.chunks(p)]
    titles = {normalise(p.title).casefold(): p.id for p in papers}
    return [c.embed_text for c in chunks], [c.paper_id for c in chunks], titles


def embed_in_calls(embedder, texts: list[str]) -> np.ndarray:
    parts = [embedder.embed(texts[i : i + CALL_SIZE]) for i in range(0, len(texts), CALL_SIZE)]
    return np.concatenate(parts)


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict:
    cos = (a * b).sum(axis=1)
    return {"mean": round(float(cos.mean()), 5), "min": round(float(cos.min()), 5),
            "p01": round(float(np.percentile(cos, 1)), 5),
            "share_ge_0.99": round(float((cos >= 0.99).mean()), 4)}


def recall(chunk_vecs: np.ndarray, chunk_papers: list[str], query_vecs: np.ndarray,
           golds: list[set[str]], k: int) -> float:
    sims = query_vecs @ chunk_vecs.T
    scores = []
    for row, gold in zip(sims, golds, strict=True):
        top: list[str] = []
        for i in np.argsort(-row, kind="stable"):
            if chunk_papers[i] not in top:
                top.append(chunk_papers[i])
                if len(top) == k:
                    break
        scores.append(len(gold & set(top)) / len(gold))
    return round(float(np.mean(scores)), 4)


def golden(titles: dict[str, str]) -> tuple[list[str], list[set[str]]]:
    questions, golds = [], []
    for line in (ROOT / "evals" / "datasets" / "dev.jsonl").read_text().splitlines():
        row = json.loads(line)
        ids = {titles.get(normalise(t).casefold()) for t in row["gold_titles"]} - {None}
        if ids:
            questions.append(row["question"])
            golds.append(ids)
    return questions, golds


def cold_start(backend: str) -> dict:
    env = dict(os.environ)
    if backend.startswith("onnx-"):
        env["ASSISTANT_ONNX_PRECISION"] = backend.removeprefix("onnx-")
    kind = "local" if backend == "pytorch" else "onnx"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", COLD_START, kind, QUERY], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": round(wall, 3), "in_process_s": round(result["in_process_s"], 3),
            "torch_imported": result["torch_imported"],
            "sentence_transformers_imported": result["sentence_transformers_imported"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=512, help="texts timed (0 = all chunks)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-recall", action="store_true", help="skip the golden-set recall")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/embed_throughput.json")
    args = parser.parse_args()

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = Settings(_env_file=None)
    texts, chunk_papers, titles = chunk_texts(settings)
    n = len(texts) if args.limit <= 0 else min(args.limit, len(texts))
    picked = sorted({i * len(texts) // n for i in range(n)})
    subset = [texts[i] for i in picked]
    print(f"{len(texts)} chunk texts in the seed corpus; timing {len(subset)} of them in calls "
          f"of {CALL_SIZE}, {args.runs} run(s), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)

    embedders = {}
    for backend in BACKENDS:
        started = time.perf_counter()
        embedders[backend] = make(backend, settings)
        embedders[backend].embed(subset[:8])  # load (and export, the first time), warm up
        print(f"  {backend}: ready in {time.perf_counter() - started:.1f} s", flush=True)

    runs, vectors = [], {}
    for run in range(args.runs):
        order = BACKENDS if run % 2 == 0 else BACKENDS[::-1]
        result = {"load_average_start": round(os.getloadavg()[0], 2)}
        for backend in order:
            wall, cpu = time.perf_counter(), time.process_time()
            vecs = embed_in_calls(embedders[backend], subset)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            vectors.setdefault(backend, vecs)
            result[backend] = {"texts_per_s": round(len(subset) / wall, 2),
                               "wall_s": round(wall, 2),
                               "texts_per_cpu_s": round(len(subset) / cpu, 2)}
            print(f"run {run + 1} {backend:10s} {len(subset) / wall:7.2f} texts/s "
                  f"({wall:.1f} s wall, {len(subset) / cpu:.2f} texts per CPU-second)", flush=True)
        result["speedup_vs_pytorch"] = {
            b: round(result["pytorch"]["wall_s"] / result[b]["wall_s"], 2) for b in BACKENDS[1:]}
        runs.append(result)

    best = {b: max(r[b]["texts_per_s"] for r in runs) for b in BACKENDS}
    speedup = {b: round(best[b] / best["pytorch"], 2) for b in BACKENDS[1:]}
    cosines = {b: {"chunks": cosine_stats(vectors[b], vectors["pytorch"])} for b in BACKENDS[1:]}

    quality = None
    if not args.no_recall:
        questions, golds = golden(titles)
        timed = set(picked)
        rest = [i for i in range(len(texts)) if i not in timed]
        full, queries = {}, {}
        for backend, embedder in embedders.items():
            vecs = np.empty((len(texts), embedder.dim), dtype=np.float32)
            vecs[picked] = vectors[backend]
            vecs[rest] = embed_in_calls(embedder, [texts[i] for i in rest])
            full[backend], queries[backend] = vecs, embedder.embed(questions)
        quality = {"questions": len(questions), "chunks": len(texts),
                   "retrieval": "dense only, paper = best chunk"}
        for backend in BACKENDS:
            quality[backend] = {f"recall@{k}": recall(full[backend], chunk_papers,
                                                      queries[backend], golds, k) for k in (5, 10)}
        for backend in BACKENDS[1:]:
            quality[f"pytorch index + {backend} queries"] = {
                "recall@5": recall(full["pytorch"], chunk_papers, queries[backend], golds, 5)}
            quality[f"{backend} index + pytorch queries"] = {
                "recall@5": recall(full[backend], chunk_papers, queries["pytorch"], golds, 5)}
            cosines[backend]["all_chunks"] = cosine_stats(full[backend], full["pytorch"])
            cosines[backend]["queries"] = cosine_stats(queries[backend], queries["pytorch"])

    cold = {b: [] for b in BACKENDS}
    for _ in range(args.runs):
        for backend in BACKENDS:
            cold[backend].append(cold_start(backend))
    cold_best = {b: min(cold[b], key=lambda r: r["wall_s"]) for b in BACKENDS}

    import onnxruntime
    import torch

    onnx_files = {b: str(embedders[b].model_path) for b in BACKENDS[1:]}
    report = {
        "setup": {
            "texts_timed": len(subset), "chunk_texts_in_corpus": len(texts),
            "texts_per_call": CALL_SIZE, "runs": args.runs, "cpus": os.cpu_count(),
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__, "onnx_files": onnx_files,
            "note": "best run per backend is reported; other processes may share the CPU",
        },
        "texts_per_s": best,
        "speedup_vs_pytorch": speedup,
        "cosine_vs_pytorch": cosines,
        "retrieval_quality": quality,
        "cold_start_one_query": cold_best,
        "runs": runs,
        "cold_start_runs": cold,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print("\nbest run per backend (texts/s):")
    for b in BACKENDS:
        extra = f"  x{speedup[b]:.2f} vs pytorch" if b in speedup else ""
        print(f"  {b:10s} {best[b]:7.2f}{extra}")
    for b in BACKENDS[1:]:
        print(f"  cosine {b} vs pytorch: {cosines[b]}")
    if quality:
        for key, value in quality.items():
            if isinstance(value, dict):
                print(f"  {key}: {value}")
    for b in BACKENDS:
        print(f"  cold start {b}: {cold_best[b]}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
