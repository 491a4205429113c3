"""Export for writing: BibTeX of the cited papers (parsed back with bibtexparser) and the
Markdown document titled after the app, from `assistant ask --export bib|md` and the UI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import bibtexparser
import pytest
from typer.testing import CliRunner

from assistant import links
from assistant.bibtex import bibtex, entry
from assistant.types import Answer, Citation, Paper

Q_MEMORY = "Which optimizers reduce memory use when training large language models?"
NASTY = "Braces {x} and 50% & $y_1$ #2 ~ ^ \\ end}"


def parse(text: str) -> list[dict]:
    parser = bibtexparser.bparser.BibTexParser(common_strings=True)
    return bibtexparser.loads(text, parser=parser).entries


def unescape(value: str) -> str:
    for tex, char in [(r"\textbraceleft{}", "{"), (r"\textbraceright{}", "}"),
                      (r"\textbackslash{}", "\\"), (r"\textasciitilde{}", "~"),
                      (r"\textasciicircum{}", "^"), (r"\&", "&"), (r"\%", "%"), (r"\$", "$"),
                      (r"\#", "#"), (r"\_", "_")]:
        value = value.replace(tex, char)
    return value


@pytest.fixture
def cli(monkeypatch, embedder):
    import assistant.embeddings
    from assistant import commands  # noqa: F401  (registers ask)
    from assistant.cli import app

    monkeypatch.setattr(assistant.embeddings, "make_embedder", lambda settings: embedder)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_every_known_field_and_hostile_text_survive_a_round_trip():
    paper = Paper(id="arxiv:2401.00001", title=NASTY, abstract="An {unbalanced abstract",
                  metadata={"authors": "A. One, B. Two and C. Three", "update_date": "2024-01-02",
                            "categories": "cs.LG stat.ML", "doi": "10.1000/xyz.1",
                            "venue": "NeurIPS"})
    url = links.url_for(paper)
    (got,) = parse(entry(paper, url))
    assert got["ENTRYTYPE"] == "article"
    assert unescape(got["title"]) == NASTY
    assert got["author"] == "A. One and B. Two and C. Three"
    assert got["year"] == "2024" and got["journal"] == "NeurIPS"
    assert got["eprint"] == "2401.00001" and got["archiveprefix"] == "arXiv"
    assert got["primaryclass"] == "cs.LG" and got["doi"] == "10.1000/xyz.1"
    assert got["url"] == "https://arxiv.org/abs/2401.00001"
    assert unescape(got["abstract"]) == "An {unbalanced abstract"


def test_title_search_urls_keep_their_query_and_keys_are_unique():
    papers = [Paper(id=f"t:{i}", title="Same Title Twice", abstract="x") for i in (1, 2)]
    answers = [Answer(question="q", answer="a [1] [2]", mode="extractive", citations=[
        Citation(n=i + 1, paper_id=p.id, title=p.title, url=links.url_for(p))
        for i, p in enumerate(papers)])]

    class Lookup:
        def papers(self, ids):
            return {p.id: p for p in papers if p.id in ids}

    entries = parse(bibtex(answers, Lookup()))
    assert len(entries) == 2 and entries[0]["ID"] != entries[1]["ID"]
    assert entries[0]["ENTRYTYPE"] == "misc"
    assert entries[0]["url"] == links.url_for(papers[0])
    assert "searchtype=title" in entries[0]["url"]
    assert bibtex([Answer(question="q", answer="none", mode="extractive")]) == ""


def test_ask_export_bib_has_one_entry_per_cited_paper(cli, seed_settings, seed_services):
    out = cli("ask", Q_MEMORY, "--mode", "extractive", "--export", "bib",
              "--data-dir", seed_settings.data_dir)
    assert out.exit_code == 0, out.output
    entries = parse(out.stdout)
    answer = seed_services.answerer.answer(Q_MEMORY, mode="extractive")
    cited = {c.paper_id: c.title for c in answer.citations}
    assert len(entries) == len(cited) >= 2
    assert [unescape(e["title"]) for e in entries] == list(cited.values())
    for e in entries:
        assert e["url"].startswith("https://arxiv.org/search/?")
        assert e["abstract"] and e["note"].startswith("Paper assistant id t:")


def test_ask_export_bib_from_arxiv_metadata(cli, tmp_path, make_settings, embedder):
    from assistant.index import ingest

    record = {"id": "2305.01234", "title": "ReefWatch: Detecting Coral Bleaching from Drones",
              "abstract": "Coral bleaching events are increasing. We present ReefWatch, a "
              "segmentation model that labels bleached coral in drone imagery of reefs.",
              "authors": "Ana Reef, Bo Coral and Cy Sea", "categories": "cs.CV q-bio.PE",
              "update_date": "2023-05-09"}
    corpus = tmp_path / "arxiv-metadata-oai-snapshot.json"
    corpus.write_text(json.dumps(record) + "\n")
    settings = make_settings(tmp_path / "data")
    ingest(settings, [corpus], embedder, progress=False)
    out = cli("ask", "How is coral bleaching detected from drone imagery?", "--mode",
              "extractive", "--export", "bib", "--data-dir", settings.data_dir)
    assert out.exit_code == 0, out.output
    (got,) = parse(out.stdout)
    assert got["title"] == record["title"]
    assert got["author"] == "Ana Reef and Bo Coral and Cy Sea"
    assert got["year"] == "2023" and got["eprint"] == "2305.01234"
    assert got["primaryclass"] == "cs.CV"
    assert got["url"] == "https://arxiv.org/abs/2305.01234"
    assert got["ID"] == "reef2023reefwatch"


def test_ask_export_md_is_titled_after_the_app_with_reference_urls(cli, seed_settings):
    out = cli("ask", Q_MEMORY, "--mode", "extractive", "--export", "md",
              "--data-dir", seed_settings.data_dir)
    assert out.exit_code == 0, out.output
    md = out.stdout
    assert md.startswith("# Paper assistant — conversation")
    refs = md.split("**References**")[1]
    assert refs.count("<https://arxiv.org/search/?") >= 2


def test_export_rejects_unknown_formats(cli, seed_settings):
    out = cli("ask", Q_MEMORY, "--export", "docx", "--data-dir", seed_settings.data_dir)
    assert out.exit_code == 2 and "bib or md" in out.output


def test_ui_writes_an_owner_only_bib_of_the_conversation(seed_settings, seed_services):
    from ui.app import ChatUI

    ui = ChatUI(seed_settings, seed_services)
    answer = seed_services.answerer.answer(Q_MEMORY, mode="extractive")
    path = ui.export_bib([answer])
    assert path.endswith(".bib")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    entries = parse(Path(path).read_text(encoding="utf-8"))
    assert [e["title"] for e in entries] == [c.title for c in answer.citations]
    assert Path(ui.export_bib([])).read_text(encoding="utf-8").startswith("%")
