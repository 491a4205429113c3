"""The fuzz properties (hypothesis) of tests/test_fuzz.py, shared with bench/reliability.py.

See tests/test_fuzz.py for what they check. Every property runs FUZZ_EXAMPLES cases (read
when this module is imported); FUZZ_CASES counts the cases actually run. The CLI properties
take a `cli_index` data dir (a pytest fixture in the tests, small_cli_index in the bench).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.corpus import MAX_TITLE_CHARS, read_corpus, read_file
from assistant.errors import CorpusError

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ_CASES: Counter[str] = Counter()
FUZZ_OUTCOMES: Counter[str] = Counter()  # what the CLI cases did (exit codes, real answers)

fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])

_SCRATCH = Path(tempfile.mkdtemp(prefix="fuzz-corpus-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
_names = itertools.count()

# Any code point, including control characters and lone surrogates (argv bytes that are not
# UTF-8 reach Python as surrogates; JSON "\ud800" escapes decode to them).
ANY_CHAR = st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Cs", "Co"])
ANY_TEXT = st.text(alphabet=ANY_CHAR, max_size=60)
PLAIN_TEXT = st.text(min_size=1, max_size=200)  # no surrogates: writable as UTF-8
SUFFIXES = st.sampled_from([".jsonl", ".json", ".ndjson", ".txt", ".md", "", ".csv", ".JSONL"])
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ANY_TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)), max_leaves=12)


def scratch_file(suffix: str, data: bytes) -> Path:
    path = _SCRATCH / f"case{next(_names)}{suffix}"
    path.write_bytes(data)
    return path


def check_read(path: Path) -> tuple[list, list] | None:
    """read_file must return usable records or raise CorpusError naming the file."""
    try:
        papers, skipped = read_file(path)
    except CorpusError as e:
        assert str(path) in str(e) or path.name in str(e), str(e)
        return None
    finally:
        path.unlink(missing_ok=True)
    assert papers
    for p in papers:
        assert p.title.strip() and p.abstract.strip()
        for text in (p.title, p.abstract, p.id):
            text.encode("utf-8")  # no lone surrogates: SQLite, hashing and tokenizers need UTF-8
        assert p.content_hash and p.sources == [path.name]
        json.loads(json.dumps(p.metadata))  # stored in the catalog as JSON
    for s in skipped:
        assert s.file == path.name and str(s).startswith(path.name)
        assert s.reason
    return papers, skipped


# --- corpus readers -----------------------------------------------------------------------


@fuzz
@given(data=st.binary(max_size=2048), suffix=SUFFIXES)
def test_random_bytes(data, suffix):
    FUZZ_CASES["corpus: random bytes"] += 1
    check_read(scratch_file(suffix, data))


@fuzz
@given(text=st.text(alphabet=st.characters(categories=["L", "N", "P", "Z", "Cc", "S"]),
                    max_size=3000),
       suffix=SUFFIXES)
def test_random_text(text, suffix):
    """Valid UTF-8 text with control characters: listing pages and JSON sniffing."""
    FUZZ_CASES["corpus: random text"] += 1
    result = check_read(scratch_file(suffix, text.encode("utf-8")))
    if result and suffix in (".txt", ".md", ""):
        for p in result[0]:
            assert len(p.title) <= MAX_TITLE_CHARS


def good_record(i: int, title: str, abstract: str) -> dict:
    return {"title": f"Paper {i} {title}", "abstract": f"Abstract {i} {abstract}"}


BAD_LINES = st.one_of(
    JSON_VALUES.map(lambda v: json.dumps(v)),  # lists, numbers, strings, dicts without fields
    st.fixed_dictionaries({"title": JSON_VALUES, "abstract": JSON_VALUES}).filter(
        lambda d: not (isinstance(d["title"], str) and isinstance(d["abstract"], str)
                       and d["title"].split() and d["abstract"].split())
    ).map(json.dumps),  # wrong types, empty fields
    st.just('{"title": "Truncated", "abstract": "cut mid'),
    st.integers(1, 200_000).map(lambda n: "[" * n),  # deep nesting
    st.integers(1, 50_000).map(lambda n: '{"title": "x", "abstract": "y", "m": ' + "[" * n),
    st.integers(4301, 20_000).map(lambda n: "9" * n),  # past the int digit limit
    st.integers(4301, 9_000).map(lambda n: '{"title": "t", "abstract": "a", "n": %s}' % ("1" * n)),
    st.integers(100_000, 2_000_000).map(lambda n: "x" * n),  # a huge line of garbage
    st.text(alphabet=st.characters(categories=["Cc", "P", "L"]), min_size=1, max_size=80)
    .filter(lambda s: s.strip() and len(s.splitlines()) == 1),
)


@pytest.mark.slow  # megabyte lines: seconds per run
@fuzz
@given(
    good=st.lists(st.tuples(ANY_TEXT, ANY_TEXT), min_size=1, max_size=6),
    bad=st.lists(BAD_LINES, max_size=6),
    order=st.randoms(use_true_random=False),
    extra=st.dictionaries(st.sampled_from(["id", "year", "authors", "venue", "x"]),
                          JSON_VALUES, max_size=3),
    huge_abstract=st.sampled_from([0, 0, 0, 300_000]),
)
def test_json_lines_keep_good_records_among_bad(good, bad, order, extra, huge_abstract):
    FUZZ_CASES["corpus: mixed JSON lines"] += 1
    records = [good_record(i, t, a) | extra for i, (t, a) in enumerate(good)]
    if huge_abstract:
        records[0]["abstract"] += " word" * (huge_abstract // 5)
    # ensure_ascii escapes control characters and lone surrogates as \uXXXX
    lines = [json.dumps(r) for r in records] + bad
    order.shuffle(lines)
    text = "\n".join(lines) + "\n"
    data = text.encode("utf-8")
    result = check_read(scratch_file(".jsonl", data))
    if result is None and data[:8192].count(0) * 10 > len(data[:8192]):
        return  # mostly NUL bytes: rejected as binary, rightly
    assert result is not None, "a file with good records was rejected"
    papers, skipped = result
    titles = {p.title.split(" ", 2)[1] for p in papers}
    assert titles == {str(i) for i in range(len(good))}, "a good record was lost"
    assert len(papers) == len(good)
    assert len(skipped) == sum(1 for line in bad if line.strip())


@pytest.mark.slow  # 100k-deep nesting: seconds per run
@fuzz
@given(items=st.lists(st.one_of(JSON_VALUES, st.builds(good_record, st.integers(0, 99),
                                                         ANY_TEXT, ANY_TEXT)), max_size=8),
       deep=st.sampled_from([0, 0, 100_000]))
def test_json_array_files(items, deep):
    FUZZ_CASES["corpus: JSON arrays"] += 1
    text = "[" * deep if deep else json.dumps(items)
    result = check_read(scratch_file(".json", text.encode("utf-8")))
    wanted = [x for x in items if isinstance(x, dict) and str(x.get("title", "")).startswith(
        "Paper ") and isinstance(x.get("abstract"), str)]
    if result is None:
        assert deep or not wanted
    else:
        assert len(result[0]) == len(wanted)


@fuzz
@given(bad=st.binary(min_size=1, max_size=512),
       suffix=st.sampled_from([".jsonl", ".json", ".ndjson", ".txt", ".md"]))
def test_read_corpus_keeps_good_files_next_to_bad(bad, suffix):
    FUZZ_CASES["corpus: folder with a bad file"] += 1
    folder = Path(tempfile.mkdtemp(dir=_SCRATCH))
    (folder / "good.jsonl").write_text(json.dumps(good_record(1, "x", "y")) + "\n")
    (folder / f"bad{suffix}").write_bytes(b"\x00" + bad)  # NUL: binary, unreadable
    result = read_corpus([folder])
    assert [p.title for p in result.papers] == ["Paper 1 x"]
    assert len(result.failed_files) == 1
    assert result.failed_files[0].file.startswith("bad")
    assert "bad" in result.failed_files[0].reason


# --- the CLI --------------------------------------------------------------------------------


@contextlib.contextmanager
def small_cli_index(root: Path, embedder) -> Iterator[Path]:
    """A small index under `root`; meanwhile CLI commands share `embedder` and see no
    ASSISTANT_* / OPENAI_* environment."""
    import assistant.embeddings
    from assistant import commands  # noqa: F401  (registers ask)
    from assistant.index import ingest
    from assistant.settings import Settings
    from tests.support.papers import SMALL_PAPERS

    corpus = root / "small.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in SMALL_PAPERS), encoding="utf-8")
    data_dir = root / "data"
    ingest(Settings(_env_file=None, data_dir=data_dir), [corpus], embedder, progress=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(assistant.embeddings, "make_embedder", lambda settings: embedder)
        for name in list(os.environ):
            if name.startswith(("ASSISTANT_", "OPENAI_")):
                mp.delenv(name)
        yield data_dir


def invoke(args: list[str]):
    from typer.testing import CliRunner

    from assistant.cli import app

    result = CliRunner().invoke(app, args)  # catch_exceptions: a crash becomes .exception
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args, repr(result.exception))
    assert "Traceback" not in result.output
    return result


OPTION_VALUES = st.one_of(
    ANY_TEXT,
    st.sampled_from(["0", "1", "3", "50", "51", "-1", " 5", "5 ", "1e3", "nan", "", "--json",
                     "convex", "rrf", "dense", "bm25", "llm", "extractive", "auto", "LLM",
                     "-k", "--help", "99999999999999999999999"]),
)
QUESTIONS = st.one_of(ANY_TEXT, st.sampled_from(
    ["spotting whitened corals with aerial photos from small drones",
     "shrinking genome read files without losing any information", " ", "[1]", "-"]))


@fuzz
@given(command=st.sampled_from(["search", "ask"]),
       option=st.sampled_from(["-k", "--top-k", "--fusion", "--mode"]),
       value=OPTION_VALUES, question=QUESTIONS, as_json=st.booleans())
def test_cli_option_values(cli_index, command, option, value, question, as_json):
    FUZZ_CASES["cli: option values"] += 1
    args = [command, question, option, value, "--data-dir", str(cli_index)]
    if as_json:
        args.append("--json")
    result = invoke(args)
    FUZZ_OUTCOMES[f"{command} {option}: exit {result.exit_code}"] += 1
    if result.exit_code == 0 and as_json and command == "search":
        out = json.loads(result.stdout.splitlines()[-1])
        assert set(out) == {"query", "results"}


BATCH_LINES = st.one_of(
    st.fixed_dictionaries({"query": ANY_TEXT}, optional={"id": JSON_VALUES}).map(json.dumps),
    st.fixed_dictionaries({"question": ANY_TEXT},
                          optional={"followup": JSON_VALUES, "id": JSON_VALUES}).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.text(alphabet=st.characters(categories=["L", "P", "Cc", "Zs"]), max_size=40),
    st.just("[" * 50_000),
    st.just('{"query": ' + "7" * 5000 + "}"),
    st.just('{"query": "\\ud800 coral drones \\udfff"}'),
    st.just('{"question": "\\udc80 battery health", "followup": "\\ud83d"}'),
)


@fuzz
@given(command=st.sampled_from(["search", "ask"]), lines=st.lists(BATCH_LINES, max_size=3),
       raw=st.binary(max_size=64))
def test_cli_batch_content(cli_index, command, lines, raw):
    FUZZ_CASES["cli: --batch content"] += 1
    data = "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + raw
    batch = scratch_file(".jsonl", data)
    requests = [r for r in io.StringIO(data.decode("utf-8", "replace"), newline=None)
                if r.strip()]  # how read_batch sees the file: universal newlines
    args = [command, "--batch", str(batch), "--data-dir", str(cli_index)]
    if command == "ask":
        args += ["--mode", "extractive"]
    try:
        result = invoke(args)
    finally:
        batch.unlink(missing_ok=True)
    assert result.exit_code == 0, result.output
    out = result.stdout.split("\n")
    assert out.pop() == ""
    assert result.stdout.splitlines() == out  # no U+2028 / U+0085 inside a record
    assert len(out) == len(requests), (requests, out)  # one result (or error) per request
    for line in out:
        record = json.loads(line)
        FUZZ_OUTCOMES[f"{command} --batch: " + (
            "error line" if set(record) == {"error"} else "answered")] += 1


PROPERTIES = [test_random_bytes, test_random_text, test_json_lines_keep_good_records_among_bad,
              test_json_array_files, test_read_corpus_keeps_good_files_next_to_bad,
              test_cli_option_values, test_cli_batch_content]
