"""`assistant eval` (registered by assistant/cli.py, like every command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.console import DataDir, TopK, fail, load_settings, terminal_safe
from assistant.errors import AssistantError
from assistant.settings import AnswerMode
from evals import DEFAULT_BASELINE, DEV_DATASETS, TEST_DATASET, external_dir


def make_services(settings):
    """The Services the command runs on (a seam for tests)."""
    from assistant.services import Services

    return Services(settings)


def ensure_index(services, log=typer.echo) -> None:
    """Ingest the configured corpus (ASSISTANT_CORPUS_PATHS, seeds/ by default) when the data
    dir has no index."""
    from assistant.ingest import ensure_index as build_if_missing

    if build_if_missing(services.settings, lambda: services.embedder,
                        log=lambda m: log(terminal_safe(m))):
        services.reset_index()


def eval_command(
    mode: Annotated[str, typer.Option(
        "--mode", help="How ours answers: extractive (no LLM, deterministic) or llm "
        "(needs OPENAI_BASE_URL / OPENAI_API_KEY). Baselines always answer extractively.",
    )] = "extractive",
    data_dir: DataDir = None,
    dataset: Annotated[Path | None, typer.Option(
        "--dataset", help="Evaluate one question file (JSON Lines) instead of the splits.",
        exists=True, dir_okay=False, show_default=False,
    )] = None,
    split: Annotated[str, typer.Option(
        "--split", help="Which splits to run: all (dev, test and their near-misses side by "
        "side; the headline is test), test (test + near-miss test: what CI gates), or dev.",
    )] = "all",
    baselines: Annotated[bool, typer.Option(
        "--baselines/--no-baselines",
        help="Also run plain llama-index dense and BM25-only on the same questions.",
    )] = True,
    external: Annotated[bool, typer.Option(
        "--external/--no-external",
        help="Also run the SciFact / PubMedQA retrieval benchmark (own index under "
        "DATA_DIR/evals/external; the first run embeds ~1,000 abstracts). Needs "
        "--external-dir or ASSISTANT_EXTERNAL_DIR.",
    )] = False,
    external_dir_opt: Annotated[Path | None, typer.Option(
        "--external-dir", file_okay=False, help="Folder holding scifact_test.jsonl and "
        "pubmed_test.jsonl (default: $ASSISTANT_EXTERNAL_DIR).", show_default=False,
    )] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="With --external: only N queries per external dataset (a fixed "
        "random sample; the corpus stays whole) — for CI and quick runs.", show_default=False,
    )] = None,
    questions: Annotated[int | None, typer.Option(
        "--questions", min=1, metavar="N", help="Only N golden questions, spread over the "
        "question types (quick runs; the gate then compares the same questions).",
        show_default=False,
    )] = None,
    judge: Annotated[bool, typer.Option(
        "--judge", help="Add LLM-judged faithfulness and relevancy of our answers (needs an "
        "LLM endpoint; verdicts cached under DATA_DIR/evals).",
    )] = False,
    generate: Annotated[int | None, typer.Option(
        "--generate", min=1, metavar="N", help="Instead of evaluating: draft N new questions "
        "from random corpus papers with the LLM, for human review (with --out).",
        show_default=False,
    )] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", dir_okay=False, help="Where --generate writes its JSON Lines drafts.",
        show_default=False,
    )] = None,
    fail_under: Annotated[str | None, typer.Option(
        "--fail-under", metavar="baseline|PATH",
        help="Exit 1 when a deterministic metric of ours is worse than in this baseline "
        "file by more than its tolerance ('baseline' = evals/baseline.json).",
        show_default=False,
    )] = None,
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", file_okay=False,
        help="Folder for report.md, results.json and the chart "
        "(default: evals/reports/<timestamp>/).", show_default=False,
    )] = None,
    k: TopK = None,
    write_baseline: Annotated[Path | None, typer.Option(
        "--write-baseline", dir_okay=False,
        help="Write ours' measured metrics as a new baseline file (e.g. evals/baseline.json).",
        show_default=False,
    )] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Measure answer quality on the golden questions and write a report.

    Ours (hybrid retrieval + our answerer) is compared with a plain llama-index dense index
    and BM25 alone on the same questions: retrieval hit@k / recall@k / MRR / nDCG@10,
    citation validity and precision, gold recall, uncited sentences, abstention, keyword
    recall and latency per stage, overall and per question type.

    Examples:

      assistant eval                                     # full golden set, extractive

      assistant eval --fail-under baseline               # CI regression gate

      assistant eval --questions 20 --no-baselines       # quick look

      assistant eval --external --limit 200              # plus SciFact / PubMedQA

      assistant eval --mode llm --judge                  # LLM answers, judged

      assistant eval --generate 20 --out drafts.jsonl    # draft new questions
    """
    from evals.report import console_summary
    from evals.run import (
        EvalOptions,
        baseline_payload,
        dump_baseline,
        execute,
        load_baseline,
        load_dataset,
        pick,
        split_rows,
    )

    if mode not in (AnswerMode.EXTRACTIVE, AnswerMode.LLM):
        fail(f"--mode must be extractive or llm, not {mode!r}.", 2)
    if generate is not None and out is None:
        fail("--generate N needs --out FILE.jsonl (where the drafts go).", 2)
    settings = load_settings(data_dir)
    needs_llm = generate is not None or judge or mode == "llm"
    if needs_llm and not settings.llm_configured:
        what = "--generate" if generate is not None else "--judge" if judge else "--mode llm"
        fail(f"{what} needs an LLM endpoint: set OPENAI_BASE_URL (and OPENAI_API_KEY if it "
             "needs one).", 2)
    if fail_under is not None:
        try:
            load_baseline(fail_under)
        except ValueError as e:
            fail(str(e), 2)
    if split not in ("all", "test", "dev"):
        fail(f"--split must be all, test or dev, not {split!r}.", 2)
    source: Path | None = None
    if external:
        try:
            source = external_dir(external_dir_opt)
        except ValueError as e:
            fail(str(e), 2)
    try:
        if dataset is not None or generate is not None:
            rows = pick(load_dataset(dataset), questions) if generate is None else []
            splits = None
        else:
            splits = {n: pick(r, questions)
                      for n, r in split_rows(DEV_DATASETS, TEST_DATASET).items()
                      if split == "all" or n.endswith(split)}
    except (OSError, ValueError) as e:
        fail(str(e), 2)

    services = make_services(settings)
    try:
        ensure_index(services)
        if generate is not None:
            from evals.generate import generate as draft

            papers = list(services.index.catalog.all_papers())
            drafted, problems = draft(papers, generate, services.llm, settings.llm_model, out,
                                      progress=not quiet)
            typer.echo(f"Wrote {len(drafted)} draft questions to {out} — review them before "
                       "adding any to the golden set.")
            for p in problems:
                typer.echo(f"  skipped {p}", err=True)
            if not drafted:
                raise typer.Exit(1)
            return
        from evals.baselines import CONFIGS, OURS

        options = EvalOptions(mode=mode, k=k, configs=CONFIGS if baselines else (OURS,),
                              progress=not quiet)
        if splits is not None:
            _run_splits(services, splits, options, external=external, limit=limit,
                        external_source=source,
                        fail_under=fail_under, report_dir=report_dir,
                        write_baseline=write_baseline, mode=mode)
            return
        outcome = execute(services, rows, options, dataset=dataset, judge=judge,
                          external=external, external_limit=limit, external_dir=source,
                          fail_under=fail_under,
                          report_dir=report_dir, log=lambda m: typer.echo(m, err=True))
    except (AssistantError, ValueError) as e:
        fail(str(e))
    typer.echo(console_summary(outcome))
    counts = outcome.meta["type_counts"]
    per_type = ", ".join(f"{t} {n}" for t, n in counts.items())
    typer.echo(f"\n{sum(counts.values())} questions ({per_type}); golden run "
               f"{outcome.run.seconds:.0f} s, total {outcome.seconds:.0f} s.")
    typer.echo(f"Report: {outcome.report_dir / 'report.md'}")
    if write_baseline is not None:
        # The tolerances come from measured run-to-run and CPU-to-CPU variation (see
        # evals/README.md); a new baseline keeps those of the file it replaces, else the
        # committed one's.
        payload = baseline_payload(outcome.run, outcome.meta,
                                   *_tolerance_of(write_baseline, DEFAULT_BASELINE))
        write_baseline.write_text(dump_baseline(payload), encoding="utf-8")
        typer.echo(f"Baseline written to {write_baseline}")
    if outcome.gate is not None:
        if outcome.gate.passed:
            typer.secho(f"Regression gate passed ({outcome.gate.reference}).", fg="green")
        else:
            typer.secho(f"Regression gate FAILED ({outcome.gate.reference}, tolerance "
                        f"{outcome.gate.tolerance}):", fg="red", err=True)
            for f in outcome.gate.failures:
                typer.secho(f"  {f}", fg="red", err=True)
            raise typer.Exit(1)


def _run_splits(services, splits, options, *, external, limit, external_source, fail_under,
                report_dir, write_baseline, mode) -> None:
    """dev, test and near-miss side by side; the gate on test and near-miss test."""
    from evals.report import splits_table
    from evals.run import embedding_label, execute_splits, splits_baseline_payload

    try:
        result = execute_splits(services, splits, options, fail_under=fail_under,
                                report_dir=report_dir, external=external,
                                external_limit=limit, external_dir=external_source,
                                log=lambda m: typer.echo(m, err=True))
    except ValueError as e:
        fail(str(e), 2)
    typer.echo("Ours, by split (headline: test; near-miss = gold paper hidden, must abstain):")
    typer.echo(splits_table(result, markdown=False))
    test = result.outcomes.get("test")
    if test is not None and test.external:
        from evals.report import external_table

        typer.echo("\nExternal benchmark:")
        typer.echo(external_table(test.external, markdown=False))
    typer.echo(f"\nReports: {result.report_dir}/summary.md (and one folder per split)")
    if write_baseline is not None:
        import json

        # Keep the measured per-metric tolerance table across rewrites (see _tolerance_of).
        payload = splits_baseline_payload(result, mode, embedding_label(services.settings),
                                          *_tolerance_of(write_baseline, DEFAULT_BASELINE))
        write_baseline.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        typer.echo(f"Baseline written to {write_baseline}")
    if result.gate is not None:
        if result.gate.passed:
            typer.secho(f"Regression gate passed ({result.gate.reference}).", fg="green")
        else:
            typer.secho("Regression gate FAILED:", fg="red", err=True)
            for f in result.gate.failures:
                typer.secho(f"  {f}", fg="red", err=True)
            raise typer.Exit(1)


def _tolerance_of(*paths: Path) -> list:
    """[the tolerance of the first readable baseline among `paths`], or []."""
    from evals.run import load_baseline

    for path in paths:
        try:
            data = load_baseline(path) if path.exists() else {}
        except ValueError:
            continue
        if "tolerance" in data:
            return [data["tolerance"]]
    return []
