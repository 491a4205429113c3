"""Does the corpus cover a question? The retrieval side of abstention.

Similarity alone cannot tell "close but not covered" from "covered": a question about the
Sophia optimizer scores as high against optimizer abstracts as a covered one does. What
gives such questions away is that they name something the corpus never mentions. Three
signals, calibrated on evals/datasets/golden.jsonl (see the eval report for the figures):

1. the best passage's cosine similarity is below a floor (nothing is even close);
2. the question names a thing (CamelCase, acronym, name with digits, capitalised word
   mid-sentence) that appears nowhere in the corpus vocabulary;
3. two or more of its key terms are unknown to the corpus, or one is and the similarity is
   only middling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.keyword import KeywordIndex

# Name-like tokens: inner capitals (PagedAttention, vLLM, GPTQ), letters with digits (NF4,
# OPT-175B), or a capitalised word that does not start the sentence (Sophia, Roman).
_NAME = re.compile(
    r"\b(?:[A-Za-z]*[A-Z][a-z0-9]*[A-Z][A-Za-z0-9]*|[A-Za-z]+\d+[A-Za-z0-9]*"
    r"|\d+[A-Za-z]+[A-Za-z0-9]*)\b|(?<![.?!]\s)(?<!^)\b[A-Z][a-z]{2,}\b"
)


@dataclass
class Coverage:
    top_similarity: float
    unknown_names: list[str] = field(default_factory=list)
    unknown_terms: list[str] = field(default_factory=list)
    covered: bool = True
    reason: str = ""


def assess(question: str, top_similarity: float, keyword: KeywordIndex,
           floor: float, soft: float) -> Coverage:
    unknown_terms = keyword.unknown_terms(question)
    unknown = set(unknown_terms)
    names = []
    for m in _NAME.finditer(question):
        parts = [p for p in re.findall(r"[A-Za-z0-9]+", m.group(0)) if len(p) > 1]
        if parts and any(t in unknown for p in parts for t in keyword.terms(p)):
            names.append(m.group(0))
    cov = Coverage(top_similarity, sorted(set(names)), unknown_terms)
    if top_similarity < floor:
        cov.covered, cov.reason = False, f"best passage similarity {top_similarity:.2f} < {floor}"
    elif names:
        cov.covered, cov.reason = False, f"names unknown to the corpus: {', '.join(names)}"
    elif len(unknown_terms) >= 2 or (unknown_terms and top_similarity < soft):
        cov.covered, cov.reason = False, f"terms unknown to the corpus: {', '.join(unknown_terms)}"
    return cov
