"""The LLM answering path, end to end: real seed index, real MiniLM, real openai client and
llama-index talking HTTP to the scripted OpenAI-compatible server."""

from __future__ import annotations

import re
import socket

import pytest
from pydantic import SecretStr

from assistant import prompts
from assistant.answer import Answerer
from assistant.citations import MARKER, markers
from assistant.llm import LLM
from assistant.prompts import ABSTAIN_PHRASE
from tests.support.openai_server import FOREVER, Reply, ScriptedOpenAIServer

pytestmark = pytest.mark.slow

MARCONI = "Marconi: Prefix Caching for the Era of Hybrid LLMs"
QUESTION = "that paper about prefix caching for hybrid LLMs with state space layers"
REPLY = ("Marconi supports efficient prefix caching for hybrid LLMs with recurrent layers [1]. "
         "Another retrieved paper targets memory-efficient training of LLMs [2].")
FAULTS = ["401", "404", "429", "500", "503", "timeout", "cut", "empty", "malformed",
          "disconnect"]


@pytest.fixture(scope="module")
def server():
    with ScriptedOpenAIServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def fresh_server(server):
    server.reset()
    server.retry_after_ms = 10  # short back-off between retries
    server.expected_api_key = None
    yield server
    server.reset()


@pytest.fixture
def make(seed_settings, seed_services, server):
    def build(**overrides) -> Answerer:
        settings = seed_settings.model_copy(update={
            "llm_base_url": server.base_url, "llm_api_key": SecretStr("test-key"),
            "llm_model": "test-model", "llm_timeout_s": 2, "llm_max_retries": 1,
            "answer_mode": "llm", **overrides})
        return Answerer(seed_services.retriever, settings, llm_factory=lambda: LLM(settings))

    return build


@pytest.fixture(scope="module")
def first_turn(seed_settings, seed_services):
    """One successful LLM answer about Marconi, computed once (its own server)."""
    with ScriptedOpenAIServer() as srv:
        settings = seed_settings.model_copy(update={
            "llm_base_url": srv.base_url, "llm_api_key": SecretStr("test-key"),
            "llm_model": "test-model", "llm_max_retries": 0, "answer_mode": "llm"})
        srv.queue(Reply(text=REPLY, chunk_delay_s=0.002, usage=(1000, 25)))
        answerer = Answerer(seed_services.retriever, settings,
                            llm_factory=lambda: LLM(settings))
        events = list(answerer.stream(QUESTION))
        return events, srv.chat_requests()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def assert_fine(answer) -> None:
    """A normal, successful answer to QUESTION."""
    assert answer.error is None, answer.error
    assert answer.sources and answer.sources[0].title == MARCONI
    assert [c.n for c in answer.citations] == [1, 2]


# --- what is sent ---------------------------------------------------------------------------


def test_request_contains_prompt_sources_question_and_credentials(first_turn):
    events, requests = first_turn
    assert len(requests) == 1
    request = requests[0]
    assert request["headers"]["Authorization"] == "Bearer test-key"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["stream"] is True
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert system["content"] == prompts.load("system").render(abstain_phrase=ABSTAIN_PHRASE)
    assert ABSTAIN_PHRASE in system["content"] and ABSTAIN_PHRASE in user["content"]
    assert f"Question: {QUESTION}" in user["content"]

    sources = events[0].data
    assert len(sources) == 6
    assert re.findall(r'<source n="(\d+)"', user["content"]) == [str(s.n) for s in sources]
    assert user["content"].count("</source>") == len(sources)
    assert user["content"].count("<sources>") == 1 and user["content"].count("</sources>") == 1
    for s in sources:
        title = prompts.fence(s.title).replace('"', "'")
        block = f'<source n="{s.n}" title="{title}">\n{prompts.fence(s.abstract)}\n</source>'
        assert block in user["content"]
    assert f'<source n="1" title="{MARCONI}">' in user["content"]
    assert "34.4times higher token hit rates" in user["content"]  # Marconi's real abstract


def test_tokens_stream_in_order_before_the_answer(first_turn):
    events, _ = first_turn
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "answer"
    assert set(kinds[1:-1]) == {"token"}
    tokens = [e.data for e in events if e.kind == "token"]
    assert len(tokens) >= 5
    assert "".join(tokens) == REPLY


def test_usage_timings_mode_and_model_are_recorded(first_turn):
    events, _ = first_turn
    answer = events[-1].data
    assert answer.mode == "llm" and answer.model == "test-model"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (1000, 25)
    assert answer.usage.total_tokens == 1025
    timings = answer.timings_ms
    assert 0 < timings["first_token_ms"] <= timings["generate_ms"] <= timings["total_ms"]
    assert timings["retrieve_ms"] > 0
    assert answer.standalone_query == QUESTION


def test_citations_map_to_the_real_papers_of_sources_1_and_2(first_turn):
    events, _ = first_turn
    answer = events[-1].data
    sources = answer.sources
    assert sources == events[0].data
    assert_fine(answer)
    assert [(c.n, c.paper_id, c.title) for c in answer.citations] == [
        (s.n, s.paper_id, s.title) for s in sources[:2]]
    assert answer.citations[0].title == MARCONI
    assert answer.answer == REPLY
    assert [s.cited for s in sources] == [True, True, False, False, False, False]
    assert sources[0].quotes, "a cited source gets its supporting sentences"
    for s in sources:
        assert all(q in s.abstract for q in s.quotes)
    assert not any(s.quotes for s in sources[2:])
    assert answer.removed_citations == [] and answer.flagged_sentences == []
    assert answer.error is None and not answer.abstained


# --- what comes back ------------------------------------------------------------------------


def test_citation_outside_the_sources_is_removed_and_reported(make, server):
    server.queue(Reply(text="Marconi caches prefixes of hybrid models [1][9]. "
                            "It beats prior caching systems by far [9]."))
    answer = make().answer(QUESTION)
    assert len(answer.sources) == 6
    assert answer.removed_citations == [9, 9]
    assert "[9]" not in answer.answer
    assert answer.answer == ("Marconi caches prefixes of hybrid models [1]. "
                             "It beats prior caching systems by far.")
    assert [c.n for c in answer.citations] == [1]
    assert answer.flagged_sentences == ["It beats prior caching systems by far."]
    valid = {s.n for s in answer.sources}
    assert set(markers(answer.answer)) <= valid


def test_exact_abstain_phrase_abstains(make, server):
    server.queue(Reply(text=ABSTAIN_PHRASE))
    answer = make().answer(QUESTION)
    assert answer.abstained is True
    assert answer.citations == []
    assert answer.answer.startswith(ABSTAIN_PHRASE)
    assert "Closest matches" in answer.answer
    assert not MARKER.search(answer.answer)
    assert answer.sources and not any(s.cited for s in answer.sources)
    assert answer.error is None


def test_reply_without_citations_is_flagged(make, server):
    server.queue(Reply(text="Marconi is a system for caching prefixes in hybrid models."))
    answer = make().answer(QUESTION)
    assert answer.citations == []
    assert answer.flagged_sentences == [
        "Marconi is a system for caching prefixes in hybrid models."]


# --- failures -------------------------------------------------------------------------------


def _fails_cleanly(answer) -> None:
    assert answer.error
    assert "\n" not in answer.error and "Traceback" not in answer.error
    assert "test-key" not in answer.error and "test-key" not in answer.answer
    assert answer.answer.startswith("⚠ ")
    assert answer.error in answer.answer
    assert len(answer.sources) == 6 and answer.sources[0].title == MARCONI
    assert f"[1] {MARCONI}" in answer.answer  # the retrieved papers are still listed
    assert answer.citations == []


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_gives_an_error_answer_and_the_next_question_works(make, server, fault):
    server.queue(Reply(text=REPLY, fault=fault, delay_s=3 if fault == "timeout" else 0,
                       repeat=FOREVER))
    answerer = make(llm_timeout_s=0.4 if fault == "timeout" else 2)
    answer = answerer.answer(QUESTION)
    _fails_cleanly(answer)
    assert answer.mode == "llm"

    server.reset()
    server.queue(Reply(text=REPLY))
    assert_fine(answerer.answer(QUESTION))
    assert len(server.chat_requests()) == 1


def test_unreachable_endpoint_gives_an_error_answer(make):
    answer = make(llm_base_url=closed_port_url(), llm_max_retries=0).answer(QUESTION)
    _fails_cleanly(answer)
    assert "Cannot reach" in answer.error


def test_rejected_key_is_not_echoed(make, server):
    server.expected_api_key = "another-key"
    answer = make().answer(QUESTION)
    _fails_cleanly(answer)
    assert "401" in answer.error


def test_rate_limit_retries_are_bounded(make, server):
    server.queue(Reply(fault="429", repeat=FOREVER))
    answer = make(llm_max_retries=1).answer(QUESTION)
    assert "429" in answer.error
    assert len(server.chat_requests()) == 2


def test_llm_mode_without_an_endpoint_says_how_to_configure_one(seed_settings, seed_services,
                                                                server):
    settings = seed_settings.model_copy(update={
        "llm_base_url": None, "llm_api_key": None, "answer_mode": "llm"})
    answer = Answerer(seed_services.retriever, settings,
                      llm_factory=lambda: LLM(settings)).answer(QUESTION)
    assert answer.mode == "llm"
    assert "No LLM endpoint is configured" in answer.error
    assert "OPENAI_BASE_URL" in answer.error and "--mode extractive" in answer.error
    assert answer.sources and answer.sources[0].title == MARCONI
    assert server.requests == []


def test_mode_argument_overrides_the_setting(make, server):
    answer = make().answer(QUESTION, mode="extractive")
    assert answer.mode == "extractive" and answer.model is None
    assert server.requests == []
    assert answer.citations and answer.citations[0].title == MARCONI


# --- follow-ups -----------------------------------------------------------------------------

FOLLOW_UP = "what hit rate improvement did it report?"
STANDALONE = "What token hit rate improvement does Marconi report over prefix caching systems?"


def test_follow_up_is_condensed_by_the_llm(make, server, first_turn):
    history = [first_turn[0][-1].data]
    server.queue(Reply(text=f'"{STANDALONE}"\n'),
                 Reply(text="Marconi reports up to 34.4 times higher token hit rates [1]."))
    answer = make().answer(FOLLOW_UP, history=history)

    condense, generate = server.chat_requests()
    prompt = condense["body"]["messages"][-1]["content"]
    assert prompt == prompts.load("condense").render(
        history=f"User: {QUESTION}\nAssistant: {REPLY}\n"
                f"(Cited: [1] {MARCONI}; [2] {history[0].citations[1].title})",
        question=FOLLOW_UP)
    assert "Rewrite the follow-up question" in prompt
    assert answer.standalone_query == STANDALONE  # quotes and trailing lines stripped
    assert "condense_llm_ms" in answer.timings_ms
    # The answer prompt carries the standalone question, so "it" is resolvable.
    assert f"Question: {STANDALONE}" in generate["body"]["messages"][-1]["content"]
    assert answer.error is None
    assert answer.sources[0].title == MARCONI
    assert [c.title for c in answer.citations] == [MARCONI]
    assert "34.4" in answer.answer


def test_failed_condense_falls_back_to_the_rule_based_query(make, server, first_turn):
    history = [first_turn[0][-1].data]
    server.queue(Reply(fault="404"),
                 Reply(text="Marconi reports up to 34.4 times higher token hit rates [1]."))
    answer = make().answer(FOLLOW_UP, history=history)
    assert len(server.chat_requests()) == 2
    assert answer.error is None
    assert answer.standalone_query.startswith(FOLLOW_UP) and MARCONI in answer.standalone_query
    assert answer.sources[0].title == MARCONI
    assert [c.title for c in answer.citations] == [MARCONI]


def test_a_generated_answer_also_says_which_of_the_questions_figures_its_paper_lacks(
        make, server):
    """The premise check runs after generation too (the stream's last event): a question
    asking about 70% MFU, answered from a paper that reports 55.2%, says so."""
    server.queue(Reply(text="MegaScale trains a 175B model on 12,288 GPUs [1]."))
    events = list(make().stream("Which paper reaches 70% MFU training a 175B model on 12,288 "
                                "GPUs?"))
    final = events[-1].data
    assert final.citations[0].title.startswith("MegaScale")
    assert final.unstated == ["70%"]
