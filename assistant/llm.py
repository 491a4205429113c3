"""The only module that talks to an LLM endpoint (and the only one importing openai).

OpenAI itself, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio) through
llama-index's OpenAILike. Retries are ours and bounded: llama-index's retry decorator and the
openai client's own retries are both switched off, since stacked they multiply attempts.
Failures become LLMError with one line saying what failed and what to do — never the raw
error text, which may echo part of an API key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    attempts: int = 0
    deltas: list[str] = field(default_factory=list)


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


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        try:
            if value is not None:
                return float(value) * scale
        except ValueError:
            pass
    return None


class LLM:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = settings.llm_base_url or OPENAI_URL
        self.model = settings.llm_model
        self._llm = None

    def _checked_url(self) -> str:
        if self.settings.llm_base_url:
            check_url(self.base_url, "OPENAI_BASE_URL")
        return self.base_url

    def _client(self):
        if self._llm is None:
            from llama_index.llms.openai_like import OpenAILike

            key = self.settings.llm_api_key
            self._llm = OpenAILike(
                model=self.model, api_base=self._checked_url(),
                # Local servers accept any key; the openai client insists on one.
                api_key=key.get_secret_value() if key else "no-key",
                is_chat_model=True, context_window=32768,
                temperature=self.settings.temperature, max_tokens=self.settings.max_tokens,
                timeout=self.settings.llm_timeout_s, max_retries=0,
                additional_kwargs={"stream_options": {"include_usage": True}},
            )
        return self._llm

    # --- public ------------------------------------------------------------------------

    def stream(self, messages: list[dict[str, str]], gen: Generation) -> Iterator[str]:
        """Yield text deltas; `gen` holds the full text, usage and timings at the end."""
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        t0 = time.perf_counter()
        for attempt in range(self.settings.llm_max_retries + 1):
            gen.attempts = attempt + 1
            client = self._client()  # a malformed URL: LLMError, not a retry
            try:
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
                        gen.deltas.append(response.delta)
                        yield response.delta
                break
            except Exception as error:  # noqa: BLE001 — every failure is mapped below
                # Once text was shown, retrying would repeat it: report the cut instead.
                retry = not gen.text and self._retryable(error)
                if retry and attempt < self.settings.llm_max_retries:
                    time.sleep(min(_retry_after(error) or 0.5 * 2**attempt, 8.0))
                    continue
                raise self._explain(error, gen) from None
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

    @staticmethod
    def _retryable(error: Exception) -> bool:
        if isinstance(error, openai.APIStatusError):
            return error.status_code == 429 or error.status_code >= 500
        return isinstance(error, (openai.APITimeoutError, openai.APIConnectionError))

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
