"""evals/metrics.py on hand-made cases: every metric is shown to pass and to fail."""

from __future__ import annotations

import json
import math

import pytest

from evals import metrics as m


def approx(x):
    return pytest.approx(x, abs=1e-9)


# --- retrieval ----------------------------------------------------------------------------------

RANKED = ["a", "b", "g1", "c", "g2", "d", "e", "f", "h", "i", "g3"]


def test_hit_at_k():
    assert m.hit_at_k(RANKED, {"g1"}, 1) == 0.0
    assert m.hit_at_k(RANKED, {"g1"}, 3) == 1.0
    assert m.hit_at_k(RANKED, {"a"}, 1) == 1.0
    assert m.hit_at_k(RANKED, {"zzz"}, 10) == 0.0
    assert m.hit_at_k(RANKED, set(), 5) is None  # no gold: not applicable, not 0


def test_rankings_collapse_duplicates_to_papers():
    # A paper seen twice (two chunks) takes one rank: "g" is second, not third.
    assert m.hit_at_k(["a", "a", "g"], {"g"}, 2) == 1.0
    assert m.reciprocal_rank(["a", "a", "g"], {"g"}) == 0.5


def test_recall_at_k():
    gold = {"g1", "g2", "g3"}
    assert m.recall_at_k(RANKED, gold, 1) == 0.0
    assert m.recall_at_k(RANKED, gold, 3) == approx(1 / 3)
    assert m.recall_at_k(RANKED, gold, 5) == approx(2 / 3)
    assert m.recall_at_k(RANKED, gold, 10) == approx(2 / 3)  # g3 is 11th
    assert m.recall_at_k(RANKED, gold, 11) == 1.0
    assert m.recall_at_k(RANKED, [], 5) is None


def test_reciprocal_rank():
    assert m.reciprocal_rank(RANKED, {"g1"}) == approx(1 / 3)
    assert m.reciprocal_rank(RANKED, {"g2", "g1"}) == approx(1 / 3)  # the first gold counts
    assert m.reciprocal_rank(RANKED, {"a"}) == 1.0
    assert m.reciprocal_rank(RANKED, {"nope"}) == 0.0


def test_ndcg_at_10():
    assert m.ndcg_at_k(["g", "x"], {"g"}) == 1.0
    assert m.ndcg_at_k(["x", "g"], {"g"}) == approx(1 / math.log2(3))
    both = m.ndcg_at_k(["g1", "x", "g2"], {"g1", "g2"})
    assert both == approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert m.ndcg_at_k(["x"] * 3 + [f"y{i}" for i in range(10)] + ["g"], {"g"}) == 0.0
    assert m.ndcg_at_k(["x"], set()) is None


def test_retrieval_metrics_keys():
    out = m.retrieval_metrics(RANKED, {"g1"})
    assert list(out) == m.RETRIEVAL_METRICS
    assert out["hit@1"] == 0.0 and out["hit@5"] == 1.0 and out["mrr"] == approx(1 / 3)


# --- citations ----------------------------------------------------------------------------------


def test_citation_validity():
    assert m.citation_validity("A holds [1]. B holds [2][1].", {1, 2}) == 1.0
    assert m.citation_validity("A holds [1]. B holds [7].", {1, 2}) == 0.5
    assert m.citation_counts("A [1, 3]. B [2-4].", {1, 2, 3}) == (4, 5)
    assert m.citation_validity("No citation at all.", {1}) is None


def test_citation_precision_and_gold_recall():
    assert m.citation_precision(["g", "x"], {"g"}) == 0.5
    assert m.citation_precision(["g"], {"g", "h"}) == 1.0
    assert m.citation_precision(["x"], {"g"}) == 0.0
    assert m.citation_precision([], {"g"}) is None  # cites nothing: precision undefined
    assert m.gold_recall(["g", "x"], {"g", "h"}) == 0.5
    assert m.gold_recall([], {"g"}) == 0.0  # ... but recall counts it as a miss
    assert m.gold_recall(["x"], set()) is None


def test_uncited_rate():
    text = ("Two papers address this question directly [1].\n\n"
            "- **Sources:**\n"
            "- The first one trains a large model on code [1]. It reports strong results "
            "on every benchmark.")
    assert m.statement_count(text) == 3  # the list label is not a statement
    flagged = ["It reports strong results on every benchmark."]
    assert m.uncited_rate(flagged, text) == approx(1 / 3)
    assert m.uncited_rate([], text) == 0.0
    assert m.uncited_rate([], "") is None


# --- keywords -----------------------------------------------------------------------------------


def test_keyword_recall():
    text = "Marconi achieves up to 34.4times higher **Token Hit** rates [1]."
    assert m.keyword_recall(text, ["34.4"]) == 1.0
    assert m.keyword_recall(text, ["token hit", "71.1%"]) == 0.5  # case-insensitive, no bold
    assert m.keyword_hits(text, ["TOKEN   HIT"]) == ["TOKEN   HIT"]  # whitespace-insensitive
    assert m.keyword_recall(text, ["617 ms"]) == 0.0
    assert m.keyword_recall(text, []) is None
    # Whole words and whole numbers only; acronyms keep their case.
    assert m.keyword_hits("up to 134.45 points", ["34.4"]) == []
    assert m.keyword_hits("it hits the cache", ["hit"]) == []
    assert m.keyword_hits("trained in fp4 precision", ["FP4"]) == []
    assert m.keyword_hits("trained in FP4 precision", ["FP4"]) == ["FP4"]


# --- abstention ---------------------------------------------------------------------------------


def test_abstention_metrics():
    # (answerable, abstained): 2 off-corpus caught, 1 missed, 1 answerable wrongly refused.
    pairs = [(False, True), (False, True), (False, False), (True, True), (True, False),
             (True, False), (True, False)]
    out = m.abstention_metrics(pairs)
    assert out["abstention_precision"] == approx(2 / 3)
    assert out["abstention_recall"] == approx(2 / 3)
    assert out["abstention_f1"] == approx(2 / 3)
    assert out["false_abstention_rate"] == approx(1 / 4)


def test_abstention_never_abstaining():
    out = m.abstention_metrics([(False, False), (True, False)])
    assert out["abstention_recall"] == 0.0
    assert out["abstention_f1"] == 0.0
    assert out["abstention_precision"] is None  # no abstention to be right or wrong about
    assert out["false_abstention_rate"] == 0.0
    only_answerable = m.abstention_metrics([(True, False)])
    assert only_answerable["abstention_recall"] is None


# --- latency, aggregate, gate -------------------------------------------------------------------


def test_percentile_and_latency():
    assert m.percentile([], 50) is None
    assert m.percentile([10, 20, 30, 40], 50) == 25
    assert m.percentile(list(range(1, 101)), 95) == approx(95.05)
    out = m.latency_summary([{"retrieve_ms": 10, "total_ms": 100},
                             {"retrieve_ms": 30, "total_ms": 300, "generate_ms": 5}])
    assert out["retrieve_ms"] == {"p50": 20.0, "p95": 29.0, "n": 2}
    assert out["generate_ms"]["n"] == 1


def _turn(ranked, gold, text, cited, flagged=(), abstained=False, keywords=()):
    return m.score_turn(ranked=ranked, gold=gold, answer_text=text,
                        source_numbers=[1, 2, 3], cited=cited, flagged=list(flagged),
                        abstained=abstained, keywords=keywords)


def test_score_turn_and_aggregate():
    good = _turn(["g", "x"], {"g"}, "The answer is 42 per cent [1]. Also true here [2].",
                 ["g", "x"], keywords=["42"])
    bad = _turn(["x", "y"], {"g"}, "The answer is unknown to me [9]. And nothing cited here.",
                [], flagged=["And nothing cited here."], keywords=["42", "7"])
    off = _turn(["x"], set(), "The corpus does not cover this question.", [], abstained=True)
    assert good["hit@1"] == 1.0 and bad["hit@1"] == 0.0 and off["hit@1"] is None
    assert good["citation_precision"] == 0.5 and bad["citation_precision"] is None
    assert off["statements"] == 0 and off["uncited_rate"] is None
    agg = m.aggregate([good, bad, off])
    assert agg["n"] == 3
    assert agg["hit@1"] == 0.5  # the off-corpus row is not averaged in
    assert agg["citation_validity"] == approx(2 / 3)  # [1], [2] valid, [9] not
    assert agg["uncited_rate"] == approx(1 / 4)
    assert agg["keyword_recall"] == 0.5
    assert agg["gold_recall"] == 0.5
    assert agg["abstention_recall"] == 1.0 and agg["false_abstention_rate"] == 0.0
    assert "faithfulness" not in agg
    agg = m.aggregate([{**good, "faithfulness": 1.0}, {**bad, "faithfulness": 0.0}])
    assert agg["faithfulness"] == 0.5


def test_claims_the_check_does_not_support_are_a_lower_is_better_rate():
    checked = m.score_turn(ranked=["g"], gold={"g"}, answer_text="A [1]. B [1]. C [1].",
                           source_numbers=[1], cited=["g"], flagged=[], abstained=False,
                           claim_labels=["supported", "weak", "unsupported"])
    assert checked["claims"] == 3 and checked["claims_not_supported"] == 2
    clean = m.score_turn(ranked=["g"], gold={"g"}, answer_text="A [1].", source_numbers=[1],
                         cited=["g"], flagged=[], abstained=False, claim_labels=["supported"])
    off = m.score_turn(ranked=[], gold=set(), answer_text="Not covered.", source_numbers=[],
                       cited=[], flagged=[], abstained=True, claim_labels=["unsupported"])
    assert off["claims"] == 0 and off["unsupported_claim_rate"] is None
    assert m.aggregate([checked, clean, off])["unsupported_claim_rate"] == approx(2 / 4)
    assert "unsupported_claim_rate" in m.LOWER_IS_BETTER
    assert m.regressions({"unsupported_claim_rate": 0.3}, {"unsupported_claim_rate": 0.1}, 0.02)


def test_regressions():
    base = {"hit@5": 0.80, "uncited_rate": 0.10, "mrr": 0.70, "tolerance": 0.02,
            "keyword_recall": 0.9, "latency": 3.0}
    ok = {"hit@5": 0.79, "uncited_rate": 0.11, "mrr": 0.95, "keyword_recall": 0.9}
    assert m.regressions(ok, base, 0.02) == []
    worse = {"hit@5": 0.70, "uncited_rate": 0.20, "mrr": 0.70, "keyword_recall": None}
    failed = m.regressions(worse, base, 0.02)
    assert [f.split(":")[0] for f in failed] == ["hit@5", "uncited_rate", "keyword_recall"]
    assert m.regressions(worse, base, 0.5) == ["keyword_recall: was 0.900, now not computable"]


def test_a_rewritten_baseline_keeps_the_measured_tolerances(tmp_path):
    from evals.command import _tolerance_of

    table = {"default": 0.02, "abstention_recall": 0.053}
    committed = tmp_path / "committed.json"
    committed.write_text(json.dumps({"tolerance": table}))
    new = tmp_path / "new.json"  # not written yet: the committed table is kept
    assert _tolerance_of(new, committed) == [table]
    new.write_text("{not json")  # unreadable: skipped, not fatal
    assert _tolerance_of(new, committed) == [table]
    new.write_text(json.dumps({"tolerance": 0.01}))  # the file being replaced wins
    assert _tolerance_of(new, committed) == [0.01]
    assert _tolerance_of(tmp_path / "none.json") == []
