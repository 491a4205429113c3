"""Text for people: LaTeX residue of the seed abstracts cleaned for display (stored text
kept), Markdown emphasis dropped for terminals, streamed or whole."""

from __future__ import annotations

import pytest

from assistant.display import PlainStream, clean_latex, plain
from assistant.types import Answer, Source
from ui import render


@pytest.mark.parametrize(("raw", "shown"), [
    ("up to 34.4times higher token hit rates", "up to 34.4× higher token hit rates"),
    ("Muon achieves sim!2times efficiency", "Muon achieves ∼2× efficiency"),
    ("Yet, as LLMs grow {in size}, the", "Yet, as LLMs grow in size, the"),
    ("bring 1.25sim1.56times wall clock time speedup", "bring 1.25∼1.56× wall clock time speedup"),
    ("Lion (Evo\\textbf{Lved Sign Momentum}).", "Lion (EvoLved Sign Momentum)."),
    ("in a fully {\\it single-loop} manner", "in a fully single-loop manner"),
    ("a regret of mathcal{O}left(Kright), where", "a regret of O(K), where"),
    ("by 43.1\\% and", "by 43.1% and"),
    ("volume by up to 5times, offers", "volume by up to 5×, offers"),
])
def test_latex_residue_is_cleaned(raw, shown):
    assert clean_latex(raw) == shown


@pytest.mark.parametrize("text", [
    "A simple, similar simulation times out sometimes.",
    "Turn left or right) at the corner; the left (old) road.",
    "x^{2} and y_{i} stay as written", "",
])
def test_ordinary_text_is_left_alone(text):
    assert clean_latex(text) == text


def test_cards_show_clean_text_and_the_stored_abstract_is_kept():
    abstract = ("Marconi achieves up to 34.4times higher token hit rates. "
                "Muon achieves sim!2times computational efficiency.")
    src = Source(n=1, paper_id="t:1", title="Marconi", score=0.9, abstract=abstract,
                 cited=True, quotes=["Marconi achieves up to 34.4times higher token hit rates."])
    answer = Answer(question="q", answer="Marconi achieves up to 34.4times higher hit rates [1].",
                    mode="extractive", sources=[src])
    cards = render.source_cards_html(answer)
    assert "<mark>Marconi achieves up to 34.4× higher token hit rates.</mark>" in cards
    assert "∼2× computational" in cards and "times" not in cards
    assert "34.4× higher hit rates" in render.answer_to_markdown(answer)
    assert src.abstract == abstract  # display only: the Answer keeps the stored text
    assert "34.4times" in answer.to_json_dict()["sources"][0]["abstract"]


def test_plain_drops_markdown_emphasis_and_headings():
    md = ("### Findings\nMost relevant: *Marconi* [1].\n\n- **Lion: Evolved Sign Momentum** — "
          "it uses __sign__ updates [2]; 2*3 stays.")
    assert plain(md) == ("Findings\nMost relevant: Marconi [1].\n\n- Lion: Evolved Sign "
                         "Momentum — it uses sign updates [2]; 2*3 stays.")


def test_plain_stream_equals_plain_whatever_the_token_cuts():
    text = "- **Lion: Evolved Sign Momentum** — it *reduces* memory [1].\n**Next** line [2]."
    for size in (1, 2, 3, 5, 8):
        stream = PlainStream()
        out = "".join(stream.feed(text[i:i + size]) for i in range(0, len(text), size))
        assert out + stream.flush() == plain(text)
    assert "*" not in plain(text)


def test_cli_prints_answers_without_asterisks(seed_settings, embedder, monkeypatch):
    from typer.testing import CliRunner

    import assistant.embeddings
    from assistant import commands  # noqa: F401  (registers ask)
    from assistant.cli import app

    monkeypatch.setattr(assistant.embeddings, "make_embedder", lambda settings: embedder)
    out = CliRunner().invoke(app, [
        "ask", "Which optimizers reduce memory use when training large language models?",
        "--mode", "extractive", "--data-dir", str(seed_settings.data_dir)],
        catch_exceptions=False)
    assert out.exit_code == 0, out.output
    body = out.stdout.split("References")[0]
    assert "[1]" in body and "**" not in body and "*" not in body.replace("2*", "")
    refs = out.stdout.split("References")[1]
    assert "https://arxiv.org/" in refs  # each reference prints its url
