"""Follow-up resolution: is a question a continuation, and about which papers?

A follow-up ("what dataset did it use?", "compare it with the second one") is turned into
(a) a standalone query for retrieval and (b) the papers it is about ("focus"), taken from
the previous turn's sources. It is decided on evidence in the question itself: something
must point back (a pronoun, "the second one", "[3]"); a question with a subject of its own
and nothing pointing back is a new search, mid-chat or not, and gets its own coverage check.
The rule is the same with or without an LLM; with an LLM the query is also rewritten by
prompts/condense.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.types import Answer
from assistant.vocab import GENERIC

_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
             "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6}
_ORDINAL_REF = re.compile(
    r"\b(first|second|third|fourth|fifth|sixth|1st|2nd|3rd|4th|5th|6th)\s+(one|paper|result|"
    r"source|article|work|method|approach)\b|\b(?:paper|source|number|no\.?)\s*#?(\d)\b|\[(\d)\]",
    re.IGNORECASE)
_LAST_REF = re.compile(r"\b(last|latter) (one|paper)\b|\bthe latter\b", re.IGNORECASE)
# Words that point back at something on the table. "it" used impersonally ("is it possible
# to ...") points at nothing and is removed first.
_SINGULAR = re.compile(
    r"\b(it|its|it's|this|that|the) (paper|method|model|approach|system|work|study|one|"
    r"framework|technique|algorithm|architecture)\b|"
    r"\b(its|this|that) (quantity|result|finding|dataset|benchmark|metric|idea|trick)\b|"
    r"\b(it|its|itself)\b|\bthe former\b|\bthe same (problem|task|idea|thing|setting)\b",
    re.IGNORECASE)
_PLURAL = re.compile(r"\b(they|them|their|these|those|both|each of them|the two|all three)\b",
                     re.IGNORECASE)
_IMPERSONAL_IT = re.compile(
    r"\b(is|was|isn't|wasn't) it (possible|true|worth|feasible|better|common|known|hard|easy|"
    r"normal|necessary)\b|\bit(?:'s| is| was) (possible|true|known|hard|easy|common|worth|"
    r"said|claimed)\b", re.IGNORECASE)
# Asking for *a paper* rather than about the one shown: "is there a paper that ...",
# "any later work ...", "the later version". Not "which of these papers ...".
_ASKS_FOR_PAPER = re.compile(
    r"\b(which|what|any|another|other|a|an|some|there|later|newer|recent|follow-?up|"
    r"subsequent|different|alternative)\s+(\w+\s+){0,2}?(papers?|works?|stud(y|ies)|"
    r"articles?|publications?|research|versions?|ones?)\b", re.IGNORECASE)
_AMONG_THESE = re.compile(r"\b(of|among|between) (these|those|them|the two|both)\b",
                          re.IGNORECASE)
_OTHER = re.compile(r"\b(another|other|others|different|alternative|else|instead|competing|"
                    r"follow-?up|later|subsequent|successor|newer|more recent|builds? (up)?on|"
                    r"extends?|improves? (on|upon)|criticis|critiqu|argues? against|"
                    r"contradict)", re.IGNORECASE)
# What a follow-up asks *about* a paper: not a subject of its own.
_ASPECTS = frozenset("""dataset datasets data benchmark benchmarks result results metric metrics
evaluation evaluate evaluated experiment experiments baseline baselines author authors code
limitation limitations weakness weaknesses strength strengths accuracy performance speed
speedup memory cost costs size sizes number numbers figure figures table improvement gain
gains compare compared comparison differ difference differences contribution contributions
problem task tasks setting settings idea ideas exactly further""".split())
_FUNCTION = frozenset("""a an the of in on for to and or with by from at as is are was were be
been this that these those it its their there which what who whom how why when where does do
did can could would should may might me tell about any some again then than so also just
only very much many more most such into over under they them both each you your i we our
us he she his her one ones else""".split())
_WORDS = re.compile(r"[a-z][a-z0-9\-]+")


@dataclass
class Resolved:
    query: str  # standalone query for retrieval
    focus: list[str] = field(default_factory=list)  # paper ids the follow-up is about
    is_followup: bool = False
    # Papers the question looks beyond ("is there another paper that ..."): left out of the
    # search, so the answer is about other papers (or abstains when there are none).
    beyond: list[str] = field(default_factory=list)
    # Refers to an earlier answer ("the second paper", "[2]") when there is none.
    dangling: bool = False


def _previous_papers(prev: Answer) -> list[tuple[int, str, str]]:
    """(number, paper id, title) of the previous turn: cited first, else its top sources."""
    cited = [(c.n, c.paper_id, c.title) for c in prev.citations]
    if cited and not prev.abstained:
        return cited
    return [(s.n, s.paper_id, s.title) for s in prev.sources[:3]]


def own_subject(question: str, prev: Answer) -> list[str]:
    """Words naming a subject of the question's own: not function words, not what one asks
    about a paper (its dataset, its results), and not found in the previous turn's papers."""
    seen = " ".join(f"{s.title} {s.abstract}" for s in prev.sources).lower()
    seen += " " + prev.question.lower()
    words = []
    for w in _WORDS.findall(question.lower()):
        if w in _FUNCTION or w in _ASPECTS or w in GENERIC or len(w) < 3:
            continue
        # A crude stem is enough to tell "quantized" from "quantization" here.
        if w[: max(4, len(w) - 3)] in seen:
            continue
        words.append(w)
    return words


def _explicit(question: str, prev: Answer, candidates) -> list[tuple[str, str]]:
    """Papers named by position: "the second one", "[3]", "paper 5", "the last one"."""
    by_number = {s.n: (s.paper_id, s.title) for s in prev.sources}
    out: list[tuple[str, str]] = []
    for m in _ORDINAL_REF.finditer(question):
        if m.group(1):
            # "the second one" means the second paper the answer cited, else source number n.
            n = _ORDINALS[m.group(1).lower()]
            if 0 < n <= len(candidates):
                out.append(candidates[n - 1][1:])
                continue
        else:
            # "[3]", "paper 3": the number shown beside the source, whatever else was cited.
            n = int(m.group(3) or m.group(4))
        if n in by_number:
            out.append(by_number[n])
    if _LAST_REF.search(question) and candidates:
        out.append(candidates[-1][1:])
    return out


def resolve(question: str, history: list[Answer]) -> Resolved:
    """Is this a follow-up, and about which papers? Decided on evidence in the question:

    - explicit references ("the second one", "[3]", "the last paper") and words that point
      back ("it", "they", "this method") make a follow-up about those papers;
    - a follow-up that asks for *a paper* ("is there a paper that argues it fails?") or for
      other/later work is about papers other than the ones on the table (`beyond`);
    - a question with a subject of its own and nothing pointing back is a new search, even
      mid-chat; a short question with no subject ("and the dataset?") continues the topic.
    """
    if not history:
        positional = _ORDINAL_REF.search(question) or _LAST_REF.search(question)
        return Resolved(query=question, dangling=bool(positional))
    prev = history[-1]
    candidates = _previous_papers(prev)
    explicit = _explicit(question, prev, candidates)
    plain = _IMPERSONAL_IT.sub(" ", question)
    singular = bool(_SINGULAR.search(plain)) and bool(candidates)
    plural = bool(_PLURAL.search(plain)) and bool(candidates)
    focus = list(explicit)
    if singular and (not focus or re.search(r"\b(compare|with|versus|vs)\b", question, re.I)):
        focus.insert(0, candidates[0][1:])
    if not focus and plural:
        focus = [c[1:] for c in candidates[:3]]
    asks_paper = bool(_ASKS_FOR_PAPER.search(question)) and not _AMONG_THESE.search(question)
    asks_other = bool(_OTHER.search(question))
    if not focus and candidates and not prev.abstained:
        subject = own_subject(question, prev)
        if asks_other and asks_paper and len(subject) <= 1:
            focus = [candidates[0][1:]]  # "any other work on this?" -> beyond, below
        elif len(question.split()) <= 7 and not subject:
            # "And the dataset?" — a short question with no subject continues the topic.
            focus = [candidates[0][1:]]
    if not focus:
        return Resolved(query=question)
    focus = list(dict.fromkeys(focus))
    titles = "; ".join(t for _, t in focus)
    ids = [pid for pid, _ in focus]
    if not explicit and asks_paper:
        return Resolved(query=f"{question} ({titles})", beyond=ids, is_followup=True)
    return Resolved(query=f"{question} ({titles})", focus=ids, is_followup=True)


def history_text(history: list[Answer], max_turns: int = 4) -> str:
    lines = []
    for turn in history[-max_turns:]:
        lines.append(f"User: {turn.question}")
        refs = "; ".join(f"[{c.n}] {c.title}" for c in turn.citations)
        lines.append(f"Assistant: {turn.answer[:600]}" + (f"\n(Cited: {refs})" if refs else ""))
    return "\n".join(lines)
