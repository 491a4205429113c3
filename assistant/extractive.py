"""Extractive mode: a query-focused, cited summary made of the abstracts' own sentences.

No LLM: for each relevant paper, the sentences that best answer the question (scored by
embedding similarity to the question plus overlap of its content words), each followed by
the paper's citation, papers in relevance order, under a one-line lead. Sentences are quoted
verbatim, so nothing in the answer can be invented — and nothing in a source is executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from assistant.citations import sentences
from assistant.embeddings import Embedder
from assistant.settings import Settings
from assistant.types import Hit

_WORD = re.compile(r"[a-z0-9][a-z0-9\-\.]*[a-z0-9]|[a-z0-9]")
_STOP = frozenset(
    """a an the of in on for to and or with by from at as is are was were be been this
that these those it its their there which what who whom how why when where does do did can
could would should may might paper papers work works study studies approach approaches method
methods propose proposes proposed present presents show shows use used using about any some
corpus me tell find give list describe discuss""".split()
)


_ASKS_CONTRIBUTION = re.compile(
    r"\b(propos\w*|introduc\w*|contribut\w*|main idea|key idea|what is (it|the \w+ paper|"
    r"that paper) about|what do(es)? (it|they|the \w+ (one|paper)) (do|present|offer))\b", re.I)
_STATES_CONTRIBUTION = re.compile(
    r"\b(we|this (paper|work|study)|our (method|approach|framework|model))\s+(\w+\s+)?"
    r"(propose|introduce|present|develop|design|contribute|put forward)s?\b"
    r"|\b(in this (paper|work)|we call|named|dubbed|termed)\b", re.I)


def content_words(text: str) -> set[str]:
    return {w.rstrip(".") for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


@dataclass
class Pick:
    hit: Hit
    n: int
    quotes: list[str]
    score: float


def _score_sentences(question: str, picks: list[tuple[Hit, list[str]]],
                     embedder: Embedder) -> list[np.ndarray]:
    flat = [s for _, sents in picks for s in sents]
    vectors = embedder.embed([question] + flat)
    q, rest = vectors[0], vectors[1:]
    qwords = content_words(question)
    wants_number = bool(re.search(r"\b(how (much|many|fast|large|big)|what (percentage|"
                                  r"fraction|speed ?up|number)|by how)\b", question.lower()))
    # "What does it propose?" is answered by the abstract's statement of its contribution,
    # which embedding similarity to the (nearly content-free) question does not find.
    wants_contribution = bool(_ASKS_CONTRIBUTION.search(question))
    out, i = [], 0
    for _, sents in picks:
        scores = []
        for s in sents:
            sim = float(rest[i] @ q)
            overlap = len(qwords & content_words(s)) / max(1, len(qwords))
            number = 0.08 if wants_number and re.search(r"\d", s) else 0.0
            claim = 0.12 if wants_contribution and _STATES_CONTRIBUTION.search(s) else 0.0
            scores.append(sim + 0.35 * overlap + number + claim)
            i += 1
        out.append(np.array(scores))
    return out


def select(question: str, hits: list[tuple[int, Hit]], embedder: Embedder, settings: Settings,
           focus: set[str] = frozenset(), named: set[str] = frozenset()) -> list[Pick]:
    """Choose papers and their best sentences. `hits` are (source number, hit) pairs."""
    if not hits:
        return []
    # The first-ranked paper is always quoted: retrieval put it first (a title match, the
    # strongest fused evidence), and dropping it for a weaker one misleads. Others are
    # quoted when close to the best on both signals: passage similarity within
    # `extractive_margin` of the best, fused relevance at least `extractive_min_relative`
    # of the top paper's (one-paper lookups do not cite five bystanders).
    top = max((h.dense_score or 0.0) for _, h in hits)
    top_score = max(h.score for _, h in hits) or 1.0
    chosen = [hits[0]] + [
        (n, h) for n, h in hits[1:]
        if h.paper_id in focus
        or ((h.dense_score or 0.0) >= top - settings.extractive_margin
            and h.score >= settings.extractive_min_relative * top_score)
    ]
    if focus:  # a follow-up about specific papers answers from those papers first
        chosen = [(n, h) for n, h in chosen if h.paper_id in focus] or chosen
    elif named:  # a question naming a paper is about that paper, not its neighbours
        chosen = [(n, h) for n, h in chosen if h.paper_id in named] or chosen
    chosen = chosen[: max(1, settings.top_k)]
    split = [(h, sentences(h.abstract) or [h.abstract]) for _, h in chosen]
    scored = _score_sentences(question, split, embedder)
    picks = []
    for (n, h), (_, sents), scores in zip(chosen, split, scored, strict=True):
        best = sorted(np.argsort(-scores)[: settings.extractive_sentences].tolist())
        picks.append(Pick(h, n, [sents[i] for i in best], float(scores.max())))
    return picks


def compose(picks: list[Pick]) -> str:
    """Markdown: a lead line, then one bullet per paper with quoted, cited sentences."""
    if not picks:
        return ""
    first = picks[0]
    # Say what was found, not how many papers "address" it: nothing checked that they do.
    lead = f"Most relevant: *{first.hit.title}* [{first.n}]"
    if len(picks) > 1:
        lead += "; also relevant: " + ", ".join(f"[{p.n}]" for p in picks[1:])
    lead += "."
    lines = [lead, ""]
    for p in picks:
        quoted = " ".join(f"{_end(q)} [{p.n}]." for q in p.quotes)
        lines.append(f"- **{p.hit.title}** — {quoted}")
    return "\n".join(lines)


def _end(sentence: str) -> str:
    """Drop the final period so the citation sits inside the sentence: 'foo [1].'"""
    return sentence.rstrip()[:-1] if sentence.rstrip().endswith(".") else sentence.rstrip()
