"""Every paper opens: urls on search results, sources and citations (assistant/links.py),
from arXiv ids in the paper id or the JSONL metadata, else an arXiv title search. Over the
real seed index and a small JSONL index carrying arxiv_id / url / doi fields."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from assistant import links
from assistant.types import Paper

MARCONI = "Marconi: Prefix Caching for the Era of Hybrid LLMs"


@pytest.mark.parametrize(("paper_id", "meta", "expected"), [
    ("arxiv:2401.12345", {}, "https://arxiv.org/abs/2401.12345"),
    ("arxiv:hep-th/9901001", {}, "https://arxiv.org/abs/hep-th/9901001"),
    ("t:1", {"arxiv_id": "arXiv:2305.01234v2"}, "https://arxiv.org/abs/2305.01234"),
    ("t:1", {"arxiv_id": "2305.01234"}, "https://arxiv.org/abs/2305.01234"),
    ("t:1", {"url": "https://arxiv.org/pdf/2201.00042v3.pdf"}, "https://arxiv.org/abs/2201.00042"),
    ("t:1", {"url": "http://arxiv.org/abs/math.GT/0309136"},
     "https://arxiv.org/abs/math.GT/0309136"),
    ("t:1", {"doi": "10.48550/arXiv.2402.07777"}, "https://arxiv.org/abs/2402.07777"),
])
def test_known_arxiv_id_opens_the_abstract_page(paper_id, meta, expected):
    paper = Paper(id=paper_id, title="Some title", abstract="x", metadata=meta)
    assert links.url_for(paper) == expected


@pytest.mark.parametrize("meta", [
    {}, {"url": "https://openreview.net/forum?id=abc"}, {"doi": "10.1145/3600006.3613165"},
    {"arxiv_id": "not an id"}, {"arxiv_id": 12345}, {"url": "javascript:alert(1)//2401.12345"},
])
def test_without_an_arxiv_id_the_url_is_an_arxiv_title_search(meta):
    title = "Proving Absence of Reentrancy & <Friends> in Solidity"
    url = links.url_for(Paper(id="t:abc", title=title, abstract="x", metadata=meta))
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "arxiv.org", "/search/")
    assert parse_qs(parts.query) == {"query": [title], "searchtype": ["title"]}
    assert "<" not in url and " " not in url


def test_semantic_scholar_link_searches_the_title():
    url = links.semantic_scholar_url("A  B & C")
    assert url.startswith("https://www.semanticscholar.org/search?")
    assert parse_qs(urlsplit(url).query) == {"q": ["A B & C"]}


def test_attach_fills_every_source_and_citation_of_a_real_answer(seed_services):
    answer = seed_services.answerer.answer(
        "Which optimizers reduce memory use when training large language models?",
        mode="extractive")
    assert answer.citations and answer.sources
    assert all(s.url == "" for s in answer.sources)  # the answerer leaves urls to the edges
    links.attach(answer, seed_services.retriever)
    for item in [*answer.sources, *answer.citations]:
        assert item.url.startswith("https://arxiv.org/search/?"), item
        assert parse_qs(urlsplit(item.url).query)["query"] == [item.title]


def test_search_and_ask_json_carry_urls(seed_settings, embedder, monkeypatch):
    import assistant.embeddings
    from assistant import commands  # noqa: F401  (registers ask)
    from assistant.cli import app

    monkeypatch.setattr(assistant.embeddings, "make_embedder", lambda settings: embedder)
    runner = CliRunner()
    data = ["--data-dir", str(seed_settings.data_dir)]
    out = runner.invoke(app, ["search", "Marconi prefix caching hybrid LLMs", "--json",
                              "-k", "3", *data], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    results = json.loads(out.stdout)["results"]
    assert results[0]["title"] == MARCONI
    assert all(r["url"].startswith("https://arxiv.org/") for r in results)
    out = runner.invoke(app, ["ask", "How does prefix caching work for hybrid LLMs?",
                              "--json", "--mode", "extractive", *data],
                        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["citations"]
    for item in answer["citations"] + answer["sources"]:
        assert item["url"].startswith("https://arxiv.org/"), item


def test_jsonl_arxiv_fields_reach_search_results(tmp_path, make_settings, embedder,
                                                 small_papers):
    from assistant.index import ingest
    from assistant.services import Services

    small_papers[0]["arxiv_id"] = "arXiv:2305.01234v2"
    small_papers[1]["url"] = "https://arxiv.org/abs/2201.00042"
    small_papers[2]["doi"] = "10.48550/arXiv.2402.07777"
    corpus = tmp_path / "papers.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in small_papers))
    settings = make_settings(tmp_path / "data")
    ingest(settings, [corpus], embedder, progress=False)
    services = Services(settings, embedder=embedder)
    try:
        expected = {0: "https://arxiv.org/abs/2305.01234", 1: "https://arxiv.org/abs/2201.00042",
                    2: "https://arxiv.org/abs/2402.07777"}
        for i, url in expected.items():
            hits = links.attach_hits(services.retriever.search(small_papers[i]["query"], k=2),
                                     services.retriever)
            assert hits[0].title == small_papers[i]["title"]
            assert hits[0].url == url
        hits = links.attach_hits(services.retriever.search(small_papers[3]["query"], k=1),
                                 services.retriever)
        assert hits[0].url.startswith("https://arxiv.org/search/?")
    finally:
        services.index.close()
