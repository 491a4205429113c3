"""Scripted "LLM" answers with planted citation errors, for the claim-support tests and bench.

`PlantedAnswers.responder` plugs into `Reply(responder=...)` of the scripted OpenAI-compatible
server: from the sources the real Answerer put in the prompt it writes a plausible cited
answer (one lightly paraphrased sentence from each of the first three sources), then plants
one error, and records where:

* ``swap``    a sentence cites another retrieved source instead of its own;
* ``figure``  a sentence states a number its source does not (the number changed);
* ``uncited`` a sentence's citation is dropped;
* ``none``    no error (a clean answer).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

SOURCE = re.compile(r'<source n="(\d+)" title="([^"]*)">\n(.*?)\n</source>', re.S)
KINDS = ("swap", "figure", "uncited")

_SYN = {"propose": "introduce", "proposes": "introduces", "we": "the authors",
        "our": "their", "us": "them", "achieves": "reaches", "achieve": "reach",
        "significantly": "substantially", "novel": "new", "demonstrate": "show",
        "demonstrates": "shows", "outperforms": "beats", "utilize": "use",
        "utilizes": "uses", "furthermore": "also", "moreover": "also"}
_SYN_RE = re.compile(r"\b(" + "|".join(_SYN) + r")\b", re.I)
_NUM = re.compile(r"(?<![A-Za-z_\d.,])(?<![A-Za-z]-)(\d+(?:\.\d+)?)(?![A-Za-z\d])")


def paraphrase(sentence: str) -> str:
    s = re.sub(r"^(in this (paper|work|study)|here),?\s+", "", sentence.strip(), flags=re.I)

    def swap(m: re.Match) -> str:
        word = _SYN[m.group(1).lower()]
        return word.capitalize() if m.group(1)[0].isupper() else word

    s = _SYN_RE.sub(swap, s)
    s = s[0].upper() + s[1:] if s else s
    return s.rstrip(" .")


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text.lower())}


def change_figure(sentence: str, abstract: str, rng: random.Random) -> str | None:
    """The sentence with one number changed to a value `abstract` does not state."""
    from assistant.support import missing_figures, stated_values

    stated = stated_values(abstract)
    found = list(_NUM.finditer(sentence))
    rng.shuffle(found)
    for m in found:
        raw = m.group(1)
        value = float(raw)
        decimals = len(raw.split(".")[1]) if "." in raw else 0
        for factor in (1.4, 0.6, 2.5):
            new = value * factor + (2 if value < 4 else 0)
            text = f"{new:.{decimals}f}" if decimals else str(round(new))
            if text != raw and missing_figures(text, stated):
                return sentence[:m.start(1)] + text + sentence[m.end(1):]
    return None


@dataclass
class Planted:
    question: str
    kind: str
    sentences: list[str]  # the answer's sentences, in order
    cites: list[int | None]  # what each sentence cites (None: nothing)
    truth: list[int]  # the source each sentence was written from
    planted: int | None  # index of the planted sentence

    @property
    def text(self) -> str:
        return " ".join(s + (f" [{c}]." if c else ".") for s, c in
                        zip(self.sentences, self.cites, strict=True))


@dataclass
class PlantedAnswers:
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    log: list[Planted] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def responder(self, body: dict) -> str:
        user = body["messages"][-1]["content"]
        question = (re.findall(r"Question: (.*)", user) or [""])[-1]
        sources = [(int(n), t, a) for n, t, a in SOURCE.findall(user)]
        kind = self.kinds[len(self.log) % len(self.kinds)]
        planted = self.write(question, sources, kind)
        self.log.append(planted)
        return planted.text

    def write(self, question: str, sources: list[tuple[int, str, str]], kind: str) -> Planted:
        from assistant.citations import sentences as split

        q = _words(question)
        sents, truth = [], []
        for n, _, abstract in sources[:3]:
            cands = [s for s in split(abstract) if len(s.split()) >= 6] or split(abstract)
            if not cands:
                continue
            best = max(cands, key=lambda s: len(q & _words(s)))
            sents.append(paraphrase(best))
            truth.append(n)
        cites: list[int | None] = list(truth)
        abstracts = {n: a for n, _, a in sources}
        planted = None
        if kind == "figure":
            options = [(i, n) for i, n in enumerate(truth)]
            self.rng.shuffle(options)
            for i, n in options:
                # A sentence of this source that states a number, as the sentence i.
                numbered = [s for s in split(abstracts[n]) if _NUM.search(s)
                            and len(s.split()) >= 6]
                if not numbered:
                    continue
                base = paraphrase(self.rng.choice(numbered))
                changed = change_figure(base, abstracts[n], self.rng)
                if changed:
                    sents[i], planted = changed, i
                    break
            if planted is None:
                kind = "swap"
        if kind == "swap" and len(sources) > 1 and sents:
            planted = self.rng.randrange(len(sents))
            others = [n for n, _, _ in sources if n != truth[planted]]
            cites[planted] = self.rng.choice(others)
        elif kind == "uncited" and sents:
            planted = self.rng.randrange(len(sents))
            cites[planted] = None
        elif kind not in ("figure",):
            kind = "none" if planted is None else kind
        return Planted(question, kind if planted is not None else "none", sents, cites, truth,
                       planted)
