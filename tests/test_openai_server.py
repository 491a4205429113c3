"""The scripted OpenAI-compatible server, proven against the real ``openai`` client and
llama-index's ``OpenAILike`` over real HTTP (no mocks)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai_like import OpenAILike

from tests.support.openai_server import (
    DEFAULT_TEXT,
    FOREVER,
    Reply,
    ScriptedOpenAIServer,
    echo_last_user,
    embed_text,
    split_pieces,
)

TEXT = "Transformers replace recurrence with self-attention over all tokens."
MESSAGES = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": "What do transformers replace?"},
]
PROMPT_WORDS = 4 + 4  # words in MESSAGES (the server's default usage count)


@pytest.fixture
def server():
    with ScriptedOpenAIServer() as srv:
        yield srv


def make_client(server: ScriptedOpenAIServer, **kwargs) -> openai.OpenAI:
    options = {"api_key": "test", "max_retries": 0, "timeout": 5.0} | kwargs
    return openai.OpenAI(base_url=server.base_url, **options)


def chat(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(model="test-model", messages=MESSAGES, **kwargs)


# --- plain completions --------------------------------------------------------------------


def test_non_stream_text_and_usage(server):
    server.queue(Reply(text=TEXT))
    result = chat(make_client(server))
    assert result.object == "chat.completion"
    assert result.model == "test-model"
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].message.content == TEXT
    assert result.choices[0].finish_reason == "stop"
    assert result.usage.prompt_tokens == PROMPT_WORDS
    assert result.usage.completion_tokens == len(TEXT.split())
    assert result.usage.total_tokens == PROMPT_WORDS + len(TEXT.split())


def test_model_is_echoed_and_explicit_usage(server):
    server.queue(Reply(text="ok", usage=(120, 30)))
    result = make_client(server).chat.completions.create(model="my-llm", messages=MESSAGES)
    assert result.model == "my-llm"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (120, 30)
    assert result.usage.total_tokens == 150


def test_default_reply_when_queue_is_empty(server):
    server.queue(Reply(text="first"))
    client = make_client(server)
    assert chat(client).choices[0].message.content == "first"
    assert chat(client).choices[0].message.content == DEFAULT_TEXT
    server.default_reply = Reply(text="changed default")
    assert chat(client).choices[0].message.content == "changed default"


def test_responder_computes_reply_from_request(server):
    server.queue(Reply(responder=echo_last_user), Reply(responder=lambda b: b["model"] * 2))
    client = make_client(server)
    assert chat(client).choices[0].message.content == "What do transformers replace?"
    assert chat(client).choices[0].message.content == "test-modeltest-model"


def test_request_log_records_messages_and_auth_header(server):
    chat(make_client(server), temperature=0.1)
    assert len(server.requests) == 1
    entry = server.requests[0]
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1/chat/completions"
    assert entry["body"]["messages"] == MESSAGES
    assert entry["body"]["temperature"] == 0.1
    # Headers are a case-insensitive dict.
    assert entry["headers"]["Authorization"] == "Bearer test"
    assert entry["headers"]["authorization"] == "Bearer test"


def test_reset_clears_queue_and_log(server):
    server.queue(Reply(text="never sent", repeat=5))
    chat(make_client(server))
    assert server.pending == 4
    server.reset()
    assert server.requests == [] and server.pending == 0
    assert chat(make_client(server)).choices[0].message.content == DEFAULT_TEXT


# --- streaming ----------------------------------------------------------------------------


def collect(stream) -> tuple[list, list[str]]:
    chunks = []
    pieces = []
    for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    return chunks, pieces


def test_stream_yields_pieces_in_order(server):
    server.queue(Reply(text=TEXT))
    chunks, pieces = collect(chat(make_client(server), stream=True))
    assert pieces == split_pieces(TEXT)
    assert len(pieces) > 5  # small pieces, not one blob
    assert "".join(pieces) == TEXT
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert all(c.usage is None for c in chunks)  # no usage unless asked for


def test_stream_include_usage_final_chunk(server):
    server.queue(Reply(text=TEXT))
    stream = chat(make_client(server), stream=True, stream_options={"include_usage": True})
    chunks, pieces = collect(stream)
    assert "".join(pieces) == TEXT
    final = chunks[-1]
    assert final.choices == []
    assert final.usage.prompt_tokens == PROMPT_WORDS
    assert final.usage.completion_tokens == len(TEXT.split())
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_split_pieces_roundtrip():
    for text in ["", "  lead and trail  ", "a\n\nb", "supercalifragilistic word", TEXT]:
        assert "".join(split_pieces(text)) == text
    assert all(len(p.strip()) <= 8 for p in split_pieces("supercalifragilistic"))


def test_delay_and_chunk_delay(server):
    server.queue(Reply(text="a b c d e", delay_s=0.3, chunk_delay_s=0.05))
    start = time.monotonic()
    stream = chat(make_client(server), stream=True)
    arrivals = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 5
    assert arrivals[0] >= 0.3  # time to first token includes delay_s
    assert arrivals[-1] - arrivals[0] >= 4 * 0.05 * 0.8  # 4 gaps of chunk_delay_s


# --- faults -------------------------------------------------------------------------------

STATUS_FAULTS = [
    ("401", openai.AuthenticationError, 401),
    ("404", openai.NotFoundError, 404),
    ("429", openai.RateLimitError, 429),
    ("500", openai.InternalServerError, 500),
    ("503", openai.InternalServerError, 503),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("fault", "exc_class", "status"), STATUS_FAULTS)
def test_status_faults_raise_matching_exception(server, fault, exc_class, status, stream):
    server.queue(Reply(text=TEXT, fault=fault))
    with pytest.raises(exc_class) as info:
        chat(make_client(server), stream=stream)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body["message"]
    if fault == "401":
        assert info.value.code == "invalid_api_key"
    if fault == "404":
        assert info.value.code == "model_not_found"
        assert "`test-model` does not exist" in info.value.message
    if fault == "429":
        assert info.value.code == "rate_limit_exceeded"
        assert info.value.response.headers["retry-after"] == "0"


@pytest.mark.parametrize("stream", [False, True])
def test_timeout_fault_raises_api_timeout_error(server, stream):
    server.queue(Reply(fault="timeout"))  # hangs ~30 s (or until stop())
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        chat(make_client(server, timeout=0.3), stream=stream)
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_fault_raises_api_connection_error(server, stream):
    server.queue(Reply(text=TEXT, fault="disconnect"))
    with pytest.raises(openai.APIConnectionError) as info:
        chat(make_client(server), stream=stream)
    assert type(info.value) is openai.APIConnectionError  # not the timeout subclass


def test_cut_stream_raises_during_iteration(server):
    # What actually happens: the server sends the role chunk and half of the content
    # deltas, then closes the socket mid chunked-encoding (no finish chunk, no [DONE]).
    # The openai client does NOT wrap errors raised while iterating a stream, so the raw
    # ``httpx.RemoteProtocolError`` ("incomplete chunked read") escapes the for-loop after
    # the delivered pieces were yielded.
    server.queue(Reply(text=TEXT, fault="cut"))
    stream = chat(make_client(server), stream=True)
    pieces, finishes = [], []
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        for chunk in stream:
            finishes.append(chunk.choices[0].finish_reason)
            if chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    expected = split_pieces(TEXT)
    assert pieces == expected[: len(expected) // 2]
    assert finishes == [None] * len(finishes)


def test_cut_non_stream_raises_api_connection_error(server):
    # Non-stream: Content-Length promises the full body, half arrives, then EOF; httpx
    # fails while reading the body inside the request, which openai wraps.
    server.queue(Reply(text=TEXT, fault="cut"))
    with pytest.raises(openai.APIConnectionError) as info:
        chat(make_client(server))
    assert type(info.value) is openai.APIConnectionError


def test_empty_fault(server):
    server.queue(Reply(text=TEXT, fault="empty"), Reply(text=TEXT, fault="empty"))
    client = make_client(server)
    result = chat(client)
    assert result.choices[0].message.content == ""
    assert result.choices[0].finish_reason == "stop"
    assert result.usage.completion_tokens == 0
    chunks, pieces = collect(chat(client, stream=True))
    assert pieces == []
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_malformed_fault(server):
    # 200 + Content-Type application/json + a body that is not JSON: the client's
    # ``response.json()`` raises json.JSONDecodeError (a ValueError), unwrapped.
    # Streaming: the bad ``data:`` event raises the same error while iterating.
    server.queue(Reply(text=TEXT, fault="malformed"), Reply(text=TEXT, fault="malformed"))
    client = make_client(server)
    with pytest.raises(json.JSONDecodeError):
        chat(client)
    stream = chat(client, stream=True)
    with pytest.raises(json.JSONDecodeError):
        for _ in stream:
            pass


def test_unknown_fault_is_rejected():
    with pytest.raises(ValueError, match="unknown fault"):
        Reply(fault="418")


# --- repeat and retries -------------------------------------------------------------------


def test_repeat_429_then_success_with_client_retries(server):
    server.queue(Reply(fault="429", repeat=2), Reply(text="finally"))
    result = chat(make_client(server, max_retries=2))  # client backs off ~0.5 s, ~1 s
    assert result.choices[0].message.content == "finally"
    assert len(server.requests) == 3
    assert all(r["body"]["messages"] == MESSAGES for r in server.requests)
    assert server.pending == 0


def test_repeat_429_exhausts_retries_and_retry_after_ms(server):
    server.retry_after_ms = 5  # fast retries
    server.queue(Reply(fault="429", repeat=FOREVER))
    start = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        chat(make_client(server, max_retries=3))
    assert time.monotonic() - start < 0.4
    assert len(server.requests) == 4


def test_expected_api_key(server):
    server.expected_api_key = "sk-right"
    server.queue(Reply(text="secret"))
    with pytest.raises(openai.AuthenticationError):
        chat(make_client(server, api_key="sk-wrong"))
    assert server.pending == 1  # a rejected request does not consume the script
    result = chat(make_client(server, api_key="sk-right"))
    assert result.choices[0].message.content == "secret"
    headers = [r["headers"]["authorization"] for r in server.requests]
    assert headers == ["Bearer sk-wrong", "Bearer sk-right"]


# --- embeddings and models ----------------------------------------------------------------


def test_embeddings_deterministic_and_normalised(server):
    client = make_client(server)
    texts = ["attention is all you need", "graph neural networks", "attention is all you need"]
    # The client asks for base64 by default and decodes float32; ask for floats as well.
    b64 = client.embeddings.create(model="embed-model", input=texts)
    floats = client.embeddings.create(model="embed-model", input=texts, encoding_format="float")
    vectors = [d.embedding for d in floats.data]
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert all(len(v) == 16 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert vectors[0] == pytest.approx(embed_text(texts[0]))
    assert [d.embedding for d in b64.data][1] == pytest.approx(vectors[1], abs=1e-6)
    for v in vectors:
        assert math.sqrt(sum(x * x for x in v)) == pytest.approx(1.0)
    assert floats.usage.prompt_tokens == 5 + 3 + 5
    assert floats.model == "embed-model"


def test_embeddings_single_string_and_dimension(server):
    server.embedding_dim = 32
    result = make_client(server).embeddings.create(model="e", input="hello world")
    assert len(result.data) == 1
    assert len(result.data[0].embedding) == 32
    assert result.data[0].embedding == pytest.approx(embed_text("hello world", 32), abs=1e-6)


def test_models_lists_seen_models(server):
    client = make_client(server)
    client.chat.completions.create(model="llama-3", messages=MESSAGES)
    ids = [m.id for m in client.models.list()]
    assert "test-model" in ids and "llama-3" in ids


# --- lifecycle ----------------------------------------------------------------------------


def test_stop_does_not_hang_on_sleeping_request():
    srv = ScriptedOpenAIServer().start()
    srv.queue(Reply(fault="timeout"))
    errors = []

    def call():
        try:
            chat(make_client(srv, timeout=20))
        except openai.APIError as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert srv.wait_for_requests(1)
    start = time.monotonic()
    srv.stop()
    worker.join(timeout=5)
    assert time.monotonic() - start < 2
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], openai.APIConnectionError)


def test_standalone_module_serves_echo():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.openai_server", "--port", "0", "--echo"],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving"), line
        base_url = line.split()[-1]
        client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=5)
        result = client.chat.completions.create(model="m", messages=MESSAGES)
        assert result.choices[0].message.content == "What do transformers replace?"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# --- llama-index OpenAILike -------------------------------------------------------------


def make_llm(server: ScriptedOpenAIServer, **kwargs) -> OpenAILike:
    options = {"timeout": 5.0, "max_retries": 0} | kwargs
    return OpenAILike(
        model="test-model",
        api_base=server.base_url,
        api_key="test",
        is_chat_model=True,
        **options,
    )


def test_llama_index_chat(server):
    server.queue(Reply(text=TEXT))
    response = make_llm(server).chat([ChatMessage(role="user", content="What is new?")])
    assert response.message.content == TEXT
    body = server.requests[0]["body"]
    assert body["model"] == "test-model"
    assert body["messages"][-1] == {"role": "user", "content": "What is new?"}
    assert server.requests[0]["headers"]["Authorization"] == "Bearer test"


def test_llama_index_stream_chat(server):
    server.queue(Reply(text=TEXT))
    stream = make_llm(server).stream_chat([ChatMessage(role="user", content="Stream it")])
    deltas = [r.delta for r in stream if r.delta]
    assert deltas == split_pieces(TEXT)
    assert server.requests[0]["body"]["stream"] is True


def test_llama_index_propagates_openai_errors(server):
    server.queue(Reply(fault="401"), Reply(fault="timeout"))
    llm = make_llm(server, timeout=0.3)
    with pytest.raises(openai.AuthenticationError):
        llm.chat([ChatMessage(role="user", content="hi")])
    with pytest.raises(openai.APITimeoutError):
        llm.chat([ChatMessage(role="user", content="hi")])
