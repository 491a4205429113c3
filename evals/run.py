"""Run a question set through every configuration, score it, gate it.

    load_dataset -> pick (--limit) -> run_eval (per configuration, per question) -> summarize
                 -> [judge] -> [external] -> gate against evals/baseline.json -> report

A golden row is answered like a user would ask it: `Answerer.answer(question)`, and for a
follow-up row a second turn `answer(followup, history=[first])`, which is the turn scored
(against followup_gold_titles / followup_keywords). Retrieval metrics use the ranking the
answerer's own search produced, `depth` (10) papers deep, with a follow-up's pinned papers
first — exactly the order the answerer numbered its sources in.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.answer import Answerer
from assistant.types import Answer
from evals import REPORTS_DIR
from evals.baselines import CONFIGS, LABELS, OURS, build_configs
from evals.gate import (  # noqa: F401  (re-exported: the old import path)
    DEFAULT_TOLERANCE,
    GATED_SPLITS,
    HEADLINE_SPLIT,
    GateResult,
    baseline_payload,
    check_comparable,
    dump_baseline,
    gate,
    load_baseline,
    resolve_baseline,
    splits_baseline_payload,
)
from evals.judge import answer_contexts
from evals.metrics import dedupe, keyword_hits, score_turn
from evals.provenance import embedding_label, git_commit, run_meta, safe_settings  # noqa: F401
from evals.questions import (  # noqa: F401
    REQUIRED_FIELDS,
    TYPES,
    gold_ids,
    load_dataset,
    near_miss_rows,
    pick,
    split_rows,
    type_counts,
)
from evals.summary import leads, summarize  # noqa: F401

# --- one question -----------------------------------------------------------------------------


@dataclass
class EvalOptions:
    mode: str = "extractive"  # of ours; baselines always answer extractively
    k: int | None = None  # papers per answer (default settings.top_k)
    configs: Sequence[str] = CONFIGS
    depth: int = 10  # papers ranked for the retrieval metrics
    progress: bool = True


def _turn(answerer: Answerer, question: str, history: list[Answer], mode: str,
          k: int | None, depth: int, exclude: frozenset[str] = frozenset()
          ) -> tuple[Answer, list[str]]:
    # Retrieval is scored on the order the answer itself ranked (Answer.ranked: pinned
    # papers first, then the search) — what the user sees, not a recomputation.
    answer = answerer.answer(question, history=history, mode=mode, k=k, exclude=exclude)
    return answer, answer.ranked[:depth]


def evaluate_row(answerer: Answerer, retr, row: dict[str, Any], mode: str,
                 k: int | None = None, depth: int = 10) -> dict[str, Any]:
    """Answer one row (two turns for a follow-up or topic switch) and score the last turn.

    A "nearmiss" row carries `exclude`: paper ids hidden from retrieval (its gold paper),
    so the right answer is to abstain."""
    first_turn: dict[str, Any] | None = None
    exclude = frozenset(row.get("exclude") or ())
    answer, ranking = _turn(answerer, row["question"], [], mode, k, depth, exclude)
    question, titles, keywords = row["question"], row["gold_titles"], \
        row.get("expected_keywords") or []
    previous: list[str] = []
    if row.get("followup"):
        first_gold = gold_ids(row["gold_titles"])
        previous = dedupe(c.paper_id for c in answer.citations)
        first_turn = {
            "question": row["question"], "retrieved": ranking, "cited": previous,
            "abstained": answer.abstained,
            "hit@5": 1.0 if set(first_gold) & set(ranking[:5]) else 0.0 if first_gold else None,
            "timings": answer.timings_ms,
        }
        question = row["followup"]
        titles = row.get("followup_gold_titles")
        if titles is None:
            titles = row["gold_titles"]
        keywords = row.get("followup_keywords") or []
        answer, ranking = _turn(answerer, question, [answer], mode, k, depth)
    gold = gold_ids(titles)
    cited = dedupe(c.paper_id for c in answer.citations)
    own_text = answer_text_without_titles(answer)
    metrics = score_turn(
        ranked=ranking, gold=gold, answer_text=answer.answer,
        source_numbers=[s.n for s in answer.sources], cited=cited,
        flagged=answer.flagged_sentences, abstained=answer.abstained, keywords=keywords,
        removed=len(answer.removed_citations), keyword_text=own_text,
        claim_labels=[c.label for c in answer.claims])
    if row["type"] == "switch":
        # After a topic switch, citing a paper of the previous turn that the new question
        # does not ask for is the "answered with the previous paper" failure.
        stale = [p for p in cited if p in previous and p not in gold]
        metrics["stale_citation"] = 1.0 if stale else 0.0
    return {
        "id": row["id"], "type": row["type"], "config": retr.name, "mode": answer.mode,
        "question": question, "first_turn": first_turn,
        "standalone_query": answer.standalone_query, "searched_for": answer.searched_for,
        "gold": gold, "gold_titles": list(titles), "keywords": list(keywords),
        "keywords_found": keyword_hits(own_text, keywords),
        "retrieved": ranking, "sources": [s.paper_id for s in answer.sources],
        "cited": cited, "answer": answer.answer, "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason, "coverage": answer.coverage,
        "removed_citations": answer.removed_citations, "error": answer.error,
        "metrics": metrics, "timings": answer.timings_ms,
        "_contexts": answer_contexts(answer),  # for the judge; not written to results.json
    }


def answer_text_without_titles(answer: Answer) -> str:
    """The answer's own sentences: source titles removed (a keyword found only in a
    title the answer repeats says nothing about whether it answered)."""
    text = answer.answer
    for s in sorted(answer.sources, key=lambda s: -len(s.title)):
        if s.title:
            text = text.replace(s.title, " ")
    return text


# --- many questions, many configurations ------------------------------------------------------


@dataclass
class EvalRun:
    rows: list[dict[str, Any]]
    configs: dict[str, str]  # name -> description
    options: EvalOptions
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)

    def refresh(self) -> None:
        self.summary = summarize(self.rows, list(self.configs))

    def rows_of(self, config: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["config"] == config]


def run_eval(services, rows: list[dict[str, Any]], options: EvalOptions | None = None,
             log: Callable[[str], None] = print) -> EvalRun:
    """Every row through every configuration. `services` is an assistant Services."""
    from tqdm import tqdm

    options = options or EvalOptions()
    t0 = time.perf_counter()
    log(f"Preparing configurations: {', '.join(options.configs)}")
    configs = build_configs(services.retriever, options.configs, options.depth)
    out: list[dict[str, Any]] = []
    for name, retr in configs.items():
        answerer = Answerer(retr, services.settings, llm_factory=lambda: services.llm)
        mode = options.mode if name == OURS else "extractive"
        retr.retrieve("warm-up query", options.k)  # lazy opens (Chroma, BM25) are not latency
        for row in tqdm(rows, desc=f"{LABELS.get(name, name)} [{mode}]", unit="q",
                        disable=not options.progress):
            out.append(evaluate_row(answerer, retr, row, mode, options.k, options.depth))
    run = EvalRun(out, {n: c.description for n, c in configs.items()}, options,
                  round(time.perf_counter() - t0, 1))
    run.refresh()
    return run


# --- everything, for the CLI and the tests -------------------------------------------------------


@dataclass
class Outcome:
    run: EvalRun
    meta: dict[str, Any]
    report_dir: Path | None = None
    gate: GateResult | None = None
    external: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None
    seconds: float = 0.0


def execute(services, rows: list[dict[str, Any]], options: EvalOptions, *,
            dataset: Path | None = None, judge: bool = False, external: bool = False,
            external_limit: int | None = None, external_dir: Path | None = None,
            judge_cache: Path | None = None,
            fail_under: str | Path | None = None, report_dir: Path | None = None,
            write_report: bool = True, log: Callable[[str], None] = print) -> Outcome:
    """The whole `assistant eval`: run, [judge], [external], gate, report."""
    t0 = time.perf_counter()
    baseline = load_baseline(fail_under) if fail_under is not None else None  # fail early
    run = run_eval(services, rows, options, log=log)
    meta = run_meta(services, dataset, options)
    meta["type_counts"] = type_counts(rows)
    meta["eval_seconds"] = run.seconds
    outcome = Outcome(run, meta)
    if judge:
        from evals.judge import Judge, judge_rows

        j = Judge(services.settings,
                  judge_cache or services.settings.data_dir / "evals" / "judge_cache.json")
        judge_rows(j, run.rows_of(OURS), progress=options.progress)
        run.refresh()
        outcome.judge = {"model": j.model, "judged_now": j.requests, "from_cache": j.cached,
                         "failures": j.failures, "cache": str(j.cache_path)}
    if external:
        from evals.external import run_external

        outcome.external = run_external(services.settings, services.embedder,
                                        limit=external_limit, source_dir=external_dir,
                                        progress=options.progress, log=log)
    if baseline is not None:
        outcome.gate = gate(run, baseline)
    outcome.seconds = round(time.perf_counter() - t0, 1)
    meta["total_seconds"] = outcome.seconds
    if write_report:
        from evals.report import write_report as write

        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        outcome.report_dir = write(report_dir or REPORTS_DIR / stamp, outcome)
    return outcome


@dataclass
class SplitOutcome:
    outcomes: dict[str, Outcome]
    gate: GateResult | None = None
    report_dir: Path | None = None


def execute_splits(services, splits: dict[str, list[dict[str, Any]]], options: EvalOptions, *,
                   fail_under: str | Path | None = None, report_dir: Path | None = None,
                   log: Callable[[str], None] = print, **kwargs) -> SplitOutcome:
    """Every split through `execute` (one report folder each), a side-by-side summary, and
    the gate on the gated splits (test and its near-misses)."""
    baseline = load_baseline(fail_under) if fail_under is not None else None
    if baseline is not None:
        check_comparable(baseline, options.mode, embedding_label(services.settings))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = report_dir or REPORTS_DIR / stamp
    outcomes: dict[str, Outcome] = {}
    for name, rows in splits.items():
        log(f"== {name}: {len(rows)} questions")
        outcomes[name] = execute(services, rows, options, report_dir=root / name, log=log,
                                 external=kwargs.get("external", False) and name == "test",
                                 **{k: v for k, v in kwargs.items() if k != "external"})
    result = SplitOutcome(outcomes, report_dir=root)
    if baseline is not None:
        failures: list[str] = []
        refs = []
        tolerance = baseline.get("tolerance", DEFAULT_TOLERANCE)
        for name in GATED_SPLITS:
            # A flat baseline (one run's figures) stands for the test split.
            section = ((baseline.get("splits") or {}).get(name) if "splits" in baseline
                       else baseline if name == HEADLINE_SPLIT else None)
            if name not in outcomes or section is None:
                continue
            g = gate(outcomes[name].run, section | {"tolerance": tolerance})
            failures += [f"[{name}] {f}" for f in g.failures]
            refs.append(f"{name}: {g.reference}")
        result.gate = GateResult(failures, "; ".join(refs) or "nothing", tolerance)
    from evals.report import splits_markdown

    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.md").write_text(splits_markdown(result), encoding="utf-8")
    return result
