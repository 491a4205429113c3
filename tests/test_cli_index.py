"""The `assistant ingest | search | stats` commands, in process (CliRunner) plus one real run.

In-process runs share the session MiniLM: ``make_embedder`` is pointed at the already loaded
(real) model, so each command does not load the weights again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app

RESULT_KEYS = {"paper_id", "title", "score", "snippet", "url"}
MARCONI = "Marconi: Prefix Caching for the Era of Hybrid LLMs"


@pytest.fixture
def cli(monkeypatch, embedder):
    """invoke(*args, env=None) -> click Result, with the session embedder shared."""
    import assistant.embeddings

    monkeypatch.setattr(assistant.embeddings, "make_embedder", lambda settings: embedder)
    for name in list(os.environ):
        if name.startswith("ASSISTANT_"):
            monkeypatch.delenv(name)
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


def data_args(settings) -> list[str]:
    return ["--data-dir", str(settings.data_dir)]


# --- search -----------------------------------------------------------------------------


def test_search_json_shape(cli, seed_settings):
    query = "prefix caching for hybrid attention and state space language models"
    result = cli("search", query, "--json", "-k", "4", *data_args(seed_settings))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert set(out) == {"query", "results"}
    assert out["query"] == query
    assert len(out["results"]) == 4
    for r in out["results"]:
        assert set(r) == RESULT_KEYS
        assert isinstance(r["paper_id"], str) and isinstance(r["title"], str)
        assert isinstance(r["score"], float) and 0 < r["score"] <= 1
        assert isinstance(r["snippet"], str) and r["snippet"]
    assert out["results"][0]["title"] == MARCONI


@pytest.mark.parametrize("fusion", ["convex", "rrf", "dense", "bm25"])
def test_search_fusion_option(cli, seed_settings, fusion):
    result = cli("search", "Marconi prefix caching", "--json", "--fusion", fusion,
                 *data_args(seed_settings))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["title"] == MARCONI


def test_search_plain_text(cli, seed_settings):
    result = cli("search", "Marconi prefix caching", "-k", "2", *data_args(seed_settings))
    assert result.exit_code == 0
    assert result.stdout.startswith(f"1. {MARCONI}")
    assert "2. " in result.stdout and "score " in result.stdout


def test_search_batch(cli, seed_settings, tmp_path):
    batch = tmp_path / "queries.jsonl"
    lines = [
        json.dumps({"id": "q1", "query": "prefix caching for hybrid LLMs", "tags": ["a"]}),
        "this is not json",
        json.dumps({"id": "q3", "question": "wrong key"}),
        json.dumps({"query": "order book market simulation with diffusion", "n": 7}),
        json.dumps(["query", "in a list"]),
    ]
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("search", "--batch", batch, "-k", "3", *data_args(seed_settings))
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)

    assert out[0]["id"] == "q1" and out[0]["tags"] == ["a"]
    assert out[0]["query"] == "prefix caching for hybrid LLMs"
    assert len(out[0]["results"]) == 3 and out[0]["results"][0]["title"] == MARCONI
    assert all(set(r) == RESULT_KEYS for r in out[0]["results"])

    assert set(out[1]) == {"error"} and f"{batch}:2:" in out[1]["error"]
    assert "not valid JSON" in out[1]["error"]
    assert set(out[2]) == {"error"} and ":3:" in out[2]["error"] and "'query'" in out[2]["error"]
    assert out[3]["n"] == 7 and out[3]["results"][0]["title"].startswith("TRADES")
    assert set(out[4]) == {"error"} and ":5:" in out[4]["error"]


def test_search_needs_exactly_one_of_query_or_batch(cli, seed_settings, tmp_path):
    neither = cli("search", *data_args(seed_settings))
    assert neither.exit_code == 2 and "--batch" in neither.output
    batch = tmp_path / "q.jsonl"
    batch.write_text(json.dumps({"query": "x"}) + "\n")
    both = cli("search", "a query", "--batch", batch, *data_args(seed_settings))
    assert both.exit_code == 2


def test_search_rejects_unknown_fusion(cli, seed_settings):
    result = cli("search", "x", "--fusion", "magic", *data_args(seed_settings))
    assert result.exit_code == 2
    assert "'magic'" in result.output


# --- stats, missing index ----------------------------------------------------------------


def test_stats_json(cli, seed_settings):
    result = cli("stats", "--json", *data_args(seed_settings))
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert set(stats) == {"papers", "chunks", "embedding_model", "dimension", "generation",
                          "index_location", "size_on_disk_mb"}
    assert stats["papers"] == 633
    assert stats["chunks"] >= 633
    assert stats["dimension"] == 384
    assert stats["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert stats["index_location"] == str(seed_settings.data_dir.resolve())


def test_stats_plain_text(cli, seed_settings):
    result = cli("stats", *data_args(seed_settings))
    assert result.exit_code == 0
    assert "papers: 633" in result.stdout and "embedding model:" in result.stdout


@pytest.mark.parametrize("command", [["stats"], ["stats", "--json"], ["search", "anything"]])
def test_missing_index_gives_ingest_hint(cli, tmp_path, command):
    empty = tmp_path / "no-index"
    result = cli(*command, "--data-dir", empty)
    assert result.exit_code == 1
    assert "assistant ingest" in result.stderr
    assert str(empty) in result.stderr
    assert result.stdout == ""


# --- ingest -----------------------------------------------------------------------------


def test_ingest_bad_file_fails_naming_it(cli, tmp_path):
    bad = tmp_path / "corrupt.jsonl"
    bad.write_bytes(b"\x00\xff\x00\xfe" * 64)
    data = tmp_path / "data"
    result = cli("ingest", bad, "--quiet", "--data-dir", data)
    assert result.exit_code != 0
    assert str(bad) in result.output
    assert "binary" in result.output
    assert "nothing was changed" in result.stderr
    assert not (data / "manifest.json").exists()


def test_ingest_folder_without_corpus_files(cli, tmp_path):
    folder = tmp_path / "empty-folder"
    folder.mkdir()
    result = cli("ingest", folder, "-q", "--data-dir", tmp_path / "data")
    assert result.exit_code == 1
    assert str(folder) in result.stderr and "no corpus files" in result.stderr


def test_ingest_then_search_and_model_mismatch(cli, tmp_path, small_corpus, small_papers):
    data = tmp_path / "data"
    first = cli("ingest", small_corpus, "-q", "--data-dir", data)
    assert first.exit_code == 0, first.output
    assert f"{len(small_papers)} new" in first.stdout
    again = cli("ingest", small_corpus, "-q", "--data-dir", data)
    assert again.exit_code == 0 and "Chunks embedded: 0" in again.stdout

    target = small_papers[3]
    found = cli("search", target["query"], "--json", "-k", "2", "--data-dir", data)
    assert json.loads(found.stdout)["results"][0]["title"] == target["title"]

    mismatch = cli("ingest", small_corpus, "-q", "--data-dir", data,
                   env={"ASSISTANT_EMBED_MODEL": "paraphrase-MiniLM-L3-v2"})
    assert mismatch.exit_code == 1
    assert "paraphrase-MiniLM-L3-v2" in mismatch.stderr
    assert "all-MiniLM-L6-v2" in mismatch.stderr and "--rebuild" in mismatch.stderr


@pytest.mark.parametrize("command", [[], ["ingest"], ["search"], ["stats"]])
def test_help(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.stdout
    if command:
        assert "--data-dir" in result.stdout


# --- one real process ---------------------------------------------------------------------


def test_installed_command_end_to_end(seed_settings):
    exe = Path(sys.executable).parent / "assistant"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    proc = subprocess.run(
        [str(exe), "search", "Marconi prefix caching hybrid LLMs", "--json", "-k", "3",
         "--data-dir", str(seed_settings.data_dir)],
        capture_output=True, text=True, timeout=300, env=env, cwd=seed_settings.data_dir,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"query", "results"} and len(out["results"]) == 3
    assert out["results"][0]["title"] == MARCONI


def test_ask_an_empty_question_is_a_clear_usage_error(cli, tmp_path):
    for blank in ("", "   "):
        result = cli("ask", blank, "--data-dir", tmp_path / "data")
        assert result.exit_code == 2
        assert "the question is empty" in result.output
        assert "Checked answer" not in result.output


def test_ask_warns_when_the_lead_paper_does_not_state_the_questions_figure(cli, seed_settings):
    out = cli("ask", "Which paper reaches 70% MFU training a 175B model on 12,288 GPUs?",
              "--mode", "extractive", *data_args(seed_settings))
    assert out.exit_code == 0, out.output
    assert "Premise: [1] does not state 70% from the question" in out.output
    fine = cli("ask", "Which paper reaches 55.2% MFU training a 175B model on 12,288 GPUs?",
               "--mode", "extractive", *data_args(seed_settings))
    assert fine.exit_code == 0 and "Premise" not in fine.output


def test_ask_says_what_it_searched_for_when_it_fixed_the_spelling(cli, seed_settings):
    typo = cli("ask", "wich optimizers cut memmory use?", "--mode", "extractive",
               *data_args(seed_settings))
    assert typo.exit_code == 0, typo.output
    assert "Searched for: which optimizers cut memory use?" in typo.output
    clean = cli("ask", "which optimizers cut memory use?", "--mode", "extractive",
                *data_args(seed_settings))
    assert clean.exit_code == 0 and "Searched for" not in clean.output
