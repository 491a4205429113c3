"""The UI load scenario: 20 concurrent chats in LLM mode against the scripted
OpenAI-compatible server with a planned mix of faults, each turn's outcome known in advance.
Run by tests/test_ui_load.py (asserts) and bench/ui_load.py (figures)."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from tests.support.openai_server import Reply, ScriptedOpenAIServer
from tests.support.ui import client, serve, text  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "evals" / "datasets" / "dev.jsonl"
FOLLOW_UP = "What does the second paper propose?"
FRESH_QUESTION = "Which optimizers reduce memory use when training large language models?"
LLM_TIMEOUT_S = 2.0
LLM_MAX_RETRIES = 1  # two attempts per LLM call
TURN_BOUND_S = 45.0  # no turn may take longer (the slowest planned one needs ~5 s of LLM time)
RUN_BOUND_S = 120.0  # the whole load
CHATS = 20
REPLY = ("Both papers address the question from different angles [1]. The second one "
         "proposes a complementary method and evaluates it at scale [2].")

# What a turn must end with. Errors are matched on the one-line message the user sees.
ERRORS = {
    "429": "is rate limiting requests (429)",
    "500": "failed with HTTP 500",
    "timeout": f"did not answer within {LLM_TIMEOUT_S:g} s",
    "cut": "was cut off mid-way",
}
CLEAR_ERROR = re.compile("|".join(re.escape(m) for m in ERRORS.values()))


@dataclass(frozen=True)
class ChatPlan:
    """Faults per attempt of each LLM call of one chat (a call with no fault left answers
    normally) and the outcome each turn must end with: answer, abstain or an ERRORS key."""

    turn1: tuple[str, ...] = ()
    expect1: str = "answer"
    turn2: tuple[str, ...] = ()
    expect2: str = "answer"
    condense: tuple[str, ...] = ()  # the follow-up's rewrite (a failure there is silent)


# With LLM_MAX_RETRIES = 1: one fault is retried and recovers; two faults are the error of
# the second; a cut stream is never retried (text was already shown). A chat whose first
# turn failed asks its follow-up with no history: nothing to follow, so it abstains.
PLANS: list[ChatPlan] = [
    ChatPlan(),
    ChatPlan(),
    ChatPlan(),
    ChatPlan(),
    ChatPlan(turn1=("429",)),
    ChatPlan(turn1=("500",)),
    ChatPlan(turn1=("timeout",)),
    ChatPlan(turn1=("cut",), expect1="cut", expect2="abstain"),
    ChatPlan(turn1=("429", "429"), expect1="429", expect2="abstain"),
    ChatPlan(turn1=("500", "500"), expect1="500", expect2="abstain"),
    ChatPlan(turn1=("timeout", "timeout"), expect1="timeout", expect2="abstain"),
    ChatPlan(turn2=("cut",), expect2="cut"),
    ChatPlan(turn2=("429", "429"), expect2="429"),
    ChatPlan(turn2=("500", "500"), expect2="500"),
    ChatPlan(turn2=("timeout", "timeout"), expect2="timeout"),
    ChatPlan(turn2=("500",)),
    ChatPlan(turn1=("429", "500"), expect1="500", expect2="abstain"),
    ChatPlan(turn1=("timeout", "429"), expect1="429", expect2="abstain"),
    ChatPlan(turn2=("timeout",)),
    ChatPlan(condense=("500", "500")),
]
assert len(PLANS) == CHATS


def questions(n: int = CHATS) -> list[str]:
    """n distinct questions the seeds corpus covers (the golden set's lookups)."""
    rows = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    picked = [" ".join(r["question"].split()) for r in rows if r["type"] == "lookup"][:n]
    assert len(picked) == n and len(set(picked)) == n
    return picked


def fault_reply(fault: str | None) -> Reply:
    if fault is None:
        return Reply(text=REPLY, chunk_delay_s=0.01)
    if fault == "timeout":  # held well past the client's timeout, then a normal reply
        return Reply(text=REPLY, fault="timeout", delay_s=LLM_TIMEOUT_S * 3)
    if fault == "cut":
        return Reply(text=REPLY, fault="cut", chunk_delay_s=0.01)
    return Reply(fault=fault)


class PlannedServer(ScriptedOpenAIServer):
    """The scripted server, choosing each chat reply by the chat the prompt belongs to.

    A turn-1 answer prompt carries the chat's question; a condense prompt carries it in the
    history ("User: ..."); its (scripted) rewrite names the chat, and so does the turn-2
    answer prompt built from it. `attempts[(chat, call)]` counts the requests per call.
    """

    def __init__(self, chat_questions: list[str], plans: list[ChatPlan]) -> None:
        super().__init__()
        self.chat_questions = chat_questions
        self.plans = plans
        self.attempts: dict[tuple[int, str], int] = {}
        self._body = threading.local()
        self.default_reply = fault_reply(None)
        self.retry_after_ms = 10  # 429s carry retry-after-ms: the retry waits 10 ms

    # The handler logs each request (with its parsed body) just before asking for a reply,
    # on the same thread: remember the body there.
    def _log(self, entry: dict[str, Any]) -> None:
        super()._log(entry)
        self._body.value = entry.get("body")

    def _next_reply(self) -> Reply:
        chat, call = self.route(getattr(self._body, "value", None))
        if chat is None:
            return super()._next_reply()
        with self._lock:
            n = self.attempts.get((chat, call), 0)
            self.attempts[(chat, call)] = n + 1
        faults = getattr(self.plans[chat], call)
        reply = fault_reply(faults[n] if n < len(faults) else None)
        if call == "condense" and reply.fault is None:
            reply = Reply(text=f"What does the second paper from chat {chat:02d} propose?")
        return reply

    def route(self, body: Any) -> tuple[int | None, str]:
        if not isinstance(body, dict) or not body.get("messages"):
            return None, ""
        prompt = str(body["messages"][-1].get("content") or "")
        if "Standalone question:" in prompt:
            for i, q in enumerate(self.chat_questions):
                if f"User: {q}" in prompt:
                    return i, "condense"
            return None, ""
        asked = re.findall(r"^Question: (.*)$", prompt, re.MULTILINE)
        if not asked:
            return None, ""
        if m := re.search(r"\bfrom chat (\d\d) propose\?", asked[-1]):
            return int(m.group(1)), "turn2"
        for i, q in enumerate(self.chat_questions):
            if asked[-1] == q:
                return i, "turn1"
        return None, ""


@dataclass
class Turn:
    chat: int
    turn: int
    question: str
    expect: str
    outcome: str = "failure"  # answer | abstain | an ERRORS key | failure
    latency_s: float = 0.0
    error: str | None = None
    detail: str = ""  # why a turn counts as a failure
    attempts: int = 0


@dataclass
class LoadResult:
    turns: list[Turn] = field(default_factory=list)
    wall_s: float = 0.0

    def count(self, pred: Callable[[Turn], bool]) -> int:
        return sum(1 for t in self.turns if pred(t))

    def summary(self) -> dict[str, Any]:
        from bench.common import pct

        lat = [t.latency_s for t in self.turns if t.outcome != "failure"]
        by_kind = {k: self.count(lambda t, k=k: t.outcome == k) for k in ERRORS}
        return {
            "chats": len({t.chat for t in self.turns}),
            "turns": len(self.turns),
            "answered": self.count(lambda t: t.outcome in ("answer", "abstain")),
            "abstained": self.count(lambda t: t.outcome == "abstain"),
            "clear_errors": sum(by_kind.values()),
            "errors_by_kind": by_kind,
            "failures": self.count(lambda t: t.outcome == "failure"),
            "unexpected_outcomes": self.count(lambda t: t.outcome != t.expect),
            "p50_latency_s": pct(lat, 50),
            "p95_latency_s": pct(lat, 95),
            "max_latency_s": round(max(lat), 2) if lat else 0.0,
            "wall_s": round(self.wall_s, 2),
        }


def classify(turn: Turn, result: Any) -> None:
    """Set turn.outcome from the final /ask output (chat, sources, _, export, answer)."""
    chat, _sources, _, _, answer = result[:5]  # then the sidebar, chips and note
    reply = text(chat[-1]) if chat else ""
    turn.error = answer.get("error")
    if "Traceback" in reply or "Something went wrong" in reply:
        turn.detail = f"unexpected failure shown: {reply[:200]}"
    elif answer.get("error"):
        kinds = [k for k, message in ERRORS.items() if message in answer["error"]]
        if reply.startswith("⚠") and len(kinds) == 1 and ERRORS[kinds[0]] in unescape(reply):
            turn.outcome = kinds[0]
        else:
            turn.detail = f"unclear error: {reply[:200]}"
    elif answer.get("abstained"):
        said = "does not cover" in reply or "nothing to follow up" in reply
        turn.outcome = "abstain" if said else "failure"
        turn.detail = "" if turn.outcome == "abstain" else f"abstained without saying so: {reply}"
    # An error reply starts with "⚠"; the claim check's inline flags ("⚠ [1] does not
    # state ...", on the scripted reply the abstracts do not support) are part of an answer.
    elif answer.get("citations") and 'href="#src-1"' in reply and not reply.startswith("⚠"):
        turn.outcome = "answer"
    else:
        turn.detail = f"neither an answer nor an error: {reply[:200]}"


def run_chat(url: str, i: int, question: str, plan: ChatPlan) -> list[Turn]:
    turns = [Turn(i, 1, question, plan.expect1), Turn(i, 2, FOLLOW_UP, plan.expect2)]
    try:
        c = client(url)
    except Exception as e:  # noqa: BLE001 — recorded as a failure of both turns
        for t in turns:
            t.detail = f"could not connect: {type(e).__name__}: {e}"
        return turns
    for turn in turns:
        t0 = time.perf_counter()
        try:
            job = c.submit(turn.question, 6, "llm", 0.1, api_name="/ask")
            result = job.result(timeout=TURN_BOUND_S)
        except Exception as e:  # noqa: BLE001 — a stuck or failed turn
            turn.detail = f"{type(e).__name__}: {e}"[:300]
        else:
            classify(turn, result)
        turn.latency_s = time.perf_counter() - t0
    return turns


def run_load(url: str, server: PlannedServer, plans: list[ChatPlan] = PLANS) -> LoadResult:
    """All chats at once, one thread each; returns every turn's outcome and latency."""
    result = LoadResult()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(plans)) as pool:
        futures = [pool.submit(run_chat, url, i, q, plan)
                   for i, (q, plan) in enumerate(zip(server.chat_questions, plans, strict=True))]
        for future in futures:
            result.turns.extend(future.result(timeout=RUN_BOUND_S))
    result.wall_s = time.perf_counter() - t0
    for turn in result.turns:
        turn.attempts = server.attempts.get((turn.chat, f"turn{turn.turn}"), 0)
    return result


def fresh_turn(url: str) -> Turn:
    """A new session's question after the load (the server's default reply answers it)."""
    turn = Turn(-1, 1, FRESH_QUESTION, "answer")
    t0 = time.perf_counter()
    try:
        classify(turn, client(url).submit(FRESH_QUESTION, 6, "llm", 0.1, api_name="/ask")
                 .result(timeout=TURN_BOUND_S))
    except Exception as e:  # noqa: BLE001
        turn.detail = f"{type(e).__name__}: {e}"[:300]
    turn.latency_s = time.perf_counter() - t0
    return turn


def queue_size(url: str) -> int:
    with urllib.request.urlopen(url + "gradio_api/queue/status", timeout=10) as r:
        return int(json.load(r)["queue_size"])


def llm_settings(settings, server: ScriptedOpenAIServer):
    return settings.model_copy(update={
        "llm_base_url": server.base_url, "llm_api_key": SecretStr("test-key"),
        "answer_mode": "llm", "llm_timeout_s": LLM_TIMEOUT_S,
        "llm_max_retries": LLM_MAX_RETRIES,
    })


def expected_attempts(faults: tuple[str, ...], expect: str) -> int:
    if expect == "abstain":
        return 0  # no LLM call at all
    if "cut" in faults:
        return faults.index("cut") + 1
    return min(len(faults) + 1, LLM_MAX_RETRIES + 1)


# --- the test ---------------------------------------------------------------------------------
