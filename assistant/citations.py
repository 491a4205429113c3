"""Citation parsing and checking: [n], [n, m], [n-m], [n][m].

The check is the gate between generated text and the user: markers pointing outside the
numbered sources are removed (and reported), the reference list is exactly the cited
sources, and sentences carrying no citation are flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A bracket holding only numbers, separated by commas/semicolons, optionally ranges.
MARKER = re.compile(r"\[\s*(\d{1,4}(?:\s*(?:[,;]|[-–])\s*\d{1,4})*)\s*\]")
# Not after a defanged "[ref." (defang): "model [ref. 33] in ..." is one sentence.
_SPLIT = re.compile(r"(?<=[.!?])(?<!\[ref\.)\s+(?=[A-Z0-9\"“(*\-•])|\n+")
_MAX_RANGE = 20


def parse_numbers(inner: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", inner.strip()):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2:
            lo, hi = int(bounds[0]), int(bounds[1])
            if lo <= hi and hi - lo <= _MAX_RANGE:
                numbers.extend(range(lo, hi + 1))
            else:
                numbers.extend([lo, hi])
        elif part:
            numbers.append(int(part))
    return numbers


def markers(text: str) -> list[int]:
    """Every number cited, in order of appearance (with repeats)."""
    return [n for m in MARKER.finditer(text) for n in parse_numbers(m.group(1))]


@dataclass
class Checked:
    text: str
    cited: list[int] = field(default_factory=list)  # valid numbers, first-appearance order
    removed: list[int] = field(default_factory=list)  # numbers outside the sources
    uncited_sentences: list[str] = field(default_factory=list)


def check(text: str, valid: set[int]) -> Checked:
    """Drop markers outside `valid`, normalise the rest to [n][m], list what is cited."""
    cited: list[int] = []
    removed: list[int] = []

    def rewrite(m: re.Match) -> str:
        keep = []
        for n in parse_numbers(m.group(1)):
            if n in valid:
                if n not in keep:
                    keep.append(n)
            else:
                removed.append(n)
        for n in keep:
            if n not in cited:
                cited.append(n)
        return "".join(f"[{n}]" for n in keep)

    cleaned = MARKER.sub(rewrite, text)
    # Tidy the gaps a removed marker leaves ("claim [99]." -> "claim.").
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    return Checked(cleaned, cited, removed, uncited_sentences(cleaned))


def defang(text: str) -> str:
    """Source text's own "[12]" (its reference list, or an injection) -> "[ref. 12]".

    Quoted in an answer or shown to the model, it must not pass for a citation of source 12
    (nor be reported as a removed one).
    """
    return MARKER.sub(lambda m: f"[ref. {m.group(1)}]", text)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SPLIT.split(text) if s and s.strip()]


def is_statement(sentence: str) -> bool:
    """A sentence that states something: not a heading, a list label or a fragment under four
    words. The rule of the citation check and of the eval's uncited-sentence rate."""
    bare = sentence.strip("*-•# ")
    return len(bare.split()) >= 4 and not bare.endswith(":")


def uncited_sentences(text: str) -> list[str]:
    """Sentences that state something but cite nothing (headings and list labels excluded)."""
    return [s for s in sentences(text) if is_statement(s) and not MARKER.search(s)]
