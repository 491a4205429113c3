"""The interfaces components depend on, as typing.Protocol: what a retriever offers the answerer.

`assistant.retrieve.Retriever` (hybrid search over the index) implements Retriever, and so
do the eval baselines (evals/baselines.py: plain llama-index dense, BM25 only), which is how
the same Answerer runs on each of them. Nothing here imports an implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # annotations only: the protocol sits beside, not above, its users
    from assistant.embeddings import Embedder
    from assistant.retrieve import Retrieval
    from assistant.settings import Settings
    from assistant.types import Hit, Paper
    from assistant.vocab import Vocabulary


@runtime_checkable
class Retriever(Protocol):
    """What the Answerer reads from retrieval."""

    embedder: Embedder  # the model the hits' dense similarities were measured with
    settings: Settings

    @property
    def vocabulary(self) -> Vocabulary:
        """Corpus term statistics (spelling correction, the coverage decision)."""
        ...

    def retrieve(self, query: str, k: int | None = None, exclude: frozenset[str] = ...,
                 fusion: str | None = None) -> Retrieval:
        """The top-k papers for `query` (never those in `exclude`), with what was searched."""
        ...

    def search(self, query: str, k: int | None = None) -> list[Hit]:
        """Just the hits of retrieve()."""
        ...

    def search_around(self, query: str, hits: list[Hit], k: int,
                      exclude: frozenset[str] = ..., pinned: list[str] | None = None
                      ) -> list[Hit]:
        """A survey's second search, widened by what the first `hits` share (or `hits`
        themselves where there is no such search)."""
        ...

    def papers(self, ids: list[str]) -> dict[str, Paper]:
        """Indexed papers by id (unknown ids left out)."""
        ...

    def texts_of(self, paper_ids: Any) -> list[str]:
        """The indexed text (title + chunk) of each chunk of these papers."""
        ...

    def corpus_version(self) -> int:
        """Changes whenever an ingest changes the indexed papers."""
        ...

    def corpus(self) -> list[tuple[str, str]]:
        """Every indexed paper's (title, abstract): what claims are checked against
        (assistant/support.py)."""
        ...
