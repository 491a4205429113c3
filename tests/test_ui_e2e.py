"""The Gradio app served for real (in-process, random local port) and driven over HTTP with
gradio_client, like any API user: extractive answers over the seeds index, follow-ups,
abstention, an LLM-mode app against the scripted OpenAI-compatible server (streaming, a
500 fault shown inline, recovery), unexpected exceptions, and the login."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from gradio_client import Client
from pydantic import SecretStr

from assistant.settings import Settings
from tests.support.openai_server import Reply, ScriptedOpenAIServer
from tests.support.ui import StubServices, client, free_port, serve, text  # noqa: F401
from ui.app import launch_options

pytestmark = pytest.mark.slow


Q_MEMORY = "Which optimizers reduce memory use when training large language models?"
Q_FOLLOW = "What does the second paper propose?"
Q_OFF = "What is the best recipe for sourdough bread?"


def ask(c: Client, question: str, mode: str = "extractive", k: int = 6):
    """Submit /ask; returns (every streamed output, final output). Only the first five
    outputs (chat, sources, question box, export, answer JSON); the sidebar list, the
    follow-up chips and the feedback note that follow are tested in the browser."""
    job = c.submit(question, k, mode, 0.1, api_name="/ask")
    updates = list(job)
    return updates, job.result()[:5]


# --- extractive app over the real seeds index ---------------------------------------------


@pytest.fixture(scope="module")
def app_url(seed_settings, seed_services):
    with serve(seed_settings, seed_services) as url:
        yield url


def test_extractive_answer_with_citations_follow_up_and_new_chat(app_url):
    c = client(app_url)
    updates, (chat, sources, _, export, answer) = ask(c, Q_MEMORY)
    assert len(updates) >= 3  # streamed: question, sources, lines of the answer, final
    assert answer["mode"] == "extractive" and not answer["error"] and not answer["abstained"]
    cited = [s for s in answer["sources"] if s["cited"]]
    assert answer["citations"] and cited
    assert [m["role"] for m in chat] == ["user", "assistant"]
    reply = text(chat[1])
    assert '<a class="cite" href="#src-1"' in reply
    assert '<small class="facts">extractive' in reply
    assert 'class="src-card is-cited" id="src-1"' in sources and "<mark>" in sources
    if len(cited) < len(answer["sources"]):
        assert "Also retrieved" in sources
    exported = Path(export).read_text(encoding="utf-8")
    assert Q_MEMORY in exported and "**References**" in exported
    assert cited[0]["title"].split(":")[0] in exported

    # The follow-up is resolved against this session's conversation.
    second = answer["citations"][1]["title"]  # "the second paper": the second one cited
    _, (chat, sources, _, export, follow) = ask(c, Q_FOLLOW)
    assert len(chat) == 4
    assert second in follow["standalone_query"]
    assert [s["title"] for s in follow["sources"] if s["cited"]] == [second]
    assert Path(export).read_text(encoding="utf-8").count("**References**") == 2

    # Another browser session does not see it; "New chat" forgets it.
    assert client(app_url).predict(Q_FOLLOW, 6, "extractive", 0.1, api_name="/ask")[4][
        "abstained"]
    cleared = c.predict(api_name="/new_chat")
    assert cleared[0] == [] and "Ask a question" in cleared[1]
    _, (chat, *_, alone) = ask(c, Q_FOLLOW)
    assert len(chat) == 2 and alone["abstained"]


def test_off_corpus_question_abstains_with_closest_matches(app_url):
    _, (chat, sources, _, _, answer) = ask(client(app_url), Q_OFF)
    assert answer["abstained"] and not answer["citations"]
    assert "does not cover" in text(chat[-1])
    assert "Closest matches" in sources and "Also retrieved" not in sources
    assert 'id="src-1"' in sources


def test_connection_test_without_endpoint_says_so(app_url, seed_settings):
    status = client(app_url).predict(api_name="/test_connection")
    if seed_settings.llm_configured:  # an OPENAI_* variable in the environment
        assert status.startswith(("✅", "❌"))
    else:
        assert "no LLM endpoint is configured" in status


# --- LLM mode against the scripted server ---------------------------------------------------


@pytest.fixture(scope="module")
def llm_server():
    with ScriptedOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def llm_app_url(llm_server, seed_settings, seed_services, embedder):
    from assistant.services import Services

    settings = seed_settings.model_copy(update={
        "llm_base_url": llm_server.base_url, "llm_api_key": SecretStr("test-key"),
        "answer_mode": "llm", "llm_max_retries": 1, "llm_timeout_s": 10.0,
    })
    services = Services(settings)
    services.__dict__["embedder"] = embedder
    services.__dict__["index"] = seed_services.index  # same data dir: share the open index
    with serve(settings, services) as url:
        yield url


LLM_TEXT = ("Several optimizers shrink optimizer state to save memory [1]. Others trade "
            "memory for communication [2]. One claim cites nothing real [9].")


def test_llm_answer_streams_tokens(llm_app_url, llm_server):
    llm_server.reset()
    llm_server.queue(Reply(text=LLM_TEXT, chunk_delay_s=0.03, usage=(900, 40)))
    updates, (chat, sources, _, _, answer) = ask(client(llm_app_url), Q_MEMORY, mode="auto")
    partial = [text(u[0][-1]) for u in updates if u[0] and u[0][-1]["role"] == "assistant"]
    growing = [p for p in partial if p.endswith("▍")]
    assert len(growing) >= 3 and len(set(growing)) >= 3  # the bubble grew token by token
    assert answer["mode"] == "llm" and not answer["error"]
    assert [c["n"] for c in answer["citations"]] == [1, 2]
    assert answer["removed_citations"] == [9]
    reply = text(chat[-1])
    assert 'href="#src-1"' in reply and 'href="#src-2"' in reply and "#src-9" not in reply
    assert "▍" not in reply
    facts = html.unescape(reply.split('<small class="facts">')[1])
    assert facts.startswith("LLM · gpt-4o-mini") and "940 tokens (900 in, 40 out)" in facts
    assert "$" not in facts  # a local endpoint: no cost estimate
    assert "removed invalid citation [9]" in facts
    request = llm_server.chat_requests()[-1]["body"]
    assert request["stream"] is True
    assert Q_MEMORY in request["messages"][-1]["content"]
    assert 'id="src-2"' in sources


def test_llm_fault_is_shown_inline_and_the_app_recovers(llm_app_url, llm_server):
    llm_server.reset()
    llm_server.queue(Reply(fault="500", repeat=2))  # first try + the one retry
    c = client(llm_app_url)
    _, (chat, sources, _, _, failed) = ask(c, Q_MEMORY, mode="llm")
    assert failed["error"] and "HTTP 500" in failed["error"]
    reply = text(chat[-1])
    assert reply.startswith("⚠") and "HTTP 500" in reply
    assert "Retrieved papers" in sources  # the papers found are still shown
    assert "Traceback" not in reply

    llm_server.queue(Reply(text="Optimizer states can be compressed [1]."))
    _, (chat, _, _, _, ok) = ask(c, Q_MEMORY, mode="llm")
    assert not ok["error"] and [x["n"] for x in ok["citations"]] == [1]
    assert len(chat) == 4 and text(chat[1]).startswith("⚠")  # the failed turn stays visible


def test_connection_test_against_scripted_server(llm_app_url, llm_server):
    llm_server.reset()
    llm_server.queue(Reply(text="OK"))
    status = client(llm_app_url).predict(api_name="/test_connection")
    assert status.startswith("✅") and "gpt-4o-mini" in status
    llm_server.queue(Reply(fault="404"))
    status = client(llm_app_url).predict(api_name="/test_connection")
    assert status.startswith("❌") and "404" in status


# --- unexpected exceptions and login (a stub answerer, no index) ----------------------------


@pytest.fixture(scope="module")
def stub_settings(tmp_path_factory) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("stub"),
                    answer_mode="extractive")


def test_unexpected_exception_becomes_an_inline_message(stub_settings):
    with serve(stub_settings, StubServices(stub_settings)) as url:
        c = client(url)
        _, (chat, sources, _, _, failed) = ask(c, "Does this go boom?")
        reply = text(chat[-1])
        assert reply.startswith("⚠ Something went wrong") and "stub exploded" in reply
        assert failed["error"] and 'id="src-1"' in sources
        _, (chat, _, _, _, ok) = ask(c, "And now?")
        assert not ok["error"] and len(chat) == 4 and 'href="#src-1"' in text(chat[-1])


def test_login_required_when_auth_is_set(stub_settings):
    with serve(stub_settings, StubServices(stub_settings), auth="alice:s3cret") as url:
        with pytest.raises(Exception):  # noqa: B017 — any refusal will do
            client(url).predict("q?", 6, "extractive", 0.1, api_name="/ask")
        ok = client(url, auth=("alice", "s3cret")).predict("q?", 6, "extractive", 0.1,
                                                           api_name="/ask")
        assert ok[4]["citations"][0]["title"] == "A Stub Paper"


def test_launch_options_are_safe_by_default(stub_settings):
    options = launch_options(stub_settings)
    assert options["server_name"] == "127.0.0.1" and options["share"] is False
    assert options["auth"] is None and options["allowed_paths"] == []
    assert str(Path(stub_settings.data_dir).resolve()) in options["blocked_paths"]
    custom = launch_options(stub_settings, host="0.0.0.0", port=9999, auth="u:p")
    assert (custom["server_name"], custom["server_port"], custom["auth"]) == \
        ("0.0.0.0", 9999, ("u", "p"))
    with pytest.raises(ValueError):
        launch_options(stub_settings, auth="no-colon")


# --- ensure_index (what `assistant ui` runs first) --------------------------------------------


def test_ensure_index_ingests_once(make_settings, small_corpus, embedder, tmp_path):
    from assistant.ingest import ensure_index
    from assistant.services import Services

    settings = make_settings(tmp_path / "data").model_copy(
        update={"corpus_paths": [small_corpus]})
    progress: list[tuple[int, int]] = []
    said: list[str] = []
    assert ensure_index(settings, lambda: embedder,
                        lambda done, total: progress.append((done, total)), log=said.append)
    assert progress and progress[-1] == (7, 7)
    assert any("ingesting" in line for line in said)
    services = Services(settings, embedder=embedder)
    assert services.index.stats()["papers"] == 7
    # Already there: nothing to do, and the embedder is not even built.
    assert not ensure_index(settings, lambda: 1 / 0, None, log=said.append)
    services.index.close()
