"""Extractive mode: a query-focused, cited summary made of the abstracts' own sentences.

No LLM. The answer takes the shape the question asks for:

- **single** (lookup / detail): the first-ranked paper, and close neighbours, each with its
  best sentences; a question asking for a figure gets the sentence stating it first.
- **survey** ("which papers ...", "what approaches ..."): every paper the fitted relevance
  model (assistant/survey.json, fitted on dev questions) keeps among SURVEY_POOL candidates,
  up to SURVEY_MAX, grouped by
  what their best-matching sentences say (sentence embeddings, agglomerative clustering),
  each group named by its distinctive terms (c-TF-IDF over the group's sentences) and
  citing all its papers, then one quoted sentence per paper.
- **comparison** ("how do A and B compare?", "what does B add on top of A?"): a table, one
  row per compared paper: what it proposes, its headline result, its data or benchmark,
  each cell a quoted fragment.

Every factual sentence is quoted verbatim and cited; group names and lead lines are
templates filled with the papers' own terms. Near-duplicate quotes (cosine > MMR_MAX_SIM)
are dropped. Nothing in a source is executed.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np

from assistant import intent
from assistant.citations import sentences
from assistant.embeddings import Embedder
from assistant.intent import ASKS_FIGURE as _ASKS_FIGURE
from assistant.intent import ASKS_PLURAL as _ASKS_PLURAL
from assistant.intent import ASKS_QUANTITY as _ASKS_QUANTITY
from assistant.intent import PLURAL as _PLURAL
from assistant.intent import SINGULAR as _SINGULAR
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

Shape = Literal["single", "survey", "comparison"]
Wanted = Literal["survey", "hedged", "single"]  # what the question asks for (layout())
SURVEY_MAX = 20  # papers quoted in a survey answer (and its numbered sources)
# Candidates the survey relevance model scores; the kept ones (at most SURVEY_MAX) are
# numbered first. On dev synthesis questions 20 -> 30 raised the gold papers among the
# candidates 1,339 -> 1,365 and those cited 0.873 -> 0.886, at 11.3 -> 13.2 papers per
# survey (40: 0.910 at 16.3 papers per survey; docs/benchmarks.md, session 11).
SURVEY_POOL = 30
SURVEY_CLAIM_BONUS = 0.25  # a survey quotes what each paper does: "we propose ..." preferred
SURVEY_SENTENCES = 4  # sentences per abstract embedded for a survey (lexical preselection)
# A hedged single answer (layout()) also quotes, once each, up to HEDGE_MAX of its sources
# the survey relevance model gives at least HEDGE_RELEVANCE. Simulated on dev with the survey
# decision held out by question set (threshold 0.51, band from 0.12, intent.json): gold
# papers cited on synthesis questions 0.835 -> 0.856, citation precision on lookups 0.826 ->
# 0.858 (a bar of 0.35 instead of 0.6 cited more and was less precise; the extra papers are
# always among the first six sources).
HEDGE_RELEVANCE = 0.6
HEDGE_MAX = 5
# Below the band a single answer still quotes one more source when the relevance model is
# all but certain of it (a lookup's paper ranked second): on dev (simulated, survey decision
# held out by set) lookups citing their gold paper 0.956 -> 0.976 at a citation precision of
# 0.858 -> 0.862 (0.8: 0.981 / 0.855).
RUNNER_UP_RELEVANCE = 0.9
SURVEY_MIN_GROUPED = 4  # fewer papers are listed without groups
MAX_GROUPS = 4
GROUP_DISTANCE = 0.75  # cosine distance (average linkage, topic projected out) sharing a group
MMR_MAX_SIM = 0.9  # a quote this similar to one already chosen is a near-duplicate
_CELL_CHARS = 220  # longer sentences are cut to their clause in a table cell

_ASKS_CONTRIBUTION = re.compile(
    r"\b(propos\w*|introduc\w*|contribut\w*|main idea|key idea|what is (it|the \w+ paper|"
    r"that paper) about|what do(es)? (it|they|the \w+ (one|paper)) (do|present|offer))\b", re.I)
_STATES_CONTRIBUTION = re.compile(
    r"\b(we|this (paper|work|study)|our (method|approach|framework|model))\s+(\w+\s+)?"
    r"(propose|introduce|present|develop|design|contribute|put forward)s?\b"
    r"|\b(in this (paper|work)|we call|named|dubbed|termed)\b", re.I)
# A number that is a quantity ("34.4", "71.1%", "10x"), not a name part ("3D", "GPT-4").
_FIGURE = re.compile(r"(?<![\w-])\d+(?:[.,]\d+)*(?:\s?(?:times|×|x\b|%)|[kKMBGT]B?\b|(?![\w-]))")
_RESULT = re.compile(r"\b(outperform\w*|improv\w*|achiev\w*|reduc\w*|speed\s?-?ups?|faster|"
                     r"accura\w*|state[- ]of[- ]the[- ]art|surpass\w*|better|gains?|"
                     r"lower|higher)\b|%|×", re.I)
_DATA = re.compile(r"\b(data ?sets?|benchmarks?|corpus|corpora|evaluat\w*|experiments?|"
                   r"tasks?|trained on|tested on|imagenet|coco|glue|c4|cifar\w*|squad|"
                   r"wikitext\w*|llama\w*|gpt-?\d\w*|bert|resnet\w*)\b", re.I)

# --- the question's form ---------------------------------------------------------------

_COMPARE = re.compile(
    r"\b(compar(e|es|ed|ing|ison|isons)|versus|vs\.?|differ(s|ed|ing)?|differences?|"
    r"contrast\w*|better than|trade-?offs? between|which is (better|faster)|"
    # Implied comparisons of two or more named things (the form also needs two mentions):
    # "how do X and Y each ...", "what changed from X to Y", "X or Y: which one ...".
    r"each|chang\w* (from|between)|what'?s new in|relative to|unlike|"
    r"which (one|way|approach|method|of (them|these|the two)))\b", re.I)


_COMPARES = re.compile(
    r"\b(compar(e|ing|ison)|versus|vs\.?|differ(s|ed)?|differences?|contrast(s|ed|ing)?|"
    r"better (suited|choice|fit)|(the )?two papers|pros and cons|relates? to|adds? on top of|"
    r"(the )?same idea|more promising|(fewer|less|more|better|worse)\b[^?]*\bor)\b", re.I)
# One paper told against another it builds on, extends or replaces ("what does the streaming
# variant add on top of the original?", "how does B go beyond the earlier A?"): dev_compare2.
# Lineage words only: "compared with" and "differs from" also name a lookup's baselines
# ("the retriever that cut storage by half compared with ..."; 3 dev lookups).
_BUILDS_ON = re.compile(
    r"\b(improv\w* (on|upon)|go(es|ing)? (beyond|further)|further than|build(s|ing)? "
    r"(on|upon)|extends?|extension of|differently (from|than)|adds? (on top of|over|to)|"
    r"(the|its) (earlier|original|previous|prior|predecessor|follow-?up|later))\b", re.I)
# A search for one paper, or a how-to: "which paper compares ...", "do you recall the title",
# "how can you compare ...".
_LOOKS_FOR_ONE = re.compile(
    r"\b(which|what|is there an?|any|a) (\w+ )?(paper|work|study|one)\b(?! (and|or|vs))|"
    r"\b(recall|remember|title)\b|\bhow (can|could|should|do|to) (you |we |i |one )?compare",
    re.I)
_LISTS_THREE = re.compile(r",[^,?;:]+,?\s+(and|or)\s", re.I)  # "A, B(,) and C"

def question_form(question: str) -> Literal["comparison", "survey", "single", "neutral"]:
    """What the wording asks for, before looking at the papers."""
    figure = bool(_ASKS_FIGURE.search(question))
    # "What speedup does X get over Y?" asks for a figure, not a comparison; "how do X and Y
    # each improve ...?" asks what each does.
    each = bool(re.search(r"\b(each|both)\b", question, re.I))
    number = figure and not each
    if _COMPARE.search(question) and not number and len(_mentions(question)) >= 2:
        return "comparison"
    # Compared things described rather than named ("compare the gradient noise scale paper
    # with ..."): a plain comparison word, and not a search for one paper or for papers that
    # make a comparison ("which papers compare LoRA with full fine-tuning?").
    # "Compare the papers that ..." compares a set the retrieval must find: a survey.
    a_set = bool(_PLURAL.search(question)) and not re.search(r"\b(two|three|both)\b",
                                                             question, re.I)
    # A paper told against one it builds on is a comparison unless a quantity is asked for
    # by name: "what does B add over A to cut memory use?" is one.
    builds_on = bool(_BUILDS_ON.search(question)) \
        and not (_ASKS_QUANTITY.search(question) and not each)
    if (_COMPARES.search(question) and not number or builds_on) \
            and not _ASKS_PLURAL.search(question) \
            and not a_set and not _LOOKS_FOR_ONE.search(question):
        return "comparison"
    if _ASKS_PLURAL.search(question):
        return "survey"
    plural = bool(_PLURAL.search(question)) and not figure
    singular = bool(_SINGULAR.search(question))
    if plural and not singular:
        return "survey"
    if singular:
        return "single"
    return "neutral"


_TOKEN = re.compile(r"[^\s,;:?!()]+")
_ALIAS = re.compile(r"\(([^()]{1,60})\)")  # "DroQ (Dropout Q-functions)": another name
_JOIN = frozenset({",", "and", "or", "vs", "vs.", "versus", "with", "to", "against", "from",
                   "compare", "compares", "compared", "differ", "differs"})
_NOT_NAMES = frozenset({"what", "how", "which", "compare", "contrast", "is", "are", "do",
                        "does", "the", "a", "an", "in", "for", "between", "i", "and", "it",
                        "they", "this", "that", "these", "those", "their", "its"})
_PREFIX_WORDS = 2  # lowercase words that may open a name after a joiner: "or exact Gauss-Newton"


def _name_like(token: str) -> bool:
    word = token.strip(".'\"")
    if len(word) < 2 or word.lower() in _NOT_NAMES:
        return False
    return bool(re.search(r"[A-Z]", word[1:]) or re.search(r"\d", word)
                or (word[0].isupper() and word.lower() != word)
                or not word.isascii())


def _mentions(question: str) -> list[str]:
    """The things a comparison question names, in order: 'How do Muon and AdamW compare?'
    -> ['Muon', 'AdamW']."""
    return [names[0] for names in _mention_names(question)]


def _mention_names(question: str) -> list[list[str]]:
    """Each thing a comparison question names, with the other names the question gives it in
    parentheses: 'CrossQ and DroQ (Dropout Q-functions)' -> [['CrossQ'], ['DroQ', 'Dropout
    Q-functions']]. The longest chain of name-like words (capitalised, CamelCase, with a
    digit) joined by 'and', 'vs', ',', 'with', 'compared to' ...; a joiner may be followed by
    a word or two that open the next name ('FOSI or exact Gauss-Newton')."""
    aliases = {m.start(): m.group(1).strip() for m in _ALIAS.finditer(question)}
    # Blank the parentheses out (same length: positions stay) so the chain reads past them.
    plain = _ALIAS.sub(lambda m: " " * len(m.group(0)), question)
    tokens = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(plain)]
    tokens += [(",", m.start(), m.end()) for m in re.finditer(r",", plain)]
    tokens.sort(key=lambda t: t[1])
    best: list[list] = []
    chain: list[list] = []  # [name, end position]
    joined = True
    prefix: list[str] = []
    for tok, _, end in tokens:
        word = tok.strip(".'\"")
        if _name_like(tok):
            name = " ".join(prefix + [word])
            if joined or not chain:
                chain.append([name, end])
            else:
                chain[-1] = [chain[-1][0] + " " + name, end]
            joined, prefix = False, []
        elif tok.lower() in _JOIN and chain:
            joined, prefix = True, []
        elif joined and chain and len(prefix) < _PREFIX_WORDS \
                and re.fullmatch(r"[a-z][a-z-]*", word) \
                and word.lower() not in _NOT_NAMES:
            prefix.append(word)
        else:
            if len(chain) > len(best):
                best = chain
            chain, joined, prefix = [], True, []
    if len(chain) > len(best):
        best = chain
    if len(best) < 2:
        return []
    out: dict[str, list[str]] = {}
    for name, end in best:
        after = next((pos for pos in aliases if pos >= end and not plain[end:pos].strip()),
                     None)
        alias = re.sub(r"^(the|a|an)\s+", "", aliases[after], flags=re.I) \
            if after is not None else ""
        out.setdefault(name, [name] + ([alias] if alias else []))
    return list(out.values())


def content_words(text: str) -> set[str]:
    return {w.rstrip(".") for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


# --- records ---------------------------------------------------------------------------


@dataclass
class Pick:
    hit: Hit
    n: int
    quotes: list[str]
    score: float
    vectors: np.ndarray | None = field(default=None, repr=False)  # one per quote


@dataclass
class Group:
    label: list[str]  # distinctive terms, the papers' own words
    picks: list[Pick]


@dataclass
class Row:
    pick: Pick
    proposes: str | None
    result: str | None
    data: str | None


@dataclass
class Plan:
    shape: Shape
    picks: list[Pick]
    groups: list[Group] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    figure_first: bool = False


# --- sentence vectors (cached: the same abstracts come back question after question) -----

_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()
_CACHE_MAX = 20_000
_CACHE_LOCK = threading.Lock()


def _embed(embedder: Embedder, texts: list[str]) -> np.ndarray:
    with _CACHE_LOCK:
        missing = list(dict.fromkeys(t for t in texts if t not in _CACHE))
    if missing:
        fresh = embedder.embed(missing)
        with _CACHE_LOCK:
            for t, v in zip(missing, fresh, strict=True):
                _CACHE[t] = np.asarray(v, dtype=np.float32)
            while len(_CACHE) > _CACHE_MAX:
                _CACHE.popitem(last=False)
    with _CACHE_LOCK:
        out = []
        for t in texts:
            v = _CACHE.get(t)
            if v is None:  # evicted by another thread meanwhile
                v = np.asarray(embedder.embed([t])[0], dtype=np.float32)
            out.append(v)
        return np.stack(out) if out else np.zeros((0, 1), dtype=np.float32)


@dataclass
class _Scored:
    n: int
    hit: Hit
    sents: list[str]
    scores: np.ndarray
    vectors: np.ndarray

    @property
    def best(self) -> float:
        return float(self.scores.max())


def _preselect(question: str, sents: list[str], limit: int | None,
               contribution: bool) -> list[str]:
    """At most `limit` sentences of an abstract worth embedding, in reading order: those
    sharing the most content words with the question (a statement of the contribution
    counts as one more). Bounds the embedding work of a 12-paper survey."""
    if limit is None or len(sents) <= limit:
        return sents
    qwords = content_words(question)

    def lexical(s: str) -> int:
        return len(qwords & content_words(s)) + int(
            contribution and bool(_STATES_CONTRIBUTION.search(s)))

    ranked = sorted(range(len(sents)), key=lambda i: (-lexical(sents[i]), i))[:limit]
    return [sents[i] for i in sorted(ranked)]


def _score(question: str, chosen: list[tuple[int, Hit]], embedder: Embedder,
           wants_figure: bool, contribution: bool = False,
           limit: int | None = None) -> list[_Scored]:
    split = [_preselect(question, sentences(h.abstract) or [h.abstract], limit, contribution)
             for _, h in chosen]
    flat = [s for sents in split for s in sents]
    q = _embed(embedder, [question])[0]
    vectors = _embed(embedder, flat)
    qwords = content_words(question)
    # "What does it propose?" is answered by the abstract's statement of its contribution,
    # which embedding similarity to the (nearly content-free) question does not find.
    # A survey quotes what each paper does, so it prefers that statement too.
    wants_contribution = contribution or bool(_ASKS_CONTRIBUTION.search(question))
    out, i = [], 0
    for (n, h), sents in zip(chosen, split, strict=True):
        vecs = vectors[i:i + len(sents)]
        i += len(sents)
        scores = []
        for s, v in zip(sents, vecs, strict=True):
            overlap = len(qwords & content_words(s)) / max(1, len(qwords))
            number = 0.08 if wants_figure and _FIGURE.search(s) else 0.0
            claim = (SURVEY_CLAIM_BONUS if contribution else 0.12) \
                if wants_contribution and _STATES_CONTRIBUTION.search(s) else 0.0
            scores.append(float(v @ q) + 0.35 * overlap + number + claim)
        out.append(_Scored(n, h, sents, np.array(scores), vecs))
    return out


# --- the fitted survey relevance model ---------------------------------------------------

FEATURES = ("score", "best", "best_gap", "cover", "rank")


@lru_cache(maxsize=1)
def survey_model() -> dict:
    text = resources.files("assistant").joinpath("survey.json").read_text(encoding="utf-8")
    return json.loads(text)


def survey_features(question: str, scored: list[_Scored]) -> list[dict[str, float]]:
    """Per candidate paper: fused relevance, best-sentence score and its gap to the best
    paper's, share of the question's content words in title + abstract, rank."""
    if not scored:
        return []
    top_best = max(s.best for s in scored)
    qwords = content_words(question)
    return [{"score": s.hit.score, "best": s.best, "best_gap": s.best - top_best,
             "cover": len(qwords & content_words(f"{s.hit.title} {s.hit.abstract}"))
             / max(1, len(qwords)),
             # Capped: past the sources a survey shows, rank says little more (uncapped over
             # a pool of 30, dev synthesis cited 0.883 at 12.8 papers per survey; capped,
             # 0.886 at 13.2).
             "rank": float(min(i + 1, SURVEY_MAX))} for i, s in enumerate(scored)]


def relevance(features: list[dict[str, float]], model: dict | None = None) -> list[float]:
    model = model or survey_model()
    w, b = model["weights"], model["bias"]
    out = []
    for f in features:
        z = b + sum(w[k] * (f[k] - model["mean"][k]) / model["scale"][k] for k in FEATURES)
        out.append(1.0 / (1.0 + np.exp(-z)))
    return out


# --- planning --------------------------------------------------------------------------


def wants_survey(question: str, hits: list[Hit], embedder: Embedder,
                 named: AbstractSet[str] = frozenset()) -> bool:
    return layout(question, hits, embedder, named) == "survey"


def layout(question: str, hits: list[Hit], embedder: Embedder,
           named: AbstractSet[str] = frozenset()) -> Wanted:
    """A survey of several papers, one paper, or one paper that also names the other papers
    sure to answer ("hedged"), rather than a comparison of named ones (assistant/intent.py).
    Decided once per question, on the full ranking."""
    form = question_form(question)
    # Asked for papers in the plural ("which papers ...", "what are the main approaches"):
    # a survey, and the relevance model decides how many papers it holds (one is a lookup).
    # Otherwise the fitted decision weighs the wording against the retrieval. So does a
    # question naming one paper, whatever its form: "Which papers study MicroAdam?" wants
    # that paper, "what else besides SCOPE compresses the KV cache?" the papers around it.
    # (A name used to make a lookup: on dev_themes5, written blind, such surveys cited 0.22
    # of their gold papers; 0.79 with this decision before it was refitted on them, and 2
    # of the set's 19 named lookups became surveys, led by the named paper.)
    if form == "comparison":
        return "single"
    if form == "survey" and not named:
        return "survey"
    return intent.decide(question, hits, embedder,
                         peer_relevance(question, list(enumerate(hits, start=1)), embedder))


PEERS = 3  # other candidates whose survey relevance makes intent's "peers" feature


def peer_relevance(question: str, hits: list[tuple[int, Hit]], embedder: Embedder) -> float:
    """Mean survey relevance of the best PEERS candidates after the first: several papers
    answer a survey question, one answers a lookup. Scored exactly as a survey scores them,
    once: the survey or hedged answer that follows reuses the scored candidates."""
    if len(hits) < 2:
        return 0.0
    _, probs = _candidates(question, hits, embedder)
    return float(np.mean(sorted(probs[1:], reverse=True)[:PEERS]))


_SCORED: OrderedDict[tuple, tuple[list[_Scored], list[float]]] = OrderedDict()
_SCORED_LOCK = threading.Lock()


def _candidates(question: str, hits: list[tuple[int, Hit]], embedder: Embedder,
                wants_figure: bool = False) -> tuple[list[_Scored], list[float]]:
    """The first SURVEY_POOL hits scored as a survey scores them, and their survey relevance.
    Kept for the last few questions: the layout decision, the survey and a hedged answer's
    extra sources all ask for the same candidates."""
    key = (id(embedder), question, wants_figure,
           tuple((n, h.paper_id, h.abstract) for n, h in hits[:SURVEY_POOL]))
    with _SCORED_LOCK:
        if key in _SCORED:
            _SCORED.move_to_end(key)
            return _SCORED[key]
    scored = _score(question, hits[:SURVEY_POOL], embedder, wants_figure, contribution=True,
                    limit=SURVEY_SENTENCES)
    out = (scored, relevance(survey_features(question, scored)))
    with _SCORED_LOCK:
        _SCORED[key] = out
        while len(_SCORED) > 16:
            _SCORED.popitem(last=False)
    return out


def plan(question: str, hits: list[tuple[int, Hit]], embedder: Embedder, settings: Settings,
         focus: AbstractSet[str] = frozenset(), named: AbstractSet[str] = frozenset(),
         wanted: Wanted | None = None, generic: Callable[[str], bool] | None = None,
         chosen: AbstractSet[str] | None = None) -> Plan:
    """Decide the shape and choose papers and sentences. `hits`: (source number, hit);
    `wanted`: the answerer's layout() on the full ranking (else decided on `hits`);
    `chosen`: a survey's papers, picked from a deeper pool by survey_sources();
    `generic`: words too common in the corpus to name a survey's group (group_terms)."""
    if not hits:
        return Plan("single", [])
    form = question_form(question)
    wants_figure = bool(_ASKS_FIGURE.search(question))
    # Two papers named by title or name make a comparison whatever the wording ("is distzo2
    # or lamb better for ..."): on dev, only comparison questions name two.
    if form == "comparison" or len(named) >= 2:
        compared = _compared(question, hits, focus, named)
        if len(compared) >= 2:
            scored = _score(question, compared, embedder, wants_figure=True)
            return _comparison(scored)
    if wanted is None:
        wanted = layout(question, [h for _, h in hits], embedder, named)
    if not focus and wanted == "survey":
        keep = _survey_keep(question, hits, embedder, wants_figure, named, chosen)
        # A survey of one paper is a lookup: the retrieval holds one dominant paper. (A
        # question of neither form stays a lookup too: on dev, promoting those with several
        # strong papers to surveys turned 4 lookups and no synthesis question into surveys.)
        if len(keep) > 1:
            return _survey(keep, content_words(question), _embed(embedder, [question])[0],
                           generic)
    return _single(question, hits, embedder, settings, focus, named, wants_figure,
                   hedged=wanted == "hedged")


def _survey_keep(question: str, hits: list[tuple[int, Hit]], embedder: Embedder,
                 wants_figure: bool, named: AbstractSet[str],
                 chosen: AbstractSet[str] | None = None) -> list[_Scored]:
    """The papers a survey quotes, lead first: those the relevance model keeps among the
    first SURVEY_POOL hits, at most SURVEY_MAX; or, given `chosen` (survey_sources() picked
    them from a deeper pool than `hits`), those."""
    if chosen is not None:
        picked = [(n, h) for n, h in hits if h.paper_id in chosen]
        return _score(question, picked, embedder, wants_figure, contribution=True,
                      limit=SURVEY_SENTENCES) if picked else []
    scored, probs = _candidates(question, hits, embedder, wants_figure)
    threshold = survey_model()["threshold"]
    # The named paper leads, as it leads the ranking (a title match); else the first.
    lead = [s for s in scored if s.hit.paper_id in named] or scored[:1]
    rest = [s for s, p in zip(scored, probs, strict=True)
            if p >= threshold and all(s is not x for x in lead)]
    return (lead + rest)[:SURVEY_MAX]


def survey_sources(question: str, pool: list[Hit], embedder: Embedder,
                   named: AbstractSet[str] = frozenset()) -> tuple[list[Hit], frozenset[str]]:
    """A survey's numbered sources out of its candidate pool (up to SURVEY_POOL papers, in
    ranking order): the papers it quotes (_survey_keep), then the best-ranked of the rest,
    SURVEY_MAX in all, in the pool's order; and the ids of the papers it quotes (plan's
    `chosen`). The pool is deeper than the sources shown: a relevant paper ranked 25th is
    quoted, a bystander ranked 5th is still shown."""
    keep = _survey_keep(question, list(enumerate(pool, start=1)), embedder,
                        bool(_ASKS_FIGURE.search(question)), named)
    kept = frozenset(s.hit.paper_id for s in keep)
    rest = [h.paper_id for h in pool if h.paper_id not in kept][: SURVEY_MAX - len(kept)]
    shown = kept | set(rest)
    return [h for h in pool if h.paper_id in shown], kept


def select(question: str, hits: list[tuple[int, Hit]], embedder: Embedder, settings: Settings,
           focus: AbstractSet[str] = frozenset(),
           named: AbstractSet[str] = frozenset()) -> list[Pick]:
    """The papers and sentences quoted (whatever the shape)."""
    return plan(question, hits, embedder, settings, focus, named).picks


def _single(question, hits, embedder, settings, focus, named, wants_figure,
            hedged: bool = False) -> Plan:
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
    scored = _score(question, chosen, embedder, wants_figure)
    picks: list[Pick] = []
    taken: list[np.ndarray] = []
    for s in scored:
        order = [int(i) for i in np.argsort(-s.scores)]
        best = _mmr(order, s.vectors, taken, settings.extractive_sentences)
        if wants_figure:
            # The sentence stating the asked figure first, then its context in reading order.
            # The figure may sit in a sentence less like the question than the context picked
            # ("TPO is 40x faster" against "how much faster is TPO at clustering ..."): then
            # the best-scoring sentence with a figure takes the last pick's place.
            figure = next((i for i in best if _FIGURE.search(s.sents[i])), None)
            if figure is None:
                figure = next((i for i in order if _FIGURE.search(s.sents[i])), best[0])
                if figure not in best:
                    best = best[:max(0, settings.extractive_sentences - 1)] + [figure]
            best = [figure] + sorted(i for i in best if i != figure)
        else:
            best = sorted(best)
        taken += [s.vectors[i] for i in best]
        picks.append(Pick(s.hit, s.n, [s.sents[i] for i in best], s.best,
                          s.vectors[best]))
    # A named paper's lookup quotes no runner-up; hedged, it names the papers sure to answer.
    if not focus and (not named or hedged):
        bar, most = (HEDGE_RELEVANCE, HEDGE_MAX) if hedged else (RUNNER_UP_RELEVANCE, 1)
        picks += _also(question, hits, embedder, {p.n for p in picks}, taken, bar, most)
    return Plan("single", picks, figure_first=wants_figure)


def _also(question: str, hits: list[tuple[int, Hit]], embedder: Embedder, quoted: set[int],
          taken: list[np.ndarray], bar: float, most: int) -> list[Pick]:
    """Up to `most` other sources the survey relevance model gives at least `bar`, one quote
    each (what the paper does), scored exactly as a survey scores them."""
    scored, probs = _candidates(question, hits, embedder)
    out: list[Pick] = []
    for s, p in zip(scored, probs, strict=True):
        if len(out) >= most:
            break
        if p < bar or s.n in quoted:
            continue
        best = _mmr([int(i) for i in np.argsort(-s.scores)], s.vectors, taken, 1)
        if best:
            taken.append(s.vectors[best[0]])
            out.append(Pick(s.hit, s.n, [s.sents[best[0]]], s.best, s.vectors[best]))
    return out


def _mmr(order: list[int], vectors: np.ndarray, taken: list[np.ndarray], k: int) -> list[int]:
    """Up to k sentence indices in `order`, skipping any near-duplicate (cosine above
    MMR_MAX_SIM) of a sentence already quoted. At least one is always returned."""
    out: list[int] = []
    for i in order:
        if any(float(vectors[i] @ t) > MMR_MAX_SIM for t in taken) or any(
                float(vectors[i] @ vectors[j]) > MMR_MAX_SIM for j in out):
            continue
        out.append(i)
        if len(out) == k:
            break
    return out or order[:1]


def _survey(scored: list[_Scored], avoid: AbstractSet[str] = frozenset(),
            question_vector: np.ndarray | None = None,
            generic: Callable[[str], bool] | None = None) -> Plan:
    picks: list[Pick] = []
    taken: list[np.ndarray] = []
    for s in scored:
        order = [int(i) for i in np.argsort(-s.scores)]
        (i,) = _mmr(order, s.vectors, taken, 1)
        if any(float(s.vectors[i] @ t) > MMR_MAX_SIM for t in taken):
            continue  # every sentence of it repeats one already quoted
        taken.append(s.vectors[i])
        picks.append(Pick(s.hit, s.n, [s.sents[i]], s.best, s.vectors[[i]]))
    groups = _group(picks, avoid, question_vector, generic) \
        if len(picks) >= SURVEY_MIN_GROUPED else []
    return Plan("survey", picks, groups=groups)


def _group(picks: list[Pick], avoid: AbstractSet[str] = frozenset(),
           question_vector: np.ndarray | None = None,
           generic: Callable[[str], bool] | None = None) -> list[Group]:
    """Papers grouped by what their quoted sentences say. What every sentence shares with
    the question (the topic itself) is projected out first, so the groups differ by how
    the papers go about it."""
    from sklearn.cluster import AgglomerativeClustering

    # Every pick of a survey carries its quotes' vectors (_pick).
    x = np.stack([p.vectors[0] for p in picks if p.vectors is not None]).astype(np.float64)
    if question_vector is not None:
        q = question_vector / max(float(np.linalg.norm(question_vector)), 1e-9)
        x = x - np.outer(x @ q, q)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    labels = AgglomerativeClustering(n_clusters=None, distance_threshold=GROUP_DISTANCE,
                                     metric="cosine", linkage="average").fit_predict(x)
    if len(set(labels)) > MAX_GROUPS:
        labels = AgglomerativeClustering(n_clusters=MAX_GROUPS, metric="cosine",
                                         linkage="average").fit_predict(x)
    order: dict[int, list[Pick]] = {}
    for label, p in zip(labels, picks, strict=True):  # groups in order of their best paper
        order.setdefault(int(label), []).append(p)
    members = list(order.values())
    if len(members) == 1:
        return []
    names = group_terms([[f"{p.hit.title}. {p.hit.title}. {p.hit.abstract}" for p in g]
                         for g in members], avoid=avoid, generic=generic)
    return [Group(name, g) for name, g in zip(names, members, strict=True)]


def group_terms(groups: list[list[str]], top: int = 3, avoid: AbstractSet[str] = frozenset(),
                generic: Callable[[str], bool] | None = None) -> list[list[str]]:
    """c-TF-IDF: each group's documents as one class; a term's weight is its frequency in
    the class times log(1 + average class size / its frequency over all classes). The top
    terms name the group: two-word terms count 1.5x (they name methods better), words of
    the question (`avoid`, shared by every group) a third. A word inside a chosen term is
    skipped, and so is a term made only of `generic` words: c-TF-IDF sees only this
    answer's groups, so in a corpus of LLM papers "language, token, LLMs" could name a
    group; the corpus says those words name nothing."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    docs = [" ".join(g) for g in groups]
    stop = sorted(_STOP | ENGLISH_STOP_WORDS | _LABEL_STOP)
    # Whole words as the claim checker reads them (assistant/support.py tokens): "4-bit" is
    # one word there, so a label saying "bit" (cut out of it) would cite papers that never
    # say "bit" and fail its own check.
    vec = CountVectorizer(ngram_range=(1, 2), stop_words=stop, lowercase=True,
                          token_pattern=r"(?<![a-z0-9.\-])(?=[a-z][a-z0-9.\-]*[a-z0-9])"
                                        r"[a-z][a-z0-9]*(?:[.\-][a-z0-9]+)*"
                                        r"(?![a-z0-9])")
    try:
        counts = vec.fit_transform(docs).toarray().astype(float)
    except ValueError:  # nothing but stop words
        return [[] for _ in groups]
    terms = vec.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    avg = counts.sum() / len(docs)
    idf = np.log1p(avg / np.maximum(counts.sum(axis=0), 1))
    boost = np.array([(1.5 if " " in t else 1.0)
                      * (1 / 3 if set(t.split()) & avoid else 1.0) for t in terms])
    weights = tf * idf * boost
    out = []
    for row, c in zip(weights, counts, strict=True):
        chosen: list[str] = []
        for j in np.argsort(-row):
            if row[j] <= 0 or c[j] < 1:
                break
            term = terms[j]
            if any(set(term.split()) & set(t.split()) for t in chosen):
                continue
            if generic is not None and all(generic(w) for w in term.split()):
                continue
            chosen.append(term)
            if len(chosen) == top:
                break
        out.append(chosen)
    return [[_as_written(t, docs[i]) for t in terms_] for i, terms_ in enumerate(out)]


def _as_written(term: str, doc: str) -> str:
    """The term as the papers write it ("KD", "BitStack"), not lowercased."""
    words = r"[\s\-]+".join(re.escape(w) for w in re.split(r"[\s\-]+", term))
    forms = [m.group(0) for m in re.finditer(rf"(?<![\w-]){words}(?![\w-])", doc, re.I)]
    if not forms or any(f == f.lower() for f in forms):  # a title's or sentence's capital
        return term  # is not the word's own
    return max(set(forms), key=forms.count)


_LABEL_STOP = frozenset("""model models results based new large paper training performance
existing problem problems achieve achieves achieved significantly also however additionally
furthermore moreover et al e.g i.e recent recently finally novel propose proposed approach method
methods framework existing state art outperforms compared demonstrate demonstrates extensive
experiments effective efficient effectively efficiently simple key critical challenge
challenges address addresses work works various multiple different like including""".split())


def _compared(question: str, hits: list[tuple[int, Hit]], focus: AbstractSet[str],
              named: AbstractSet[str]) -> list[tuple[int, Hit]]:
    """The papers a comparison is about: a follow-up's papers; else the papers the question
    names (by title, else each name's best-ranked paper); the best-ranked of the rest stand
    for things it describes rather than names, up to how many things it compares."""
    got = [(n, h) for n, h in hits if h.paper_id in focus]
    if len(got) >= 2:
        return got
    mentions = _mention_names(question)
    want = max(2, len(mentions), 3 if _LISTS_THREE.search(question) else 2)
    out = [(n, h) for n, h in hits if h.paper_id in named]
    for names in mentions:
        if any(_answers_to(names, h) for _, h in out):
            continue
        found = _paper_named(names, [x for x in hits if x not in out])
        if found:
            out.append(found)
    if question_form(question) == "comparison":
        out += [x for x in hits if x not in out][: max(0, want - len(out))]
    return sorted(out, key=lambda x: x[0])


def _lead(title: str) -> str:
    return title.split(":", 1)[0] if ":" in title else title


def _name_tests(names: list[str]):
    """Ways a paper answers to one of `names`, most trusted first: its title says the name;
    the name is the initials of its title's lead name ('DPO' for 'Direct Preference
    Optimization: ...'); the lead name is the name with a typo; its abstract says it."""
    from rapidfuzz.distance import OSA

    patterns = [re.compile(rf"(?<![\w-]){re.escape(n)}(?![\w-])", re.I) for n in names]

    def initials(title: str) -> str:
        return "".join(w[0] for w in re.findall(r"[A-Za-z][\w-]*", _lead(title))
                       if w[0].isupper())

    def typo(n: str, title: str) -> bool:  # one slip in a short name, two in a long one
        return ":" in title and len(n) >= 5 and \
            OSA.distance(n.lower(), _lead(title).lower()) <= (1 if len(n) < 9 else 2)

    return [
        lambda h: any(p.search(h.title) for p in patterns),
        lambda h: any(n.isupper() and 2 <= len(n) <= 6 and initials(h.title) == n
                      for n in names),
        lambda h: any(typo(n, h.title) for n in names),
        lambda h: any(p.search(h.abstract) for p in patterns),
    ]


def _answers_to(names: list[str], hit: Hit) -> bool:
    """The paper is this name's by title, initials or a typo (not just a mention in its
    abstract: an abstract names the baselines it compares with)."""
    return any(test(hit) for test in _name_tests(names)[:3])


def _paper_named(names: list[str], hits: list[tuple[int, Hit]]) -> tuple[int, Hit] | None:
    """The best-ranked paper one of `names` refers to, by the most trusted test that finds
    one."""
    for test in _name_tests(names):
        found = next(((n, h) for n, h in hits if test(h)), None)
        if found:
            return found
    return None


def _comparison(scored: list[_Scored]) -> Plan:
    rows, picks = [], []
    for s in scored:
        order = [int(i) for i in np.argsort(-s.scores)]
        proposes = next((i for i in order if _STATES_CONTRIBUTION.search(s.sents[i])), None)
        result = next((i for i in order if i != proposes and _FIGURE.search(s.sents[i])
                       and _RESULT.search(s.sents[i])), None)
        if result is None:
            result = next((i for i in order if i != proposes and _RESULT.search(s.sents[i])),
                          None)
        data = next((i for i in order if i not in (proposes, result)
                     and _DATA.search(s.sents[i])), None)
        if proposes is None:
            proposes = next((i for i in order if i not in (result, data)), order[0])
        cells = [_fragment(s.sents[i], kind) if i is not None else None
                 for i, kind in ((proposes, "proposes"), (result, "result"), (data, "data"))]
        quotes = [c for c in cells if c]
        idx = [i for i in (proposes, result, data) if i is not None]
        pick = Pick(s.hit, s.n, quotes, s.best, s.vectors[idx])
        rows.append(Row(pick, *cells))
        picks.append(pick)
    return Plan("comparison", picks, rows=rows)


def _fragment(sentence: str, kind: str) -> str:
    """A verbatim piece of the sentence short enough for a table cell: the whole sentence,
    or the clause that carries what the cell is for (the figure, the contribution)."""
    sentence = sentence.strip()
    if len(sentence) <= _CELL_CHARS:
        return sentence
    clauses = re.split(r"(?<=[,;:])\s+", sentence)
    key = {"proposes": _STATES_CONTRIBUTION, "result": _FIGURE, "data": _DATA}[kind]
    best = next((i for i, c in enumerate(clauses) if key.search(c)), 0)
    text = clauses[best]
    j = best + 1
    while j < len(clauses) and len(text) + len(clauses[j]) + 1 <= _CELL_CHARS:
        text += " " + clauses[j]
        j += 1
    piece = text.rstrip(",;: ")
    return piece if piece in sentence else sentence


def defanged(p: Plan, fn) -> Plan:
    """The plan with `fn` applied to every quoted text and title (for display only: a
    quoted "[2]" of the source's own must not read as a citation of source 2)."""
    memo: dict[int, Pick] = {}

    def pick(x: Pick) -> Pick:
        if id(x) not in memo:
            memo[id(x)] = replace(x, quotes=[fn(q) for q in x.quotes],
                                  hit=x.hit.model_copy(update={"title": fn(x.hit.title)}))
        return memo[id(x)]

    return replace(
        p, picks=[pick(x) for x in p.picks],
        groups=[replace(g, picks=[pick(x) for x in g.picks]) for g in p.groups],
        rows=[Row(pick(r.pick), *(fn(c) if c else c for c in (r.proposes, r.result, r.data)))
              for r in p.rows])


# --- Markdown ----------------------------------------------------------------------------


def compose(answer: Plan | list[Pick]) -> str:
    """Markdown for the plan (a plain list of picks composes as the single shape)."""
    p = answer if isinstance(answer, Plan) else Plan("single", list(answer))
    if not p.picks:
        return ""
    if p.shape == "comparison":
        return _compose_comparison(p)
    if p.shape == "survey":
        return _compose_survey(p)
    return _compose_single(p.picks)


def _compose_single(picks: list[Pick]) -> str:
    first = picks[0]
    # Say what was found, not how many papers "address" it: nothing checked that they do.
    lead = f"Most relevant: *{first.hit.title}* [{first.n}]"
    if len(picks) > 1:
        lead += "; also relevant: " + ", ".join(f"[{p.n}]" for p in picks[1:])
    lines = [lead + ".", ""]
    for p in picks:
        lines.append(_bullet(p))
    return "\n".join(lines)


def _bullet(p: Pick) -> str:
    quoted = " ".join(f"{_end(q)} [{p.n}]." for q in p.quotes)
    return f"- **{p.hit.title}** — {quoted}"


def _cites(picks: list[Pick]) -> str:
    return "".join(f"[{p.n}]" for p in picks)


def _compose_survey(p: Plan) -> str:
    first = p.picks[0]
    lead = f"Most relevant: *{first.hit.title}* [{first.n}]"
    if not p.groups:
        if len(p.picks) > 1:
            lead += f"; {len(p.picks)} papers in all: {_cites(p.picks)}"
        return "\n".join([lead + ".", ""] + [_bullet(x) for x in p.picks])
    named = "; ".join(f"*{_label(g)}* {_cites(g.picks)}" for g in p.groups)
    lines = [f"{lead}; {len(p.picks)} papers in {len(p.groups)} groups by what their "
             f"abstracts say: {named}.", ""]
    for i, g in enumerate(p.groups, start=1):
        label = _label(g)
        lines += [f"**{i}. {label[:1].upper()}{label[1:]}** {_cites(g.picks)}", ""]
        lines += [_bullet(x) for x in g.picks]
        lines.append("")
    return "\n".join(lines).rstrip()


def _label(g: Group) -> str:
    return ", ".join(g.label) if g.label else "related work"


HEADER = "|Paper|Proposes|Headline result|Data, benchmark|"


def _compose_comparison(p: Plan) -> str:
    names = " and ".join(f"*{r.pick.hit.title}* [{r.pick.n}]" for r in p.rows) \
        if len(p.rows) == 2 else ", ".join(f"*{r.pick.hit.title}* [{r.pick.n}]"
                                            for r in p.rows)
    lines = [f"Comparing {names}, in their own words:", "", HEADER, "|---|---|---|---|"]
    for r in p.rows:
        n = r.pick.n
        cells = [f"**{_cell(_short(r.pick.hit.title))}** [{n}]"] + [
            f"{_cell(_end(c))} [{n}]" if c else "—" for c in (r.proposes, r.result, r.data)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _short(title: str) -> str:
    """A table row's name: the paper's own name before the title's colon ("VastGaussian"),
    else the title (the lead line above the table gives every full title)."""
    name = title.split(":", 1)[0].strip()
    return name if ":" in title and 1 < len(name) <= 40 else title


def _cell(text: str) -> str:
    """Table-cell text: a pipe inside a quote is escaped (GFM), a line break is a space."""
    return " ".join(text.split()).replace("|", "\\|")


def _end(sentence: str) -> str:
    """Drop the final period so the citation sits inside the sentence: 'foo [1].'"""
    return sentence.rstrip()[:-1] if sentence.rstrip().endswith(".") else sentence.rstrip()
