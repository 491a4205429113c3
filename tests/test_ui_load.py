"""Endpoint faults under load: 20 concurrent chats (a question and a follow-up each) through
the real Gradio app in LLM mode, driven over loopback with gradio_client, while the scripted
OpenAI-compatible server answers with a planned mix of normal streamed replies, 429s, 500s,
timeouts (a reply held longer than `llm_timeout_s`) and cut streams.

Each chat asks its own covered question (golden lookups), so the server can tell the chats
apart by the prompt and give every (chat, turn) its own fault script: the outcome of every
turn is known in advance (an answer, an abstention, or a named error), including the retry
that recovers from a single 429/500/timeout. Checked: every turn ends within TURN_BOUND_S
with that outcome — an answer with citations or a one-line inline error (never a traceback,
never the "something went wrong" path) —, attempts stay bounded by llm_max_retries, no job
is left in the queue, and the app answers a fresh question afterwards.

The same run is the benchmark bench/ui_load.py (figures: turns, answered, clear errors,
failures, p50/p95 latency).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from tests.support.ui_load import (
    CHATS,
    CLEAR_ERROR,
    ERRORS,
    LLM_MAX_RETRIES,
    PLANS,
    RUN_BOUND_S,
    TURN_BOUND_S,
    PlannedServer,
    expected_attempts,
    fresh_turn,
    llm_settings,
    questions,
    queue_size,
    run_load,
    serve,
)

pytestmark = pytest.mark.slow

def test_twenty_chats_under_endpoint_faults(seed_settings, seed_services, embedder):
    from assistant.services import Services

    with PlannedServer(questions(), PLANS) as server:
        settings = llm_settings(seed_settings, server)
        services = Services(settings)
        services.__dict__["embedder"] = embedder
        services.__dict__["index"] = seed_services.index  # same data dir: share the index
        with serve(settings, services) as url:
            result = run_load(url, server)
            summary = result.summary()
            print("\nui load:", json.dumps(summary))

            assert summary["turns"] == 2 * CHATS
            problems = [asdict(t) for t in result.turns
                        if t.outcome == "failure" or t.outcome != t.expect]
            assert not problems, json.dumps(problems, indent=1)
            for t in result.turns:
                assert t.latency_s < TURN_BOUND_S, t
                if t.outcome in ERRORS:  # the one-line message the user reads
                    assert CLEAR_ERROR.search(t.error or ""), t
            assert result.wall_s < RUN_BOUND_S
            # Every fault kind surfaced, and the recoverable ones were recovered by a retry.
            assert all(summary["errors_by_kind"][k] >= 2 for k in ERRORS), summary
            assert summary["answered"] - summary["abstained"] >= 12, summary
            # Attempts are bounded: llm_max_retries + 1 per call, one for a cut stream.
            for t in result.turns:
                plan = PLANS[t.chat]
                if t.turn == 2 and plan.condense:
                    continue  # asked in its rule-based rewrite: the server cannot name the chat
                faults, expect = (plan.turn1, plan.expect1) if t.turn == 1 else (
                    plan.turn2, plan.expect2)
                assert t.attempts == expected_attempts(faults, expect), t
            assert server.attempts[(19, "condense")] == LLM_MAX_RETRIES + 1

            # No session stuck: the queue drained; the app still answers.
            assert queue_size(url) == 0
            after = fresh_turn(url)
            assert after.outcome == "answer", after
