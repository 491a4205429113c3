"""Serving the Gradio app in tests and benchmarks: a free port, the app launched in-process,
a gradio_client, the text of a chat message, a stub answerer (no index), and a launched stub
app for raw HTTP requests. Shared by the UI tests and bench/ui_load.py."""

from __future__ import annotations

import contextlib
import http.client
import socket
from collections.abc import Iterator

from gradio_client import Client

from assistant.answer import Event
from assistant.settings import Settings
from assistant.types import Answer, Citation, Source
from ui.app import build_app, launch_options

USER, PASSWORD = "alice", "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(settings: Settings, services, auth: str | None = None) -> Iterator[str]:
    demo = build_app(settings, services)
    port = free_port()
    options = launch_options(settings, port=port, auth=auth)
    demo.launch(prevent_thread_lock=True, quiet=True, **options)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def client(url: str, **kwargs) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, **kwargs)


def text(message: dict) -> str:
    """A chat message's text (Gradio 6 returns content as a list of parts)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


class StubIndex:
    def stats(self) -> dict:
        return {"papers": 1, "chunks": 1, "embedding_model": "stub"}


class StubAnswerer:
    """Answers with one cited source; a question containing 'boom' raises mid-stream."""

    def stream(self, question, history=None, mode=None, k=None):
        src = Source(n=1, paper_id="p1", title="A Stub Paper", score=0.8,
                     abstract="Stubs stand in for real papers. They are cheap.")
        yield Event("sources", [src])
        if "boom" in question:
            raise RuntimeError("stub exploded")
        yield Event("token", "Stubs stand in for papers [1].")
        cited = src.model_copy(update={"cited": True,
                                       "quotes": ["Stubs stand in for real papers."]})
        yield Event("answer", Answer(
            question=question, answer="Stubs stand in for papers [1].", mode="extractive",
            citations=[Citation(n=1, paper_id="p1", title=src.title)], sources=[cited],
            timings_ms={"total_ms": 5.0}))


class StubServices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.answerer = StubAnswerer()
        self.index = StubIndex()


class App:
    """A launched app: base URL, port, the Blocks and its FastAPI app."""

    def __init__(self, settings: Settings, auth: str | None = None) -> None:
        self.demo = build_app(settings, StubServices(settings))
        self.port = free_port()
        self.demo.launch(prevent_thread_lock=True, quiet=True,
                         **launch_options(settings, port=self.port, auth=auth))
        self.url = f"http://127.0.0.1:{self.port}"

    def raw(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, timeout: float = 10.0
            ) -> tuple[int, dict[str, str], bytes]:
        """One request with `path` sent exactly as given (http.client does not normalise)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.demo.close()
