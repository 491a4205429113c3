"""assistant.llm against a real scripted OpenAI-compatible HTTP server (no mocks)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from assistant.errors import LLMError
from assistant.llm import LLM, EmbeddingClient, Generation
from assistant.settings import Settings
from tests.support.openai_server import FOREVER, Reply, ScriptedOpenAIServer, split_pieces

KEY = "sk-test-0123456789abcdef"
MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What does Marconi cache?"}]
TEXT = "Marconi caches prefixes of hybrid LLM requests [1]."


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as srv:
        yield srv


def settings_for(base_url: str, **overrides) -> Settings:
    values = dict(data_dir=Path("unused"), llm_base_url=base_url, llm_api_key=SecretStr(KEY),
                  llm_model="test-model", llm_timeout_s=2, llm_max_retries=1)
    return Settings(_env_file=None, **(values | overrides))


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def run(llm: LLM) -> tuple[list[str], Generation]:
    gen = Generation()
    return list(llm.stream(MESSAGES, gen)), gen


def assert_clean(error: LLMError) -> None:
    message = str(error)
    assert message.strip() and "\n" not in message
    assert KEY not in message and "Traceback" not in message


def test_stream_yields_deltas_and_fills_generation(server):
    server.queue(Reply(text=TEXT, usage=(120, 9)))
    deltas, gen = run(LLM(settings_for(server.base_url)))
    assert deltas == split_pieces(TEXT)
    assert len(deltas) > 3
    assert gen.text == TEXT and "".join(deltas) == gen.text
    assert gen.usage is not None
    assert (gen.usage.prompt_tokens, gen.usage.completion_tokens, gen.usage.total_tokens) == (
        120, 9, 129)
    assert gen.first_token_ms is not None and 0 < gen.first_token_ms <= gen.total_ms
    assert gen.attempts == 1


def test_request_carries_model_key_messages_and_streaming(server):
    server.queue(Reply(text=TEXT))
    run(LLM(settings_for(server.base_url, temperature=0.3, max_tokens=123)))
    (request,) = server.chat_requests()
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 123
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        (m["role"], m["content"]) for m in MESSAGES]


def test_complete_and_check(server):
    server.queue(Reply(text="The answer."), Reply(text="OK"))
    llm = LLM(settings_for(server.base_url))
    assert llm.complete(MESSAGES).text == "The answer."
    status = llm.check()
    assert "OK" in status and "test-model" in status and server.base_url in status


def test_no_key_sends_a_placeholder(server):
    server.queue(Reply(text=TEXT))
    run(LLM(settings_for(server.base_url, llm_api_key=None)))
    assert server.chat_requests()[0]["headers"]["Authorization"] == "Bearer no-key"


@pytest.mark.parametrize(
    ("fault", "kind", "words", "requests"),
    [
        ("401", "auth", "401", 1),
        ("404", "model", "test-model", 1),
        ("429", "rate_limit", "429", 2),
        ("500", "server", "HTTP 500", 2),
        ("503", "server", "HTTP 503", 2),
        ("cut", "cut", "cut off", 1),
        ("empty", "empty", "empty answer", 1),
        ("malformed", "malformed", "not a valid OpenAI", 1),
        ("disconnect", "unreachable", "Cannot reach", 2),
    ],
)
def test_faults_become_one_line_llm_errors(server, fault, kind, words, requests):
    server.queue(Reply(text=TEXT, fault=fault, repeat=FOREVER))
    with pytest.raises(LLMError) as info:
        run(LLM(settings_for(server.base_url)))
    assert info.value.kind == kind
    assert words in str(info.value)
    assert_clean(info.value)
    assert len(server.chat_requests()) == requests


def test_timeout_is_bounded_and_explained(server):
    server.queue(Reply(text=TEXT, fault="timeout", delay_s=5, repeat=FOREVER))
    t0 = time.perf_counter()
    with pytest.raises(LLMError) as info:
        run(LLM(settings_for(server.base_url, llm_timeout_s=0.3, llm_max_retries=1)))
    elapsed = time.perf_counter() - t0
    assert info.value.kind == "timeout"
    assert "0.3 s" in str(info.value) and "2 attempts" in str(info.value)
    assert_clean(info.value)
    assert elapsed < 8.0  # the server would hang 5 s per request
    assert server.wait_for_requests(2) and len(server.chat_requests()) == 2


def test_unreachable_endpoint():
    url = closed_port_url()
    with pytest.raises(LLMError) as info:
        run(LLM(settings_for(url, llm_max_retries=0)))
    assert info.value.kind == "unreachable"
    assert url in str(info.value)
    assert_clean(info.value)


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_retries_are_bounded(server, retries):
    server.retry_after_ms = 10  # keep the back-off short
    server.queue(Reply(fault="429", repeat=FOREVER))
    with pytest.raises(LLMError) as info:
        run(LLM(settings_for(server.base_url, llm_max_retries=retries)))
    assert len(server.chat_requests()) == retries + 1
    assert info.value.kind == "rate_limit"


def test_transient_failure_then_success(server):
    server.retry_after_ms = 10
    server.queue(Reply(fault="503"), Reply(text=TEXT))
    deltas, gen = run(LLM(settings_for(server.base_url, llm_max_retries=1)))
    assert "".join(deltas) == TEXT
    assert gen.attempts == 2
    assert len(server.chat_requests()) == 2


def test_client_errors_are_not_retried(server):
    server.queue(Reply(fault="401", repeat=FOREVER))
    with pytest.raises(LLMError):
        run(LLM(settings_for(server.base_url, llm_max_retries=3)))
    assert len(server.chat_requests()) == 1


def test_cut_after_text_is_not_retried(server):
    """Text already streamed would be repeated by a retry: the cut is reported instead."""
    server.queue(Reply(text="one two three four five six seven eight", fault="cut"),
                 Reply(text="should never be requested"))
    gen = Generation()
    seen = []
    with pytest.raises(LLMError) as info:
        for delta in LLM(settings_for(server.base_url, llm_max_retries=2)).stream(MESSAGES, gen):
            seen.append(delta)
    assert info.value.kind == "cut"
    assert seen and "".join(seen) == gen.text
    assert len(server.chat_requests()) == 1


def test_wrong_key_message_does_not_echo_the_key(server):
    server.expected_api_key = "the-right-key"
    with pytest.raises(LLMError) as info:
        run(LLM(settings_for(server.base_url)))
    assert info.value.kind == "auth"
    assert_clean(info.value)
    assert "the-right-key" not in str(info.value)


def test_embedding_client(server):
    client = EmbeddingClient(settings_for(server.base_url, embed_model="embed-test"))
    vectors = client.embed(["prefix caching", "sourdough bread", "prefix caching"])
    assert len(vectors) == 3 and all(len(v) == 16 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    request = server.requests[-1]
    assert request["path"].endswith("/embeddings") and request["body"]["model"] == "embed-test"


def test_embedding_client_failure_is_explained():
    url = closed_port_url()
    client = EmbeddingClient(settings_for(url, llm_max_retries=0, embed_model="embed-test"))
    with pytest.raises(LLMError) as info:
        client.embed(["x"])
    assert info.value.kind == "embeddings"
    assert "embed-test" in str(info.value)
    assert_clean(info.value)
