"""Corpus readers: HF listing pages (the seeds), JSON Lines, arXiv snapshots, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.corpus import (
    CORPUS_SUFFIXES,
    discover,
    normalise,
    paper_id,
    read_corpus,
    read_file,
)
from assistant.errors import CorpusError

SEED_COUNTS = {"000": 77, "001": 248, "002": 302, "003": 72, "004": 69}
CHROME = {
    "new",
    "subscribe",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "byak and the research community",
}
LONG_ABSTRACT = (
    "We study a problem that matters, propose a method that addresses it, and evaluate the "
    "method on three benchmarks where it improves on strong baselines by a clear margin."
)


def seed_file(seeds_dir: Path, prefix: str) -> Path:
    (path,) = seeds_dir.glob(f"{prefix}_*.txt")
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- the seed listing pages -------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "expected"), sorted(SEED_COUNTS.items()))
def test_each_seed_file_parses_to_its_paper_count(seeds_dir, prefix, expected):
    papers, skipped = read_file(seed_file(seeds_dir, prefix))
    assert len(papers) == expected
    assert skipped == []
    for p in papers:
        assert p.title and p.abstract
        assert p.sources == [seed_file(seeds_dir, prefix).name]
        assert len(p.abstract) > len(p.title)


def test_every_non_chrome_line_of_a_seed_file_is_a_title_or_abstract(seeds_dir):
    for path in sorted(seeds_dir.glob("*.txt")):
        papers, _ = read_file(path)
        used = {p.title for p in papers} | {p.abstract for p in papers}
        lines = [normalise(raw) for raw in path.read_text(encoding="utf-8").splitlines()]
        content = [
            line for line in lines if line in used or line.removeprefix("Subscribe") in used
        ]
        assert len(content) == 2 * len(papers)
        for line in lines:  # everything else is page chrome or a listing date
            if line and line not in content:
                assert line.casefold() in CHROME or line in {"Apr 23", "Jun 13", "Mar 12"}, line


def test_seed_corpus_merges_to_633_distinct_papers(seeds_dir):
    result = read_corpus([seeds_dir])
    assert len(result.papers) == 633
    assert result.records == sum(SEED_COUNTS.values())
    assert result.duplicates == result.records - 633
    assert len({p.id for p in result.papers}) == 633
    assert len(result.files) == 5
    assert result.skipped == [] and result.failed_files == []


def test_subscribe_glued_to_first_title_is_stripped(seeds_dir):
    papers, _ = read_file(seed_file(seeds_dir, "001"))
    assert papers[0].title == "Marconi: Prefix Caching for the Era of Hybrid LLMs"
    assert papers[0].abstract.startswith("Hybrid models that combine the language modeling")
    first_002, _ = read_file(seed_file(seeds_dir, "002"))
    assert first_002[0].title == "Matrix Calculus (for Machine Learning and Beyond)"
    titles = {p.title for p in read_corpus([seeds_dir]).papers}
    assert not any(t.startswith("Subscribe") for t in titles)


def test_page_chrome_never_becomes_a_title(seeds_dir):
    for p in read_corpus([seeds_dir]).papers:
        low = p.title.casefold()
        assert low not in CHROME
        assert "trending papers" not in low and "research community" not in low
        assert not p.title.isdigit()
        assert p.title not in {"Apr 23", "Jun 13", "Mar 12"}


def test_paper_in_several_files_keeps_every_source(seeds_dir):
    result = read_corpus([seeds_dir])
    by_title = {p.title: p for p in result.papers}
    distiller = by_title[
        "Distiller: A Systematic Study of Model Distillation Methods in Natural Language "
        "Processing"
    ]
    assert [s[:3] for s in distiller.sources] == ["000", "002", "004"]
    # Cross-check every merged paper against the per-file parses.
    per_file = {
        path.name: {p.id for p in read_file(path)[0]} for path in sorted(seeds_dir.glob("*.txt"))
    }
    multi = 0
    for p in result.papers:
        expected = [name for name, ids in per_file.items() if p.id in ids]
        assert p.sources == expected
        multi += len(expected) > 1
    assert multi > 50


def test_listing_with_glued_subscribe_but_title_starting_with_subscriber(tmp_path):
    path = tmp_path / "page.txt"
    path.write_text(
        "Subscribe\n"
        "Subscriber Churn Prediction with Survival Forests\n"
        f"{LONG_ABSTRACT}\n"
        "SubscribeGraph Sparsification at Scale\n"
        f"{LONG_ABSTRACT} A second sentence makes it different.\n",
        encoding="utf-8",
    )
    papers, skipped = read_file(path)
    assert [p.title for p in papers] == [
        "Subscriber Churn Prediction with Survival Forests",
        "Graph Sparsification at Scale",
    ]
    assert skipped == []


# --- JSON Lines and arXiv snapshots -------------------------------------------------------


def test_jsonl_keeps_other_fields_in_metadata(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"title": "  A   Paper\nTitle ", "abstract": LONG_ABSTRACT, "year": 2024,
         "venue": "NeurIPS", "tags": ["rl", "agents"], "url": "https://example.org/p"},
    ])
    (paper,), skipped = read_file(path)
    assert skipped == []
    assert paper.title == "A Paper Title"
    assert paper.abstract == LONG_ABSTRACT
    assert paper.sources == ["p.jsonl"]
    assert paper.metadata["year"] == 2024
    assert paper.metadata["venue"] == "NeurIPS"
    assert paper.metadata["tags"] == ["rl", "agents"]
    assert paper.metadata["url"] == "https://example.org/p"
    assert "title" not in paper.metadata and "abstract" not in paper.metadata
    assert paper.id == paper_id("A Paper Title")


def test_json_array_file(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(json.dumps([
        {"title": "Array Paper One", "abstract": LONG_ABSTRACT},
        {"title": "Array Paper Two", "abstract": LONG_ABSTRACT + " Two."},
        "not an object",
    ]), encoding="utf-8")
    papers, skipped = read_file(path)
    assert [p.title for p in papers] == ["Array Paper One", "Array Paper Two"]
    assert len(skipped) == 1 and skipped[0].line == 3
    assert "expected a JSON object" in skipped[0].reason


def test_arxiv_snapshot_format(tmp_path):
    records = [
        {
            "id": "0704.0001",
            "submitter": "Pavel Nadolsky",
            "authors": "C. Bal\\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan",
            "title": "Calculation of prompt diphoton production cross sections at Tevatron and\n"
                     "  LHC energies",
            "comments": "37 pages, 15 figures",
            "journal-ref": "Phys.Rev.D76:013009,2007",
            "doi": "10.1103/PhysRevD.76.013009",
            "categories": "hep-ph",
            "abstract": (
                "  A fully differential calculation in perturbative quantum chromodynamics is\n"
                "presented for the production of massive photon pairs at hadron colliders.\n"
                "All next-to-leading order perturbative contributions from\n"
                "quark-antiquark, gluon-(anti)quark, and gluon-gluon subprocesses are "
                "included.\n"
            ),
            "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
            "update_date": "2008-11-13",
            "authors_parsed": [["Balázs", "C.", ""], ["Berger", "E. L.", ""]],
        },
        {
            "id": "math/0702129v2", "authors": "A. Author", "categories": "math.AG math.NT",
            "title": "An old-style identifier", "abstract": LONG_ABSTRACT,
            "update_date": "2007-05-01",
        },
    ]
    path = write_jsonl(tmp_path / "arxiv-metadata-oai-snapshot.json", records)
    papers, skipped = read_file(path)
    assert skipped == []
    first, second = papers
    assert first.id == "arxiv:0704.0001"
    assert first.title == (
        "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    )
    assert "\n" not in first.abstract and "  " not in first.abstract
    assert first.abstract.startswith("A fully differential calculation")
    assert first.abstract.endswith("subprocesses are included.")
    assert first.metadata["authors"].startswith("C. Bal")
    assert first.metadata["categories"] == "hep-ph"
    assert first.metadata["update_date"] == "2008-11-13"
    assert first.metadata["authors_parsed"][0][0] == "Balázs"
    assert second.id == "arxiv:math/0702129"  # version suffix dropped


def test_ids_are_stable_across_whitespace_and_case():
    a = paper_id("Attention Is All You Need")
    assert a == paper_id("  attention   is all\tyou\nNEED ")
    assert a == paper_id("ATTENTION IS ALL YOU NEED")
    assert a != paper_id("Attention Is Not All You Need")
    assert a.startswith("t:")
    assert paper_id("whatever", "2101.00001v3") == paper_id("other", "2101.00001")


def test_same_title_in_two_files_with_different_spacing_merges(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"title": "Deep  Residual Learning", "abstract":
                                        LONG_ABSTRACT}])
    write_jsonl(tmp_path / "b.jsonl", [{"title": "deep residual\nlearning", "abstract":
                                        LONG_ABSTRACT}])
    result = read_corpus([tmp_path])
    assert len(result.papers) == 1
    assert result.duplicates == 1
    assert result.papers[0].sources == ["a.jsonl", "b.jsonl"]


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"   \n\n\t\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match="empty") as e:
        read_file(path)
    assert str(path) in str(e.value)


def test_binary_file(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(CorpusError, match="binary") as e:
        read_file(path)
    assert str(path) in str(e.value)


def test_non_utf8_line_is_skipped_with_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    text = f"A Paper Title\n{LONG_ABSTRACT}\nCafé Society Networks\n{LONG_ABSTRACT}\n"
    path.write_bytes(text.encode("latin-1"))
    # Only the undecodable line is lost (its paper with it); the good records stay.
    papers, skipped = read_file(path)
    assert [p.title for p in papers] == ["A Paper Title"]
    assert str(skipped[0]).startswith("latin1.txt:3: not valid UTF-8")
    assert skipped[0].unparsed
    # A file with nothing but undecodable lines names the file and the line.
    bad = tmp_path / "all-latin1.txt"
    bad.write_bytes("Café Society Networks\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="UTF-8") as e:
        read_file(bad)
    assert str(bad) in str(e.value) and "all-latin1.txt:1:" in str(e.value)


def test_truncated_last_jsonl_line_keeps_good_records(tmp_path):
    path = tmp_path / "cut.jsonl"
    good = [{"title": f"Good Paper {i}", "abstract": LONG_ABSTRACT} for i in range(3)]
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in good) + '{"title": "Cut Paper", "abstr',
        encoding="utf-8",
    )
    papers, skipped = read_file(path)
    assert [p.title for p in papers] == [f"Good Paper {i}" for i in range(3)]
    assert len(skipped) == 1
    assert skipped[0].line == 4 and skipped[0].file == "cut.jsonl"
    assert "not valid JSON" in skipped[0].reason
    assert str(skipped[0]).startswith("cut.jsonl:4:")


def test_jsonl_line_without_abstract_is_skipped(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"title": "Has Abstract", "abstract": LONG_ABSTRACT},
        {"title": "Lacks Abstract", "summary": LONG_ABSTRACT},
        {"title": "Empty Abstract", "abstract": "   "},
    ])
    papers, skipped = read_file(path)
    assert [p.title for p in papers] == ["Has Abstract"]
    assert [s.line for s in skipped] == [2, 3]
    assert all("'abstract'" in s.reason for s in skipped)


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"title": 42, "abstract": LONG_ABSTRACT}, "'title' must be a string, got int"),
        ({"title": "T", "abstract": ["a", "b"]}, "'abstract' must be a string, got list"),
        ({"title": None, "abstract": LONG_ABSTRACT}, "no 'title' field"),
        (["title", "abstract"], "expected a JSON object, got list"),
        ("just a string", "expected a JSON object, got str"),
    ],
)
def test_wrong_types_are_skipped_with_reason(tmp_path, record, needle):
    path = write_jsonl(tmp_path / "p.jsonl", [{"title": "Fine", "abstract": LONG_ABSTRACT},
                                              record])
    papers, skipped = read_file(path)
    assert [p.title for p in papers] == ["Fine"]
    assert len(skipped) == 1 and skipped[0].line == 2
    assert needle in skipped[0].reason


def test_file_with_only_bad_records_fails_with_reasons(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"title": "No abstract"}, {"abstract": "x"}])
    with pytest.raises(CorpusError) as e:
        read_file(path)
    msg = str(e.value)
    assert str(path) in msg and "no papers found" in msg and "'abstract'" in msg


def test_unknown_extension(tmp_path):
    path = tmp_path / "papers.csv"
    path.write_text(f"title,abstract\nA,{LONG_ABSTRACT}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"unknown format '\.csv'"):
        read_file(path)
    # Given explicitly to read_corpus, the file fails alone; nothing raises.
    result = read_corpus([path])
    assert result.papers == [] and result.files == []
    assert len(result.failed_files) == 1 and "papers.csv" in result.failed_files[0].reason


def test_directory_without_corpus_files(tmp_path):
    folder = tmp_path / "nothing-here"
    folder.mkdir()
    (folder / "notes.csv").write_text("a,b\n")
    (folder / ".hidden.jsonl").write_text(json.dumps({"title": "t", "abstract": "a"}))
    with pytest.raises(CorpusError) as e:
        discover([folder])
    assert str(folder) in str(e.value) and "no corpus files" in str(e.value)
    with pytest.raises(CorpusError, match="nothing-here"):
        read_corpus([folder])


def test_missing_path(tmp_path):
    with pytest.raises(CorpusError, match="no such file or folder"):
        discover([tmp_path / "absent.jsonl"])


def test_discover_expands_folders_and_ignores_hidden(tmp_path):
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "a.jsonl").write_text("x")
    (tmp_path / "skip.csv").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.md").write_text("x")
    found = discover([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in found] == ["a.jsonl", "b.txt", "sub/d.md"]
    assert all(f.suffix in CORPUS_SUFFIXES for f in found)


def test_listing_ending_with_title_without_abstract(tmp_path):
    path = tmp_path / "page.txt"
    path.write_text(
        f"Subscribe\nMar 12\nA Complete Paper\n{LONG_ABSTRACT}\n\n"
        "The Title That Lost Its Abstract\n",
        encoding="utf-8",
    )
    papers, skipped = read_file(path)
    assert [p.title for p in papers] == ["A Complete Paper"]
    assert len(skipped) == 1
    assert skipped[0].line == 6
    assert "no abstract" in skipped[0].reason
    assert "The Title That Lost Its Abstract" in skipped[0].reason


def test_bad_files_fail_alone_next_to_good_ones(tmp_path):
    write_jsonl(tmp_path / "good.jsonl", [{"title": "Good One", "abstract": LONG_ABSTRACT}])
    (tmp_path / "bad.jsonl").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty.txt").write_text("")
    result = read_corpus([tmp_path])
    assert [p.title for p in result.papers] == ["Good One"]
    assert sorted(s.file for s in result.failed_files) == ["bad.jsonl", "empty.txt"]
    assert all(s.file in s.reason for s in result.failed_files)
