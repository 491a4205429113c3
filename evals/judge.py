"""Opt-in LLM judge: faithfulness and answer relevancy with llama-index's evaluators.

The judge talks to the endpoint the assistant is configured with (settings.llm_base_url,
settings.llm_model) through llama-index's OpenAILike. Both evaluators answer YES/NO, so each
metric is the share of answers judged YES. Verdicts are cached in a JSON file keyed by a
hash of (judge model, question, answer, sources): a rerun over unchanged answers costs no
request at all, and a changed answer or source list is judged afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.errors import LLMError
from assistant.settings import Settings
from assistant.types import Answer


def judge_llm(settings: Settings):
    """The configured chat model (assistant.llm.chat_model: the one retry policy), at
    temperature 0 with short replies."""
    from assistant.llm import chat_model

    return chat_model(settings, temperature=0.0, max_tokens=256)


def cache_key(question: str, answer: str, sources: Sequence[str], model: str) -> str:
    blob = json.dumps([model, question, answer, list(sources)], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def answer_contexts(answer: Answer) -> list[str]:
    """The texts the answer was built from: each numbered source's title and abstract."""
    return [f"{s.title}\n{s.abstract}".strip() for s in answer.sources]


class Judge:
    def __init__(self, settings: Settings, cache_path: Path, llm: Any = None) -> None:
        if llm is None and not settings.llm_configured:
            raise LLMError("The judge needs an LLM endpoint: set OPENAI_BASE_URL (and "
                           "OPENAI_API_KEY if it needs one), or run without --judge.", "config")
        from llama_index.core.evaluation import FaithfulnessEvaluator, RelevancyEvaluator

        self.model = settings.llm_model
        self.llm = llm or judge_llm(settings)
        self.faithfulness = FaithfulnessEvaluator(llm=self.llm)
        self.relevancy = RelevancyEvaluator(llm=self.llm)
        self.cache_path = Path(cache_path)
        self.cache: dict[str, dict[str, Any]] = self._load()
        self.requests = 0  # answers judged by the LLM in this process
        self.cached = 0  # answers served from the cache
        self.failures = 0

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cache, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.cache_path)

    def judge(self, question: str, answer: str, contexts: Sequence[str]) -> dict[str, Any]:
        """{"faithfulness": 0/1, "relevancy": 0/1, ...feedback}; None scores on failure."""
        key = cache_key(question, answer, contexts, self.model)
        if key in self.cache:
            self.cached += 1
            return self.cache[key]
        try:
            faith = self.faithfulness.evaluate(query=question, response=answer,
                                               contexts=list(contexts))
            relevant = self.relevancy.evaluate(query=question, response=answer,
                                               contexts=list(contexts))
        except Exception as error:  # noqa: BLE001 — one failed verdict must not end the run
            self.failures += 1
            return {"faithfulness": None, "relevancy": None,
                    "judge_error": f"{type(error).__name__}: {str(error)[:200]}"}
        self.requests += 1
        verdict = {
            "faithfulness": faith.score, "relevancy": relevant.score,
            "faithfulness_feedback": (faith.feedback or "").strip()[:300],
            "relevancy_feedback": (relevant.feedback or "").strip()[:300],
            "judge_model": self.model,
        }
        self.cache[key] = verdict
        self._save()
        return verdict


def judge_rows(judge: Judge, rows: list[dict[str, Any]], progress: bool = False) -> None:
    """Add judge verdicts to the metrics of answered (not abstained, not failed) rows."""
    from tqdm import tqdm

    todo = [r for r in rows if not r["abstained"] and not r.get("error") and r["answer"]]
    for row in tqdm(todo, desc=f"Judging ({judge.model})", unit="answer", disable=not progress):
        verdict = judge.judge(row["question"], row["answer"], row["_contexts"])
        row["metrics"]["faithfulness"] = verdict.get("faithfulness")
        row["metrics"]["relevancy"] = verdict.get("relevancy")
        row["judge"] = {k: v for k, v in verdict.items() if k not in ("faithfulness",
                                                                       "relevancy")}
