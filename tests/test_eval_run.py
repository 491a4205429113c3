"""The eval harness end to end on the seed index: a 15-question subset (every type) through
ours and both baselines, the report files, the regression gate (committed baseline passes,
raised baseline fails, also through the CLI's exit code), the external benchmark on a tiny
corpus, and the LLM judge + question drafting against the scripted OpenAI-compatible server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import evals.command
from assistant.cli import app
from assistant.llm import LLM
from assistant.services import Services
from assistant.types import Paper
from evals import DEFAULT_BASELINE, DEFAULT_DATASET, external, generate, judge, run
from evals.baselines import CONFIGS, LABELS, OURS
from evals.metrics import DETERMINISTIC_METRICS, LOWER_IS_BETTER, aggregate
from tests.support.openai_server import FOREVER, Reply, ScriptedOpenAIServer

SUBSET = 18


@pytest.fixture(scope="module")
def subset():
    rows = run.pick(run.load_dataset(DEFAULT_DATASET), SUBSET)
    assert len(rows) == SUBSET
    return rows


@pytest.fixture(scope="module")
def outcome(seed_services, subset, tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("eval-report")
    return run.execute(seed_services, subset, run.EvalOptions(progress=False),
                       dataset=DEFAULT_DATASET, fail_under="baseline", report_dir=report_dir,
                       log=lambda _: None)


def test_subset_covers_every_type(subset):
    counts = run.type_counts(subset)
    assert set(counts) == {"lookup", "detail", "theme", "followup", "switch", "offcorpus"}
    assert all(n == 3 for n in counts.values())


def test_dataset_validation(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "type": "lookup", "question": "q"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: missing field"):
        run.load_dataset(bad)


def test_rows_cover_configs_and_fields(outcome, subset):
    rows = outcome.run.rows
    assert len(rows) == SUBSET * len(CONFIGS)
    assert {r["config"] for r in rows} == set(CONFIGS)
    for r in rows:
        assert len(r["retrieved"]) <= 10
        assert r["retrieved"] or not r["gold"]
        assert set(r["cited"]) <= set(r["sources"])
        assert r["metrics"]["citation_validity"] in (None, 1.0)
        assert "total_ms" in r["timings"]
        if r["config"] != OURS:
            assert r["mode"] == "extractive"
    followups = [r for r in rows if r["type"] == "followup"]
    by_id = {r["id"]: r for r in subset}
    for r in followups:  # the second turn is the one scored
        assert r["question"] == by_id[r["id"]]["followup"]
        assert r["first_turn"]["question"] == by_id[r["id"]]["question"]
        assert r["keywords"] == by_id[r["id"]]["followup_keywords"]


def test_ours_retrieves_the_gold_papers(outcome):
    ours = outcome.run.summary[OURS]["overall"]
    assert ours["hit@5"] >= 0.8
    assert ours["citation_validity"] == 1.0
    assert ours["abstention_recall"] is not None


def test_report_files(outcome):
    d = outcome.report_dir
    md = (d / "report.md").read_text()
    assert (d / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for label in LABELS.values():
        assert label in md
    assert "## Results (all questions)" in md and "## By question type" in md
    for t in ("lookup", "detail", "theme", "followup", "offcorpus"):
        assert f"### {t} (3 questions)" in md
    assert "extractive composer" in md  # how baselines answer is explained
    assert "## Regression gate" in md
    # The headline table has ours first and the figures of the run.
    header = next(line for line in md.splitlines() if line.startswith("| metric |"))
    assert header.split("|")[2].strip() == LABELS[OURS]
    mrr = outcome.run.summary[OURS]["overall"]["mrr"]
    assert re.search(rf"\| mrr \| (\*\*)?{mrr:.3f}", md)

    data = json.loads((d / "results.json").read_text())
    assert len(data["rows"]) == SUBSET * len(CONFIGS)
    row = data["rows"][0]
    for key in ("id", "type", "config", "question", "gold", "retrieved", "cited", "answer",
                "metrics", "timings"):
        assert key in row
    assert not any(k.startswith("_") for k in row)
    meta = data["meta"]
    assert "llm_api_key" not in meta["settings"] and "ui_auth" not in meta["settings"]
    assert meta["index_manifest"]["embed_model"].endswith("all-MiniLM-L6-v2")
    assert meta["type_counts"] == {t: 3 for t in ("lookup", "detail", "theme", "followup",
                                                  "switch", "offcorpus")}
    assert "git_commit" in meta


def test_console_summary(outcome):
    from evals.report import console_summary

    text = console_summary(outcome)
    assert "Results (all questions):" in text and "By question type:" in text
    assert LABELS[OURS] in text and "hit@5" in text


def test_gate_passes_with_committed_baseline(outcome):
    assert outcome.gate is not None
    assert outcome.gate.passed, outcome.gate.failures
    assert f"same {SUBSET} questions" in outcome.gate.reference


def raised(outcome, by: float = 0.1) -> dict:
    """A baseline better than this run on every metric that has room to be."""
    current = aggregate([r["metrics"] for r in outcome.run.rows_of(OURS)])
    base = {"tolerance": 0.02}
    for name in DETERMINISTIC_METRICS:
        v = current.get(name)
        if v is None:
            continue
        if name in LOWER_IS_BETTER and v >= by:
            base[name] = v - by
        elif name not in LOWER_IS_BETTER and v <= 1 - by:
            base[name] = v + by
    return base


def test_gate_fails_when_baseline_is_raised(outcome):
    base = raised(outcome)
    result = run.gate(outcome.run, base)
    assert not result.passed
    assert {f.split(":")[0] for f in result.failures} == set(base) - {"tolerance"}
    # Raised per-question records fail the same way (the subset path of the gate).
    committed = json.loads(DEFAULT_BASELINE.read_text())["splits"]["test"]
    per_q = {i: {**v, "hit@1": 1.0, "mrr": 1.0} if v.get("answerable") else v
             for i, v in committed["per_question"].items()}
    ours = outcome.run.summary[OURS]["overall"]
    result = run.gate(outcome.run, {**committed, "per_question": per_q})
    if ours["hit@1"] < 0.98:
        assert any(f.startswith("hit@1") for f in result.failures)


def test_committed_baseline_is_well_formed():
    data = json.loads(DEFAULT_BASELINE.read_text())
    assert data["mode"] == "extractive" and data["embedding"] == "onnx/fp32"
    # Tolerances were measured (int8 vs fp32 vectors), not picked: a table, none loose.
    assert 0 < data["tolerance"]["default"] <= 0.05
    assert all(0 < v <= 0.1 for v in data["tolerance"].values())
    assert set(data["splits"]) == {"test", "nearmiss-test"}
    test = data["splits"]["test"]
    assert test["_measured"]["questions"] == len(run.load_dataset(DEFAULT_DATASET)) >= 150
    assert len(test["per_question"]) == test["_measured"]["questions"]
    for name in ("hit@1", "hit@5", "mrr", "ndcg@10", "citation_validity", "gold_recall",
                 "abstention_f1", "keyword_recall"):
        assert isinstance(test[name], float)
    # The headline values are the per-question records aggregated.
    for section in data["splits"].values():
        again = aggregate(list(section["per_question"].values()))
        for name in DETERMINISTIC_METRICS:
            if name in section:
                assert again[name] == pytest.approx(section[name], abs=1e-3)


def test_gate_refuses_a_run_of_another_mode_or_embedding():
    baseline = {"mode": "extractive", "embedding": "onnx/fp32"}
    run.check_comparable(baseline, "extractive", "onnx/fp32")
    with pytest.raises(ValueError, match="llm mode"):
        run.check_comparable(baseline, "llm", "onnx/fp32")
    with pytest.raises(ValueError, match="onnx/int8"):
        run.check_comparable(baseline, "extractive", "onnx/int8")


def test_near_miss_rows_hide_the_gold_paper():
    rows = run.load_dataset(DEFAULT_DATASET)
    near = run.near_miss_rows(rows)
    single = [r for r in rows if r["type"] in ("lookup", "detail") and len(r["gold_titles"]) == 1]
    assert len(near) == len(single) > 50
    assert all(r["gold_titles"] == [] and len(r["exclude"]) == 1 for r in near)
    assert near[0]["exclude"] == run.gold_ids(single[0]["gold_titles"])


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, embedder):
    """A CliRunner whose `eval` builds its Services around the session's loaded model."""
    made: list[Services] = []

    def make(settings):
        services = Services(settings, embedder=embedder)
        made.append(services)
        return services

    monkeypatch.setattr(evals.command, "make_services", make)
    yield CliRunner()
    for services in made:
        if "index" in services.__dict__:
            services.index.close()


def test_cli_help():
    result = CliRunner().invoke(app, ["eval", "--help"], terminal_width=120)
    assert result.exit_code == 0
    for opt in ("--mode", "--dataset", "--split", "--baselines", "--external", "--limit",
                "--questions", "--judge",
                "--generate", "--out", "--fail-under", "--report-dir", "-k", "--data-dir"):
        assert opt in result.output


def test_cli_gate_exit_codes(cli, outcome, seed_settings, tmp_path):
    path = tmp_path / "raised.json"
    path.write_text(json.dumps(raised(outcome)))
    common = ["eval", "--no-baselines", "--questions", "5", "-q", "--data-dir",
              str(seed_settings.data_dir)]
    result = cli.invoke(app, [*common, "--fail-under", str(path), "--report-dir",
                              str(tmp_path / "r1")])
    assert result.exit_code == 1, result.output
    assert "Regression gate FAILED" in result.output
    result = cli.invoke(app, [*common, "--fail-under", "baseline", "--report-dir",
                              str(tmp_path / "r2")])
    assert result.exit_code == 0, result.output
    assert "Regression gate passed" in result.output
    assert "Ours, by split" in result.output and "nearmiss-test" in result.output
    assert (tmp_path / "r2" / "summary.md").exists()
    assert (tmp_path / "r2" / "test" / "report.md").exists()


def test_cli_rejects_bad_input(cli, tmp_path):
    assert cli.invoke(app, ["eval", "--mode", "magic"]).exit_code == 2
    assert cli.invoke(app, ["eval", "--fail-under", str(tmp_path / "none.json")]).exit_code == 2
    result = cli.invoke(app, ["eval", "--generate", "3"])
    assert result.exit_code == 2 and "--out" in result.output


# --- external benchmark ------------------------------------------------------------------------


def _write_external(folder: Path) -> None:
    folder.mkdir()
    scifact = [
        {"input": "Coral bleaching can be mapped from drone imagery.",
         "gold_ctx": [{"title": "ReefWatch drone surveys", "text": "We map coral bleaching "
                       "from low-altitude drone imagery over shallow reefs."}]},
        {"input": "Drones replace divers for reef surveys.",
         "gold_ctx": [{"title": "ReefWatch drone surveys", "text": "We map coral bleaching "
                       "from low-altitude drone imagery over shallow reefs."}]},
        {"input": "Lossless compression of sequencing reads reaches 1.6 bits per base.",
         "gold_ctx": [{"title": "HelixZip read compression", "text": "HelixZip compresses "
                       "FASTQ sequencing reads to 1.6 bits per base without a reference."}]},
    ]
    pubmed = [
        {"input": "Does aspirin reduce migraine frequency?",
         "gold_ctx": [{"title": "", "text": {"contexts": [
             "Migraine frequency was recorded in 300 adults taking daily aspirin.",
             "Aspirin reduced monthly attacks by a third compared with placebo."]}}]},
        {"input": "Is knee arthroscopy useful in elderly patients?",
         "gold_ctx": [{"title": "", "text": "Elderly patients with knee pain underwent "
                       "arthroscopy or physiotherapy. Outcomes did not differ at one year."}]},
    ]
    for name, rows in (("scifact_test.jsonl", scifact), ("pubmed_test.jsonl", pubmed)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_external_corpus_titles_and_dedupe(tmp_path):
    _write_external(tmp_path / "ext")
    data = {n: external.load(tmp_path / "ext" / f) for n, f in external.FILES.items()}
    papers, queries = external.build_corpus(data)
    assert len(papers) == 4  # the two SciFact claims share one abstract
    pub = [p for p in papers if p["dataset"] == "pubmedqa"]
    assert pub[0]["title"] == "Migraine frequency was recorded in 300 adults taking daily aspirin"
    assert all(p["title"] not in {r["input"] for r in data["pubmedqa"]} for p in pub)
    assert queries["scifact"][0]["gold"] == queries["scifact"][1]["gold"]
    assert external.derive_title("word " * 100).endswith("…")
    assert len(external.derive_title("word " * 100)) <= external.TITLE_CHARS + 1


def test_external_run_on_tiny_corpus(tmp_path, make_settings, embedder):
    _write_external(tmp_path / "ext")
    settings = make_settings(tmp_path / "data")
    out = external.run_external(settings, embedder, source_dir=tmp_path / "ext",
                                progress=False, log=lambda _: None)
    assert (tmp_path / "data" / "evals" / "external" / "manifest.json").exists()
    assert not (tmp_path / "data" / "manifest.json").exists()  # main index untouched
    assert out["corpus"]["papers"] == 4 and out["corpus"]["derived_titles"] == 2
    sci = out["datasets"]["scifact"]
    assert sci["n"] == 3 and {"ours", "dense", "bm25"} <= set(sci["configs"])
    assert out["fusions"]["ours"] == settings.fusion
    assert sci["configs"]["ours"]["hit@5"] == 1.0
    assert sci["reference_mrr"]["dense"] == 0.871
    assert "rrf" in sci["configs"] or settings.fusion == "rrf"
    assert sci["reference_mrr"].get("rrf", 0.890) == 0.890
    limited = external.run_external(settings, embedder, limit=1, source_dir=tmp_path / "ext",
                                    progress=False, log=lambda _: None)
    assert limited["datasets"]["pubmedqa"]["n"] == 1
    assert limited["corpus"]["newly_embedded_chunks"] == 0  # the index is reused


# --- judge and generate against the scripted server ----------------------------------------------


def judge_responder(body: dict) -> str:
    prompt = " ".join(str(m.get("content")) for m in body["messages"])
    if "supported by the context" in prompt or "present in the context" in prompt:
        return "YES"  # faithfulness
    return "NO"  # relevancy


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as srv:
        srv.default_reply = Reply(responder=judge_responder, repeat=FOREVER)
        yield srv


def test_judge_scores_and_caches(server, make_settings, tmp_path):
    settings = make_settings(tmp_path / "data", llm_base_url=server.base_url,
                             llm_model="judge-model")
    cache = tmp_path / "data" / "evals" / "judge_cache.json"
    rows = [{"question": "What does HelixZip do?", "answer": "It compresses reads [1].",
             "_contexts": ["HelixZip\nHelixZip compresses FASTQ reads."], "abstained": False,
             "error": None, "metrics": {}},
            {"question": "Off topic?", "answer": "The corpus does not cover this question.",
             "_contexts": [], "abstained": True, "error": None, "metrics": {}}]
    j = judge.Judge(settings, cache)
    judge.judge_rows(j, rows)
    assert rows[0]["metrics"] == {"faithfulness": 1.0, "relevancy": 0.0}
    assert "faithfulness" not in rows[1]["metrics"]  # abstentions are not judged
    assert j.requests == 1 and cache.exists()
    sent = len(server.requests)
    assert sent >= 2

    again = judge.Judge(settings, cache)
    judge.judge_rows(again, rows)
    assert again.cached == 1 and again.requests == 0
    assert len(server.requests) == sent  # a rerun costs no request

    rows[0]["answer"] = "It compresses reads losslessly [1]."
    judge.judge_rows(again, rows)
    assert again.requests == 1 and len(server.requests) > sent


def test_judge_needs_an_endpoint(make_settings, tmp_path):
    with pytest.raises(Exception, match="needs an LLM endpoint"):
        judge.Judge(make_settings(tmp_path), tmp_path / "cache.json")


def test_eval_with_judge(server, seed_settings, embedder, subset, tmp_path):
    settings = seed_settings.model_copy(update={"llm_base_url": server.base_url,
                                                "llm_model": "judge-model"})
    services = Services(settings, embedder=embedder)
    rows = [r for r in subset if r["type"] in ("lookup", "offcorpus")][:3]
    try:
        out = run.execute(services, rows, run.EvalOptions(configs=(OURS,), progress=False),
                          judge=True, judge_cache=tmp_path / "judge.json",
                          report_dir=tmp_path / "report", log=lambda _: None)
    finally:
        services.index.close()
    overall = out.run.summary[OURS]["overall"]
    assert overall["faithfulness"] == 1.0 and overall["relevancy"] == 0.0
    assert out.judge["judged_now"] >= 1
    assert "## LLM judge" in (tmp_path / "report" / "report.md").read_text()


PAPERS = [
    Paper(id=f"t:{i:016x}", title=f"Paper number {i} on topic {w}",
          abstract=f"We study {w} systems at scale. Our method improves {w} throughput by "
                   f"{10 + i}% on the {w.upper()}-Bench suite.")
    for i, w in enumerate(["sparse", "vision", "speech", "graph", "robot", "quantum"])
]


def generate_responder(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    abstract = re.search(r"Abstract: (.*)\n</paper>", prompt).group(1)
    if "vision" in abstract:
        return "Sorry, I cannot help with that."  # not JSON: skipped, another paper taken
    if "specific fact" in prompt:
        found = re.search(r"\d+(\.\d+)?%?", abstract)
        keyword = found.group(0) if found else abstract.split()[0]
        return ("```json\n" + json.dumps({"question": "By how much does it improve throughput?",
                                          "keywords": [keyword, "not in the abstract"]})
                + "\n```")
    return json.dumps({"question": "Which paper studies this kind of system at scale?"})


def test_generate_drafts(make_settings, tmp_path):
    with ScriptedOpenAIServer() as srv:
        srv.default_reply = Reply(responder=generate_responder, repeat=FOREVER)
        settings = make_settings(tmp_path, llm_base_url=srv.base_url, llm_model="gen-model")
        out = tmp_path / "drafts" / "new.jsonl"
        rows, problems = generate.generate(PAPERS, 4, LLM(settings), "gen-model", out, seed=1)
    assert len(rows) == 4
    assert [r["type"] for r in rows] == ["lookup", "detail", "lookup", "detail"]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == rows
    titles = {p.title: p for p in PAPERS}
    for r in rows:
        assert r["status"] == "draft" and r["gold_titles"][0] in titles
        assert set(r) >= {"id", "type", "question", "gold_titles", "expected_keywords", "notes"}
        if r["type"] == "detail":
            assert len(r["expected_keywords"]) == 1  # the invented keyword was dropped
            assert r["expected_keywords"][0] in titles[r["gold_titles"][0]].abstract
    assert all("vision" not in r["gold_titles"][0] for r in rows)
    assert problems == [] or all("not JSON" in p for p in problems)


def test_cli_generate(cli, monkeypatch, seed_settings, tmp_path):
    with ScriptedOpenAIServer() as srv:
        srv.default_reply = Reply(responder=generate_responder, repeat=FOREVER)
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        out = tmp_path / "drafts.jsonl"
        result = cli.invoke(app, ["eval", "--generate", "2", "--out", str(out), "-q",
                                  "--data-dir", str(seed_settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 draft questions" in result.output
    assert len(out.read_text().splitlines()) == 2
