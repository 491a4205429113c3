"""`assistant feedback export`: 👎 answers stored by the UI -> candidate eval questions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from assistant.feedback import candidate, export_candidates
from assistant.history import History
from assistant.types import Answer, Citation, Source

ASSISTANT = str(Path(sys.executable).parent / "assistant")
DEV_SET = Path(__file__).resolve().parents[1] / "evals" / "datasets" / "dev_styles.jsonl"


def answer(question: str, cited: list[str], abstained: bool = False) -> Answer:
    sources = [Source(n=i, paper_id=f"p{i}", title=t, score=0.5, cited=not abstained)
               for i, t in enumerate(cited, start=1)]
    citations = [] if abstained else [Citation(n=s.n, paper_id=s.paper_id, title=s.title)
                                      for s in sources]
    text = "The corpus does not cover this." if abstained else "An answer [1]."
    return Answer(question=question, answer=text, mode="extractive", abstained=abstained,
                  sources=sources, citations=citations)


def filled(tmp_path: Path) -> History:
    store = History.open(tmp_path)
    conv = store.create("alice", "q")
    rows = [("Which paper uses bandits for SOR?", ["Wrong Paper A"], "down", "wrong paper"),
            ("What is prefix caching?", ["Marconi"], "up", None),
            ("Who won the 2022 World Cup?", ["Unrelated B"], "down", "should have abstained"),
            ("Which optimizer is APOLLO?", [], "down", None)]
    for i, (q, cited, rating, reason) in enumerate(rows):
        store.save_turn("alice", conv.id, i, answer(q, cited or ["Closest C"],
                                                    abstained=not cited))
        store.set_feedback("alice", conv.id, i, rating, reason)
    return store


def test_thumbs_down_become_dev_set_lines_for_review(tmp_path):
    rows = export_candidates(filled(tmp_path))
    assert [r["question"] for r in rows] == ["Which paper uses bandits for SOR?",
                                             "Who won the 2022 World Cup?",
                                             "Which optimizer is APOLLO?"]  # no 👍
    dev_keys = set(json.loads(DEV_SET.read_text(encoding="utf-8").splitlines()[0]))
    for r in rows:
        assert {"id", "type", "question", "gold_titles", "expected_keywords", "style",
                "notes"} <= set(r) and set(r) - dev_keys == {"review"}
        assert r["gold_titles"] == [] and "FOR REVIEW" in r["notes"]
    wrong, abstain, refused = rows
    assert wrong["review"]["reason"] == "wrong paper" and wrong["type"] == "lookup"
    assert wrong["review"]["cited"] == [{"n": 1, "paper_id": "p1", "title": "Wrong Paper A"}]
    assert "Wrong Paper A" in wrong["notes"]
    assert abstain["type"] == "offcorpus"  # should have abstained: no gold paper
    assert refused["review"]["abstained"] and refused["review"]["cited"] == []
    assert refused["review"]["sources"][0]["title"] == "Closest C"
    assert len({r["id"] for r in rows}) == 3


def test_candidate_names_an_unspecified_reason(tmp_path):
    store = filled(tmp_path)
    fb = store.feedback(rating="down")[-1]
    assert fb.reason is None and "👎 (unspecified)" in candidate(fb)["notes"]


def test_the_command_writes_jsonl_and_prints_without_out(tmp_path):
    filled(tmp_path)
    out = tmp_path / "candidates.jsonl"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([ASSISTANT, "feedback", "export", "--data-dir", str(tmp_path),
                           "--out", str(out)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 3 and "3 candidate questions written" in done.stderr
    printed = subprocess.run([ASSISTANT, "feedback", "export", "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert [json.loads(x) for x in printed.stdout.splitlines()] == lines


def test_the_command_says_when_there_is_no_feedback(tmp_path):
    done = subprocess.run([ASSISTANT, "feedback", "export", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1 and "no feedback yet" in done.stderr
    assert "assistant ui" in done.stderr
