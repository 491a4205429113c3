"""Answer shapes (issue 16): survey, comparison and detail answers without an LLM.

Prints and writes bench/results/answer_shapes.json:

- synthesis ("theme") questions, dev and test: share of gold papers cited (micro: over all
  gold papers; macro: mean per question), share among the sources shown, questions citing
  at least one gold paper, papers cited per answer, and which shape answered;
- comparison questions, dev (dev_shapes, dev_more, dev_compare, dev_compare2, dev_compare3) and
  held-out test (test_shapes.jsonl, written by a helper that never saw the system):
  answered as a table, and every compared paper named (cited) in it;
- detail questions, dev and test: the first quoted sentence states a figure, and holds an
  expected keyword when any quote does;
- redundancy: answers holding two quoted sentences with cosine > 0.9 (every answer above);
- latency: warm extractive answers to 12-source surveys (dev synthesis questions), total and
  compose p50/p95, with the sentence-vector cache emptied before each question (cold
  sentences) and kept (the same papers asked about again).

Test rows are only answered and scored here, never tuned on (evals/README.md).

Usage: .venv/bin/python bench/answer_shapes.py [--data-dir DIR] [--splits dev,test]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_data_dir_option, golden, pct, seed_index, write  # noqa: E402
from evals import DEV_DATASETS  # noqa: E402

DATASETS = ROOT / "evals" / "datasets"
# dev is every dev set the evals use (evals.DEV_DATASETS) plus the shape questions.
# test_shapes.jsonl: held-out comparison questions, written by a helper that never saw the
# system (the test split has no comparison questions).
SPLITS = {"dev": [p.name for p in DEV_DATASETS] + ["dev_shapes.jsonl", "dev_compare.jsonl",
                                                   "dev_compare2.jsonl", "dev_compare3.jsonl"],
          "test": ["test.jsonl", "test_shapes.jsonl"]}
QUOTE = re.compile(r"(?:— |\| )([^|\n]+?) \[(\d+)\]")


def shape_of(text: str) -> str:
    if "\n|Paper|" in text:
        return "comparison"
    if re.search(r"papers in (all|\d+ groups)", text.split("\n", 1)[0]):
        return "survey"
    return "single"


def quotes_of(answer) -> list[tuple[int, str]]:
    """(source number, quoted text) in answer order: bullets' sentences and table cells."""
    out = []
    by_n = {s.n: s for s in answer.sources}
    for line in answer.answer.splitlines():
        if line.startswith("- **"):
            body = line.split("** — ", 1)[-1]
            out += [(int(n), q.strip()) for q, n in re.findall(r"(.+?) \[(\d+)\]\.", body)]
        elif line.startswith("| ") and not line.startswith("| **"):
            pass
        elif line.startswith("| **"):
            cells = [c.strip() for c in line.strip("| ").split(" | ")[1:]]
            for c in cells:
                m = re.match(r"(.+) \[(\d+)\]$", c)
                if m:
                    out.append((int(m.group(2)), m.group(1).replace("\\|", "|")))
    return [(n, q) for n, q in out if n in by_n]


def redundant_pairs(answer, embedder, limit: float = 0.9) -> int:
    texts = [q for _, q in quotes_of(answer)]
    if len(texts) < 2:
        return 0
    v = embedder.embed(texts)
    return sum(float(v[i] @ v[j]) > limit for i, j in combinations(range(len(texts)), 2))


def rows_of(split: str) -> list[dict]:
    out = []
    for name in SPLITS[split]:
        path = DATASETS / name
        if path.exists():
            out += golden(path)
    return out


def synthesis(answerer, embedder, rows, split) -> tuple[dict, list]:
    from evals.run import gold_ids

    per_q, redundant, gold_n, cited_n, shown_n = [], 0, 0, 0, 0
    for row in rows:
        a = answerer.answer(row["question"])
        gold = set(gold_ids(row["gold_titles"]))
        cited = {c.paper_id for c in a.citations}
        shown = {s.paper_id for s in a.sources}
        gold_n += len(gold)
        cited_n += len(gold & cited)
        shown_n += len(gold & shown)
        pairs = redundant_pairs(a, embedder)
        redundant += pairs > 0
        per_q.append({"id": row["id"], "shape": shape_of(a.answer), "gold": len(gold),
                      "cited_gold": len(gold & cited), "shown_gold": len(gold & shown),
                      "cited": len(cited), "sources": len(a.sources),
                      "abstained": a.abstained, "redundant_pairs": pairs})
    n = len(per_q) or 1
    shapes = {}
    for q in per_q:
        shapes[q["shape"]] = shapes.get(q["shape"], 0) + 1
    return {
        "split": split, "questions": len(per_q), "gold_papers": gold_n,
        "gold_cited_share": round(cited_n / max(1, gold_n), 3),
        "gold_cited_share_macro": round(sum(q["cited_gold"] / q["gold"] for q in per_q) / n, 3),
        "gold_shown_share": round(shown_n / max(1, gold_n), 3),
        "any_gold_cited": round(sum(q["cited_gold"] > 0 for q in per_q) / n, 3),
        "papers_cited_mean": round(sum(q["cited"] for q in per_q) / n, 2),
        "sources_mean": round(sum(q["sources"] for q in per_q) / n, 2),
        "shapes": shapes, "answers_with_redundant_quotes": redundant,
    }, per_q


def comparisons(answerer, embedder, rows) -> dict:
    from evals.run import gold_ids

    out, redundant = [], 0
    for row in rows:
        a = answerer.answer(row["question"])
        gold = set(gold_ids(row["gold_titles"]))
        cited = {c.paper_id for c in a.citations}
        redundant += redundant_pairs(a, embedder) > 0
        out.append({"id": row["id"], "shape": shape_of(a.answer),
                    "all_named": gold <= cited, "named": len(gold & cited), "gold": len(gold)})
    n = len(out) or 1
    return {"questions": len(out),
            "as_table": round(sum(r["shape"] == "comparison" for r in out) / n, 3),
            "all_compared_named": round(sum(r["all_named"] for r in out) / n, 3),
            "answers_with_redundant_quotes": redundant, "per_question": out}


def details(answerer, embedder, rows, split) -> dict:
    from assistant.extractive import _FIGURE

    n = figure_first = keyword_first = keyword_any = redundant = 0
    for row in rows:
        a = answerer.answer(row["question"])
        if a.abstained:
            continue
        quotes = quotes_of(a)
        if not quotes:
            continue
        n += 1
        first = quotes[0][1]
        figure_first += bool(_FIGURE.search(first))
        kws = row.get("expected_keywords") or []
        if kws and any(k.lower() in q.lower() for _, q in quotes for k in kws):
            keyword_any += 1
            keyword_first += any(k.lower() in first.lower() for k in kws)
        redundant += redundant_pairs(a, embedder) > 0
    return {"split": split, "answered": n,
            "first_quote_states_a_figure": round(figure_first / max(1, n), 3),
            "keyword_in_first_quote_when_quoted": round(keyword_first / max(1, keyword_any), 3),
            "keyword_quoted": keyword_any, "answers_with_redundant_quotes": redundant}


def latency(answerer, rows) -> dict:
    from assistant import extractive

    answerer.answer("Which papers reduce memory when training language models?")  # warm-up
    out = {}
    for label, clear in (("cold_sentence_cache", True), ("warm_sentence_cache", False)):
        if not clear:  # every question's sentences seen once
            for row in rows:
                answerer.answer(row["question"])
        total, compose, sizes, stages = [], [], [], {}
        for row in rows:
            if clear:
                with extractive._CACHE_LOCK:
                    extractive._CACHE.clear()
                with extractive._SCORED_LOCK:
                    extractive._SCORED.clear()
            t0 = time.perf_counter()
            a = answerer.answer(row["question"])
            total.append((time.perf_counter() - t0) * 1000)
            compose.append(a.timings_ms.get("compose_ms", 0.0))
            sizes.append(len(a.sources))
            for stage, ms in a.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
        out[label] = {"total_ms": {"p50": pct(total, 50), "p95": pct(total, 95)},
                      "compose_ms": {"p50": pct(compose, 50), "p95": pct(compose, 95)},
                      "stages_ms": {k: {"p50": pct(v, 50), "p95": pct(v, 95)}
                                    for k, v in sorted(stages.items())},
                      "n": len(total), "sources_max": max(sizes, default=0),
                      "load_average": [round(x, 2) for x in os.getloadavg()]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir_option(ap)
    ap.add_argument("--splits", default="dev,test")
    ap.add_argument("--latency-only", action="store_true",
                    help="re-measure latency only; other figures kept from the last run")
    args = ap.parse_args()
    data_dir, setup = seed_index(args)

    from assistant.answer import Answerer
    from assistant.services import Services
    from assistant.settings import Settings

    settings = Settings(data_dir=data_dir, answer_mode="extractive")
    services = Services(settings)
    answerer = Answerer(services.retriever, settings)
    embedder = services.embedder
    result: dict = {"setup": setup, "synthesis": {}, "detail": {}}
    if args.latency_only:
        previous = ROOT / "bench" / "results" / "answer_shapes.json"
        result = json.loads(previous.read_text()) | {"setup": setup}
        result["latency"] = latency(answerer, [r for r in rows_of("dev")
                                               if r["type"] == "theme"])
        print(f"[dev] latency of survey answers: {result['latency']}")
        write("answer_shapes", {k: v for k, v in result.items()
                                if k not in ("benchmark", "machine")})
        return
    for split in args.splits.split(","):
        rows = rows_of(split)
        summary, per_q = synthesis(answerer, embedder,
                                   [r for r in rows if r["type"] == "theme"], split)
        result["synthesis"][split] = summary | {"per_question": per_q}
        print(f"[{split}] synthesis: " + ", ".join(f"{k} {v}" for k, v in summary.items()
                                                   if k != "split"))
        result["detail"][split] = details(answerer, embedder,
                                          [r for r in rows if r["type"] == "detail"], split)
        print(f"[{split}] detail: {result['detail'][split]}")
        result.setdefault("comparison", {})[split] = comparisons(
            answerer, embedder, [r for r in rows if r["type"] == "comparison"])
        print(f"[{split}] comparison: " + ", ".join(
            f"{k} {v}" for k, v in result["comparison"][split].items()
            if k != "per_question"))
        if split == "dev":
            surveys = [r for r in rows if r["type"] == "theme"]
            result["latency"] = latency(answerer, surveys)
            print(f"[dev] latency of survey answers: {result['latency']}")
    write("answer_shapes", result)


if __name__ == "__main__":
    main()
