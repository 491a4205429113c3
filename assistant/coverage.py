"""Does the corpus cover a question? One calibrated decision, not a pile of rules.

A handful of measured signals about the question and what retrieval found are combined by a
logistic regression whose weights live in `assistant/abstention.json`, with what they were
fitted on (dev questions plus near-miss negatives: each dev question asked again with its
gold paper hidden; `python -m evals.fit_abstention` refits them). The signals:

- dense_top      best cosine similarity of the question to a retrieved passage;
- cover_top      how much of the question's *content* the top paper contains: the
                 idf-weighted share of its content terms found in the paper's title+abstract;
- cover_best     the same, best of the first three papers (survey questions);
- cover_rare     the same for the question's three most specific terms only;
- unknown_info   terms no paper contains, weighted by how informative they are: a name
                 (SMoA, Sophia) counts fully, an everyday English word ("gist") hardly;
- name_match     the question names a paper (its title, or the name before its colon);
- gap            fused-score gap between the first and second paper (one clear answer);
- numbers_missing  figures the question states that none of the top papers does;
- sentence_top   cosine of the question and the top paper's best single sentence;
- cover_top3     the same as cover_top, over the first three papers together: a broad
                 question's terms are spread over several papers;
- terms          how many content terms the question has (a long question is rarely all
                 in one abstract).
- soft_cover     how well the question's content words are matched, word piece by word
                 piece, anywhere in the top paper: each question token's best cosine to
                 the paper's contextual token vectors (the model's own token states, from
                 the pass that embeds its sentences), averaged. cover_top counts a word
                 only when the paper has the same word; here "memory-efficient" can meet
                 "uses less memory", and a near-miss neighbour meets the topic words but
                 not the specific ones. (Embedders without token vectors, such as an
                 endpoint: the unweighted share of the question's terms the paper has.)
                 Added in session 8. Refitted with it, held out one question set at a
                 time (mean over sets), near-miss abstention 0.64 -> 0.69 and off-corpus
                 0.79 -> 0.82 at the same false abstention (0.029); alone, it separates
                 near-misses from answerable dev questions with AUC 0.95 (cover_top 0.90,
                 sentence_top 0.87), and it gets the largest weight.

Tried and left out: the survey-or-single probability of assistant/intent.py. In 5-fold
cross-validation on dev at 2% false abstention (with dev_offcorpus2.jsonl, 48 off-corpus
questions written for this, many survey-shaped) it raised near-miss abstention (0.54 -> 0.64)
but lowered off-corpus abstention (0.78 -> 0.72, and 0.64 -> 0.52 on the survey-shaped new
ones): it lowers the bar for "Any work on <a topic the corpus lacks>?". It is also fitted on
the same dev questions, so its cross-validated benefit is optimistic. cover_top3 and terms
raised off-corpus abstention 0.66 -> 0.78 and named-hidden 0.78 -> 0.83 (near-miss 0.52 ->
0.54) at the same false abstention.

Unknown terms are judged against the corpus *as searched*: when papers are hidden (a
near-miss eval, or a follow-up asking for papers other than those on the table), terms
found only in those papers count as unknown.
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from assistant.vocab import GENERIC, Vocabulary

FEATURES = ("dense_top", "cover_top", "cover_best", "cover_rare", "unknown_info", "name_match",
            "gap", "numbers_missing", "sentence_top", "cover_top3", "terms", "soft_cover")
MAX_TERMS = 30  # the terms feature is capped: beyond this a question is just "long"
# The model is fitted on the first ten papers a search returns, whatever depth is shown.
HITS_CONSIDERED = 10
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-']*|\d+[A-Za-z][A-Za-z0-9\-]*")
# Questions are capped upstream; this bounds the work here whatever a caller passes.
MAX_WORDS = 200


@dataclass
class Coverage:
    covered: bool
    probability: float  # of "the corpus covers this", from the fitted model
    features: dict[str, float] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    reason: str = ""  # plain words; shown under an abstention


@dataclass(frozen=True)
class AbstentionModel:
    weights: dict[str, float]
    bias: float
    threshold: float
    mean: dict[str, float]
    scale: dict[str, float]
    fitted_on: dict[str, Any]

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(
            self.weights[f] * (features[f] - self.mean[f]) / (self.scale[f] or 1.0)
            for f in FEATURES)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@lru_cache(maxsize=1)
def default_model() -> AbstentionModel:
    data = json.loads(importlib.resources.files("assistant").joinpath("abstention.json")
                      .read_text(encoding="utf-8"))
    return model_from_dict(data)


def model_from_dict(data: dict[str, Any]) -> AbstentionModel:
    missing = [f for f in FEATURES if f not in data.get("weights", {})]
    if missing:
        raise ValueError(f"abstention.json: weights missing for {missing}; refit with "
                         "`python -m evals.fit_abstention`")
    return AbstentionModel(data["weights"], float(data["bias"]), float(data["threshold"]),
                           data["mean"], data["scale"], data.get("fitted_on", {}))


@dataclass
class _Term:
    word: str  # as typed
    span: tuple[int, int]  # where in the question
    stems: list[str]
    known: bool
    weight: float  # informativeness: idf for known terms


def _terms(question: str, vocab: Vocabulary, hidden: dict[str, int]) -> list[_Term]:
    out: list[_Term] = []
    seen: set[str] = set()
    for i, m in enumerate(_WORD.finditer(question)):
        if i >= MAX_WORDS:
            break
        word = m.group(0).strip("'-")
        low = word.lower()
        if len(low) < 2 or low in GENERIC or low in seen:
            continue
        seen.add(low)
        stems = vocab.keyword.terms(low)
        if not stems:  # a stopword
            continue
        known = all(vocab.df(s) - hidden.get(s, 0) > 0 for s in stems)
        weight = (sum(vocab.idf(s) for s in stems) / len(stems) if known
                  else vocab.idf("") * vocab.informativeness(word, first=(i == 0)))
        out.append(_Term(word, m.span(), stems, known, weight))
    return out


def _cover(terms: list[_Term], paper_stems: set[str]) -> float:
    total = sum(t.weight for t in terms)
    if total <= 0:
        return 0.0
    return sum(t.weight for t in terms if t.known and set(t.stems) <= paper_stems) / total


def features(question: str, hits, title_matches, vocab: Vocabulary,
             hidden_texts: Sequence[str] = (), embedder=None) -> tuple[dict[str, float], list[str]]:
    """The signals for one question, and its unknown informative words."""
    hits = hits[:HITS_CONSIDERED]
    hidden: dict[str, int] = {}
    for text in hidden_texts:  # chunks of hidden papers, as BM25 indexed them
        for s in set(vocab.keyword.terms(text)):
            hidden[s] = hidden.get(s, 0) + 1
    terms = _terms(question, vocab, hidden)
    stems_of = [set(vocab.keyword.terms(f"{h.title}\n{h.abstract}")) for h in hits[:3]]
    covers = [_cover(terms, s) for s in stems_of]
    # The question's three most specific terms (highest idf, unknown ones included): a
    # near-miss keeps the general words of the topic but loses these.
    rare = sorted(terms, key=lambda t: -t.weight)[:3]
    cover_rare = max((_cover(rare, s) for s in stems_of), default=0.0)
    unknown = [t for t in terms if not t.known]
    singleton = vocab.idf("") or 1.0
    feats = {
        "dense_top": max((h.dense_score or 0.0 for h in hits), default=0.0),
        "cover_top": covers[0] if covers else 0.0,
        "cover_best": max(covers, default=0.0),
        "cover_rare": cover_rare,
        "unknown_info": min(3.0, sum(t.weight for t in unknown) / singleton),
        "name_match": 1.0 if title_matches else 0.0,
        "gap": (hits[0].score - hits[1].score) if len(hits) > 1 else (
            hits[0].score if hits else 0.0),
    }
    # Figures the question states ("on 512 GPUs", "with 8 workers") that no top paper does.
    numbers = set(_NUMBER.findall(question))
    texts = " ".join(f"{h.title} {h.abstract}" for h in hits[:3])
    feats["numbers_missing"] = (sum(1 for n in numbers if not re.search(
        rf"(?<![\w.]){re.escape(n)}(?![\d])", texts)) / len(numbers)) if numbers else 0.0
    feats["sentence_top"], feats["soft_cover"] = _top_paper(
        question, terms, hits, embedder, feats["dense_top"],
        stems_of[0] if stems_of else set())
    feats["cover_top3"] = _cover(terms, set().union(*stems_of)) if stems_of else 0.0
    feats["terms"] = float(min(len(terms), MAX_TERMS))
    informative = [t.word for t in unknown if t.weight / singleton >= 0.5]
    return feats, informative


def _top_paper(question: str, terms: list[_Term], hits, embedder, dense_top: float,
               top_stems: set[str]) -> tuple[float, float]:
    """(sentence_top, soft_cover) for the top paper. sentence_top: the question's cosine to
    the paper's best single sentence (a passage can be close on the topic while no sentence
    says what was asked). soft_cover: see the module docstring."""
    lexical = (sum(1 for t in terms if t.known and set(t.stems) <= top_stems) / len(terms)
               if terms else 0.0)
    if embedder is None or not hits:
        return dense_top, lexical
    from assistant.citations import sentences

    top = hits[0]
    with_tokens = hasattr(embedder, "embed_tokens")
    key = (getattr(embedder, "name", ""), top.paper_id, hash(top.abstract))
    with _SENTENCE_LOCK:
        cached = _SENTENCE_VECTORS.get(key)
        tokens = _TOKEN_VECTORS.get(key)
        if cached is not None:
            _SENTENCE_VECTORS.move_to_end(key)
        if tokens is not None:
            _TOKEN_VECTORS.move_to_end(key)
    q_tokens = None
    if cached is None or (with_tokens and tokens is None):
        texts = [question] + [f"{top.title}: {s}"
                              for s in sentences(top.abstract)[:40] or [top.abstract]]
        if with_tokens:
            vectors, per_text = embedder.embed_tokens(texts)
            q_tokens = per_text[0]
            # float16: a paper's ~400 token vectors are what this cache holds.
            tokens = np.concatenate([t.vectors for t in per_text[1:]]).astype(np.float16)
        else:
            vectors = embedder.embed(texts)
        q, cached = vectors[0], vectors[1:]
        with _SENTENCE_LOCK:
            _SENTENCE_VECTORS[key] = cached
            while len(_SENTENCE_VECTORS) > _SENTENCE_CACHE_SIZE:
                _SENTENCE_VECTORS.popitem(last=False)
            if tokens is not None:
                _TOKEN_VECTORS[key] = tokens
                while len(_TOKEN_VECTORS) > _TOKEN_CACHE_SIZE:
                    _TOKEN_VECTORS.popitem(last=False)
    elif with_tokens:
        vectors, per_text = embedder.embed_tokens([question])
        q, q_tokens = vectors[0], per_text[0]
    else:
        q = embedder.embed([question])[0]
    sentence_top = float((cached @ q).max())
    if q_tokens is None or tokens is None or not len(q_tokens.vectors):
        return sentence_top, lexical
    # The question's tokens inside its content words (no stopwords, no "paper").
    inside = [i for i, (a, b) in enumerate(q_tokens.spans)
              if any(t.span[0] <= a and b <= t.span[1] for t in terms)]
    mine = q_tokens.vectors[inside] if inside else q_tokens.vectors
    return sentence_top, float((mine @ tokens.astype(np.float32).T).max(axis=1).mean())


# Sentence vectors of recently seen top papers: the same papers come up again and again in
# a session, and embedding ~10 sentences is most of this stage's cost. Their token vectors
# (~370 per paper on the seeds, float16: ~0.28 MB) are ~40x larger, so fewer are kept:
# 512 papers, ~145 MB at most (every seed paper would take ~180 MB).
_SENTENCE_CACHE_SIZE = 2048
_SENTENCE_VECTORS: OrderedDict = OrderedDict()
_TOKEN_CACHE_SIZE = 512
_TOKEN_VECTORS: OrderedDict = OrderedDict()
_SENTENCE_LOCK = threading.Lock()


def assess(question: str, hits, title_matches, vocab: Vocabulary,
           hidden_texts: Sequence[str] = (), model: AbstentionModel | None = None,
           embedder=None) -> Coverage:
    model = model or default_model()
    if not hits:
        return Coverage(False, 0.0, reason="no paper in the corpus matches the question at all")
    feats, unknown = features(question, hits, title_matches, vocab, hidden_texts, embedder)
    p = model.probability(feats)
    cov = Coverage(p >= model.threshold, round(p, 4), feats, unknown)
    cov.reason = explain(cov, hits)
    return cov


def explain(cov: Coverage, hits) -> str:
    """Why the corpus was (not) taken to cover the question, in plain words."""
    f = cov.features
    if cov.covered:
        if f.get("name_match"):
            return f"the question names a paper in the corpus: {hits[0].title}"
        return (f"the top paper contains {f['cover_top']:.0%} of the question's key terms "
                f"(best passage similarity {f['dense_top']:.2f})")
    parts = []
    if cov.unknown:
        shown = ", ".join(f"'{w}'" for w in cov.unknown[:4])
        parts.append(f"{shown} {'does' if len(cov.unknown) == 1 else 'do'} not occur in "
                     "any paper")
    if f["cover_best"] < 0.5:
        parts.append(f"the closest papers contain only {f['cover_best']:.0%} of the "
                     "question's key terms")
    # Below what 95% of the answerable dev questions reach (0.56; near-misses: median 0.49).
    if f.get("soft_cover", 1.0) < 0.55:
        parts.append("the closest paper's wording matches the question's only loosely "
                     f"({f['soft_cover']:.2f})")
    if f["dense_top"] < 0.45:
        parts.append(f"the best passage is only weakly similar ({f['dense_top']:.2f})")
    if not parts:
        parts.append(f"the evidence is too weak (confidence {cov.probability:.2f})")
    return "; ".join(parts)
