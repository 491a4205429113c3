"""Questions that name a paper, built from every seed title, and known-item search.

    .venv/bin/python bench/named_papers.py [--data-dir DATA]

For every seed paper: its name (before a title's colon, else the full title) asked with
templates the abstention model was NOT fitted with ("What does X propose?", "Is there a paper
about X?", "How does X work?"); the figure is the share answered citing that paper, and the
share abstaining. Known-item: hit@1 of the full title and of the name before the colon as the
query. Writes bench/results/named_papers.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from assistant.services import Services
from assistant.settings import Settings

TEMPLATES = ("What does {name} propose?", "Is there a paper about {name}?",
             "How does {name} work?")
OUT = Path(__file__).resolve().parent / "results" / "named_papers.json"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path("data"))
    args = ap.parse_args()
    services = Services(Settings(data_dir=args.data_dir, answer_mode="extractive"))
    titles = services.index.catalog.titles()
    answerer, retriever = services.answerer, services.retriever
    t0 = time.perf_counter()
    cited = abstained = total = 0
    misses = []
    for i, (pid, title) in enumerate(sorted(titles.items(), key=lambda kv: kv[1])):
        name = title.split(":")[0].strip() if ":" in title else title
        q = TEMPLATES[i % len(TEMPLATES)].format(name=name)
        a = answerer.answer(q)
        total += 1
        abstained += a.abstained
        ok = pid in {c.paper_id for c in a.citations}
        cited += ok
        if not ok:
            misses.append(q)
    full_hits = sum(retriever.retrieve(t, k=3).hits[0].paper_id == pid
                    for pid, t in titles.items())
    named = [(pid, t.split(":")[0].strip()) for pid, t in titles.items() if ":" in t]
    name_hits = sum(retriever.retrieve(n, k=3).hits[0].paper_id == pid for pid, n in named)
    figures = {
        "questions": total, "cite_the_named_paper": round(cited / total, 3),
        "abstain": round(abstained / total, 3),
        "known_item_hit@1_full_title": round(full_hits / len(titles), 4),
        "known_item_hit@1_name_before_colon": round(name_hits / len(named), 4),
        "names_before_colon": len(named), "seconds": round(time.perf_counter() - t0, 1),
        "misses": misses[:40],
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "misses"}, indent=1))
    print("misses:", *misses[:15], sep="\n  ")


if __name__ == "__main__":
    main()
