"""Endpoint faults under load (issue: reliability and security, item 5).

20 concurrent chats (a question and a follow-up each) through the real Gradio app in LLM mode
over loopback (gradio_client), against the scripted OpenAI-compatible server injecting 429s,
500s, timeouts and cut streams by plan. The scenario is tests/test_ui_load.py's own code
(same plans, same classification), so the figures and the test measure the same thing:

- turns, answered (answers + abstentions), clear errors (one-line inline messages, by kind),
  failures (a turn stuck past the bound, a traceback, an unclear message), turns whose
  outcome differed from the plan;
- latency per turn (submit to final output): p50 / p95 / max, and the run's wall time;
- after the load: jobs left in the queue, and whether a fresh question is answered.

Usage: .venv/bin/python bench/ui_load.py [--data-dir DIR]   (default: index seeds/ in a
temporary dir first, ~30 s; DIR must hold an index of seeds/ to be reused)
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, write  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, help="an existing index of seeds/ to reuse")
    args = ap.parse_args()
    logging.disable(logging.WARNING)  # the app logs every injected fault; figures only

    from assistant.embeddings import make_embedder
    from assistant.index import Index, ingest
    from assistant.services import Services
    from assistant.settings import Settings
    from tests.support.ui_load import (
        CHATS,
        LLM_MAX_RETRIES,
        LLM_TIMEOUT_S,
        PLANS,
        TURN_BOUND_S,
        PlannedServer,
        fresh_turn,
        llm_settings,
        questions,
        queue_size,
        run_load,
        serve,
    )

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="bench-ui-load-")
        data_dir = Path(tmp) / "data"
    base = Settings(_env_file=None, data_dir=data_dir, corpus_paths=[ROOT / "seeds"])
    embedder = make_embedder(base)
    if args.data_dir is None:
        t0 = time.perf_counter()
        report = ingest(base, [ROOT / "seeds"], embedder, progress=False)
        print(f"indexed seeds/ ({report.papers} papers) in {time.perf_counter() - t0:.0f} s")
    else:
        index = Index.open(base)
        print(f"reusing the index in {data_dir} ({index.stats()['papers']} papers)")
        index.close()

    try:
        with PlannedServer(questions(), PLANS) as server:
            settings = llm_settings(base, server)
            services = Services(settings, embedder=embedder)
            with serve(settings, services) as url:
                result = run_load(url, server)
                left = queue_size(url)
                after = fresh_turn(url)
            services.index.close()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    s = result.summary()
    print(f"\n{s['chats']} concurrent chats x 2 turns, LLM timeout {LLM_TIMEOUT_S:g} s, "
          f"{LLM_MAX_RETRIES} retry, UI concurrency {settings.ui_concurrency}")
    print(f"turns            {s['turns']}")
    print(f"answered         {s['answered']} (of which abstained: {s['abstained']})")
    print(f"clear errors     {s['clear_errors']} {json.dumps(s['errors_by_kind'])}")
    print(f"failures         {s['failures']}")
    print(f"off-plan turns   {s['unexpected_outcomes']}")
    print(f"latency          p50 {s['p50_latency_s']} s, p95 {s['p95_latency_s']} s, "
          f"max {s['max_latency_s']} s (bound {TURN_BOUND_S:g} s); wall {s['wall_s']} s")
    print(f"after the load   queue {left} job(s); fresh question: {after.outcome} "
          f"in {after.latency_s:.2f} s")
    for t in result.turns:
        if t.outcome == "failure" or t.outcome != t.expect:
            print(f"  chat {t.chat} turn {t.turn}: expected {t.expect}, got {t.outcome} "
                  f"{t.detail}")

    write("ui_load", {
        "config": {"chats": CHATS, "turns_per_chat": 2, "llm_timeout_s": LLM_TIMEOUT_S,
                   "llm_max_retries": LLM_MAX_RETRIES,
                   "ui_concurrency": settings.ui_concurrency, "turn_bound_s": TURN_BOUND_S,
                   "plans": [asdict(p) for p in PLANS]},
        **s,
        "queue_after_load": left,
        "fresh_question_after_load": {"outcome": after.outcome,
                                      "latency_s": round(after.latency_s, 2)},
        "turn_log": [{k: (round(v, 2) if isinstance(v, float) else v)
                      for k, v in asdict(t).items() if k != "question"}
                     for t in result.turns],
    })


if __name__ == "__main__":
    main()
