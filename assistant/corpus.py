"""Corpus readers: Hugging Face papers listing pages, JSON Lines, arXiv metadata snapshots.

Every reader yields Paper records and reports what it skipped (file, line, reason) instead
of failing the whole file, so good records still ingest next to bad ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import CorpusError
from assistant.types import Paper

TEXT_SUFFIXES = {".txt", ".md"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CORPUS_SUFFIXES = TEXT_SUFFIXES | JSON_SUFFIXES

# Page chrome of huggingface.co/papers listings (kept as data, matched whole-line).
_CHROME = {
    "new",
    "subscribe",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "byak and the research community",
}
_DATE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(, \d{4})?$",
                   re.IGNORECASE)
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
MAX_TITLE_CHARS = 400
MIN_ABSTRACT_CHARS = 80


@dataclass
class Skipped:
    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


@dataclass
class ReadResult:
    papers: list[Paper] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    records: int = 0  # papers read before merging duplicates
    duplicates: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    failed_files: list[Skipped] = field(default_factory=list)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def normalise(text: str) -> str:
    """Unicode NFC and collapsed whitespace; the text is otherwise kept as written.

    A JSON escape such as "\\ud800" decodes to a lone surrogate, which no UTF-8 writer
    (hashing, SQLite, the tokenizer) accepts: it becomes U+FFFD.
    """
    return " ".join(unicodedata.normalize("NFC", scrub_surrogates(text)).split())


def scrub_surrogates(text: str) -> str:
    """Replace lone surrogates (from JSON escapes or undecodable argv bytes) with U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def paper_id(title: str, arxiv_id: str | None = None) -> str:
    if arxiv_id:
        return "arxiv:" + re.sub(r"v\d+$", "", arxiv_id.strip())
    key = normalise(title).casefold()
    return "t:" + hashlib.sha1(key.encode()).hexdigest()[:16]


# --- files ------------------------------------------------------------------------------


def discover(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into corpus files (sorted, hidden files ignored)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in CORPUS_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not found:
                raise CorpusError(
                    f"{p}: no corpus files found (expected *.txt listing pages or *.jsonl / "
                    "*.json records with 'title' and 'abstract')."
                )
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise CorpusError(f"{p}: no such file or folder.")
    return files


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise CorpusError(f"{path}: file is empty; expected paper titles and abstracts.")
    binary = CorpusError(
        f"{path}: looks binary (NUL bytes); expected a UTF-8 text or JSON Lines file.")
    head = data[:8192]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if b"\x00" in head:
            raise binary from None
        line = data[: e.start].count(b"\n") + 1
        raise CorpusError(
            f"{path}:{line}: not valid UTF-8 (byte {e.start}); re-save the file as UTF-8."
        ) from None
    # Valid UTF-8 with a stray NUL (a corrupt line, a crash's zero fill) is still text: its
    # bad lines are skipped, the good records kept. Mostly NULs (UTF-16, blobs) is not.
    if head.count(0) * 10 > len(head):
        raise binary
    return text


def read_file(path: Path) -> tuple[list[Paper], list[Skipped]]:
    """Read one corpus file; raises CorpusError when nothing in it is usable."""
    text = _read_text(path)
    head = text.lstrip()[:1]
    suffix = path.suffix.lower()
    is_text = suffix in TEXT_SUFFIXES or suffix == ""
    if suffix in JSON_SUFFIXES or (head and head in "{["):
        # A bad first record ("[[[", "garbage") must not cost a JSON Lines file its good
        # records, nor a "[Re] ..." title a listing page: fall back to the other readers.
        try:
            if head == "[":
                papers, skipped = _read_json_array(path, text)
            else:
                papers, skipped = _read_json_lines(path, text)
        except CorpusError:
            if not is_text and suffix not in (".jsonl", ".ndjson"):
                raise
            papers, skipped = [], []
            if not is_text:
                papers, skipped = _read_json_lines(path, text)
        if not papers and is_text:
            listed, listed_skipped = _read_listing(path, text)
            if listed or not skipped:
                papers, skipped = listed, listed_skipped
    elif is_text:
        papers, skipped = _read_listing(path, text)
    else:
        raise CorpusError(
            f"{path}: unknown format '{suffix}'; use .txt listing pages or .jsonl records."
        )
    if not papers:
        reasons = "; ".join(str(s) for s in skipped[:3])
        raise CorpusError(
            f"{path}: no papers found ({reasons or 'no title/abstract pairs'}). Expected "
            "title and abstract lines, or JSON objects with 'title' and 'abstract'."
        )
    return papers, skipped


# --- listing pages ----------------------------------------------------------------------


def _is_chrome(line: str) -> bool:
    low = line.casefold()
    return low in _CHROME or bool(_DATE.match(line)) or line.isdigit()


def _read_listing(path: Path, text: str) -> tuple[list[Paper], list[Skipped]]:
    lines: list[tuple[int, str]] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        line = normalise(raw)
        # One page has the button text glued to the first title: "SubscribeMarconi: ...".
        # A real title may start with the word ("Subscriber ..."): strip only a glued one.
        rest = line[len("Subscribe"):]
        if line.startswith("Subscribe") and len(rest) > 3 and not rest[0].islower() \
                and not rest[0].isspace():
            line = rest
        if line and not _is_chrome(line):
            lines.append((no, line))
    papers: list[Paper] = []
    skipped: list[Skipped] = []
    i = 0
    while i < len(lines):
        no, title = lines[i]
        nxt = lines[i + 1][1] if i + 1 < len(lines) else None
        if nxt is not None and len(title) <= MAX_TITLE_CHARS and _looks_like_abstract(nxt, title):
            papers.append(
                Paper(id=paper_id(title), title=title, abstract=nxt, sources=[path.name],
                      metadata={"line": no})
            )
            i += 2
            continue
        reason = (
            "title with no abstract after it (file truncated?)" if nxt is None
            else "line is neither a title followed by an abstract nor page chrome"
        )
        skipped.append(Skipped(path.name, no, f"{reason}: {title[:60]!r}"))
        i += 1
    return papers, skipped


def _looks_like_abstract(line: str, title: str) -> bool:
    return len(line) >= MIN_ABSTRACT_CHARS and len(line) > len(title) and " " in line


# --- JSON -------------------------------------------------------------------------------


def _read_json_lines(path: Path, text: str) -> tuple[list[Paper], list[Skipped]]:
    papers: list[Paper] = []
    skipped: list[Skipped] = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:  # ValueError: also ints over 4300 digits
            msg = getattr(e, "msg", None) or (
                "nested too deeply" if isinstance(e, RecursionError) else "number too long")
            skipped.append(Skipped(path.name, no, f"not valid JSON ({msg}); line truncated?"))
            continue
        paper, reason = _record_to_paper(obj, path.name, no)
        if paper:
            papers.append(paper)
        else:
            skipped.append(Skipped(path.name, no, reason))
    return papers, skipped


def _read_json_array(path: Path, text: str) -> tuple[list[Paper], list[Skipped]]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: also ints over 4300 digits
        raise CorpusError(
            f"{path}: not valid JSON ({getattr(e, 'msg', e)}); expected a list of "
            "{\"title\", \"abstract\"} objects or JSON Lines."
        ) from None
    if not isinstance(data, list):
        raise CorpusError(f"{path}: expected a JSON list of paper objects.")
    papers, skipped = [], []
    for i, obj in enumerate(data, start=1):
        paper, reason = _record_to_paper(obj, path.name, i)
        if paper:
            papers.append(paper)
        else:
            skipped.append(Skipped(path.name, i, reason.replace("line", "item")))
    return papers, skipped


def _record_to_paper(obj: object, source: str, no: int) -> tuple[Paper | None, str]:
    if not isinstance(obj, dict):
        return None, f"expected a JSON object, got {type(obj).__name__}"
    title, abstract = obj.get("title"), obj.get("abstract")
    for name, value in (("title", title), ("abstract", abstract)):
        if value is None:
            return None, f"no '{name}' field (expected {{\"title\": ..., \"abstract\": ...}})"
        if not isinstance(value, str):
            return None, f"'{name}' must be a string, got {type(value).__name__}"
        if not normalise(value):
            return None, f"'{name}' is empty"
    raw_id = obj.get("id")
    arxiv = raw_id.strip() if isinstance(raw_id, str) and _ARXIV_ID.match(raw_id.strip()) else None
    meta = {k: v for k, v in obj.items() if k not in ("title", "abstract")}
    meta["line"] = no
    return Paper(
        id=paper_id(title, arxiv), title=normalise(title), abstract=normalise(abstract),
        sources=[source], metadata=_json_safe(meta),
    ), ""


def _json_safe(meta: dict) -> dict:
    """Metadata must survive a JSON round trip (it is stored in the catalog)."""
    try:
        json.dumps(meta)
        return meta
    except (TypeError, ValueError, RecursionError):
        return {k: str(v)[:500] for k, v in meta.items()}


# --- all together -----------------------------------------------------------------------


def read_corpus(paths: Iterable[Path]) -> ReadResult:
    """Read every file; merge duplicates by id, keeping every file a paper came from."""
    result = ReadResult()
    merged: dict[str, Paper] = {}
    for path in discover(paths):
        try:
            papers, skipped = read_file(path)
        except CorpusError as e:
            result.failed_files.append(Skipped(path.name, None, str(e)))
            continue
        except OSError as e:
            result.failed_files.append(Skipped(path.name, None, f"{path}: cannot read ({e})"))
            continue
        result.files.append(str(path))
        result.skipped.extend(skipped)
        result.records += len(papers)
        for p in papers:
            if p.id in merged:
                result.duplicates += 1
                known = merged[p.id]
                known.sources.extend(s for s in p.sources if s not in known.sources)
            else:
                merged[p.id] = p
    result.papers = list(merged.values())
    return result


def iter_batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
