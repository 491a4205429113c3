"""Typed records passed between stages: Paper -> Chunk -> Hit -> Answer."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field


@dataclass(frozen=True)
class TokenVectors:
    """One text's contextual token vectors (unit length, special tokens dropped) and each
    token's character span in the text: what a question's words match in a passage
    (assistant/coverage.py), from the same forward pass as the text's sentence vector."""

    vectors: np.ndarray  # (tokens, dim) float32
    spans: list[tuple[int, int]]


class Paper(BaseModel):
    id: str
    title: str
    abstract: str
    sources: list[str] = Field(default_factory=list, description="Files the paper came from.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Changes when anything that is embedded changes (title or abstract)."""
        return hashlib.sha1(f"{self.title}\n{self.abstract}".encode()).hexdigest()[:16]


class Chunk(BaseModel):
    id: str
    paper_id: str
    title: str
    text: str
    position: int

    @property
    def embed_text(self) -> str:
        # The title is embedded with every chunk: half-remembered questions often name it.
        return f"{self.title}\n{self.text}"


class Hit(BaseModel):
    """One paper returned by retrieval, with its best-matching chunk."""

    paper_id: str
    title: str
    abstract: str
    snippet: str
    score: float = Field(description="Fused relevance, 0..1 (1 = best possible).")
    dense_score: float | None = Field(None, description="Cosine similarity of the best chunk.")
    bm25_score: float | None = None
    rank: int = 0
    url: str = Field("", description="Where the paper opens (assistant/links.py).")


class Citation(BaseModel):
    n: int
    paper_id: str
    title: str
    url: str = Field("", description="Where the paper opens (assistant/links.py).")


class Source(BaseModel):
    n: int
    paper_id: str
    title: str
    score: float
    abstract: str = ""
    cited: bool = False
    quotes: list[str] = Field(
        default_factory=list, description="Sentences of the abstract the answer leans on."
    )
    url: str = Field("", description="Where the paper opens (assistant/links.py).")


class Claim(BaseModel):
    """One sentence of an answer, checked against the papers it cites (assistant/support.py)."""

    sentence: str
    citations: list[int] = Field(default_factory=list)
    support: float = Field(
        description="0..1: how well the cited papers support it (the weakest citation's score).")
    label: Literal["supported", "weak", "unsupported"]
    evidence: dict[int, str] = Field(
        default_factory=dict, description="Source number -> its sentence closest to the claim.")
    scores: dict[int, float] = Field(default_factory=dict, description="Support per citation.")
    better: int | None = Field(
        None, description="Another retrieved source that supports the claim better (repair).")
    note: str | None = Field(None, description="Why it is not supported, in words.")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Answer(BaseModel):
    question: str
    standalone_query: str = ""
    searched_for: str = Field(
        "", description="The query retrieval ran: the standalone query with typos corrected.")
    corrections: list[tuple[str, str]] = Field(
        default_factory=list, description="(as typed, corrected) words of the question.")
    answer: str
    mode: Literal["llm", "extractive"]
    abstained: bool = False
    abstain_reason: str | None = Field(
        None, description="Why the corpus was taken not to cover the question, in words.")
    coverage: float | None = Field(
        None, description="Fitted probability that the corpus covers the question.")
    ranked: list[str] = Field(
        default_factory=list,
        description="Paper ids in the order the answer ranked them (pinned papers first), "
        "deeper than the numbered sources; what retrieval metrics score.")
    citations: list[Citation] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    flagged_sentences: list[str] = Field(
        default_factory=list, description="Sentences with no citation."
    )
    removed_citations: list[int] = Field(
        default_factory=list, description="Markers that pointed outside the sources."
    )
    claims: list[Claim] = Field(
        default_factory=list, description="Every sentence checked against the papers it cites.")
    unstated: list[str] = Field(
        default_factory=list, description="Figures the question states that the answer's "
        "first-cited paper does not: a false premise, or a detail its abstract does not give.")
    timings_ms: dict[str, float] = Field(default_factory=dict)
    usage: Usage | None = None
    model: str | None = None
    error: str | None = Field(None, description="One-line explanation when generation failed.")

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
