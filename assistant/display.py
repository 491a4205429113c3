"""Text for people to read: LaTeX residue cleaned, Markdown emphasis dropped for terminals.

Display only: the stored abstracts (catalog, index, answers, --json) keep their text as
ingested; the UI's cards and the terminal show it cleaned.

    clean_latex("34.4times higher")     -> "34.4× higher"
    clean_latex("sim!2times faster")    -> "∼2× faster"
    clean_latex("as LLMs grow {in size}") -> "as LLMs grow in size"
    plain("**Title** [1]")             -> "Title [1]"      (PlainStream: the same, streamed)
"""

from __future__ import annotations

import re

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "pi": "π",
    "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "psi": "ψ", "omega": "ω",
    "Delta": "Δ", "Gamma": "Γ", "Lambda": "Λ", "Omega": "Ω", "Sigma": "Σ", "Phi": "Φ",
}
_RULES: list[tuple[re.Pattern[str], str]] = [
    # "\%" and friends: an escaped character is that character.
    (re.compile(r"\\([%&#_$])"), r"\1"),
    # Font and text wrappers keep their content: \textbf{x}, text{x}, mathrm{x}, {\it x}.
    (re.compile(r"\\?(?:textbf|textit|texttt|textrm|textsc|text|mathrm|mathbf|mathit|emph)"
                r"\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\{\\(?:it|bf|em|sc|tt|rm)\s+([^{}]*)\}"), r"\1"),
    (re.compile(r"\\?mathcal\{([A-Z])\}"), r"\1"),
    # Greek letters written as commands: \lambda, {\eta}.
    (re.compile(r"\{?\\(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")\b\}?"),
     "GREEK"),
    # "\sim\!2\times" arrives as "sim!2times", "1.25sim1.56times": ∼ and ×.
    (re.compile(r"(?<![A-Za-z])\\?sim\\?!?(?=\s?\d)"), "∼"),
    (re.compile(r"(?<=\d)\\?sim(?=\d)"), "∼"),
    (re.compile(r"(?<=[\d.)}])\s?\\?times\b"), "×"),
    # left( ... right): the size commands go, the brackets stay.
    (re.compile(r"(?<=[\w}^])\\?left([(\[|])(.{0,120}?)\s?\\?right([)\]|])"), r"\1\2\3"),
    # Braces around words ("{in size}", "{3D GU}") that no ^ or _ owns: just the words.
    (re.compile(r"(?<![\^_\w\\])\{([A-Za-z][A-Za-z0-9 .,'-]*)\}"), r"\1"),
]


def clean_latex(text: str) -> str:
    """Abstract text with the LaTeX leftovers of its source made readable (display only)."""
    if not text or not re.search(r"[\\{}]|times|sim|left", text):
        return text
    out = text
    for pattern, repl in _RULES:
        if repl == "GREEK":
            out = pattern.sub(lambda m: _GREEK[m.group(1)], out)
        else:
            out = pattern.sub(repl, out)
    return out


# Markdown the answerers write: **bold**, __bold__, *italic*, "### " headings.
_STRONG = re.compile(r"\*\*(?=\S)|(?<=\S)\*\*|(?<![\w])__(?=\S)|(?<=\S)__(?!\w)")
_EM = re.compile(r"(?<![\w*])\*(?=[^\s*])|(?<=[^\s*])\*(?![\w*])")
_HEADING = re.compile(r"(?m)^#{1,6}\s+")


def plain(markdown: str) -> str:
    """Markdown emphasis and heading marks removed: what a terminal should print."""
    return _EM.sub("", _STRONG.sub("", _HEADING.sub("", markdown)))


class PlainStream:
    """`plain` for streamed text: holds back the unfinished last word (a marker may be cut)."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, token: str) -> str:
        text = self._pending + token
        cut = max(text.rfind(" "), text.rfind("\n")) + 1
        self._pending = text[cut:]
        return plain(text[:cut]) if cut else ""

    def flush(self) -> str:
        text, self._pending = self._pending, ""
        return plain(text)
