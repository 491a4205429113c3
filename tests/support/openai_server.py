"""A scripted, OpenAI-compatible HTTP server for tests, benchmarks and UI runs.

Standard library only. It speaks just enough of the OpenAI REST API for the real ``openai``
client and llama-index's ``OpenAILike`` to work against it unmodified:

* ``POST /v1/chat/completions`` -- plain JSON or SSE streaming (``stream=true``), with
  ``stream_options.include_usage`` support;
* ``POST /v1/embeddings`` -- deterministic hashed bag-of-words vectors (float or base64);
* ``GET /v1/models`` (and ``/v1/models/{id}``).

Replies to chat requests are scripted with :class:`Reply` objects queued FIFO on the server;
when the queue is empty ``default_reply`` answers. A reply can also inject a fault (HTTP
errors, a hanging response, a cut stream, a malformed body, a dropped connection).

Usage::

    with ScriptedOpenAIServer() as server:
        server.queue(Reply(text="Hello there"), Reply(fault="429", repeat=2))
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        ...
        assert server.requests[0]["headers"]["Authorization"] == "Bearer test"

Standalone (for benchmarks / manual UI runs)::

    python -m tests.support.openai_server --port 8123 [--echo] [--chunk-delay 0.02]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_TEXT",
    "FAULTS",
    "Headers",
    "Reply",
    "ScriptedOpenAIServer",
    "echo_last_user",
    "embed_text",
    "split_pieces",
]

DEFAULT_TEXT = "I cannot answer from the provided sources."
DEFAULT_MODEL = "test-model"
# How long a ``fault="timeout"`` reply hangs when it has no explicit ``delay_s``.
TIMEOUT_FAULT_DELAY_S = 30.0
FAULTS = frozenset(
    {"401", "404", "429", "500", "503", "timeout", "cut", "empty", "malformed", "disconnect"}
)
FOREVER = 10**9  # a ``repeat`` that never runs out


@dataclass
class Reply:
    """One scripted answer to ``/chat/completions`` requests.

    ``responder(body) -> str`` (optional) computes the text from the parsed request body and
    wins over ``text``. ``repeat`` is how many requests this reply answers before the next
    queued one takes over (``FOREVER`` for always).
    """

    text: str = ""
    fault: str | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    usage: tuple[int, int] | None = None
    repeat: int = 1
    responder: Callable[[dict[str, Any]], str] | None = None

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; expected one of {sorted(FAULTS)}")
        if self.repeat < 1:
            raise ValueError("repeat must be >= 1")


class Headers(dict):
    """A plain ``dict`` of request headers whose lookups ignore case.

    Keys are stored lower-cased; ``h["Authorization"]`` and ``h["authorization"]`` agree.
    """

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        for key, value in dict(items).items():
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


# --------------------------------------------------------------------------------------------
# helpers (public: tests use them to compute expectations)
# --------------------------------------------------------------------------------------------

_PIECE_RE = re.compile(r"\S{1,8}\s*|\s+")
_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def split_pieces(text: str) -> list[str]:
    """The streamed content deltas for ``text``: a word (at most 8 chars) plus its trailing
    whitespace each. ``"".join(split_pieces(t)) == t`` always holds."""
    return _PIECE_RE.findall(text)


def _count_words(text: str) -> int:
    return len(text.split())


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def echo_last_user(body: dict[str, Any]) -> str:
    """A responder that answers with the content of the last user message."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message.get("content"))
    return DEFAULT_TEXT


def embed_text(text: str, dim: int = 16) -> list[float]:
    """Deterministic, L2-normalised hashed bag-of-words vector of ``text``.

    Texts sharing words get a positive cosine similarity; the same text always gets the
    same vector (across processes: it uses blake2b, not ``hash``).
    """
    vec = [0.0] * dim
    tokens = _TOKEN_RE.findall(text.lower())
    for token in tokens:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        sign = 1.0 if (value >> 63) & 1 else -1.0
        vec[value % dim] += sign
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # no tokens (or they cancelled out): a fixed unit vector
        vec = [0.0] * dim
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]


def _error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: ScriptedOpenAIServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or self.owner._stopping.is_set():
            return  # clients hanging up (timeouts, disconnect faults) are expected
        super().handle_error(request, client_address)


class ScriptedOpenAIServer:
    """A real HTTP server on ``host:port`` (``port=0``: a free port) serving scripted replies.

    Attributes:
        base_url: ``http://HOST:PORT/v1`` (valid after ``start()``).
        requests: log of every request, in arrival order: ``{"path", "method", "headers",
            "body"}`` where ``headers`` is a case-insensitive :class:`Headers` dict and
            ``body`` the parsed JSON (``None`` if absent or not JSON).
        default_reply: answers chat requests when the queue is empty.
        expected_api_key: when set, requests without ``Authorization: Bearer <it>`` get 401.
        embedding_dim: dimension of ``/embeddings`` vectors (default 16).
        retry_after_ms: if set, 429 replies also carry ``retry-after-ms`` (the openai client
            then waits that long instead of its own ~0.5 s, 1 s, ... backoff, because it
            ignores ``retry-after: 0``).
        models_seen: model names requested so far (listed by ``GET /models``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.default_reply: Reply = Reply(text=DEFAULT_TEXT)
        self.expected_api_key: str | None = None
        self.embedding_dim: int = 16
        self.retry_after_ms: int | None = None
        self.models_seen: list[str] = []
        self._queue: deque[list[Any]] = deque()  # [Reply, remaining uses]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def url(self) -> str:
        """The server root, without ``/v1``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ScriptedOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"scripted-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving. Never hangs: sleeping replies wake up, open connections are shut."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ScriptedOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if needed) and block until KeyboardInterrupt (standalone use)."""
        if self._httpd is None:
            self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # --- scripting ----------------------------------------------------------------------

    def queue(self, *replies: Reply) -> None:
        """Append replies to the FIFO answering ``/chat/completions``."""
        with self._lock:
            for reply in replies:
                self._queue.append([reply, reply.repeat])

    def reset(self) -> None:
        """Forget queued replies and the request log (``default_reply`` is kept)."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.models_seen.clear()

    @property
    def pending(self) -> int:
        """How many more requests the queued replies will answer."""
        with self._lock:
            return sum(remaining for _, remaining in self._queue)

    def chat_requests(self) -> list[dict[str, Any]]:
        """The logged ``/chat/completions`` requests."""
        with self._lock:
            return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``n`` requests were logged."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= n:
                return True
            time.sleep(0.01)
        return len(self.requests) >= n

    # --- internals used by the handler ----------------------------------------------------

    def _next_reply(self) -> Reply:
        with self._lock:
            if not self._queue:
                return self.default_reply
            entry = self._queue[0]
            entry[1] -= 1
            if entry[1] <= 0:
                self._queue.popleft()
            return entry[0]

    def _log(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def _see_model(self, model: str) -> None:
        with self._lock:
            if model not in self.models_seen:
                self.models_seen.append(model)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _AbortError(Exception):
    """Raised inside the handler to drop the connection without a (complete) response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked streaming: like real servers
    server_version = "ScriptedOpenAI/1.0"
    disable_nagle_algorithm = True  # every SSE event leaves at once (time-to-first-token)
    server: _HTTPServer

    # --- plumbing -----------------------------------------------------------------------

    @property
    def owner(self) -> ScriptedOpenAIServer:
        return self.server.owner

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, True)

    def finish(self) -> None:
        self.owner._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: the request log is the record

    def _read_body(self) -> tuple[bytes, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw:
            return raw, None
        try:
            return raw, json.loads(raw)
        except ValueError:
            return raw, None

    def _send_json(
        self, status: int, payload: Any, extra_headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _abort(self) -> None:
        """Close the connection at once (FIN, no further bytes)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _AbortError

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.owner._stopping.wait(seconds):
            self._abort()  # server stopping: give up on this request

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        raw, body = self._read_body() if method == "POST" else (b"", None)
        self.owner._log(
            {
                "path": path,
                "method": method,
                "headers": Headers(self.headers.items()),
                "body": body,
            }
        )
        route = path[3:] if path.startswith("/v1/") else path
        route = route.rstrip("/") or "/"
        try:
            if not self._authorized():
                self._send_json(
                    401,
                    _error_body(
                        "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
                    ),
                )
            elif method == "POST" and route == "/chat/completions":
                self._chat(body if isinstance(body, dict) else None, raw)
            elif method == "POST" and route == "/embeddings":
                self._embeddings(body if isinstance(body, dict) else None)
            elif method == "GET" and route == "/models":
                self._models()
            elif method == "GET" and route.startswith("/models/"):
                self._model(route[len("/models/") :])
            else:
                self._send_json(
                    404,
                    _error_body(
                        f"Unknown request URL: {method} {path}.",
                        "invalid_request_error",
                        "unknown_url",
                    ),
                )
        except _AbortError:
            self.close_connection = True
        except OSError:  # the client went away (e.g. it timed out): nothing to answer
            self.close_connection = True

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def _authorized(self) -> bool:
        expected = self.owner.expected_api_key
        if expected is None:
            return True
        return self.headers.get("Authorization", "") == f"Bearer {expected}"

    # --- endpoints ------------------------------------------------------------------------

    def _models(self) -> None:
        with self.owner._lock:
            names = list(self.owner.models_seen)
        if DEFAULT_MODEL not in names:
            names.append(DEFAULT_MODEL)
        self._send_json(200, {"object": "list", "data": [self._model_obj(name) for name in names]})

    def _model(self, name: str) -> None:
        self._send_json(200, self._model_obj(name))

    @staticmethod
    def _model_obj(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": "scripted"}

    def _embeddings(self, body: dict[str, Any] | None) -> None:
        if body is None or "input" not in body:
            self._send_json(
                400,
                _error_body(
                    "'input' is a required property", "invalid_request_error", None, "input"
                ),
            )
            return
        model = str(body.get("model") or DEFAULT_MODEL)
        self.owner._see_model(model)
        inputs = body["input"]
        if isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], int)
        ):
            inputs = [inputs]  # one string, or one pre-tokenised text
        dim = int(body.get("dimensions") or self.owner.embedding_dim)
        b64 = body.get("encoding_format") == "base64"
        data, n_tokens = [], 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            n_tokens += len(_TOKEN_RE.findall(text))
            vector: Any = embed_text(text, dim)
            if b64:
                vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode("ascii")
            data.append({"object": "embedding", "index": index, "embedding": vector})
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
            },
        )

    def _chat(self, body: dict[str, Any] | None, raw: bytes) -> None:
        if body is None:
            self._send_json(
                400,
                _error_body(
                    "We could not parse the JSON body of your request.",
                    "invalid_request_error",
                    None,
                ),
            )
            return
        reply = self.owner._next_reply()
        model = str(body.get("model") or DEFAULT_MODEL)
        self.owner._see_model(model)
        stream = bool(body.get("stream"))
        fault = reply.fault

        delay = reply.delay_s
        if fault == "timeout" and delay <= 0:
            delay = TIMEOUT_FAULT_DELAY_S
        self._sleep(delay)

        if fault == "disconnect":
            self._abort()
        if fault == "401":
            self._send_json(
                401,
                _error_body(
                    "Incorrect API key provided", "invalid_request_error", "invalid_api_key"
                ),
            )
            return
        if fault == "404":
            self._send_json(
                404,
                _error_body(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
            return
        if fault == "429":
            self._send_json(
                429,
                _error_body(
                    f"Rate limit reached for {model}. Please try again in 0s.",
                    "requests",
                    "rate_limit_exceeded",
                ),
                self._retry_headers(),
            )
            return
        if fault in ("500", "503"):
            message = (
                "The server had an error while processing your request. Sorry about that!"
                if fault == "500"
                else "The engine is currently overloaded, please try again later."
            )
            self._send_json(int(fault), _error_body(message, "server_error", None))
            return

        text = "" if fault == "empty" else self._reply_text(reply, body)
        if reply.usage is not None:
            prompt_tokens, completion_tokens = reply.usage
        else:
            prompt_tokens = sum(
                _count_words(_message_text(m.get("content")))
                for m in body.get("messages") or []
                if isinstance(m, dict)
            )
            completion_tokens = _count_words(text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._stream(reply, text, usage, include_usage, completion_id, created, model)
        else:
            self._complete(reply, text, usage, completion_id, created, model)

    def _retry_headers(self) -> dict[str, str]:
        headers = {"retry-after": "0"}
        if self.owner.retry_after_ms is not None:
            headers["retry-after-ms"] = str(self.owner.retry_after_ms)
        return headers

    def _reply_text(self, reply: Reply, body: dict[str, Any]) -> str:
        if reply.responder is not None:
            return str(reply.responder(body))
        return reply.text

    def _complete(
        self, reply: Reply, text: str, usage: dict, completion_id: str, created: int, model: str
    ) -> None:
        payload = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        if reply.fault == "malformed":
            data = b'{"id": "chatcmpl-broken", "choices": [ this is not json'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if reply.fault == "cut":
            data = json.dumps(payload).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))  # promises the whole body...
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])  # ...delivers half
            self._abort()
        self._send_json(200, payload)

    def _stream(
        self,
        reply: Reply,
        text: str,
        usage: dict,
        include_usage: bool,
        completion_id: str,
        created: int,
        model: str,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(delta: dict, finish: str | None = None) -> dict[str, Any]:
            event: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                event["usage"] = None
            return event

        def send(data: str) -> None:
            payload = f"data: {data}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()

        pieces = split_pieces(text)
        if reply.fault == "cut":
            pieces = pieces[: max(1, len(pieces) // 2)] if pieces else []

        send(json.dumps(chunk({"role": "assistant", "content": ""})))
        if reply.fault == "malformed":
            send('{"id": "chatcmpl-broken", "choices": [ {not json')
            self._end_chunked()
            return
        for i, piece in enumerate(pieces):
            if i and reply.chunk_delay_s > 0:
                self._sleep(reply.chunk_delay_s)
            send(json.dumps(chunk({"content": piece})))
        if reply.fault == "cut":
            self._abort()  # no finish chunk, no [DONE], no chunked terminator
        send(json.dumps(chunk({}, "stop")))
        if include_usage:
            final = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [],
                "usage": usage,
            }
            send(json.dumps(final))
        send("[DONE]")
        self._end_chunked()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------------------------
# standalone
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.openai_server",
        description="Serve a scripted OpenAI-compatible API (chat, embeddings, models).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the default reply text")
    parser.add_argument(
        "--echo", action="store_true", help="reply with the last user message instead"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks"
    )
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--embedding-dim", type=int, default=16)
    args = parser.parse_args(argv)

    server = ScriptedOpenAIServer(args.host, args.port)
    server.default_reply = Reply(
        text=args.text,
        delay_s=args.delay,
        chunk_delay_s=args.chunk_delay,
        responder=echo_last_user if args.echo else None,
    )
    server.expected_api_key = args.api_key
    server.embedding_dim = args.embedding_dim
    server.start()
    print(f"serving OpenAI-compatible API at {server.base_url}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
