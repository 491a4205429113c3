"""A run's figures per configuration (overall, per question type, latency), and where a
baseline leads ours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evals.baselines import LABELS, OURS
from evals.metrics import LOWER_IS_BETTER, aggregate, latency_summary
from evals.questions import _type_order


def summarize(rows: list[dict[str, Any]], configs: Sequence[str]) -> dict[str, Any]:
    """Per configuration: overall figures, figures per question type, latency, errors."""
    out: dict[str, Any] = {}
    for config in configs:
        mine = [r for r in rows if r["config"] == config]
        types = sorted({r["type"] for r in mine}, key=_type_order)
        timings = [r["timings"] for r in mine]
        timings += [r["first_turn"]["timings"] for r in mine if r.get("first_turn")]
        out[config] = {
            "overall": aggregate([r["metrics"] for r in mine]),
            "by_type": {t: aggregate([r["metrics"] for r in mine if r["type"] == t])
                        for t in types},
            "latency_ms": latency_summary(timings),
            "errors": sum(1 for r in mine if r.get("error")),
            "removed_citations": sum(len(r.get("removed_citations") or []) for r in mine),
        }
    return out


def leads(summary: dict[str, Any], metrics: Sequence[str]) -> list[str]:
    """Metrics (overall) where some baseline beats ours — the table should have none."""
    ours = summary.get(OURS, {}).get("overall", {})
    out = []
    for name in metrics:
        mine = ours.get(name)
        if mine is None:
            continue
        for config, figures in summary.items():
            other = figures["overall"].get(name)
            if config == OURS or other is None:
                continue
            better = other < mine if name in LOWER_IS_BETTER else other > mine
            if better and abs(other - mine) > 1e-9:
                out.append(f"{name}: {LABELS.get(config, config)} {other:.3f} > ours {mine:.3f}"
                           if name not in LOWER_IS_BETTER else
                           f"{name}: {LABELS.get(config, config)} {other:.3f} < ours "
                           f"{mine:.3f}")
    return out
