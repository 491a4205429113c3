"""Known-item search: a question that names a paper finds that paper first.

People ask about papers by name ("What results does SMoA report?", "Direct Preference
Optimization"), and neither BM25 nor embeddings rank a paper first just because its title
*is* the query: "Creative Preference Optimization" shares as many words with "Direct
Preference Optimization" as the paper itself does. This index matches

- the full title inside the question (or the question as the title with a typo or a
  missing word: rapidfuzz similarity), and
- the name before a title's colon ("SMoA: ..." -> SMoA), as a whole phrase. A name that is
  also an everyday English word ("Echo", "FIND", "Opus") must match with its own casing, so
  "how do I find papers on echo state networks" names neither. So must a name that other
  papers of the corpus mostly write as an ordinary lower-case phrase ("Convex Optimization:
  Algorithms and Complexity" is not what "a bound from non-smooth convex optimization" asks
  about; nor is "Optima" named by "local optima"). Other papers citing a method by its name
  write it capitalised ("Direct Preference Optimization (DPO)"): that name stays a name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from assistant.vocab import english_counts

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_MAX_NAME_WORDS = 8
# A name this common in English needs its exact casing to count as a name.
_EVERYDAY_COUNT = 2_000_000
# A name written in lower case by this many other papers, and by most of the papers that use
# it, is an ordinary phrase of the field. On the seeds (lower case / any case): "Convex
# Optimization" 13/15, "SCOPE" 5/5, "Optima" 4/4, "Efficient Deep Learning" 3/3; not
# "Direct Preference Optimization" 5/16; then at most 1 ("TensorFlow", "VOTE").
_GENERIC_PAPERS = 3
_NON_ALNUM_CASED = re.compile(r"[^0-9A-Za-z]+")
FULL_TITLE, NAME, FUZZY = 1.0, 0.9, 0.8


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_ALNUM.sub(" ", text).split())


@dataclass
class TitleMatch:
    paper_id: str
    strength: float  # FULL_TITLE, NAME or FUZZY
    matched: str  # the title or name as written


class TitleIndex:
    def __init__(self, titles: dict[str, str], abstract_of=None, texts=None) -> None:
        """`abstract_of(paper_id)`: the abstract; `texts()`: (paper id, text) pairs of the
        corpus, read once, the first time a name matches only in lower case."""
        # An acronym counts only when the paper itself defines it ("... (DPO)"): initials
        # alone collide with everyday acronyms (GPU, LLM).
        self._abstract_of = abstract_of
        self._texts = texts
        self._generic: frozenset[str] | None = None
        english = self._english = english_counts()
        self._titles = [(pid, norm(t), t) for pid, t in titles.items() if norm(t)]
        self._names: list[tuple[str, str, str, bool]] = []
        self._acronyms: list[tuple[str, str, str]] = []
        for pid, title in titles.items():
            if ":" not in title:
                continue
            name = title.split(":", 1)[0].strip()
            key = norm(name)
            if not key or len(name.split()) > _MAX_NAME_WORDS or len(key) < 2:
                continue
            everyday = len(key.split()) == 1 and english.get(key, 0) >= _EVERYDAY_COUNT
            self._names.append((pid, key, name, everyday))
            # "DPO" names "Direct Preference Optimization: ..." (matched with its capitals).
            words = re.findall(r"[A-Za-z]+", name)
            if 2 <= len(words) <= 6 and all(w[0].isupper() for w in words):
                self._acronyms.append((pid, "".join(w[0] for w in words), name))

    def match(self, question: str, exclude: frozenset[str] | set[str] = frozenset()
              ) -> list[TitleMatch]:
        """Papers the question names, strongest (then longest) match first."""
        from rapidfuzz import fuzz

        nq = norm(question)
        if not nq:
            return []
        padded = f" {nq} "
        found: dict[str, TitleMatch] = {}

        def add(pid: str, strength: float, matched: str) -> None:
            if pid in exclude:
                return
            old = found.get(pid)
            if old is None or (strength, len(matched)) > (old.strength, len(old.matched)):
                found[pid] = TitleMatch(pid, strength, matched)

        for pid, key, title in self._titles:
            if f" {key} " in padded:
                add(pid, FULL_TITLE, title)
            elif len(key) >= 20:
                # The question is the title with a slip, or holds it with one.
                close = 0.7 <= len(nq) / len(key) <= 1.3 and fuzz.ratio(nq, key) >= 90
                inside = len(key) < len(nq) and fuzz.partial_ratio(key, nq) >= 95
                if close or inside:
                    add(pid, FUZZY, title)
        for pid, key, name, everyday in self._names:
            if f" {key} " in padded:
                if (everyday or self._is_generic(key)) and not re.search(
                        rf"(?<!\w){re.escape(name)}(?!\w)", question):
                    continue
                # "ZeRO-Infinity" names another system than "ZeRO".
                if re.search(rf"{re.escape(name)}-\w|\w-{re.escape(name)}", question, re.I):
                    continue
                add(pid, NAME, name)
            elif len(key) >= 8 and not everyday and len(key) <= len(nq):
                # A misspelt name, but not a correctly spelt everyday word one letter away
                # from it ("continuous control" does not name "EControl").
                # Widened to whole words, the aligned part must still be the name with a
                # slip: "ee tuning" aligns inside "fine tuning" ("ne tuning"), but "fine
                # tuning" is not a misspelt EE-Tuning.
                got = fuzz.partial_ratio_alignment(key, nq)
                span = _widened(nq, got.dest_start, got.dest_end) if got else ""
                if got is not None and got.score >= 92 and fuzz.ratio(key, span) >= 92 \
                        and not self._everyday_word(span):
                    add(pid, FUZZY, name)
        if not found and self._acronyms:
            upper = set(re.findall(r"\b[A-Z]{2,6}\b", question))
            for pid, acronym, name in self._acronyms:
                # As for names: "DPO-style training" or "Online-DPO" is not the DPO paper.
                if acronym in upper and self._defines(pid, acronym) and not re.search(
                        rf"\b{acronym}-\w|\w-{acronym}\b", question):
                    add(pid, FUZZY, name)
        return sorted(found.values(), key=lambda m: (-m.strength, -len(m.matched)))

    def _is_generic(self, key: str) -> bool:
        if self._texts is None:
            return False
        if self._generic is None:
            docs: dict[str, list[str]] = {}
            for pid, text in self._texts():
                text = unicodedata.normalize("NFKC", text)
                docs.setdefault(pid, []).append(" ".join(_NON_ALNUM_CASED.sub(" ", text).split()))
            cased = {pid: f" {' '.join(parts)} " for pid, parts in docs.items()}
            folded = {pid: d.casefold() for pid, d in cased.items()}
            generic = set()
            for pid, k, _, _ in self._names:
                lower = sum(f" {k} " in d for p, d in cased.items() if p != pid)
                if lower >= _GENERIC_PAPERS and 2 * lower > sum(
                        f" {k} " in d for p, d in folded.items() if p != pid):
                    generic.add(k)
            self._generic = frozenset(generic)
        return key in self._generic

    def _everyday_word(self, span: str) -> bool:
        """The aligned part of the question, widened to whole words, is one everyday word."""
        words = span.split()
        return len(words) == 1 and self._english.get(words[0], 0) >= _EVERYDAY_COUNT

    def _defines(self, pid: str, acronym: str) -> bool:
        if self._abstract_of is None:
            return True
        return f"({acronym})" in (self._abstract_of(pid) or "")


def _widened(nq: str, start: int, end: int) -> str:
    """nq[start:end] widened to whole words (nq: a normalised, space-separated question);
    an alignment may take in the space after a word, which widens nothing."""
    while start < end and nq[start] == " ":
        start += 1
    while end > start and nq[end - 1] == " ":
        end -= 1
    while start > 0 and nq[start - 1] != " ":
        start -= 1
    while end < len(nq) and nq[end] != " ":
        end += 1
    return nq[start:end]
