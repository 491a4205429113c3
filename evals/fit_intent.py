"""Fit the survey-or-single decision (assistant/intent.json) on dev questions only.

Labels come from the question types: "theme" questions want a survey (1); lookups, detail
questions, the first turn of follow-ups and both turns of topic switches want one paper (0).
Comparison and off-corpus rows are left out (comparisons are recognised before this
decision; off-corpus questions abstain). Features: assistant/intent.py. The form centroids
and the logistic regression are fitted inside each cross-validation fold, and the threshold
is the one that maximises accuracy on the out-of-fold probabilities. The folds hold out one
question set (file) at a time: each set was written by a different hand, and a random split
let the model learn each writer's wording (it scored 0.948 survey recall where a set it had
not seen got 0.80). `hedge`, the lower end of the hedged band (assistant/intent.py decide),
is where the held-out survey recall reaches HEDGE_RECALL. The test split is never read.

Usage: python -m evals.fit_intent --data-dir DATA [--out assistant/intent.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from evals import DEV_DATASETS
from evals.run import load_dataset

HEDGE_RECALL = 0.98  # survey questions answered as a survey or hedged, held out by set
EXTRA_DEV = [Path(__file__).resolve().parent / "datasets" / n
             for n in ("dev_shapes.jsonl", "dev_compare.jsonl")]


def labelled(rows) -> list[tuple[str, int]]:
    out = []
    for r in rows:
        if r["type"] == "theme":
            out.append((r["question"], 1))
        elif r["type"] in ("lookup", "detail", "followup", "switch"):
            out.append((r["question"], 0))
            if r["type"] == "switch" and r.get("followup"):
                out.append((r["followup"], 0))
    return out


def _centroids(vecs: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """vecs: (questions, 2, dim), the form and the whole question of each."""
    return {"form_survey": vecs[y == 1, 0].mean(axis=0),
            "form_single": vecs[y == 0, 0].mean(axis=0),
            "question_survey": vecs[y == 1, 1].mean(axis=0),
            "question_single": vecs[y == 0, 1].mean(axis=0)}


def _matrix(questions, hits, vecs, cents, peers) -> np.ndarray:
    from assistant.intent import FEATURES, features

    return np.array([[features(q, h, v, cents, r)[k] for k in FEATURES]
                     for q, h, v, r in zip(questions, hits, vecs, peers, strict=True)])


def _share(mask: np.ndarray) -> float | None:
    return round(float(np.mean(mask)), 3) if mask.size else None


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    from assistant.answer import RANK_DEPTH
    from assistant.extractive import peer_relevance
    from assistant.intent import FEATURES, vectors
    from assistant.services import Services
    from assistant.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parents[1] / "assistant" / "intent.json")
    args = ap.parse_args()
    files = [p for p in (*DEV_DATASETS, *EXTRA_DEV) if p.exists()]
    pairs = [(q, label, p.name) for p in files for q, label in labelled(load_dataset(p))]
    questions = [q for q, _, _ in pairs]
    y = np.array([label for _, label, _ in pairs])
    sets = np.array([name for _, _, name in pairs])
    services = Services(Settings(data_dir=args.data_dir))
    found = [services.retriever.retrieve(q, k=RANK_DEPTH) for q in questions]
    hits = [r.hits for r in found]
    named = np.array([bool(r.title_matches) for r in found])
    vecs = np.stack([vectors(q, services.embedder) for q in questions])
    # The shipped survey relevance model (fitted on dev synthesis questions) scores the
    # peers. Held out here it leaks the held-out set's gold papers; a nested check refitting
    # it without each held-out set gave the same figures (assistant/intent.py).
    peers = np.array([peer_relevance(q, list(enumerate(h, start=1)), services.embedder)
                      for q, h in zip(questions, hits, strict=True)])

    cv = np.zeros(len(y))
    for held in sorted(set(sets)):
        tr, te = np.where(sets != held)[0], np.where(sets == held)[0]
        cents = _centroids(vecs[tr], y[tr])
        xtr = _matrix([questions[i] for i in tr], [hits[i] for i in tr], vecs[tr], cents,
                      peers[tr])
        xte = _matrix([questions[i] for i in te], [hits[i] for i in te], vecs[te], cents,
                      peers[te])
        mean, scale = xtr.mean(axis=0), xtr.std(axis=0) + 1e-9
        lr = LogisticRegression(max_iter=1000).fit((xtr - mean) / scale, y[tr])
        cv[te] = lr.predict_proba((xte - mean) / scale)[:, 1]

    def accuracy(t: float) -> float:
        return float(np.mean((cv >= t) == (y == 1)))

    # Plain accuracy: a lookup answered as a survey costs as much as a survey answered as a
    # lookup (extra papers quoted vs papers missed); ties go to the lower threshold.
    threshold = max(np.arange(0.05, 0.96, 0.01), key=lambda t: (accuracy(t), -t))
    tradeoff = {f"{t:.2f}": {"survey_recall": round(float(np.mean(cv[y == 1] >= t)), 3),
                             "single_kept": round(float(np.mean(cv[y == 0] < t)), 3)}
                for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)}
    hedge = max((t for t in np.arange(0.01, threshold + 1e-9, 0.01)
                 if np.mean(cv[y == 1] >= t) >= HEDGE_RECALL), default=0.01)
    by_set = {name: {"questions": int(np.sum(sets == name)),
                     "survey_recall": _share(cv[(sets == name) & (y == 1)] >= threshold),
                     "single_kept": _share(cv[(sets == name) & (y == 0)] < threshold)}
              for name in sorted(set(sets))}
    # Questions naming a corpus paper: a lookup ("Which papers study MicroAdam?") or a survey
    # anchored on it ("what else besides SCOPE compresses the KV cache?").
    by_named = {"questions": int(named.sum()),
                "survey_recall": _share(cv[named & (y == 1)] >= threshold),
                "single_kept": _share(cv[named & (y == 0)] < threshold)}
    cents = _centroids(vecs, y)
    x = _matrix(questions, hits, vecs, cents, peers)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    lr = LogisticRegression(max_iter=1000).fit((x - mean) / scale, y)
    out = {
        "_about": "Survey-or-single decision of assistant/intent.py: logistic regression over "
                  "standardised features; a survey when the probability is at least "
                  "`threshold`. Refit with `python -m evals.fit_intent --data-dir D`.",
        "fitted_on": [p.name for p in files],
        "questions": len(y), "survey_questions": int(y.sum()),
        "cv": "held out one question set at a time",
        "cv_survey_recall": round(float(np.mean(cv[y == 1] >= threshold)), 3),
        "cv_single_kept": round(float(np.mean(cv[y == 0] < threshold)), 3),
        "threshold": round(float(threshold), 2),
        "hedge": round(float(hedge), 2),
        "cv_hedged_or_survey": _share(cv[y == 1] >= hedge),
        "cv_single_unhedged": _share(cv[y == 0] < hedge),
        "cv_tradeoff": tradeoff,
        "by_set": by_set,
        "named_held_out": by_named,
        "features": list(FEATURES),
        "weights": dict(zip(FEATURES, (round(float(w), 4) for w in lr.coef_[0]), strict=True)),
        "bias": round(float(lr.intercept_[0]), 4),
        "mean": dict(zip(FEATURES, (round(float(v), 5) for v in mean), strict=True)),
        "scale": dict(zip(FEATURES, (round(float(v), 5) for v in scale), strict=True)),
        "centroids": {k: [round(float(v), 5) for v in c] for k, c in cents.items()},
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in out.items() if k not in ("_about", "centroids")},
                     indent=1))
    wrong = [(round(float(p), 2), label, q) for p, label, q in zip(cv, y, questions, strict=True)
             if (p >= threshold) != bool(label)]
    print(f"{len(wrong)} out-of-fold errors:")
    for p, label, q in sorted(wrong):
        print(f"  {p:.2f} {'survey' if label else 'single'}: {q}")


if __name__ == "__main__":
    main()
