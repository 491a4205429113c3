"""Deterministic answer-quality metrics: pure functions, no LLM, no index.

Everything is scored at paper level. A metric that does not apply to a question (retrieval
metrics for an off-corpus question, keyword recall without expected keywords, citation
precision of an answer that cites nothing) is ``None`` and is left out of averages, never
counted as 0 or 1.

Per question, :func:`score_turn` turns an answer into one flat dict of metrics; over a set
of questions, :func:`aggregate` turns those dicts into the figures of the report (means, or
ratios of summed counts where a ratio of sums is the honest figure).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from assistant.citations import is_statement, markers, sentences

RETRIEVAL_KS = (1, 5, 10)
NDCG_K = 10

# Metrics where a smaller value is better (the regression gate flips its comparison).
LOWER_IS_BETTER = frozenset({"uncited_rate", "false_abstention_rate", "stale_citation_rate",
                             "unsupported_claim_rate"})

# The order metrics appear in tables; aggregate() may add judge metrics and "n".
RETRIEVAL_METRICS = [f"hit@{k}" for k in RETRIEVAL_KS] + [f"recall@{k}" for k in RETRIEVAL_KS] \
    + ["mrr", f"ndcg@{NDCG_K}"]
ANSWER_METRICS = ["citation_validity", "citation_precision", "gold_recall", "gold_cited",
                  "uncited_rate", "unsupported_claim_rate", "keyword_recall",
                  "stale_citation_rate"]
ABSTENTION_METRICS = ["abstention_precision", "abstention_recall", "abstention_f1",
                      "false_abstention_rate"]
JUDGE_METRICS = ["faithfulness", "relevancy"]
DETERMINISTIC_METRICS = RETRIEVAL_METRICS + ANSWER_METRICS + ABSTENTION_METRICS


# --- helpers --------------------------------------------------------------------------------


def dedupe(ids: Iterable[str]) -> list[str]:
    """First occurrence of each id, order kept (chunk rankings collapse to papers this way)."""
    return list(dict.fromkeys(ids))


def mean(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), p in 0..100; None when empty."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return None
    pos = (len(vals) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


# --- retrieval (paper level) ------------------------------------------------------------------


def hit_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float | None:
    """1.0 when any gold paper is among the first k, else 0.0; None without gold papers."""
    gold = set(gold)
    if not gold:
        return None
    return 1.0 if gold & set(dedupe(ranked)[:k]) else 0.0


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float | None:
    """Share of the gold papers found among the first k."""
    gold = set(gold)
    if not gold:
        return None
    return len(gold & set(dedupe(ranked)[:k])) / len(gold)


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str]) -> float | None:
    """1 / rank of the first gold paper (0.0 when none was retrieved)."""
    gold = set(gold)
    if not gold:
        return None
    for rank, pid in enumerate(dedupe(ranked), start=1):
        if pid in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Iterable[str], k: int = NDCG_K) -> float | None:
    """Binary-relevance nDCG@k: DCG of the ranking over the DCG of a perfect one."""
    gold = set(gold)
    if not gold:
        return None
    dcg = sum(1.0 / math.log2(i + 1)
              for i, pid in enumerate(dedupe(ranked)[:k], start=1) if pid in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def retrieval_metrics(ranked: Sequence[str], gold: Iterable[str]) -> dict[str, float | None]:
    gold = set(gold)
    out: dict[str, float | None] = {}
    for k in RETRIEVAL_KS:
        out[f"hit@{k}"] = hit_at_k(ranked, gold, k)
    for k in RETRIEVAL_KS:
        out[f"recall@{k}"] = recall_at_k(ranked, gold, k)
    out["mrr"] = reciprocal_rank(ranked, gold)
    out[f"ndcg@{NDCG_K}"] = ndcg_at_k(ranked, gold, NDCG_K)
    return out


# --- citations ------------------------------------------------------------------------------


def citation_counts(text: str, source_numbers: Iterable[int]) -> tuple[int, int]:
    """(markers that resolve to a numbered source, all markers) in the answer text."""
    valid = set(source_numbers)
    cited = markers(text)
    return sum(1 for n in cited if n in valid), len(cited)


def citation_validity(text: str, source_numbers: Iterable[int]) -> float | None:
    """Share of [n] markers that point at a source; None when the text cites nothing."""
    ok, total = citation_counts(text, source_numbers)
    return ratio(ok, total)


def citation_precision(cited: Iterable[str], gold: Iterable[str]) -> float | None:
    """Share of the cited papers that are gold; None when nothing is cited or no gold."""
    cited, gold = set(cited), set(gold)
    if not cited or not gold:
        return None
    return len(cited & gold) / len(cited)


def gold_recall(cited: Iterable[str], gold: Iterable[str]) -> float | None:
    """Share of the gold papers the answer cites (0.0 for an answer citing nothing)."""
    cited, gold = set(cited), set(gold)
    if not gold:
        return None
    return len(cited & gold) / len(gold)


def statement_count(text: str) -> int:
    """Sentences that state something: the denominator of the uncited-sentence rate.

    assistant.citations.is_statement, the citation check's own rule: headings, list labels
    and fragments under four words are not statements.
    """
    return sum(1 for s in sentences(text) if is_statement(s))


def uncited_rate(flagged: Sequence[str], text: str) -> float | None:
    """Flagged (uncited) statements over all statements of the answer."""
    return ratio(len(flagged), statement_count(text))


# --- keywords --------------------------------------------------------------------------------


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("*", "")
    return " ".join(text.split())


def _acronym(keyword: str) -> bool:
    """One token with two capitals or more (FP4, DPO, vLLM): its case is its meaning."""
    return len(keyword.split()) == 1 and sum(c.isupper() for c in keyword) >= 2


def keyword_hits(text: str, keywords: Sequence[str]) -> list[str]:
    """The expected keywords found in the text as whole words (not inside longer words or
    numbers: "34.4" is not found in "134.45"); acronyms ("FP4", "DPO") case-sensitive."""
    found = []
    for kw in keywords:
        if not kw or not kw.strip():
            continue
        sensitive = _acronym(kw)
        hay = " ".join(unicodedata.normalize("NFKC", text).replace("*", "").split())
        needle = " ".join(unicodedata.normalize("NFKC", kw).split())
        if not sensitive:
            hay, needle = hay.casefold(), needle.casefold()
        # A number is bounded by what is not part of a number ("34.4times" holds 34.4,
        # "134.45" does not); a word by what is not part of a word.
        before = r"(?<![\d.])" if needle[:1].isdigit() else r"(?<!\w)"
        after = r"(?!\d|\.\d)" if needle[-1:].isdigit() else r"(?!\w)"
        if re.search(before + re.escape(needle) + after, hay):
            found.append(kw)
    return found


def keyword_recall(text: str, keywords: Sequence[str]) -> float | None:
    keywords = [k for k in keywords if k and k.strip()]
    if not keywords:
        return None
    return len(keyword_hits(text, keywords)) / len(keywords)


# --- abstention ------------------------------------------------------------------------------


def abstention_metrics(pairs: Iterable[tuple[bool, bool]]) -> dict[str, float | None]:
    """From (answerable, abstained) per question. Abstaining is the positive class:

    precision = abstentions that were right / all abstentions,
    recall    = off-corpus questions abstained on / all off-corpus questions,
    f1        = 2tp / (2tp + fp + fn), false_abstention_rate = fp / answerable questions.
    """
    tp = fp = fn = answerable = 0
    for can_answer, abstained in pairs:
        answerable += can_answer
        if abstained and not can_answer:
            tp += 1
        elif abstained:
            fp += 1
        elif not can_answer:
            fn += 1
    return {
        "abstention_precision": ratio(tp, tp + fp),
        "abstention_recall": ratio(tp, tp + fn),
        "abstention_f1": ratio(2 * tp, 2 * tp + fp + fn),
        "false_abstention_rate": ratio(fp, answerable),
    }


# --- latency ---------------------------------------------------------------------------------


def latency_summary(timings: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """p50 / p95 (ms) per stage key of Answer.timings_ms, over the answers that have it."""
    by_stage: dict[str, list[float]] = {}
    for t in timings:
        for stage, ms in t.items():
            if isinstance(ms, int | float):
                by_stage.setdefault(stage, []).append(float(ms))
    return {stage: {"p50": round(percentile(v, 50), 1), "p95": round(percentile(v, 95), 1),
                    "n": len(v)}
            for stage, v in sorted(by_stage.items())}


# --- one answer, many answers -----------------------------------------------------------------


def score_turn(*, ranked: Sequence[str], gold: Iterable[str], answer_text: str,
               source_numbers: Iterable[int], cited: Iterable[str], flagged: Sequence[str],
               abstained: bool, keywords: Sequence[str] = (), removed: int = 0,
               keyword_text: str | None = None,
               claim_labels: Sequence[str] = ()) -> dict[str, Any]:
    """All deterministic metrics of one scored answer, as a flat dict (see aggregate).

    Citation validity is judged on the raw generation: `removed` markers (pointing outside
    the sources, already stripped from `answer_text`) count as invalid. Keywords are looked
    for in `keyword_text` (the answer without the titles it repeats) when given.
    `claim_labels`: the claim check's label of each claim (assistant/support.py)."""
    gold = set(gold)
    cited = dedupe(cited)
    answerable = bool(gold)
    valid, total = citation_counts(answer_text, source_numbers)
    row: dict[str, Any] = {"answerable": answerable, "abstained": bool(abstained)}
    row.update(retrieval_metrics(ranked, gold))
    total += removed
    row.update({
        "valid_markers": valid, "markers": total,
        "citation_validity": ratio(valid, total),
        # Answerable and answered with at least one gold paper cited.
        "gold_cited": (1.0 if set(cited) & gold else 0.0) if answerable else None,
        "citation_precision": citation_precision(cited, gold),
        "gold_recall": gold_recall(cited, gold),
        # An abstention is not an answer: it has no statements to cite.
        "flagged": 0 if abstained else len(flagged),
        "statements": 0 if abstained else statement_count(answer_text),
        "keyword_recall": keyword_recall(
            answer_text if keyword_text is None else keyword_text, keywords),
    })
    row["uncited_rate"] = ratio(row["flagged"], row["statements"])
    labels = [] if abstained else list(claim_labels)
    row["claims"] = len(labels)
    row["claims_not_supported"] = sum(label != "supported" for label in labels)
    row["unsupported_claim_rate"] = ratio(row["claims_not_supported"], row["claims"])
    return row


def aggregate(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Figures over many score_turn() dicts. Ratios of sums for citation validity and the
    uncited rate (long answers weigh more), means elsewhere; abstention from the counts."""
    out: dict[str, Any] = {"n": len(rows)}
    for name in RETRIEVAL_METRICS + ["citation_precision", "gold_recall", "gold_cited",
                                      "keyword_recall"]:
        out[name] = mean(r.get(name) for r in rows)
    out["stale_citation_rate"] = mean(r.get("stale_citation") for r in rows)
    out["citation_validity"] = ratio(sum(r.get("valid_markers", 0) for r in rows),
                                     sum(r.get("markers", 0) for r in rows))
    out["uncited_rate"] = ratio(sum(r.get("flagged", 0) for r in rows),
                                sum(r.get("statements", 0) for r in rows))
    out["unsupported_claim_rate"] = ratio(sum(r.get("claims_not_supported", 0) for r in rows),
                                          sum(r.get("claims", 0) for r in rows))
    out.update(abstention_metrics((bool(r["answerable"]), bool(r["abstained"])) for r in rows))
    for name in JUDGE_METRICS:
        if any(r.get(name) is not None for r in rows):
            out[name] = mean(r.get(name) for r in rows)
    return out


# --- regression gate ----------------------------------------------------------------------------


def regressions(current: Mapping[str, Any], baseline: Mapping[str, Any],
                tolerance: float | Mapping[str, float]) -> list[str]:
    """Metrics that got worse than the baseline by more than `tolerance` (absolute).

    Only numeric baseline entries of known deterministic metrics are checked. A metric the
    baseline has but the run cannot compute any more (None) counts as a regression.
    """
    out = []
    for name in DETERMINISTIC_METRICS:
        base = baseline.get(name)
        if not isinstance(base, int | float) or isinstance(base, bool):
            continue
        now = current.get(name)
        if now is None:
            out.append(f"{name}: was {base:.3f}, now not computable")
            continue
        worse = (now - base) if name in LOWER_IS_BETTER else (base - now)
        tol = (tolerance.get(name, tolerance.get("default", 0.02))
               if isinstance(tolerance, Mapping) else tolerance)
        if worse > tol + 1e-9:
            out.append(f"{name}: {now:.3f} vs baseline {base:.3f} "
                       f"({'+' if name in LOWER_IS_BETTER else '-'}{worse:.3f}, "
                       f"tolerance {tol:g})")
    return out


def fmt(value: Any, digits: int = 3) -> str:
    """Table cell: numbers rounded, missing values as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)

