"""Claim support: every sentence of an answer scored against the abstract it cites.

For each claim (a sentence of the answer, or the part of it before a citation marker) and
each source it cites, three kinds of evidence are combined:

* **embedding similarity** of the claim to the abstract's best sentence (or title) and to the
  abstract as a whole (the mean of its sentence vectors), with the bundled MiniLM; the best
  sentence is the evidence shown to the reader;
* **term overlap**: the share of the claim's content words (stemmed) that the paper contains,
  each weighted by how rare it is in the corpus being searched (inverse document frequency:
  a word most abstracts use says little about which paper a claim comes from);
* **how ordinary the claim is**: its similarity to the closest 1% of a fixed sample of the
  corpus's sentences. A claim close to everything (generic wording) needs a closer match
  before a paper counts as its source; the fitted model weighs its best-sentence cosine
  against this;
* **figures**: a number, percentage or model size in the claim that the paper does not state
  (equivalent forms allowed: "50%" = "half", "1.5B" = "1.5 billion", "34%" ~ "34.4%") makes
  the claim unsupported, whatever the other signals say.

A logistic model fitted offline (weights and thresholds in `claim_support.json`, with what
they were fitted on; refit with `bench/claim_support.py --fit`) turns the signals into a
support score in [0, 1] and a label: supported | weak | unsupported. A quoted sentence (the
extractive mode) is found verbatim in its source and is supported by construction; no
embedding is computed for it. When a cited source does not support a claim but another
retrieved source does, the claim names it (`better`); nothing is rewritten.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import math
import random
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from assistant.citations import MARKER, parse_numbers, sentences, uncited_sentences
from assistant.types import Answer, Claim, Source

FEATURES = ("cos_best", "cover_cidf", "bg_q99")
BACKGROUND = 300  # corpus sentences a claim is compared with (fixed sample)
BACKGROUND_Q = 0.99
MIN_CORPUS = 20  # fewer abstracts than this: no corpus statistics (every word weighs the same)
VERBATIM_MIN_TOKENS = 5
VERBATIM_SHARE = 0.8  # of a claim's tokens found as one run in the source: a quote
REPAIR_MARGIN = 0.1

# --- words ------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:[.\-][a-z0-9]+)*")
_STOP = frozenset("""a an the of in on for to and or with by from at as is are was were be
been being this that these those it its their there which what who whom how why when where
does do did can could would should may might will shall has have had not no nor but than then
so such into onto over under about above below between through during while both each other
more most less least very also only just even own same we our us they them he she his her you
your i me my one all any some many much few several via per within without across up down out
off again further once here if else whether either neither among upon""".split())
# Words that only point at papers ("also relevant: [2]"): a sentence of nothing else makes
# no claim about the paper beyond its relevance.
_META = frozenset("""relevant related relevance paper papers work works study studies article
articles see source sources result results approach approaches method methods find found
closest match matches retrieved also most groups group abstracts abstract say says comparing
compared words own all""".split())
# How the answer is laid out, not what a paper says: "6 papers in 2 groups".
_LAYOUT = re.compile(r"\b\d+\s+(?:papers?|groups?|sources?|studies|themes?)\b", re.I)
LABEL_WORDS = 6  # a phrase this short, all in the cited papers' text, names their topic


@cache
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def content_stems(text: str) -> list[str]:
    words = [w for w in tokens(text) if w not in _STOP and (len(w) > 1 or w.isdigit())]
    return _stemmer().stemWords(words)


def _strip(text: str) -> str:
    """Claim text without citation markers, defanged references and Markdown emphasis."""
    text = MARKER.sub(" ", text)
    text = _LAYOUT.sub(" ", text)
    text = re.sub(r"\[ref\. [^\]]*\]", " ", text)
    text = re.sub(r"[*`#>|]+|(?<!\w)_+|_+(?!\w)", " ", text)  # not the _ of \pi_0
    text = re.sub(r"^\s*(?:[-•]|\d+[.)])\s+", " ", text)
    return " ".join(text.split()).strip(" -—–:;,")


# --- figures ----------------------------------------------------------------------------

_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9,
          "t": 1e12, "trillion": 1e12}
_NUMBER = re.compile(
    r"(?<![A-Za-z_\d.,])(?<![A-Za-z]-)(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
    r"(?:\s*(%|percent\b|per cent\b|x\b|×|-?fold\b|times\b|"
    r"thousand\b|million\b|billion\b|trillion\b|[kKMBT](?![A-Za-z])))?(?![A-Za-z\d])")
# Fractions and multiples written as words: required in a claim, matched in the paper.
_FRACTION_WORDS = {
    "half": (0.5, 50.0), "halve": (0.5, 50.0), "halves": (0.5, 50.0), "halved": (0.5, 50.0),
    "halving": (0.5, 50.0),
    "a third": (1 / 3, 100 / 3), "one third": (1 / 3, 100 / 3), "one-third": (1 / 3, 100 / 3),
    "a quarter": (0.25, 25.0), "one quarter": (0.25, 25.0), "one-quarter": (0.25, 25.0),
    "two thirds": (2 / 3, 200 / 3), "two-thirds": (2 / 3, 200 / 3),
    "three quarters": (0.75, 75.0), "three-quarters": (0.75, 75.0),
    "double": (2.0,), "doubles": (2.0,), "doubled": (2.0,), "doubling": (2.0,),
    "twice": (2.0,), "triple": (3.0,), "triples": (3.0,), "tripled": (3.0,), "thrice": (3.0,),
    "twofold": (2.0,), "two-fold": (2.0,), "threefold": (3.0,), "three-fold": (3.0,),
    "fourfold": (4.0,), "four-fold": (4.0,), "fivefold": (5.0,), "tenfold": (10.0,),
    "ten-fold": (10.0,), "hundredfold": (100.0,),
}
# Counting words: matched in the paper ("three datasets" states 3), never required.
_COUNT_WORDS = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_COUNT_WORDS |= {"twenty": 20.0, "thirty": 30.0, "forty": 40.0, "fifty": 50.0,
                 "hundred": 100.0, "dozen": 12.0}
_WORDS_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _FRACTION_WORDS), key=len,
                                                reverse=True)) + r")\b", re.I)
_COUNT_RE = re.compile(r"\b(" + "|".join(_COUNT_WORDS) + r")\b", re.I)
_SCALED_WORD = re.compile(r"\b(" + "|".join(_COUNT_WORDS) + r")\s+(thousand|million|billion)\b",
                          re.I)


@dataclass(frozen=True)
class Figure:
    text: str
    # Equivalent readings, each (value, tolerance): "50%" -> (50, 0.5), (0.5, 0.005). The
    # tolerance is half a unit of the last written digit: "34%" and "34.4%" match.
    values: tuple[tuple[float, float], ...]


def figures(text: str, *, words: bool = True) -> list[Figure]:
    """Numbers stated in `text` (citation markers ignored), with their equivalent readings."""
    text = MARKER.sub(" ", re.sub(r"\[ref\. [^\]]*\]", " ", text))
    out = []
    for m in _NUMBER.finditer(text):
        raw, unit = m.group(1), (m.group(2) or "").strip().lower()
        value = float(raw.replace(",", ""))
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        scale = _SCALE.get(unit.lstrip("-"), 1.0)
        v, tol = value * scale, 0.5 * 10 ** -decimals * scale
        values = ((v, tol), (v / 100, tol / 100)) if unit in ("%", "percent", "per cent") \
            else ((v, tol),)
        out.append(Figure(m.group(0).strip(), values))
    if words:
        for m in _WORDS_RE.finditer(text):
            reading = _FRACTION_WORDS[m.group(1).lower()]
            out.append(Figure(m.group(0), tuple((v, 1e-3 * max(1.0, v)) for v in reading)))
    return out


def stated_values(text: str) -> list[tuple[float, float]]:
    """(value, tolerance) pairs a source states, counting words included."""
    out = [vt for f in figures(text) for vt in f.values]
    for m in _SCALED_WORD.finditer(text):
        out.append((_COUNT_WORDS[m.group(1).lower()] * _SCALE[m.group(2).lower()], 0.5))
    out += [(_COUNT_WORDS[m.group(1).lower()], 1e-9) for m in _COUNT_RE.finditer(text)]
    return out


def missing_figures(claim: str, stated: list[tuple[float, float]], *,
                    words: bool = True) -> list[str]:
    """Figures of `claim` that no statement of the source matches (within rounding)."""
    return [f.text for f in figures(claim, words=words)
            if not any(abs(a - v) <= max(tol, atol) + 1e-9 * max(1.0, abs(v))
                       for v, tol in f.values for a, atol in stated)]


# --- the fitted model -------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    supported: float  # support >= this: supported
    weak: float  # support >= this (and below `supported`): weak; below: unsupported

    def prob(self, x: np.ndarray) -> np.ndarray:
        z = ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1 / (1 + np.exp(-z))

    def label(self, support: float) -> str:
        if support >= self.supported:
            return "supported"
        return "weak" if support >= self.weak else "unsupported"


MODEL_FILE = "claim_support.json"


@cache
def default_model() -> Model:
    data = json.loads(importlib.resources.files("assistant").joinpath(MODEL_FILE)
                      .read_text(encoding="utf-8"))
    return model_from_dict(data)


def model_from_dict(data: dict) -> Model:
    names = tuple(data["features"])
    if names != FEATURES:
        raise ValueError(f"{MODEL_FILE}: features {names} != {FEATURES}; refit with "
                         "bench/claim_support.py --fit")
    return Model(names, np.array(data["mean"]), np.array(data["scale"]),
                 np.array(data["coef"]), float(data["intercept"]),
                 float(data["thresholds"]["supported"]), float(data["thresholds"]["weak"]))


# --- sources and claims -----------------------------------------------------------------


@dataclass
class Prepared:
    """One source's text, split and indexed once per answer."""

    n: int
    title: str
    units: list[str]  # title, then the abstract's sentences
    stems: set[str]
    tokens: list[str]
    stated: list[tuple[float, float]]

    @classmethod
    def of(cls, n: int, title: str, abstract: str) -> Prepared:
        units = [title] + (sentences(abstract) or ([abstract] if abstract.strip() else []))
        units = [u for u in units if u.strip()]
        full = f"{title}\n{abstract}"
        return cls(n, title, units, set(content_stems(full)), tokens(full), stated_values(full))


@dataclass
class Score:
    support: float
    evidence: str
    missing: list[str] = field(default_factory=list)
    verbatim: bool = False
    features: np.ndarray | None = None


def _verbatim_share(claim_tokens: list[str], source_tokens: list[str]) -> float:
    if len(claim_tokens) < VERBATIM_MIN_TOKENS:
        return 0.0
    sm = difflib.SequenceMatcher(None, claim_tokens, source_tokens, autojunk=False)
    m = sm.find_longest_match(0, len(claim_tokens), 0, len(source_tokens))
    return m.size / len(claim_tokens)


@dataclass
class Corpus:
    """The corpus a claim's sources come from: in how many abstracts each stem occurs, and a
    fixed sample of abstract sentences (the background a claim's similarity is judged by).
    Built from the index for answers, from the batch (plus the index) for `verify --batch`."""

    df: dict[str, int]
    n: int
    sample: list[str]
    _vectors: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, papers: Iterable[tuple[str, str]]) -> Corpus:
        """From (title, abstract) pairs; duplicates counted once, order irrelevant."""
        unique = sorted({(t or "", a or "") for t, a in papers})
        df: Counter[str] = Counter()
        pool: list[str] = []
        for title, abstract in unique:
            df.update(set(content_stems(f"{title}\n{abstract}")))
            pool += [u for u in sentences(abstract) if len(tokens(u)) >= 4]
        sample = random.Random(0).sample(pool, min(BACKGROUND, len(pool)))
        return cls(dict(df), len(unique), sample)

    def idf(self, stem: str) -> float:
        if self.n < MIN_CORPUS:
            return 1.0
        return math.log((self.n + 1) / (self.df.get(stem, 0) + 0.5))

    def background(self, checker: Checker) -> np.ndarray:
        if self._vectors is None:
            self._vectors = checker.vectors(self.sample) if self.sample else np.zeros((0, 1))
        return self._vectors


EMPTY = Corpus({}, 0, [])


def _cover_cidf(claim: str, src: Prepared, corpus: Corpus) -> float:
    """Share of the claim's content words the paper contains, words rare in the corpus
    weighing more (with no corpus: every word the same)."""
    stems = content_stems(claim)
    if not stems:
        return 0.0
    weights = [corpus.idf(st) for st in stems]
    return sum(w for w, st in zip(weights, stems, strict=True) if st in src.stems) / sum(weights)


class Checker:
    """Scores claims against sources; keeps an LRU cache of sentence vectors."""

    def __init__(self, embedder, model: Model | None = None, cache_size: int = 20000,
                 corpus: Corpus | None = None) -> None:
        self.embedder = embedder
        self.model = model or default_model()
        self.corpus = corpus or EMPTY
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            fresh = self.embedder.embed(todo)
            with self._lock:
                for t, v in zip(todo, fresh, strict=True):
                    self._cache[t] = v
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        with self._lock:
            out = []
            for t in texts:
                v = self._cache.get(t)
                if v is None:  # evicted meanwhile by another thread: embed again
                    v = self.embedder.embed([t])[0]
                out.append(v)
                self._cache.move_to_end(t, last=True) if t in self._cache else None
        dim = out[0].shape[-1] if out else 0
        return np.stack(out) if out else np.zeros((0, dim), dtype=np.float32)

    def features(self, claim: str, src: Prepared, claim_vec: np.ndarray,
                 unit_vecs: np.ndarray) -> tuple[np.ndarray, int]:
        """(cos_best, cover_cidf, bg_q99) and the index of the closest unit."""
        if not len(unit_vecs):
            return np.zeros(len(FEATURES)), 0
        sims = unit_vecs @ claim_vec
        best = int(np.argmax(sims))
        return np.array([float(sims[best]), _cover_cidf(claim, src, self.corpus),
                         self.ordinary(claim_vec)]), best

    def ordinary(self, claim_vec: np.ndarray) -> float:
        """How close the claim is to the corpus's closest sentences (no corpus: the mean
        the model was fitted with, i.e. no adjustment)."""
        bg = self.corpus.background(self)
        if self.corpus.n < MIN_CORPUS or bg.shape[-1] != claim_vec.shape[-1]:
            return float(self.model.mean[FEATURES.index("bg_q99")])
        return float(np.quantile(bg @ claim_vec, BACKGROUND_Q))

    def score(self, claim: str, sources: Sequence[Prepared],
              together: Sequence[Prepared] = ()) -> list[Score]:
        """`claim` against each source. A figure counts as stated when any of `together`
        (the sources cited with it) states it."""
        claim = _strip(claim)
        ctoks = tokens(claim)
        stated_together = [v for s in together for v in s.stated]
        out: list[Score | None] = []
        need = []
        for i, src in enumerate(sources):
            # "**Title** — quoted sentence": the quote is what must be found verbatim.
            title = src.title.lower().strip()
            own = tokens(claim.lower().replace(title, " ", 1)) if title and title in \
                claim.lower() else ctoks
            share = _verbatim_share(own, src.tokens)
            missing = missing_figures(claim, src.stated + stated_together)
            if share >= VERBATIM_SHARE:
                out.append(Score(share, _containing(src, ctoks), missing, verbatim=True))
            else:
                out.append(None)
                need.append((i, missing))
        if need:
            texts = [claim] + [u for i, _ in need for u in sources[i].units]
            vecs = self.vectors(texts)
            cvec, pos = vecs[0], 1
            for i, missing in need:
                src = sources[i]
                uv = vecs[pos:pos + len(src.units)]
                pos += len(src.units)
                x, best = self.features(claim, src, cvec, uv)
                p = float(self.model.prob(x)[0])
                out[i] = Score(p, src.units[best] if src.units else "", missing, features=x)
        for s in out:
            assert s is not None
            if s.missing:  # a figure the paper does not state: unsupported, whatever else
                s.support = min(s.support, self.model.weak * 0.5)
        return out  # type: ignore[return-value]

    # --- answers ------------------------------------------------------------------------

    def check(self, text: str, sources: Sequence[Source]) -> list[Claim]:
        prepared = {s.n: Prepared.of(s.n, s.title, s.abstract) for s in sources}
        titles = [s.title for s in sources]
        flagged = set(uncited_sentences(text))
        claims = []
        for sentence in claim_sentences(text, titles):
            cited = [n for n in dict.fromkeys(_markers(sentence)) if n in prepared]
            if not cited:
                if sentence in flagged:
                    claims.append(self._uncited(sentence, list(prepared.values())))
                continue
            claims.append(self._cited(sentence, cited, prepared, titles))
        return claims

    def _cited(self, sentence: str, cited: list[int], prepared: dict[int, Prepared],
               titles: list[str]) -> Claim:
        scores: dict[int, Score] = {}
        mention: dict[int, bool] = {}
        for segment, ns in _segments(sentence):
            ns = [n for n in ns if n in prepared]
            if not ns:
                continue
            group = [prepared[n] for n in ns]
            text = segment
            seg_words = _claim_words(segment, titles)
            if len(seg_words) < 2:
                union = set().union(*(p.stems for p in group))
                named = any(p.title and p.title.lower() in _strip(segment).lower()
                            for p in group) or (  # a short name: "| **Zeus** [2] |"
                    bool(seg_words) and all(st in union for st in _stemmer().stemWords(seg_words)))
                # "*Title* [1]", "also relevant: [2], [3]": the paper is pointed at, nothing
                # is claimed about it.
                if named or not _claim_words(sentence, titles):
                    for n in ns:
                        scores.setdefault(n, Score(1.0, prepared[n].title))
                        mention[n] = True
                    continue
                text = sentence  # "[1] shows that ...": the claim is the whole sentence
            if _names_topic(text, titles, group):
                for n in ns:
                    scores.setdefault(n, Score(1.0, prepared[n].title))
                    mention[n] = True
                continue
            for n, s in zip(ns, self.score(text, group, together=group), strict=True):
                if n not in scores or s.support < scores[n].support or mention.get(n):
                    scores[n] = s
                    mention[n] = False
        if not scores:
            return Claim(sentence=sentence, citations=cited, support=1.0, label="supported")
        worst = min(scores, key=lambda n: scores[n].support)
        support = scores[worst].support
        label = self.model.label(support)
        notes, better = [], None
        for n in cited:
            found = scores.get(n)
            if found and found.missing:
                figs = ", ".join(found.missing)
                notes.append(f"[{n}] does not state {figs}")
            elif found and self.model.label(found.support) != "supported":
                notes.append(f"[{n}] does not clearly state this")
        if label != "supported":
            others = [p for n, p in prepared.items() if n not in scores]
            if others:
                alt = self.score(sentence, others)
                i = max(range(len(others)), key=lambda j: alt[j].support)
                if (self.model.label(alt[i].support) == "supported"
                        and alt[i].support >= support + REPAIR_MARGIN):
                    better = others[i].n
                    notes.append(f"[{better}] supports this better")
        return Claim(sentence=sentence, citations=cited, support=round(support, 3),
                     label=label, evidence={n: s.evidence for n, s in scores.items()},
                     scores={n: round(s.support, 3) for n, s in scores.items()},
                     better=better, note="; ".join(notes) or None)

    def _uncited(self, sentence: str, sources: list[Prepared]) -> Claim:
        note = "cites no paper"
        better = None
        evidence: dict[int, str] = {}
        if sources:
            alt = self.score(sentence, sources)
            i = max(range(len(sources)), key=lambda j: alt[j].support)
            if self.model.label(alt[i].support) == "supported":
                better = sources[i].n
                evidence = {better: alt[i].evidence}
                note += f"; [{better}] supports it"
            else:
                note += ", and no retrieved paper supports it"
        return Claim(sentence=sentence, citations=[], support=0.0, label="unsupported",
                     evidence=evidence, better=better, note=note)


def claim_sentences(text: str, titles: Sequence[str] = ()) -> list[str]:
    """The answer's sentences (citations.sentences), a title the splitter cut ("Do NOT Think
    That Much for 2+3=? On the Overthinking of o1-Like LLMs") joined back into one."""
    parts = sentences(text)
    spans, cursor = [], 0
    for part in parts:
        start = text.find(part, cursor)
        if start < 0:
            return parts
        spans.append([start, start + len(part)])
        cursor = start + len(part)
    cut = [t for t in titles if t and len(sentences(t)) > 1]
    i = 0
    while cut and i < len(spans) - 1:
        a, b = spans[i], spans[i + 1]
        joined = text[a[0]:b[1]]
        if "\n" not in text[a[1]:b[0]] and any(
                t in joined and t not in text[a[0]:a[1]] and t not in text[b[0]:b[1]]
                for t in cut):
            spans[i:i + 2] = [[a[0], b[1]]]
        else:
            i += 1
    return [text[s:e] for s, e in spans]


def _markers(text: str) -> list[int]:
    return [n for m in MARKER.finditer(text) for n in parse_numbers(m.group(1))]


def _segments(sentence: str) -> list[tuple[str, list[int]]]:
    """(text before a marker group, the numbers it cites); adjacent markers form one group."""
    out: list[tuple[str, list[int]]] = []
    pos = 0
    group: list[int] = []
    start_text = ""
    for m in MARKER.finditer(sentence):
        between = sentence[pos:m.start()]
        if group and between.strip(" ,;"):
            out.append((start_text, group))
            group, start_text = [], between
        elif not group:
            start_text = between
        group = group + parse_numbers(m.group(1))
        pos = m.end()
    if group:
        out.append((start_text, group))
    return out


def _claim_words(text: str, titles: list[str]) -> list[str]:
    stripped = _strip(text)
    low = stripped.lower()
    for t in titles:
        tl = t.lower().strip()
        if tl and tl in low:
            low = low.replace(tl, " ")
    return [w for w in tokens(low) if w not in _STOP and w not in _META and len(w) > 1]


def _names_topic(text: str, titles: list[str], group: list[Prepared]) -> bool:
    """A short phrase (a group label such as "memory, optimizer states") whose every word is
    in the cited papers' text, with no figure: it names what they are about."""
    words = _claim_words(text, titles)
    if not words or (len(words) > LABEL_WORDS and len(group) == 1) or len(words) > 12:
        return False
    # A figure names no topic ("2x faster"), unless it is a word the papers say themselves:
    # "double" in the label "double descent" is read as a figure (two times).
    said = set().union(*(p.tokens for p in group))
    if any(f.text.lower() not in said for f in figures(_strip(text))):
        return False
    union = set().union(*(p.stems for p in group))
    return all(s in union for s in _stemmer().stemWords(words))


def _containing(src: Prepared, ctoks: list[str]) -> str:
    best, score = "", -1
    want = set(ctoks)
    for u in src.units:
        k = len(want & set(tokens(u)))
        if k > score:
            best, score = u, k
    return best


def claim_flag_text(claim: Claim) -> str | None:
    """'weak support: [2] does not state 45%' for a claim that is not supported, else None."""
    if claim.label == "supported" and claim.better is None and claim.citations:
        return None
    label = {"weak": "weak support", "unsupported": "not supported"}.get(claim.label,
                                                                        "check the source")
    return f"{label}: {claim.note}" if claim.note else label


# --- one claim, one paper (the verify command) -------------------------------------------


def verify(checker: Checker, claim: str, title: str, abstract: str) -> dict:
    """{"support", "label", "evidence", "note"} for one claim against one paper."""
    src = Prepared.of(1, title, abstract)
    s = checker.score(claim, [src])[0]
    note = f"the paper does not state {', '.join(s.missing)}" if s.missing else None
    return {"support": round(s.support, 3), "label": checker.model.label(s.support),
            "evidence": s.evidence, "note": note}


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Probability that a positive outscores a negative (ties count half)."""
    p, q = np.asarray(pos, float), np.asarray(neg, float)
    if not len(p) or not len(q):
        return math.nan
    greater = (p[:, None] > q[None, :]).sum() + 0.5 * (p[:, None] == q[None, :]).sum()
    return float(greater / (len(p) * len(q)))


_CHECKERS: dict[int, Checker] = {}
_CHECKERS_LOCK = threading.Lock()


def checker_for(embedder, corpus: Corpus | None = None) -> Checker:
    """One Checker (and vector cache) per embedder, shared by every answer it serves; its
    corpus follows the index being served."""
    with _CHECKERS_LOCK:
        c = _CHECKERS.get(id(embedder))
        if c is None or c.embedder is not embedder:
            c = _CHECKERS[id(embedder)] = Checker(embedder)
        if corpus is not None:
            c.corpus = corpus
        return c


def unstated_figures(question: str, lead: Source | None) -> list[str]:
    """Figures the question states ("over 65% MFU", "on 4 GPUs") that the answer's first-cited
    paper does not state, in any equivalent form. The question may rest on a false premise,
    or ask a detail the abstract does not give: the answer says so instead of letting the
    citation vouch for it. Only the lead paper counts, since another paper stating "65%" says
    nothing about this one. Left out: years (a paper's year is not in its abstract) and the
    bounds of a math condition ("when rho < 0")."""
    if lead is None:
        return []
    stated = stated_values(f"{lead.title}\n{lead.abstract}")
    # Digits only: a question's "half" is as often "I half remember" as a figure.
    missing = missing_figures(_CONDITION.sub(" ", question), stated, words=False)
    return list(dict.fromkeys(f for f in missing if not _YEAR.fullmatch(f)))


def unstated_text(answer: Answer) -> str | None:
    """The warning shown with an answer whose question states figures its lead paper does
    not ("[1] does not state 65%, 12,000 ..."); None when there is nothing to say."""
    if answer.abstained or not answer.unstated or not answer.citations:
        return None
    return (f"[{answer.citations[0].n}] does not state {', '.join(answer.unstated)} from the "
            "question: check the question's premise against the quotes")


_YEAR = re.compile(r"(?:19|20)\d\d")
_CONDITION = re.compile(r"[<>=≤≥≠]\s*-?\d+(?:\.\d+)?")


def check_answer(text: str, sources: Sequence[Source], embedder,
                 corpus: Corpus | None = None) -> list[Claim]:
    """The claims of an answer, each scored against the sources it cites."""
    return checker_for(embedder, corpus).check(text, sources)
