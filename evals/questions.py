"""The golden question sets: loading (with per-line errors), sampling, and near-misses.

dev (tune on it), test (report and gate on it, never tuned on), and the near-miss rows made
from each: every single-paper question again with its gold paper hidden at retrieval time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.corpus import paper_id
from assistant.jsonl import read_jsonl

TYPES = ("lookup", "detail", "theme", "followup", "switch", "offcorpus", "nearmiss")
REQUIRED_FIELDS = ("id", "type", "question", "gold_titles")


def load_dataset(path: Path) -> list[dict[str, Any]]:
    """Golden rows; raises ValueError naming the line of a malformed one."""
    rows, seen = [], set()
    for no, row, error in read_jsonl(path):
        if error:
            raise ValueError(error)
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise ValueError(f"{path}:{no}: missing field(s) {missing}")
        if row["type"] in ("followup", "switch") and not row.get("followup"):
            raise ValueError(f"{path}:{no}: a followup row needs a 'followup' question")
        if row["id"] in seen:
            raise ValueError(f"{path}:{no}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        rows.append(row)
    return rows


def pick(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The first `limit` rows taken round-robin over question types (so every type is in),
    in dataset order. No limit: all rows."""
    if limit is None or limit >= len(rows):
        return list(rows)
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row)
    chosen: set[str] = set()
    queues = [list(v) for v in by_type.values()]
    while len(chosen) < limit and any(queues):
        for q in queues:
            if q and len(chosen) < limit:
                chosen.add(q.pop(0)["id"])
    return [r for r in rows if r["id"] in chosen]


def gold_ids(titles: Sequence[str]) -> list[str]:
    return [paper_id(t) for t in titles]


def type_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["type"]] = counts.get(r["type"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: _type_order(kv[0])))


def _type_order(t: str) -> tuple[int, str]:
    return (TYPES.index(t) if t in TYPES else len(TYPES), t)


def near_miss_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every single-paper question again, its gold paper hidden at retrieval time: the
    corpus still covers the topic, not the question, so the answer must abstain."""
    out = []
    for row in rows:
        if row["type"] in ("lookup", "detail") and len(row["gold_titles"]) == 1:
            out.append({"id": f"{row['id']}~nearmiss", "type": "nearmiss",
                        "question": row["question"], "gold_titles": [],
                        "exclude": gold_ids(row["gold_titles"]),
                        "style": row.get("style", [])})
    return out


def split_rows(dev_paths: Sequence[Path], test_path: Path) -> dict[str, list[dict[str, Any]]]:
    """dev (tune on it), test (report and gate on it), and the near-miss rows of each."""
    dev = [r for p in dev_paths for r in load_dataset(p)]
    test = load_dataset(test_path)
    return {"dev": dev, "test": test, "nearmiss-dev": near_miss_rows(dev),
            "nearmiss-test": near_miss_rows(test)}
