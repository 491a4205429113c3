"""What words mean to this corpus: how rare a term is, whether everyday English uses it, and
what a misspelled word was meant to be.

Three sources, all local:
- the BM25 index's vocabulary (stemmed terms and their chunk document frequencies);
- the corpus's own surface words (for spelling suggestions), read once from the catalog when
  a question first contains a word the corpus does not know;
- symspellpy's English frequency list (82k words), so that "gist", "honestly" or "colleague"
  count as everyday words, not as evidence that a question is about something unknown.

Typos are corrected with rapidfuzz (optimal string alignment distance) against the corpus
words and common English words; a word that looks like a name (capitals inside, digits, a
capitalised word mid-sentence) is never "corrected": an unknown name is a signal, not a typo.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import cache, cached_property

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")
# Capitals after the first letter (SMoA, vLLM, GPTQ), or letters and digits together (NF4).
_NAMEISH = re.compile(r"^[A-Za-z]*[A-Z][A-Za-z]*[A-Z]|\d")
# An English word this common (symspellpy counts) is everyday vocabulary.
_EVERYDAY_LOG10 = 7.5
# Words asked about in any research question: they say nothing about the topic.
GENERIC = frozenset(
    """how what why which who whom when where whose paper papers work works study studies
research article articles approach approaches
method methods technique techniques model models propose proposes proposed proposal introduce
introduces introduced present presents presented result results report reports reported show
shows shown find finds found finding findings remember recall mention mentioned colleague
called name named title look looking know knows thing things something anything idea ideas
main key basic core gist summary summarize explain explained tell describe describes
description detail details kind kinds type types way ways question questions answer answers
corpus literature someone somebody people vaguely honestly confused curious wonder wondering
interested please thanks help quick quickly also another other others different similar same
new novel recent recently latest earlier later year years use uses used using does doing
done make makes made get gets got give gives good better best worse work working
ppl pls plz thx tbh imo imho btw afaik idk iirc fwiw eli5 tldr""".split()
)  # the last line: chat shorthand ("how do ppl handle ..."), not names of anything


def english_counts() -> dict[str, int]:
    """symspellpy's English unigram counts (loaded once per process, ~50 ms)."""
    return _english()


_english_lock = threading.Lock()
_english_cache: dict[str, int] = {}


def _english() -> dict[str, int]:
    with _english_lock:
        if not _english_cache:
            import importlib.resources

            path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    word, _, count = line.partition(" ")
                    if count:
                        _english_cache[word] = int(count)
        return _english_cache


PHRASE_MIN_COUNT = 10_000_000  # symspellpy bigram count of a common two-word phrase


@cache
def _phrases() -> dict[str, str]:
    """Common English two-word phrases by their run-together spelling ("eachother" ->
    "each other"), from symspellpy's bigram counts (loaded on the first unknown word)."""
    import importlib.resources

    path = importlib.resources.files("symspellpy") / "frequency_bigramdictionary_en_243_342.txt"
    out: dict[str, tuple[int, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit() or int(parts[2]) < PHRASE_MIN_COUNT:
            continue
        left, right, count = parts[0], parts[1], int(parts[2])
        if left.isalpha() and right.isalpha():
            joined = left + right
            if joined not in out or out[joined][0] < count:
                out[joined] = (count, f"{left} {right}")
    return {k: v for k, (_, v) in out.items()}


def looks_like_name(token: str, first: bool = False) -> bool:
    """CamelCase/acronym/digits, or a capitalised word that does not start the question."""
    if _NAMEISH.search(token):
        return True
    return not first and token[:1].isupper() and not token.isupper()


@dataclass
class Correction:
    text: str  # the question with misspellings replaced
    fixes: list[tuple[str, str]] = field(default_factory=list)  # (as typed, corrected)


class Vocabulary:
    """Term statistics of one keyword index (see KeywordIndex) plus English word counts."""

    def __init__(self, keyword, surface_words=None) -> None:
        self.keyword = keyword
        self._surface_source = surface_words  # callable -> iterable of texts, read lazily
        self._lock = threading.Lock()

    # --- corpus statistics -------------------------------------------------------------------

    @cached_property
    def _df(self) -> dict[str, int]:
        return self.keyword.document_frequencies()

    @property
    def n_docs(self) -> int:
        return max(1, len(self.keyword.chunk_ids))

    def df(self, term: str) -> int:
        return self._df.get(term, 0)

    def idf(self, term: str) -> float:
        """BM25-style idf of a stemmed term; unknown terms get the idf of a singleton."""
        n = self.n_docs
        df = self.df(term)
        return math.log(1 + (n - max(df, 1) + 0.5) / (max(df, 1) + 0.5))

    def everyday(self, word: str) -> float:
        """0..1: how much everyday English uses the word (1 = 'the', 0 = unseen)."""
        count = _english().get(word.lower(), 0)
        return min(1.0, math.log10(count + 1) / _EVERYDAY_LOG10)

    def informativeness(self, word: str, first: bool = False) -> float:
        """0..1: how much an unknown word says about the topic. Names say the most."""
        if looks_like_name(word, first):
            return 1.0
        if word.lower() in GENERIC:
            return 0.0
        return max(0.0, 1.0 - self.everyday(word)) ** 0.5

    # --- spelling ------------------------------------------------------------------------------

    @cached_property
    def _surface(self) -> Counter:
        counts: Counter = Counter()
        if self._surface_source is not None:
            for text in self._surface_source():
                counts.update(w.lower() for w in _WORD.findall(text) if len(w) > 2)
        return counts

    @cached_property
    def _candidates(self) -> tuple[list[str], dict[str, float]]:
        """Spelling targets: corpus words plus common English words, with a preference."""
        english = _english()
        weight: dict[str, float] = {}
        for w, c in self._surface.items():
            weight[w] = 1.0 + math.log10(c + 1)  # the corpus's own words come first
        for w, c in english.items():
            if c >= 5_000_000 and w not in weight and len(w) > 2:
                weight[w] = math.log10(c) / 10.0
        return list(weight), weight

    def known(self, word: str) -> bool:
        w = word.lower()
        terms = self.keyword.terms(w)
        if terms and all(self.df(t) > 0 for t in terms):
            return True
        return w in GENERIC or w in self._surface or _english().get(w, 0) >= 100_000

    def correct(self, question: str) -> Correction:
        """Replace misspelled words (unknown to the corpus and to English) with the closest
        known word: edit distance 1 for words of 4-7 letters, 2 for longer ones; failing
        that, a clipped word with the corpus word it begins ("params" -> "parameters"), or
        two words run together ("eachother" -> "each other")."""
        fixes: list[tuple[str, str]] = []
        out = []
        last = 0
        tokens = list(_WORD.finditer(question))
        for i, m in enumerate(tokens):
            word = m.group(0)
            fixed = self._fix(word, first=(i == 0))
            if fixed and fixed != word.lower():
                out.append(question[last:m.start()])
                out.append(fixed if not word.isupper() else fixed.upper())
                last = m.end()
                fixes.append((word, fixed))
        if not fixes:
            return Correction(question)
        out.append(question[last:])
        return Correction("".join(out), fixes)

    def _fix(self, word: str, first: bool) -> str | None:
        if len(word) < 4 or "'" in word or "-" in word:
            return None
        shouting = word.isupper() and len(word) >= 6
        if looks_like_name(word, first) and not shouting:
            return None
        w = word.lower()
        if self.known(w):
            return None
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        if phrase := self._split(word):  # an exact phrase beats a one-letter slip ("alot")
            return phrase
        choices, weight = self._candidates
        max_d = 1 if len(w) < 8 else 2
        found = process.extract(w, choices, scorer=OSA.distance, score_cutoff=max_d,
                                limit=20)
        if not found:
            return self._expand(word)
        # Ties: a left-out letter is the commonest slip ("wich" -> "which", not "with"),
        # then the corpus's own words, then the commoner English word.
        def slip(c: str) -> int:
            return 0 if len(c) > len(w) else 1 if len(c) == len(w) else 2

        best = min(found, key=lambda f: (f[1], slip(f[0]), -weight[f[0]]))
        return best[0]

    def _split(self, word: str) -> str | None:
        """Two words run together ("eachother" -> "each other", "inorder" -> "in order"): a
        lower-case word English does not know whose split is a common English phrase.
        Common phrases only, so a lower-case name made of two words ("deepseek") stays a
        name."""
        if not word.islower() or len(word) < 4 or _english().get(word, 0):
            return None
        return _phrases().get(word)

    @cached_property
    def _sorted_surface(self) -> list[str]:
        return sorted(self._surface)

    def _expand(self, word: str) -> str | None:
        """A clipped word the corpus spells out ("params" -> "parameters", "backprop" ->
        "backpropagation"): the corpus's commonest word it begins, at least two letters
        longer, seen three times or more. Lower case only (a name is not a clipping)."""
        if not word.islower():
            return None
        plural = word.endswith("s")
        stem = word[:-1] if plural else word
        if len(stem) < 4:
            return None
        counts, ordered = self._surface, self._sorted_surface
        found = []
        for w in ordered[bisect.bisect_left(ordered, stem):]:
            if not w.startswith(stem):
                break
            if len(w) >= len(stem) + 2 and counts[w] >= 3:
                found.append(w)
        if plural:
            found = [w for w in found if w.endswith("s")] or found
        return max(found, key=lambda w: (counts[w], w)) if found else None
