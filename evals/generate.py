"""Draft new golden questions from random corpus papers with the LLM, for human review.

`assistant eval --generate N --out drafts.jsonl` samples N papers from the index, asks the
configured LLM for one question per paper (alternating "lookup": the paper described in
other words, and "detail": one fact of the abstract) and writes rows in the schema of
evals/datasets/golden.jsonl plus `"status": "draft"`. Keywords the model proposes are kept
only when they occur verbatim in the abstract. Nothing is added to the golden set: a person
reads the drafts, fixes or drops them, and copies the good ones over.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.types import Paper

PROMPTS = {
    "lookup": (
        "You write test questions for a research assistant that answers from a corpus of "
        "paper abstracts.\nRead the paper below and write ONE question a researcher who "
        "half-remembers it might ask to find it again. Describe its idea in your own words; "
        "do not copy the title, the system's name or long phrases of the abstract.\n"
        'Reply with JSON only: {"question": "..."}\n\n'
        "<paper>\nTitle: {title}\nAbstract: {abstract}\n</paper>"
    ),
    "detail": (
        "You write test questions for a research assistant that answers from a corpus of "
        "paper abstracts.\nRead the paper below and write ONE question about a specific fact "
        "the abstract states (a number, a dataset, a named result), answerable from the "
        "abstract alone, naming the paper or its method so the question is unambiguous. "
        "Also give 1 to 3 short keywords copied exactly from the abstract that a correct "
        "answer must contain.\n"
        'Reply with JSON only: {"question": "...", "keywords": ["...", "..."]}\n\n'
        "<paper>\nTitle: {title}\nAbstract: {abstract}\n</paper>"
    ),
}
TYPES = ("lookup", "detail")


def parse_reply(text: str) -> dict[str, Any] | None:
    """The first JSON object in the reply (models like to wrap it in prose or fences)."""
    for match in re.finditer(r"\{", text):
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[match.start():])
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def draft_row(paper: Paper, kind: str, reply: dict[str, Any], model: str) -> dict[str, Any]:
    question = " ".join(str(reply.get("question", "")).split())
    if not question:
        raise ValueError("reply has no question")
    raw = reply.get("keywords") or []
    keywords = [k.strip() for k in raw if isinstance(k, str) and k.strip()] \
        if isinstance(raw, list) else []
    found = [k for k in keywords if k.casefold() in paper.abstract.casefold()]
    if kind == "detail" and not found:
        raise ValueError("no proposed keyword occurs in the abstract")
    dropped = sorted(set(keywords) - set(found))
    return {
        "id": f"gen-{kind}-{paper.id.split(':')[-1][:10]}",
        "type": kind,
        "question": question,
        "gold_titles": [paper.title],
        "expected_keywords": found,
        "notes": f"DRAFT by {model} from {paper.id}; check the question is answerable from "
                 "this abstract only and not a copy of the title."
                 + (f" Dropped keywords not in the abstract: {dropped}." if dropped else ""),
        "status": "draft",
    }


def generate(papers: list[Paper], n: int, llm: Any, model: str, out: Path,
             seed: int = 0, progress: bool = False) -> tuple[list[dict], list[str]]:
    """Draft up to n questions from randomly chosen papers; returns (rows, problems).

    `llm` is anything with `complete(messages) -> obj with .text` (assistant.llm.LLM).
    A paper whose reply cannot be used is replaced by another one, up to 2n attempts.
    """
    from tqdm import tqdm

    rng = random.Random(seed)
    order = rng.sample(papers, len(papers))
    rows: list[dict] = []
    problems: list[str] = []
    bar = tqdm(total=n, desc="Drafting questions", unit="question", disable=not progress)
    for paper in order[: 2 * n]:
        if len(rows) >= n:
            break
        kind = TYPES[len(rows) % len(TYPES)]
        prompt = PROMPTS[kind].replace("{title}", paper.title).replace("{abstract}",
                                                                       paper.abstract)
        try:
            gen = llm.complete([{"role": "user", "content": prompt}])
            reply = parse_reply(gen.text)
            if reply is None:
                raise ValueError("reply is not JSON")
            rows.append(draft_row(paper, kind, reply, model))
            bar.update(1)
        except (AssistantError, ValueError) as error:
            problems.append(f"{paper.id} ({kind}): {error}")
    bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return rows, problems
