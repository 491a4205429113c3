"""A small exception tree. Every error carries a message a user can act on."""

from __future__ import annotations


class AssistantError(Exception):
    """Base class: the message is shown to the user as is (no traceback)."""


class CorpusError(AssistantError):
    """A corpus file could not be read at all (wrong format, empty, binary...)."""


class IndexMissing(AssistantError):
    def __init__(self, data_dir: object) -> None:
        super().__init__(
            f"No index in {data_dir}. Build one first: assistant ingest [PATHS] "
            f"--data-dir {data_dir}"
        )


class EmbeddingMismatch(AssistantError):
    def __init__(self, indexed: str, indexed_dim: int, configured: str, dim: int | None) -> None:
        got = f"{configured} (dim {dim})" if dim else configured
        super().__init__(
            f"The index was built with embedding model {indexed} (dim {indexed_dim}) but the "
            f"settings select {got}. Use the same model, or re-embed everything with "
            "`assistant ingest --rebuild`."
        )


class ChunkingMismatch(AssistantError):
    def __init__(self, size: int, overlap: int, want_size: int, want_overlap: int) -> None:
        super().__init__(
            f"The index was built with chunks of {size} tokens overlapping by {overlap}, but "
            f"the settings ask for {want_size} overlapping by {want_overlap} "
            "(ASSISTANT_CHUNK_SIZE / ASSISTANT_CHUNK_OVERLAP). Use the same values, or "
            "re-chunk everything with `assistant ingest --rebuild`."
        )


class IndexBusy(AssistantError):
    def __init__(self, data_dir: object, waited_s: float) -> None:
        super().__init__(
            f"Another ingest is writing to {data_dir} (waited {waited_s:.0f} s for its lock). "
            "Wait for it to finish, or use a different --data-dir."
        )


class LLMError(AssistantError):
    """The LLM endpoint failed; the message says what failed and what to do."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message[:1].upper() + message[1:])
        self.kind = kind


class PromptError(AssistantError):
    pass
