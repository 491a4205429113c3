"""The only module that talks to an LLM endpoint (and the only one importing openai).

OpenAI itself, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio) through
llama-index's OpenAILike, built in one place (chat_model). One retry policy: the openai
client's own (settings.llm_max_retries retries of 429, 5xx, timeouts and refused connections,
with back-off that honours Retry-After); llama-index's retry decorator stays off, since
stacked retries multiply attempts. A stream that already showed text is never retried.
Failures become LLMError with one line saying what failed and what to do — never the raw
error text, which may echo part of an API key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai

from assistant.errors import LLMError
from assistant.redact import display_url  # noqa: F401  (also imported from here)
from assistant.settings import Settings
from assistant.types import Usage

OPENAI_URL = "https://api.openai.com/v1"


@dataclass
class Generation:
    """Filled in while a stream is consumed."""

    text: str = ""
    usage: Usage | None = None
    first_token_ms: float | None = None
    total_ms: float = 0.0
    attempts: int = 0  # HTTP requests made for it (the openai client's retries included)


def check_url(url: str, variable: str) -> str:
    """`url` if it is an http(s) URL with a host; LLMError naming `variable` otherwise."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 — raises on a port that is not a number
    except ValueError as e:
        ok, why = False, str(e)
    else:
        why = "expected http(s)://host[:port]/path"
    if not ok:
        raise LLMError(f"{variable} is not a valid URL: {display_url(url)!r} ({why}). "
                       "Example: http://127.0.0.1:11434/v1", "config")
    return url


def chat_model(settings: Settings, *, temperature: float | None = None,
               max_tokens: int | None = None, **kwargs: Any):
    """The OpenAI-compatible chat model of the settings (llama-index OpenAILike), for answers
    and the eval judge alike. Retries: the openai client's, settings.llm_max_retries."""
    from llama_index.llms.openai_like import OpenAILike

    class ClientRetries(OpenAILike):
        """max_retries=0 keeps llama-index's retry decorator off; the openai client it builds
        gets the configured retries instead."""

        def _get_credential_kwargs(self, is_async: bool = False) -> dict[str, Any]:
            return {**super()._get_credential_kwargs(is_async),
                    "max_retries": settings.llm_max_retries}

    key = settings.llm_api_key
    base_url = settings.llm_base_url or OPENAI_URL
    if settings.llm_base_url:
        check_url(base_url, "OPENAI_BASE_URL")
    return ClientRetries(
        model=settings.llm_model, api_base=base_url,
        # Local servers accept any key; the openai client insists on one.
        api_key=key.get_secret_value() if key else "no-key",
        is_chat_model=True, context_window=32768,
        temperature=settings.temperature if temperature is None else temperature,
        max_tokens=settings.max_tokens if max_tokens is None else max_tokens,
        timeout=settings.llm_timeout_s, max_retries=0, **kwargs,
    )


class LLM:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = settings.llm_base_url or OPENAI_URL
        self.model = settings.llm_model
        self._llm: Any = None
        # HTTP requests per thread (an httpx event hook): how many attempts a stream took.
        self._requests = threading.local()

    def _count_request(self, request: httpx.Request) -> None:
        self._requests.n = getattr(self._requests, "n", 0) + 1

    def _attempts(self) -> int:
        # A UI worker may resume this generator on another thread than the one that started
        # it; that thread has counted nothing (the figure is then a lower bound).
        return getattr(self._requests, "n", 0)

    def _client(self):
        if self._llm is None:
            self._llm = chat_model(
                self.settings, http_client=httpx.Client(
                    timeout=self.settings.llm_timeout_s,
                    event_hooks={"request": [self._count_request]}),
                additional_kwargs={"stream_options": {"include_usage": True}})
        return self._llm

    # --- public ------------------------------------------------------------------------

    def stream(self, messages: list[dict[str, str]], gen: Generation) -> Iterator[str]:
        """Yield text deltas; `gen` holds the full text, usage and timings at the end."""
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        t0 = time.perf_counter()
        client = self._client()  # a malformed URL: LLMError, before any request
        self._requests.n = 0
        try:
            # The openai client retries the request (429, 5xx, timeouts, refused
            # connections); once the stream delivers text, a failure is reported, not retried.
            for response in client.stream_chat(chat):
                counts = response.additional_kwargs or {}
                if counts.get("total_tokens"):
                    gen.usage = Usage(
                        prompt_tokens=counts.get("prompt_tokens", 0),
                        completion_tokens=counts.get("completion_tokens", 0),
                        total_tokens=counts.get("total_tokens", 0),
                    )
                if response.delta:
                    if gen.first_token_ms is None:
                        gen.first_token_ms = (time.perf_counter() - t0) * 1000
                    gen.text += response.delta
                    yield response.delta
        except Exception as error:  # noqa: BLE001 — every failure is mapped below
            gen.attempts = max(1, self._attempts())
            raise self._explain(error, gen) from None
        gen.attempts = max(1, self._attempts())
        gen.total_ms = (time.perf_counter() - t0) * 1000
        if not gen.text.strip():
            raise LLMError(
                f"The model '{self.model}' returned an empty answer. Ask again, or try another "
                "model (ASSISTANT_LLM_MODEL) or --mode extractive.", "empty")

    def complete(self, messages: list[dict[str, str]]) -> Generation:
        gen = Generation()
        for _ in self.stream(messages, gen):
            pass
        return gen

    def check(self) -> str:
        """One tiny request; returns a one-line status or raises LLMError."""
        gen = self.complete([{"role": "user", "content": "Reply with the word OK."}])
        return (f"{display_url(self.base_url)} answers with model '{self.model}' "
                f"in {gen.total_ms:.0f} ms: {gen.text.strip()[:40]!r}")

    # --- errors ------------------------------------------------------------------------

    def _explain(self, error: Exception, gen: Generation) -> LLMError:
        where = f"the LLM endpoint {display_url(self.base_url)}"
        tries = f" after {gen.attempts} attempt{'s' if gen.attempts > 1 else ''}"
        fallback = "or answer without it: --mode extractive"
        if isinstance(error, openai.APITimeoutError):
            return LLMError(
                f"{where} did not answer within {self.settings.llm_timeout_s:g} s{tries}. "
                f"Try again, raise ASSISTANT_LLM_TIMEOUT_S, {fallback}.", "timeout")
        if isinstance(error, openai.APIConnectionError):
            return LLMError(
                f"Cannot reach {where}{tries}. Is the server running? Check OPENAI_BASE_URL, "
                f"{fallback}.", "unreachable")
        if isinstance(error, openai.AuthenticationError):
            return LLMError(
                f"{where} rejected the API key (401). Check OPENAI_API_KEY.", "auth")
        if isinstance(error, openai.PermissionDeniedError):
            return LLMError(f"{where} refused access (403). Check the key's permissions.",
                            "auth")
        if isinstance(error, openai.NotFoundError):
            return LLMError(
                f"{where} does not serve model '{self.model}' (404). Set ASSISTANT_LLM_MODEL "
                "to a model it serves.", "model")
        if isinstance(error, openai.RateLimitError):
            return LLMError(
                f"{where} is rate limiting requests (429){tries}. Wait a moment and ask again.",
                "rate_limit")
        if isinstance(error, openai.APIStatusError):
            return LLMError(
                f"{where} failed with HTTP {error.status_code}{tries}. Try again later, "
                f"{fallback}.", "server")
        if isinstance(error, (httpx.HTTPError, ConnectionError)):
            return LLMError(
                f"The answer stream from {where} was cut off mid-way. Ask again, {fallback}.",
                "cut")
        if isinstance(error, (json.JSONDecodeError, ValueError, KeyError, TypeError)):
            return LLMError(
                f"{where} sent a reply that is not a valid OpenAI chat completion. Check that "
                "OPENAI_BASE_URL points at an OpenAI-compatible /v1 API.", "malformed")
        return LLMError(f"{where} failed ({type(error).__name__}). {fallback}.", "error")


class EmbeddingClient:
    """OpenAI-compatible /embeddings, for embed_backend=openai."""

    def __init__(self, settings: Settings) -> None:
        key = settings.llm_api_key
        self.model = settings.embed_model
        self.base_url = settings.embed_base_url or settings.llm_base_url or OPENAI_URL
        check_url(self.base_url, "ASSISTANT_EMBED_BASE_URL" if settings.embed_base_url
                  else "OPENAI_BASE_URL")
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=key.get_secret_value() if key else "no-key",
            timeout=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        where = f"The embeddings endpoint {display_url(self.base_url)}"
        try:
            response = self._client.embeddings.create(model=self.model, input=texts)
        except openai.APIError as error:
            status = getattr(error, "status_code", None)
            raise LLMError(
                f"{where} failed{f' with HTTP {status}' if status else ''} for model "
                f"'{self.model}'. Check ASSISTANT_EMBED_BASE_URL and ASSISTANT_EMBED_MODEL.",
                "embeddings") from None
        except httpx.HTTPError as error:  # a URL httpx rejects
            raise LLMError(f"{where} could not be used ({type(error).__name__}). Check "
                           "ASSISTANT_EMBED_BASE_URL.", "embeddings") from None
        except (AttributeError, TypeError, ValueError, KeyError):
            # A server answering 200 with something else (an HTML page: a wrong path or a
            # proxy's login page): the client gets a str where it expects an object.
            response = None
        try:
            rows = [list(map(float, d.embedding))
                    for d in sorted(response.data,  # type: ignore[union-attr]
                                    key=lambda d: d.index)]
        except (AttributeError, TypeError, ValueError):
            rows = []
        if len(rows) != len(texts) or not all(rows):
            raise LLMError(
                f"{where} answered, but not with embeddings (an HTML page or another API?). "
                "ASSISTANT_EMBED_BASE_URL should be the OpenAI-compatible base URL, "
                "usually ending in /v1.", "embeddings")
        return rows
