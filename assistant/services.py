"""Wiring: builds the components from one Settings, lazily, and hands them out explicitly.

The CLI, the UI and the evals each make one Services and pass it down; nothing is global.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from assistant.settings import Settings


class Services:
    """`Services(settings)` builds each component on first use; pass `embedder`, `index` or
    `llm` to use one that exists already (a loaded model, an open index, a test double)."""

    def __init__(self, settings: Settings, *, embedder: Any = None, index: Any = None,
                 llm: Any = None) -> None:
        self.settings = settings
        self._lock = threading.Lock()  # the UI touches these from worker threads
        for name, given in (("embedder", embedder), ("index", index), ("llm", llm)):
            if given is not None:
                self.__dict__[name] = given  # the cached_property's slot: never built

    @cached_property
    def embedder(self):
        from assistant.embeddings import make_embedder

        return make_embedder(self.settings)

    @cached_property
    def index(self):
        from assistant.index import Index

        with self._lock:
            return Index.open(self.settings)

    @cached_property
    def retriever(self):
        from assistant.retrieve import Retriever

        return Retriever(self.index, self.embedder, self.settings)

    @cached_property
    def llm(self):
        from assistant.llm import LLM

        return LLM(self.settings)

    @cached_property
    def answerer(self):
        from assistant.answer import Answerer

        return Answerer(self.retriever, self.settings, llm_factory=lambda: self.llm)

    def reset_index(self) -> None:
        """Forget the opened index (after an ingest swapped generations)."""
        for name in ("index", "retriever", "answerer"):
            self.__dict__.pop(name, None)
