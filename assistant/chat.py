"""Conversation state and follow-up resolution.

A follow-up ("what dataset did it use?", "compare it with the second one") is turned into
(a) a standalone query for retrieval and (b) the papers it is about ("focus"), taken from
the previous turn's sources. The focus rule is the same with or without an LLM, so the
papers under discussion stay stable; with an LLM the query is rewritten by prompts/condense.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.types import Answer

_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
             "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6}
_ORDINAL_REF = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|1st|2nd|3rd|4th|5th|6th)\s+(one|paper|result|"
    r"source|article|work|method|approach)\b|\b(?:paper|source|number|no\.?)\s*#?(\d)\b|\[(\d)\]",
    re.IGNORECASE)
_LAST_REF = re.compile(r"\b(last|latter) (one|paper)\b|\bthe latter\b", re.IGNORECASE)
_SINGULAR = re.compile(
    r"\b(it|its|it's|this|that|the) (paper|method|model|approach|system|work|study|one)\b|"
    r"\b(its|this|that) (framework|technique|algorithm|architecture|quantity|result|finding|"
    r"dataset|benchmark|metric)\b|"
    r"\b(it|its|itself)\b|\bthe former\b", re.IGNORECASE)
_PLURAL = re.compile(r"\b(they|them|their|these|those|both|each of them|compare|contrast|"
                     r"differ|difference)\b", re.IGNORECASE)

# "Which papers use X?", "Is there a paper on Y?": a new search, not a continuation.
_NEW_SEARCH = re.compile(
    r"\b(which|what|any|are there)\s+(papers|works|studies|articles)\b|"
    r"\bis there (a|an|any)\s+(paper|work|study|article)\b", re.IGNORECASE)


# "Is there later work that extends it?": about papers *other than* the one on the table.
_BEYOND = re.compile(
    r"\b(follow-?up|later|subsequent|successor|newer|more recent|next) (work|paper|papers|"
    r"version|versions|study|studies|method)\b|\bbuilds? (up)?on (it|that|this)\b|"
    r"\b(extends?|improves? (on|upon)) (it|that|this)\b|\bother (papers|work|approaches)\b",
    re.IGNORECASE)


@dataclass
class Resolved:
    query: str  # standalone query for retrieval
    focus: list[str] = field(default_factory=list)  # paper ids the follow-up is about
    is_followup: bool = False
    # Papers the follow-up looks beyond ("later work on it"): kept as context for the query,
    # ranked after the papers it asks for.
    beyond: list[str] = field(default_factory=list)


def _previous_papers(prev: Answer) -> list[tuple[int, str, str]]:
    """(number, paper id, title) of the previous turn: cited first, else its top sources."""
    cited = [(c.n, c.paper_id, c.title) for c in prev.citations]
    if cited and not prev.abstained:
        return cited
    return [(s.n, s.paper_id, s.title) for s in prev.sources[:3]]


def resolve(question: str, history: list[Answer]) -> Resolved:
    """Rule-based resolution (used alone in extractive mode, beside condensing with an LLM)."""
    if not history:
        return Resolved(query=question)
    prev = history[-1]
    by_number = {s.n: (s.paper_id, s.title) for s in prev.sources}
    candidates = _previous_papers(prev)
    focus: list[tuple[str, str]] = []
    for m in _ORDINAL_REF.finditer(question):
        if m.group(1):
            # "the second one" means the second paper the answer cited, else source number n.
            n = _ORDINALS[m.group(1).lower()]
            if 0 < n <= len(candidates):
                focus.append(candidates[n - 1][1:])
                continue
        else:
            # "[3]", "paper 3": the number shown beside the source, whatever else was cited.
            n = int(m.group(3) or m.group(4))
        if n in by_number:
            focus.append(by_number[n])
    if _LAST_REF.search(question) and candidates:
        focus.append(candidates[-1][1:])
    if _SINGULAR.search(question) and candidates and (not focus or "compare" in question.lower()
                                                      or "with" in question.lower()):
        focus.insert(0, candidates[0][1:])
    if not focus and _PLURAL.search(question):
        focus = [c[1:] for c in candidates[:3]]
    short = len(question.split()) <= 7 and not _NEW_SEARCH.search(question)
    if not focus and short and candidates and not prev.abstained:
        # "And the dataset?" — short questions with no subject continue the last topic.
        focus = [candidates[0][1:]]
    if not focus:
        return Resolved(query=question)
    focus = list(dict.fromkeys(focus))
    titles = "; ".join(t for _, t in focus)
    if _BEYOND.search(question):
        return Resolved(query=f"{question} ({titles})", beyond=[pid for pid, _ in focus],
                        is_followup=True)
    return Resolved(query=f"{question} ({titles})", focus=[pid for pid, _ in focus],
                    is_followup=True)


def history_text(history: list[Answer], max_turns: int = 4) -> str:
    lines = []
    for turn in history[-max_turns:]:
        lines.append(f"User: {turn.question}")
        refs = "; ".join(f"[{c.n}] {c.title}" for c in turn.citations)
        lines.append(f"Assistant: {turn.answer[:600]}" + (f"\n(Cited: {refs})" if refs else ""))
    return "\n".join(lines)


class Conversation:
    """A chat: its turns, in order. The UI keeps one per browser session."""

    def __init__(self) -> None:
        self.turns: list[Answer] = []

    def add(self, answer: Answer) -> None:
        self.turns.append(answer)

    def clear(self) -> None:
        self.turns.clear()
