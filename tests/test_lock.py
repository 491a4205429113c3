"""One writer at a time: a second ingest fails fast and clearly; readers keep working.

A real `assistant ingest` subprocess writes a large corpus into a data dir that already
holds a small index. While it holds the ingest lock (it has acknowledged a batch):

* a second `assistant ingest` subprocess exits non-zero within the lock wait plus start-up,
  saying another ingest holds the lock — it never hangs;
* an in-process `ingest(lock_wait_s=1)` raises IndexBusy after ~1 s;
* readers work: `assistant search --json` (a subprocess) and, in this process,
  `Services.answerer.answer(...)` and a plain search.

The writer is then SIGKILLed: its lock goes with it, and the next ingest gets it at once.
`lock_scenario` is what bench/reliability.py runs.
"""

from __future__ import annotations

import json

import pytest

from tests.support.lock import (
    CLI_MARGIN_S,
    QUESTION,
    lock_scenario,
)


@pytest.mark.slow
def test_one_writer_at_a_time_readers_keep_working(tmp_path, embedder, small_corpus):
    facts = lock_scenario(tmp_path, embedder, small_corpus, QUESTION)
    print("\nlock:", json.dumps(facts, indent=1))
    wait = facts["lock_wait_s"]

    assert facts["cli_second_ingest_exit"] != 0
    message = facts["cli_second_ingest_message"]
    assert "Another ingest is writing to" in message and "lock" in message, message
    assert "Traceback" not in message
    assert wait - 0.5 <= facts["cli_second_ingest_s"] <= wait + CLI_MARGIN_S

    assert 1.0 <= facts["in_process_wait_s"] <= 1.0 + 0.5
    assert "Another ingest" in facts["in_process_message"]

    assert facts["cli_search_exit"] == 0 and facts["cli_search_hits"] == 3
    assert facts["in_process_answer_ok"] and facts["in_process_search_hits"] == 3
    assert facts["writer_still_running"], "the writer finished: the readers did not overlap it"
