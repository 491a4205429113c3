"""Corpus readers: Hugging Face papers listing pages, JSON Lines, arXiv metadata snapshots.

Every reader yields Paper records and reports what it skipped (file, line, reason) instead
of failing the whole file, so good records still ingest next to bad ones: a line that is not
valid UTF-8, not valid JSON or larger than MAX_RECORD_BYTES is skipped alone.

The readers stream (iter_file / iter_corpus): a file is read a line at a time, so memory is
bounded by the longest accepted record, not by the file (the arXiv snapshot is several GB).
Only JSON array files are read whole (up to MAX_ARRAY_FILE_BYTES).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
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
# One record (a JSON line, a listing line): abstracts are a few KB, arXiv snapshot lines
# under 20 KB. A longer line is skipped unread (a 50 MB line once ran 15 min at 3.7 GB).
MAX_RECORD_BYTES = 1_000_000
# A JSON array cannot be streamed line by line; bigger ones must become JSON Lines.
MAX_ARRAY_FILE_BYTES = 100_000_000
_READ_CHUNK = 1 << 20


@dataclass
class Skipped:
    file: str
    line: int | None
    reason: str
    # The line could not be read as a record at all (bad UTF-8 or JSON, too large, wrong
    # fields): which paper it held is unknown, so --prune keeps that file's papers.
    unparsed: bool = False

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


def _sniff(path: Path) -> str:
    """The first non-blank character of a corpus file; CorpusError when it is empty or binary.

    Reads the head only (and, for a blank head, until something that is not whitespace).
    """
    with path.open("rb") as fh:
        head = fh.read(8192)
        first = head.lstrip()
        while not first:
            more = fh.read(_READ_CHUNK)
            if not more:
                raise CorpusError(
                    f"{path}: file is empty; expected paper titles and abstracts.")
            first = more.lstrip()
    binary = CorpusError(
        f"{path}: looks binary (NUL bytes); expected a UTF-8 text or JSON Lines file.")
    if head.startswith(codecs.BOM_UTF8):
        head = head[3:]
        first = head.lstrip() or first
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # Undecodable before the last few bytes (not just a character cut by the 8 KB read)
        # and with NULs: a blob, a UTF-16 file. Otherwise bad lines are skipped one by one.
        if e.start < len(head) - 4 and b"\x00" in head:
            raise binary from None
    # Valid UTF-8 with a stray NUL (a corrupt line, a crash's zero fill) is still text: its
    # bad lines are skipped, the good records kept. Mostly NULs (UTF-16, blobs) is not.
    if head.count(0) * 10 > len(head):
        raise binary
    return first[:1].decode("latin-1")


Line = tuple[int, "str | None", "Skipped | None"]


def _lines(path: Path, seen: Callable[[int], None] | None = None) -> Iterator[Line]:
    """(line number, text, None) per line, or (line number, None, Skipped) for a line that
    is not valid UTF-8 or longer than MAX_RECORD_BYTES (skipped unread). `seen(n)` is told
    how many bytes were read (progress)."""
    with path.open("rb") as fh:
        no = 0
        while True:
            raw = fh.readline(MAX_RECORD_BYTES + 1)
            if not raw:
                return
            no += 1
            size = len(raw)
            if size > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                del raw
                while True:  # the rest of the line, read and dropped a chunk at a time
                    more = fh.readline(_READ_CHUNK)
                    size += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                if seen:
                    seen(size)
                yield no, None, Skipped(
                    path.name, no, f"record of {size / 1e6:.1f} MB is over the limit of "
                    f"{MAX_RECORD_BYTES / 1e6:g} MB per record (split or shorten it)",
                    unparsed=True)
                continue
            if seen:
                seen(size)
            if no == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield no, None, Skipped(
                    path.name, no, f"not valid UTF-8 (byte {e.start} of the line); re-save "
                    "the file as UTF-8", unparsed=True)
                continue
            yield no, text.rstrip("\r\n"), None


Reader = Callable[[Path, "Callable[[int], None] | None"], Iterator["Paper | Skipped"]]


def _readers(path: Path, head: str) -> list[Reader]:
    """The readers to try for a file, in order: the first one that finds a paper wins."""
    suffix = path.suffix.lower()
    is_text = suffix in TEXT_SUFFIXES or suffix == ""
    if suffix in JSON_SUFFIXES or head in ("{", "["):
        # A bad first record ("[[[", "garbage") must not cost a JSON Lines file its good
        # records, nor a "[Re] ..." title a listing page: fall back to the other readers.
        readers: list[Reader] = []
        if head == "[":
            readers.append(_read_json_array)
            if suffix in (".jsonl", ".ndjson"):
                readers.append(_read_json_lines)
        else:
            readers.append(_read_json_lines)
        if is_text:
            readers.append(_read_listing)
        return readers
    if is_text:
        return [_read_listing]
    raise CorpusError(
        f"{path}: unknown format '{suffix}'; use .txt listing pages or .jsonl records."
    )


def check_file(path: Path) -> None:
    """What can be known about a file without reading it through: CorpusError when it is
    empty, binary or of an unknown format."""
    _readers(path, _sniff(path))


def iter_file(path: Path, seen: Callable[[int], None] | None = None
              ) -> Iterator[Paper | Skipped]:
    """Papers and skipped records of one file, streamed; CorpusError when nothing in it is
    usable (raised before any paper is yielded)."""
    readers = _readers(path, _sniff(path))
    first_skipped: list[Skipped] = []
    for reader in readers:
        # Probe: read until the first paper (a good file: its first record) without keeping
        # anything, so a fallback reader can still be chosen for a file with no paper.
        skipped: list[Skipped] = []
        try:
            for item in reader(path, None):
                if isinstance(item, Paper):
                    break
                if len(skipped) < 3:
                    skipped.append(item)
            else:
                first_skipped = first_skipped or skipped
                continue
        except CorpusError:
            if reader is _read_json_array and (path.suffix.lower() in TEXT_SUFFIXES
                                               or path.suffix.lower() in (".jsonl", ".ndjson",
                                                                          "")):
                continue
            raise
        yield from reader(path, seen)
        return
    reasons = "; ".join(str(s) for s in first_skipped[:3])
    raise CorpusError(
        f"{path}: no papers found ({reasons or 'no title/abstract pairs'}). Expected "
        "title and abstract lines, or JSON objects with 'title' and 'abstract'."
    )


def read_file(path: Path) -> tuple[list[Paper], list[Skipped]]:
    """Read one corpus file; raises CorpusError when nothing in it is usable."""
    papers: list[Paper] = []
    skipped: list[Skipped] = []
    for item in iter_file(path):
        (papers if isinstance(item, Paper) else skipped).append(item)
    return papers, skipped


# --- listing pages ----------------------------------------------------------------------


def _is_chrome(line: str) -> bool:
    low = line.casefold()
    return low in _CHROME or bool(_DATE.match(line)) or line.isdigit()


def _listing_lines(path: Path, seen) -> Iterator[tuple[int, str | None, Skipped | None]]:
    for no, text, skip in _lines(path, seen):
        if skip:
            yield no, None, skip
            continue
        # Other line breaks (form feed, U+2028...) split lines too, as str.splitlines does.
        for raw in text.splitlines() or [""]:
            line = normalise(raw)
            # One page has the button text glued to the first title: "SubscribeMarconi:...".
            # A real title may start with the word ("Subscriber ..."): strip a glued one only.
            rest = line[len("Subscribe"):]
            if line.startswith("Subscribe") and len(rest) > 3 and not rest[0].islower() \
                    and not rest[0].isspace():
                line = rest
            if line and not _is_chrome(line):
                yield no, line, None


def _read_listing(path: Path, seen=None) -> Iterator[Paper | Skipped]:
    """Title line, abstract line, title line...; page chrome ignored. One line of lookahead."""
    pending: tuple[int, str] | None = None
    for no, line, skip in _listing_lines(path, seen):
        if skip:
            yield skip
            continue
        if pending is None:
            pending = (no, line)
            continue
        tno, title = pending
        if len(title) <= MAX_TITLE_CHARS and _looks_like_abstract(line, title):
            yield Paper(id=paper_id(title), title=title, abstract=line, sources=[path.name],
                        metadata={"line": tno})
            pending = None
        else:
            yield Skipped(path.name, tno, "line is neither a title followed by an abstract "
                          f"nor page chrome: {title[:60]!r}")
            pending = (no, line)
    if pending is not None:
        yield Skipped(path.name, pending[0], "title with no abstract after it (file "
                      f"truncated?): {pending[1][:60]!r}")


def _looks_like_abstract(line: str, title: str) -> bool:
    return len(line) >= MIN_ABSTRACT_CHARS and len(line) > len(title) and " " in line


# --- JSON -------------------------------------------------------------------------------


def _read_json_lines(path: Path, seen=None) -> Iterator[Paper | Skipped]:
    for no, line, skip in _lines(path, seen):
        if skip:
            yield skip
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:  # ValueError: also ints over 4300 digits
            msg = getattr(e, "msg", None) or (
                "nested too deeply" if isinstance(e, RecursionError) else "number too long")
            yield Skipped(path.name, no, f"not valid JSON ({msg}); line truncated?",
                          unparsed=True)
            continue
        paper, reason = _record_to_paper(obj, path.name, no)
        yield paper if paper else Skipped(path.name, no, reason, unparsed=True)


def _read_json_array(path: Path, seen=None) -> Iterator[Paper | Skipped]:
    size = path.stat().st_size
    if size > MAX_ARRAY_FILE_BYTES:
        raise CorpusError(
            f"{path}: a JSON array of {size / 1e6:.0f} MB is read whole (limit "
            f"{MAX_ARRAY_FILE_BYTES / 1e6:g} MB); convert it to JSON Lines (one object per "
            "line), which is read a line at a time.")
    data = path.read_bytes()
    if seen:
        seen(len(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CorpusError(
            f"{path}:{line}: not valid UTF-8 (byte {e.start}); re-save the file as UTF-8."
        ) from None
    del data
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: also ints over 4300 digits
        raise CorpusError(
            f"{path}: not valid JSON ({getattr(e, 'msg', e)}); expected a list of "
            "{\"title\", \"abstract\"} objects or JSON Lines."
        ) from None
    if not isinstance(items, list):
        raise CorpusError(f"{path}: expected a JSON list of paper objects.")
    for i, obj in enumerate(items, start=1):
        paper, reason = _record_to_paper(obj, path.name, i)
        yield paper if paper else Skipped(path.name, i, reason.replace("line", "item"),
                                          unparsed=True)


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
    """Read every file; merge duplicates by id, keeping every file a paper came from.

    Holds every paper in memory: for tools and tests. Ingest streams (iter_corpus).
    """
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


@dataclass
class FileDone:
    """End of one file in iter_corpus: read (failed=None) or not usable at all."""

    path: Path
    failed: Skipped | None = None


def iter_corpus(files: Iterable[Path], seen: Callable[[int], None] | None = None
                ) -> Iterator[Paper | Skipped | FileDone]:
    """Papers and skipped records of every file, streamed, then a FileDone per file.

    A file that fails (CorpusError or OSError) yields no paper, only its FileDone(failed).
    Duplicates are not merged here: the consumer sees every record.
    """
    for path in files:
        try:
            yield from iter_file(path, seen)
        except CorpusError as e:
            yield FileDone(path, Skipped(path.name, None, str(e)))
            continue
        except OSError as e:
            yield FileDone(path, Skipped(path.name, None, f"{path}: cannot read ({e})"))
            continue
        yield FileDone(path)


def iter_batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
