"""Premise check: does an answer say when its lead paper does not state the question's figures?

A question can rest on a figure no paper gives ("Which paper reports more than 65% MFU on
12,000 GPUs?" when the paper reports 55.2% on 12,288): the assistant answers with the paper
and names the figures it does not state (`Answer.unstated`, shown above the answer). Prints
and writes bench/results/premise.json:

- premise questions (evals/datasets/dev_premise.jsonl, 15 written by a helper that never saw
  the system, each about a real paper, asking a figure or claim its abstract does not make):
  share abstained, share answered with a premise warning, and share answered with none (the
  citation vouches for a figure nobody stated). Figures only: a changed claim without a
  number ("beat Stockfish head-to-head") is not caught by this check;
- answerable lookup/detail questions whose wording holds a figure, dev and test: share
  answered with a premise warning, split by whether the lead paper is a gold paper (a
  warning on a wrong lead is right; on the gold paper it is a false alarm).

Test rows are only answered and scored here, never tuned on (evals/README.md).

Usage: .venv/bin/python bench/premise.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_data_dir_option, golden, seed_index, write  # noqa: E402
from evals import DEV_DATASETS, TEST_DATASET  # noqa: E402

PREMISE = ROOT / "evals" / "datasets" / "dev_premise.jsonl"


def premise_questions(answerer, rows) -> dict:
    abstained = warned = silent = 0
    examples = []
    for row in rows:
        a = answerer.answer(row["question"])
        if a.abstained:
            abstained += 1
        elif a.unstated:
            warned += 1
        else:
            silent += 1
        examples.append({"question": row["question"], "abstained": a.abstained,
                         "lead": a.citations[0].title if a.citations else None,
                         "unstated": a.unstated})
    n = max(1, len(rows))
    return {"questions": len(rows), "abstained": round(abstained / n, 3),
            "warned": round(warned / n, 3), "answered_without_warning": round(silent / n, 3),
            "examples": examples}


def answerable_with_figures(answerer, rows) -> dict:
    from assistant.support import figures

    asked = [r for r in rows if r["type"] in ("lookup", "detail") and r.get("gold_titles")
             and figures(r["question"], words=False)]
    counts = {"gold_lead": 0, "gold_lead_warned": 0, "other_lead": 0, "other_lead_warned": 0}
    for row in asked:
        a = answerer.answer(row["question"])
        if a.abstained or not a.citations:
            continue
        key = "gold_lead" if a.citations[0].title in row["gold_titles"] else "other_lead"
        counts[key] += 1
        counts[f"{key}_warned"] += bool(a.unstated)
    return {"questions": len(asked), **counts,
            "false_alarm_rate": round(counts["gold_lead_warned"] / max(1, counts["gold_lead"]),
                                      3),
            "wrong_lead_warned": round(counts["other_lead_warned"]
                                       / max(1, counts["other_lead"]), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir_option(ap)
    args = ap.parse_args()
    data_dir, setup = seed_index(args)

    from assistant.answer import Answerer
    from assistant.services import Services
    from assistant.settings import Settings

    settings = Settings(data_dir=data_dir, answer_mode="extractive")
    answerer = Answerer(Services(settings).retriever, settings)
    result: dict = {"setup": setup, "premise_dev": premise_questions(answerer, golden(PREMISE))}
    print("premise questions (dev): " + ", ".join(
        f"{k} {v}" for k, v in result["premise_dev"].items() if k != "examples"))
    for split, paths in (("dev", DEV_DATASETS), ("test", (TEST_DATASET,))):
        rows = [r for p in paths for r in golden(p)]
        result[f"answerable_{split}"] = answerable_with_figures(answerer, rows)
        print(f"answerable questions with figures ({split}): {result[f'answerable_{split}']}")
    write("premise", result)


if __name__ == "__main__":
    main()
