"""The regression gate: baselines (evals/baseline.json) read, written and compared with a run.

A metric of ours worse than the baseline by more than its tolerance fails; a run on a subset
of questions is compared with the baseline re-aggregated over the same questions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import DEFAULT_BASELINE
from evals.baselines import OURS
from evals.metrics import aggregate, regressions

DEFAULT_TOLERANCE = 0.02
HEADLINE_SPLIT = "test"
GATED_SPLITS = ("test", "nearmiss-test")


def resolve_baseline(spec: str | Path) -> Path:
    """`baseline` means the committed evals/baseline.json; anything else is a path."""
    return DEFAULT_BASELINE if str(spec) == "baseline" else Path(spec)


def load_baseline(spec: str | Path) -> dict[str, Any]:
    path = resolve_baseline(spec)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read baseline {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of metric name -> value")
    return data


@dataclass
class GateResult:
    failures: list[str]
    reference: str  # what the run was compared with
    tolerance: float | dict[str, float]

    @property
    def passed(self) -> bool:
        return not self.failures


def gate(run: Any, baseline: dict[str, Any]) -> GateResult:
    """Compare ours with the baseline; a metric worse by more than the tolerance fails.

    The baseline's headline values were measured on the whole golden set. When this run
    covers only some of its questions (--limit, a smaller dataset), the baseline is
    re-aggregated over exactly those questions from its per-question records, so a subset
    is compared with the same subset.
    """
    tolerance = baseline.get("tolerance", DEFAULT_TOLERANCE)
    if "splits" in baseline:  # a split baseline: a single run is compared with its test part
        baseline = baseline["splits"].get(HEADLINE_SPLIT, {})
    mine = run.rows_of(OURS)
    if not mine:
        return GateResult(["no answers of 'ours' to check"], "nothing", tolerance)
    current = aggregate([r["metrics"] for r in mine])
    per_q = baseline.get("per_question") or {}
    ids = [r["id"] for r in mine]
    if per_q and set(ids) != set(per_q) and all(i in per_q for i in ids):
        reference = aggregate([per_q[i] for i in ids])
        where = f"baseline re-aggregated over the same {len(ids)} questions"
    else:
        reference = baseline
        where = f"baseline headline values ({baseline.get('_measured', {}).get('questions', '?')}"\
                " questions)"
    return GateResult(regressions(current, reference, tolerance), where, tolerance)


def baseline_payload(run: Any, meta: dict[str, Any],
                     tolerance: float | dict[str, float] = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """The content of evals/baseline.json, measured from this run's 'ours' rows."""
    from evals.metrics import DETERMINISTIC_METRICS

    overall = run.summary[OURS]["overall"]
    keep = ("answerable", "abstained", "valid_markers", "markers", "flagged", "statements",
            "stale_citation", "claims", "claims_not_supported")
    payload: dict[str, Any] = {
        "_about": "Regression gate for `assistant eval --fail-under baseline`: our "
                  "deterministic metrics on the seed index; a drop by more than `tolerance` "
                  "(absolute) fails. Rewrite with `assistant eval --write-baseline "
                  "evals/baseline.json` after an intended change.",
        "_measured": {k: meta.get(k) for k in ("timestamp", "git_commit", "mode", "dataset")}
        | {"questions": len(run.rows_of(OURS))},
        "tolerance": tolerance,
    }
    for name in DETERMINISTIC_METRICS:
        if overall.get(name) is not None:
            payload[name] = round(overall[name], 4)
    payload["per_question"] = {
        r["id"]: {k: (round(v, 4) if isinstance(v, float) else v)
                  for k, v in r["metrics"].items()
                  if k in keep or k in DETERMINISTIC_METRICS}
        for r in run.rows_of(OURS)
    }
    return payload


def dump_baseline(payload: dict[str, Any]) -> str:
    """baseline.json text: headline values one per line, each per-question record on one
    line (a reviewable diff when the baseline is rewritten)."""
    head = {k: v for k, v in payload.items() if k != "per_question"}
    lines = json.dumps(head, indent=1, ensure_ascii=False).rstrip("}").rstrip() + ","
    per_q = payload.get("per_question") or {}
    body = ",\n".join(f"  {json.dumps(i)}: {json.dumps(rec)}" for i, rec in per_q.items())
    return f'{lines}\n "per_question": {{\n{body}\n }}\n}}\n'


def check_comparable(baseline: dict[str, Any], mode: str, embedding: str) -> None:
    """Refuse to gate a run against a baseline measured another way."""
    want_mode = baseline.get("mode")
    want_emb = baseline.get("embedding")
    if want_mode and want_mode != mode:
        raise ValueError(f"the baseline was measured in {want_mode} mode, this run is in "
                         f"{mode} mode: not comparable (pass --mode {want_mode} or write a "
                         "new baseline)")
    if want_emb and want_emb != embedding:
        raise ValueError(f"the baseline was measured with {want_emb} vectors, this run uses "
                         f"{embedding}: not comparable (set ASSISTANT_EMBED_BACKEND / "
                         "ASSISTANT_ONNX_PRECISION to match, or write a new baseline)")


def splits_baseline_payload(result: Any, mode: str, embedding: str,
                            tolerance: float | dict[str, float] = DEFAULT_TOLERANCE
                            ) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "_about": "Regression gate for `assistant eval --fail-under baseline`: ours on the "
                  "test split and its near-misses; a metric worse by more than `tolerance` "
                  "(absolute; per metric when a table) fails. Rewrite with `assistant eval "
                  "--write-baseline evals/baseline.json` after an intended change.",
        "mode": mode, "embedding": embedding, "tolerance": tolerance, "splits": {},
    }
    for name in GATED_SPLITS:
        if name in result.outcomes:
            o = result.outcomes[name]
            payload["splits"][name] = baseline_payload(o.run, o.meta)
    return payload
