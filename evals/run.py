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
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from assistant.answer import Answerer
from assistant.corpus import paper_id
from assistant.types import Answer
from evals import DEFAULT_BASELINE, EVALS_DIR, REPORTS_DIR
from evals.baselines import CONFIGS, LABELS, OURS, build_configs
from evals.judge import answer_contexts
from evals.metrics import (
    aggregate,
    dedupe,
    keyword_hits,
    latency_summary,
    regressions,
    score_turn,
)

TYPES = ("lookup", "detail", "theme", "followup", "switch", "offcorpus", "nearmiss")
REQUIRED_FIELDS = ("id", "type", "question", "gold_titles")
DEFAULT_TOLERANCE = 0.02


# --- the dataset ----------------------------------------------------------------------------


def load_dataset(path: Path) -> list[dict[str, Any]]:
    """Golden rows; raises ValueError naming the line of a malformed one."""
    rows, seen = [], set()
    with Path(path).open(encoding="utf-8") as fh:
        for no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{no}: not valid JSON ({e.msg})") from None
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
        removed=len(answer.removed_citations), keyword_text=own_text)
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
    from evals.metrics import LOWER_IS_BETTER

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


# --- regression gate ----------------------------------------------------------------------------


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


def gate(run: EvalRun, baseline: dict[str, Any]) -> GateResult:
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


def baseline_payload(run: EvalRun, meta: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE
                     ) -> dict[str, Any]:
    """The content of evals/baseline.json, measured from this run's 'ours' rows."""
    from evals.metrics import DETERMINISTIC_METRICS

    overall = run.summary[OURS]["overall"]
    keep = ("answerable", "abstained", "valid_markers", "markers", "flagged", "statements",
            "stale_citation")
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


# --- what the run records about itself -----------------------------------------------------------


def git_commit(repo: Path = EVALS_DIR.parent) -> str | None:
    """The checked-out commit: read from .git when it is a plain folder, else asked of
    `git rev-parse HEAD`; None when neither works (no git, not a checkout)."""
    git = repo / ".git"
    try:
        if git.is_dir():
            head = (git / "HEAD").read_text().strip()
            if not head.startswith("ref: "):
                return head
            ref = head[5:]
            if (git / ref).exists():
                return (git / ref).read_text().strip()
            packed = git / "packed-refs"
            if packed.exists():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    except OSError:
        pass
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10, check=True)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _redact_url(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def safe_settings(settings) -> dict[str, Any]:
    """Settings as JSON, without secrets (API key, UI password, credentials in URLs)."""
    data = settings.model_dump(mode="json", exclude={"llm_api_key", "ui_auth"})
    for key in ("llm_base_url", "embed_base_url"):
        data[key] = _redact_url(data.get(key))
    data["llm_api_key_set"] = settings.llm_api_key is not None
    return data


def run_meta(services, dataset: Path | None, options: EvalOptions) -> dict[str, Any]:
    index = services.index
    try:
        stats = index.stats()
    except Exception:  # noqa: BLE001 — stats are informative only
        stats = {}
    return {
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "mode": options.mode,
        "k": options.k or services.settings.top_k,
        "depth": options.depth,
        "dataset": _display_path(dataset) if dataset else None,
        "settings": safe_settings(services.settings),
        "index_manifest": dict(index.manifest.__dict__),
        "index_stats": {k: stats.get(k) for k in ("papers", "chunks", "embedding_model")},
        "host": {"cpus": os.cpu_count()},
    }


def _display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(EVALS_DIR.parent))
    except ValueError:
        return str(path)


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
        from evals.external import DEFAULT_EXTERNAL_DIR, run_external

        outcome.external = run_external(services.settings, services.embedder,
                                        limit=external_limit,
                                        source_dir=external_dir or DEFAULT_EXTERNAL_DIR,
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


# --- dev, test and near-miss side by side ---------------------------------------------------------

HEADLINE_SPLIT = "test"
GATED_SPLITS = ("test", "nearmiss-test")


def split_rows(dev_paths: Sequence[Path], test_path: Path) -> dict[str, list[dict[str, Any]]]:
    """dev (tune on it), test (report and gate on it), and the near-miss rows of each."""
    dev = [r for p in dev_paths for r in load_dataset(p)]
    test = load_dataset(test_path)
    return {"dev": dev, "test": test, "nearmiss-dev": near_miss_rows(dev),
            "nearmiss-test": near_miss_rows(test)}


def embedding_label(settings) -> str:
    """What the vectors were made with; figures of different embeddings are not compared."""
    if settings.embed_backend == "onnx":
        return f"onnx/{settings.onnx_precision}"
    return settings.embed_backend


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


def splits_baseline_payload(result: SplitOutcome, mode: str, embedding: str,
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
