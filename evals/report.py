"""Reports: evals/reports/<timestamp>/{report.md, results.json, metrics.png}, and the tables
printed by `assistant eval`.

Reports are generated, not committed: evals/reports/.gitignore (written here when missing)
ignores everything in the folder but itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals import REPORTS_DIR
from evals.baselines import CONFIGS as CONFIG_ORDER
from evals.baselines import LABELS, OURS
from evals.metrics import (
    ABSTENTION_METRICS,
    ANSWER_METRICS,
    JUDGE_METRICS,
    LOWER_IS_BETTER,
    RETRIEVAL_METRICS,
    fmt,
)

TABLE_METRICS = RETRIEVAL_METRICS + ANSWER_METRICS + ABSTENTION_METRICS
# Columns of the compact "by question type" matrix.
MATRIX_METRICS = ["hit@1", "hit@5", "mrr", "ndcg@10", "citation_precision", "gold_recall",
                  "keyword_recall", "abstention_recall", "false_abstention_rate"]
HATCHES = [None, "//", ".."]
CHART_METRICS = ["hit@1", "hit@5", "mrr", "ndcg@10", "recall@10", "citation_precision",
                 "gold_recall", "keyword_recall"]

GLOSSARY = {
    "hit@k": "a gold paper is among the first k retrieved papers (share of questions)",
    "recall@k": "share of the gold papers among the first k retrieved",
    "mrr": "1 / rank of the first gold paper (0 when not in the top 10)",
    "ndcg@10": "binary-relevance nDCG of the top 10 papers",
    "citation_validity": "[n] markers in the answer that resolve to a numbered source "
                         "(must be 1.000)",
    "citation_precision": "cited papers that are gold (answers citing something)",
    "gold_recall": "gold papers the answer cites (an abstention cites none)",
    "uncited_rate": "statements with no citation / all statements (lower is better)",
    "unsupported_claim_rate": "claims the claim check labels weak or unsupported against the "
                              "papers they cite / all claims (lower is better; extractive "
                              "quotes are supported by construction)",
    "keyword_recall": "expected keywords found in the answer, case-insensitive (detail "
                      "questions and follow-ups that list keywords)",
    "abstention_precision": "abstentions that were on off-corpus questions",
    "abstention_recall": "off-corpus questions the assistant abstained on",
    "abstention_f1": "harmonic mean of the two",
    "false_abstention_rate": "answerable questions it abstained on (lower is better)",
    "faithfulness": "LLM judge: the answer is supported by its sources (share YES)",
    "relevancy": "LLM judge: answer and sources are in line with the question (share YES)",
}

BASELINE_NOTE = """\
**How the configurations answer.** All three run the same questions through the same
`Answerer`: follow-up resolution, source numbering, the abstention rule (the coverage check:
best dense similarity of a retrieved passage, plus names and terms of the question the corpus
never mentions) and the extractive composer (quoted abstract sentences, each cited) are
shared; only the retriever differs. The baselines always answer with the extractive
composer, so their citation, abstention and keyword figures measure what their retrieval
hands the composer, not a different writer. BM25 hits carry no dense similarity, so for the
BM25-only configuration it is computed for the passages handed to the answerer (same model)
— the abstention signal is then the same kind of number for every configuration. The
llama-index index holds the same chunk vectors (same model), and its retriever fetches 3
chunks per wanted paper before collapsing chunks to papers (a chunk top-k alone would return
fewer than k papers whenever a paper has two chunks in it)."""


# --- tables -------------------------------------------------------------------------------------


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    rows = [[c.replace("**", "") for c in r] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _best(values: dict[str, float | None], metric: str) -> set[str]:
    present = {k: v for k, v in values.items() if v is not None}
    if len(present) < 2:
        return set()
    target = min(present.values()) if metric in LOWER_IS_BETTER else max(present.values())
    return {k for k, v in present.items() if abs(v - target) < 1e-9}


def metric_rows(figures: dict[str, dict[str, Any]], configs: Sequence[str],
                metrics: Sequence[str], bold: bool = True) -> list[list[str]]:
    """One row per metric (skipping metrics no configuration has), one column per config;
    the best value of a row in bold."""
    rows = []
    for m in metrics:
        values = {c: figures[c].get(m) for c in configs}
        if all(v is None for v in values.values()):
            continue
        best = _best(values, m) if bold else set()
        label = m + (" ↓" if m in LOWER_IS_BETTER else "")
        rows.append([label] + [f"**{fmt(values[c])}**" if c in best else fmt(values[c])
                               for c in configs])
    return rows


def overall_table(summary: dict[str, Any], configs: Sequence[str], markdown: bool = True,
                  metrics: Sequence[str] = TABLE_METRICS + JUDGE_METRICS) -> str:
    figures = {c: summary[c]["overall"] for c in configs}
    headers = ["metric"] + [LABELS.get(c, c) for c in configs]
    rows = metric_rows(figures, configs, metrics, bold=markdown)
    rows.append(["questions"] + [str(figures[c]["n"]) for c in configs])
    return md_table(headers, rows) if markdown else text_table(headers, rows)


def type_table(summary: dict[str, Any], configs: Sequence[str], qtype: str,
               markdown: bool = True) -> str:
    figures = {c: summary[c]["by_type"].get(qtype, {}) for c in configs}
    headers = ["metric"] + [LABELS.get(c, c) for c in configs]
    rows = metric_rows(figures, configs, TABLE_METRICS + JUDGE_METRICS, bold=markdown)
    return md_table(headers, rows) if markdown else text_table(headers, rows)


def matrix_table(summary: dict[str, Any], configs: Sequence[str], types: Sequence[str],
                 markdown: bool = True, metrics: Sequence[str] = MATRIX_METRICS) -> str:
    """Rows: (question type, configuration); columns: the headline metrics."""
    headers = ["type", "config", "n"] + [m + (" ↓" if m in LOWER_IS_BETTER else "")
                                         for m in metrics]
    rows = []
    for t in [*types, "all"]:
        for c in configs:
            f = summary[c]["overall"] if t == "all" else summary[c]["by_type"].get(t, {})
            rows.append([t, LABELS.get(c, c), str(f.get("n", 0))]
                        + [fmt(f.get(m)) for m in metrics])
    if markdown:
        return md_table(headers, rows)
    return text_table(headers, rows)


def latency_table(summary: dict[str, Any], configs: Sequence[str], markdown: bool = True
                  ) -> str:
    stages = sorted({s for c in configs for s in summary[c]["latency_ms"]},
                    key=lambda s: (s == "total_ms", s))
    headers = ["stage (ms)"] + [f"{LABELS.get(c, c)} p50 / p95" for c in configs]
    rows = []
    for s in stages:
        cells = []
        for c in configs:
            v = summary[c]["latency_ms"].get(s)
            cells.append(f"{v['p50']:.0f} / {v['p95']:.0f}" if v else "–")
        rows.append([s, *cells])
    return md_table(headers, rows) if markdown else text_table(headers, rows)


def external_table(ext: dict[str, Any], markdown: bool = True) -> str:
    headers = ["dataset", "config", "fusion", "queries", "hit@1", "hit@5", "MRR@10",
               "reference MRR", "ms/query"]
    rows = []
    fusions = ext.get("fusions", {})
    for name, entry in ext["datasets"].items():
        for config, f in entry["configs"].items():
            ref = entry["reference_mrr"].get(config)
            rows.append([name, config, fusions.get(config, ""), f"{entry['n']}/{entry['total']}",
                         fmt(f["hit@1"]),
                         fmt(f["hit@5"]), fmt(f["mrr"]), fmt(ref), f"{f['ms_per_query']:.0f}"])
    return md_table(headers, rows) if markdown else text_table(headers, rows)


# --- chart -------------------------------------------------------------------------------------


def write_chart(path: Path, summary: dict[str, Any], configs: Sequence[str],
                types: Sequence[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(3, 3, figsize=(16, 12))
    width = 0.8 / max(1, len(configs))

    def value(config: str, group: str, metric: str) -> float | None:
        figures = summary[config]["overall"] if group == "all" \
            else summary[config]["by_type"].get(group, {})
        return figures.get(metric)

    for ax, metric in zip(axes.flat, CHART_METRICS, strict=False):
        groups = [t for t in types if any(value(c, t, metric) is not None for c in configs)]
        groups.append("all")
        x = np.arange(len(groups))
        for i, c in enumerate(configs):
            vals = [value(c, g, metric) for g in groups]
            ax.bar(x + (i - (len(configs) - 1) / 2) * width,
                   [v if v is not None else 0.0 for v in vals], width,
                   label=LABELS.get(c, c), hatch=HATCHES[i % len(HATCHES)])
        ax.set_title(metric)
        ax.set_xticks(x, groups)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    ax = axes.flat[len(CHART_METRICS)]
    abst = ["abstention_precision", "abstention_recall", "abstention_f1",
            "false_abstention_rate"]
    xa = np.arange(len(abst))
    for i, c in enumerate(configs):
        vals = [summary[c]["overall"].get(m) for m in abst]
        ax.bar(xa + (i - (len(configs) - 1) / 2) * width,
               [v if v is not None else 0.0 for v in vals], width, label=LABELS.get(c, c),
               hatch=HATCHES[i % len(HATCHES)])
    ax.set_title("abstention (all questions)")
    ax.set_xticks(xa, ["precision", "recall", "F1", "false rate ↓"])
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle("Metrics by configuration and question type", y=0.99, fontsize=14)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.965),
               ncol=len(configs), fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- report -------------------------------------------------------------------------------------


def _ensure_gitignore(out_dir: Path) -> None:
    try:
        out_dir.resolve().relative_to(REPORTS_DIR.resolve())
    except ValueError:
        return
    ignore = REPORTS_DIR / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n!.gitignore\n")


def results_json(outcome) -> dict[str, Any]:
    run = outcome.run
    return {
        "meta": outcome.meta,
        "configs": run.configs,
        "summary": run.summary,
        "gate": None if outcome.gate is None else {
            "passed": outcome.gate.passed, "failures": outcome.gate.failures,
            "reference": outcome.gate.reference, "tolerance": outcome.gate.tolerance},
        "judge": outcome.judge,
        "external": outcome.external,
        "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in run.rows],
    }


def render_markdown(outcome, chart_name: str | None) -> str:
    from evals.summary import leads

    run, meta = outcome.run, outcome.meta
    configs = list(run.configs)
    types = list(meta.get("type_counts", {}))
    counts = meta.get("type_counts", {})
    stats = meta.get("index_stats", {})
    out = [f"# Answer-quality evaluation — {meta['timestamp']}", ""]
    out += [
        f"- commit: `{meta.get('git_commit') or 'unknown'}`",
        f"- answer mode (ours): **{meta['mode']}**; baselines: extractive; "
        f"papers per answer k = {meta['k']}; retrieval metrics over the top {meta['depth']}",
        f"- dataset: `{meta.get('dataset')}` — {sum(counts.values())} questions: "
        + ", ".join(f"{t} {n}" for t, n in counts.items()),
        f"- index: {stats.get('papers')} papers, {stats.get('chunks')} chunks, "
        f"{stats.get('embedding_model')}",
        f"- runtime: {run.seconds:.0f} s for the golden run, {meta.get('total_seconds', 0):.0f}"
        " s in total",
        "",
        "## Configurations",
        "",
    ]
    out += [f"- **{LABELS.get(c, c)}** (`{c}`): {d}" for c, d in run.configs.items()]
    out += ["", BASELINE_NOTE, "", "## Results (all questions)", "",
            overall_table(run.summary, configs), ""]
    lost = leads(run.summary, TABLE_METRICS)
    if OURS in configs and len(configs) > 1:
        out += ["Ours leads or ties on every metric." if not lost else
                "Metrics where a baseline beats ours: " + "; ".join(lost) + ".", ""]
    out += ["Best value per row in bold; ↓ = lower is better; – = not applicable.", ""]
    if chart_name:
        out += [f"![metrics by configuration and question type]({chart_name})", ""]
    out += ["## By question type", "", matrix_table(run.summary, configs, types), ""]
    for t in types:
        n = counts.get(t, 0)
        out += [f"### {t} ({n} question{'' if n == 1 else 's'})", "",
                type_table(run.summary, configs, t), ""]
    out += ["## Latency per stage (ms, p50 / p95)", "",
            latency_table(run.summary, configs), "",
            "Follow-up rows contribute both turns. `total_ms` is the whole answer.", ""]
    errors = {c: run.summary[c]["errors"] for c in configs if run.summary[c]["errors"]}
    if errors:
        out += [f"Answers that failed (Answer.error): {errors}", ""]
    if outcome.judge:
        j = outcome.judge
        out += ["## LLM judge", "",
                f"Judge model `{j['model']}` via llama-index FaithfulnessEvaluator / "
                f"RelevancyEvaluator on ours' answered questions: {j['judged_now']} judged now, "
                f"{j['from_cache']} from the cache ({j['cache']}), {j['failures']} failures.",
                "", overall_table(run.summary, [OURS], metrics=JUDGE_METRICS), ""]
    if outcome.external:
        ext = outcome.external
        out += ["## External benchmark (SciFact, PubMedQA)", "",
                f"Corpus: {ext['corpus']['papers']} gold abstracts ({ext['corpus']['chunks']} "
                f"chunks; {ext['corpus']['derived_titles']} PubMedQA titles derived from the "
                f"first sentence) in `{ext['corpus']['data_dir']}`. "
                + (f"Queries: a fixed random sample of {ext['limit']} per dataset. "
                   if ext.get("limit") else "Queries: all. ")
                + f"Took {ext['seconds']:.0f} s ({ext['ingest_seconds']:.0f} s ingest).", "",
                external_table(ext), "", f"{ext['reference_note']}.", ""]
    if outcome.gate is not None:
        g = outcome.gate
        out += ["## Regression gate", "",
                f"Compared with the {g.reference}, tolerance {_tol(g.tolerance)}: "
                + ("**passed**." if g.passed else "**failed**:"), ""]
        out += [f"- {f}" for f in g.failures]
        out += [""]
    out += ["## Metrics", ""]
    out += [f"- **{k}**: {v}" for k, v in GLOSSARY.items()]
    out += ["", "Follow-up rows are scored on their second turn (asked with the first turn as "
            "history) against `followup_gold_titles` / `followup_keywords`.", "",
            "Files: `results.json` (per-question rows: id, type, config, question, gold, "
            "retrieved, cited, answer, metrics, timings; settings without secrets; index "
            "manifest)" + (f", `{chart_name}`." if chart_name else "."), ""]
    return "\n".join(out)


def write_report(out_dir: Path, outcome) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _ensure_gitignore(out_dir)
    run = outcome.run
    (out_dir / "results.json").write_text(
        json.dumps(results_json(outcome), indent=1, ensure_ascii=False), encoding="utf-8")
    chart = None
    if run.rows:
        chart = write_chart(out_dir / "metrics.png", run.summary, list(run.configs),
                            list(outcome.meta.get("type_counts", {}))).name
    (out_dir / "report.md").write_text(render_markdown(outcome, chart), encoding="utf-8")
    return out_dir


def console_summary(outcome) -> str:
    """What `assistant eval` prints: the headline table, the per-type matrix, extras."""
    from evals.summary import leads

    run = outcome.run
    configs = list(run.configs)
    types = list(outcome.meta.get("type_counts", {}))
    parts = ["Results (all questions):", overall_table(run.summary, configs, markdown=False)]
    lost = leads(run.summary, TABLE_METRICS)
    if len(configs) > 1 and OURS in configs:
        parts.append("Ours leads or ties on every metric." if not lost else
                     "Baseline ahead on: " + "; ".join(lost))
    parts += ["", "By question type:", matrix_table(run.summary, configs, types,
                                                    markdown=False)]
    parts += ["", "Latency (ms, p50 / p95):", latency_table(run.summary, configs,
                                                             markdown=False)]
    if outcome.external:
        parts += ["", "External benchmark:", external_table(outcome.external, markdown=False),
                  outcome.external["reference_note"]]
    return "\n".join(parts)


SPLIT_METRICS = ["hit@1", "hit@5", "recall@5", "mrr", "gold_cited", "gold_recall",
                 "citation_precision", "citation_validity", "keyword_recall",
                 "stale_citation_rate", "abstention_recall", "abstention_precision",
                 "false_abstention_rate"]


def splits_table(result, config: str = OURS, markdown: bool = True) -> str:
    """One column per split (test first: the headline), one row per metric."""
    from evals.gate import HEADLINE_SPLIT

    names = sorted(result.outcomes, key=lambda n: (n != HEADLINE_SPLIT, n))
    figures = {n: result.outcomes[n].run.summary.get(config, {}).get("overall", {})
               for n in names}
    rows = []
    for m in SPLIT_METRICS:
        values = [figures[n].get(m) for n in names]
        if all(v is None for v in values):
            continue
        label = m + (" ↓" if m in LOWER_IS_BETTER else "")
        rows.append([label] + [fmt(v) for v in values])
    rows.append(["questions"] + [str(figures[n].get("n", 0)) for n in names])
    headers = ["metric"] + names
    return md_table(headers, rows) if markdown else text_table(headers, rows)


def splits_markdown(result) -> str:
    from evals.gate import GATED_SPLITS

    parts = ["# Evaluation: dev, test and near-miss side by side", "",
             "Tune on dev; the headline is **test** (never tuned on). A near-miss question is "
             "a single-paper question asked again with its gold paper hidden from retrieval: "
             "the right answer is to abstain (abstention_recall is the near-miss abstention "
             "rate). Each split's full report (baselines, per-type tables, latency) is in its "
             "folder.", "", "## Ours", "", splits_table(result)]
    for config in (c for c in CONFIG_ORDER if c != OURS):
        if any(config in o.run.configs for o in result.outcomes.values()):
            parts += ["", f"## {LABELS.get(config, config)}", "",
                      splits_table(result, config)]
    if result.gate is not None:
        parts += ["", f"## Gate ({', '.join(GATED_SPLITS)})", "",
                  "passed" if result.gate.passed else
                  "FAILED:\n" + "\n".join(f"- {f}" for f in result.gate.failures)]
    return "\n".join(parts) + "\n"


def _tol(tolerance) -> str:
    if isinstance(tolerance, dict):
        return ", ".join(f"{k} {v:g}" for k, v in tolerance.items())
    return f"{tolerance:g}"
