"""ui.render: the pure functions behind the chat UI (no Gradio server involved)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

from assistant.types import Answer, Citation, Source, Usage
from ui import render

ABS_1 = ("Optimizer states dominate memory when training large models. We compress them to "
         "4-bit states with a new quantizer. Training matches 32-bit Adam on GPT-2.")
ABS_2 = ("Communication is the bottleneck of data-parallel training. We overlap gradient "
         "exchange with computation. Throughput improves by 30%.")
ABS_3 = "A study of learning-rate warmup for vision transformers."

EVIL_TITLE = 'Evil <img src=x onerror="alert(1)"> ![t](http://evil/title.png) ${x} {{y}}'
EVIL_ABSTRACT = (
    "Benign opening sentence. <script>alert(1)</script> Then ![x](http://evil/beacon.png) and "
    "[click me](javascript:alert(1)) plus <a href=\"http://evil/\">a link</a>. "
    "Tracking at https://evil.example/pixel.gif and www.evil.example today."
)

OUR_TAG = re.compile(r'<a class="cite" href="#src-\d+"(?: title="[^"<>]*")?>|</a>|'
                     r'<small class="facts">|</small>|<mark>|</mark>')


def source(n: int, title: str, abstract: str, *, cited: bool = False, score: float = 0.9,
           quotes: list[str] | None = None) -> Source:
    return Source(n=n, paper_id=f"p{n}", title=title, score=score, abstract=abstract,
                  cited=cited, quotes=quotes or [])


def cited_answer() -> Answer:
    s1 = source(1, "Memory Efficient Optimizers with 4-bit States", ABS_1, cited=True,
                score=0.96, quotes=["We compress them to 4-bit states with a new quantizer."])
    s2 = source(2, "Overlapping Communication in Data-Parallel Training", ABS_2, cited=True,
                score=0.91, quotes=["We overlap gradient exchange with computation."])
    s3 = source(3, "Warmup for Vision Transformers", ABS_3, score=0.52)
    return Answer(
        question="How do papers save memory and communication?",
        answer="Optimizer states can be stored in 4 bits [1]. Gradient exchange can overlap "
               "with computation [2]. Both help [1][2].",
        mode="extractive",
        citations=[Citation(n=1, paper_id="p1", title=s1.title),
                   Citation(n=2, paper_id="p2", title=s2.title)],
        sources=[s1, s2, s3],
        timings_ms={"total_ms": 1234.5},
    )


def text_of(html: str) -> str:
    """The text a browser shows, roughly: tags dropped, the entities we emit decoded."""
    import html as html_mod

    return html_mod.unescape(re.sub(r"<[^>]+>", "", html))


# --- chat markdown ------------------------------------------------------------------------


def test_valid_markers_become_links_invalid_ones_stay_text():
    answer = cited_answer()
    answer.answer = "One [1]. Two [2][7]. Range [1-2]. Bad [9]. Mixed [1, 9]."
    md = render.answer_to_markdown(answer)
    links = re.findall(r'<a class="cite" href="#src-(\d+)"', md)
    assert links == ["1", "2", "1", "2"]  # [1], [2], then [1-2] -> [1][2]
    assert 'title="Memory Efficient Optimizers with 4-bit States"' in md
    for bad in ("[7]", "[9]", "[1, 9]"):
        assert bad in text_of(md)  # shown as text...
    assert "#src-7" not in md and "#src-9" not in md  # ...never as a link


def test_answer_markdown_has_facts_line_with_mode_and_latency():
    md = render.answer_to_markdown(cited_answer())
    facts = re.search(r'<small class="facts">(.*)</small>', md).group(1)
    assert facts.startswith("extractive")
    assert "1.2 s" in facts


def test_facts_line_says_what_was_searched_when_the_spelling_was_fixed():
    plain = cited_answer()
    assert "searched for" not in render.facts_line(plain)
    fixed = plain.model_copy(update={"searched_for": "which optimizers cut memory use",
                                     "corrections": [("memmory", "memory")]})
    assert "searched for: which optimizers cut memory use" in render.facts_line(fixed)


def test_figures_the_lead_paper_does_not_state_are_said_up_front_and_exported():
    plain = cited_answer()
    assert 'class="premise"' not in render.answer_to_markdown(plain)
    premise = plain.model_copy(update={"unstated": ["65%", "12,000"]})
    html = render.answer_to_markdown(premise)
    note = "[1] does not state 65%, 12,000 from the question"
    assert html.index('class="premise"') < html.index('href="#src-1"')  # before the answer
    assert note in text_of(html)
    assert note in render.export_markdown([premise]).replace("\\", "")
    # An abstention has no lead paper to hold the figures against.
    gone = premise.model_copy(update={"abstained": True})
    assert 'class="premise"' not in render.answer_to_markdown(gone)


def test_streaming_markdown_links_known_sources_and_shows_cursor():
    answer = cited_answer()
    partial = render.streaming_markdown("Stored in 4 bits [1", answer.sources)
    assert partial.endswith("▍") and "#src-1" not in partial  # marker not closed yet
    partial = render.streaming_markdown("Stored in 4 bits [1].", answer.sources)
    assert 'href="#src-1"' in partial
    assert "Searching" in render.streaming_markdown("", [])


def test_chat_messages_alternate_user_and_assistant():
    a = cited_answer()
    messages = render.chat_messages([a, a])
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    assert messages[0]["content"] == a.question
    assert 'href="#src-1"' in messages[1]["content"]


def test_error_answer_is_a_readable_inline_message():
    a = cited_answer()
    error = Answer(question="q?", answer="⚠ The LLM endpoint failed with HTTP 500.\n\n"
                   "Retrieved papers:\n- [1] Memory Efficient Optimizers with 4-bit States",
                   mode="llm", error="The LLM endpoint failed with HTTP 500.",
                   sources=[s.model_copy(update={"cited": False, "quotes": []})
                            for s in a.sources], model="gpt-4o-mini")
    md = render.answer_to_markdown(error)
    assert md.startswith("⚠ The LLM endpoint failed with HTTP 500.")
    html = render.source_cards_html(error)
    assert "Retrieved papers" in html and 'id="src-1"' in html and "is-cited" not in html


# --- source cards --------------------------------------------------------------------------


def test_cards_for_cited_sources_with_quotes_marked_and_also_retrieved():
    html = render.source_cards_html(cited_answer())
    cited, also = html.split("Also retrieved")
    assert 'id="src-1"' in cited and 'id="src-2"' in cited and 'id="src-3"' not in cited
    assert 'id="src-3"' in also and "Warmup for Vision Transformers" in also
    assert "<mark>We compress them to 4-bit states with a new quantizer.</mark>" in cited
    assert "<mark>We overlap gradient exchange with computation.</mark>" in cited
    assert cited.count("<mark>") == 2
    assert "relevance 0.96" in cited
    assert 'class="src-card is-cited" id="src-1"' in cited


def test_no_answer_yet_shows_the_placeholder():
    assert render.source_cards_html(None) == render.EMPTY_SOURCES


def test_abstention_shows_closest_matches():
    a = cited_answer()
    abstained = Answer(question="Best sourdough recipe?", answer="The corpus does not cover "
                       "this question.", mode="extractive", abstained=True,
                       sources=[s.model_copy(update={"cited": False, "quotes": []})
                                for s in a.sources])
    html = render.source_cards_html(abstained)
    assert "Closest matches" in html and "Also retrieved" not in html
    assert all(f'id="src-{n}"' in html for n in (1, 2, 3))
    assert "<mark>" not in html
    assert "abstained" in render.facts_line(abstained)


def test_retrieved_panel_while_writing():
    a = cited_answer()
    html = render.retrieved_html(a.question, a.sources)
    assert "writing the answer" in html and 'id="src-3"' in html


def test_highlight_tolerates_whitespace_and_merges_overlaps():
    abstract = "First sentence here.  Second\nsentence  spans lines. Third one."
    out = render.highlight(abstract, ["Second sentence spans lines.", "sentence spans",
                                      "not in the abstract"])
    assert out.count("<mark>") == 1
    assert "<mark>Second\nsentence  spans lines.</mark>" in out


# --- export --------------------------------------------------------------------------------


def test_export_has_turns_and_reference_lists_with_titles():
    a = cited_answer()
    abstained = Answer(question="Best sourdough recipe?", answer="The corpus does not cover "
                       "this question.", mode="extractive", abstained=True)
    md = render.export_markdown([a, abstained], now=datetime(2025, 1, 2, 3, 4, tzinfo=UTC))
    assert md.startswith("# Paper assistant — conversation")  # titled after the app
    assert "2025-01-02 03:04 UTC · 2 questions" in md
    assert "## 1. How do papers save memory and communication?" in md
    assert "## 2. Best sourdough recipe?" in md
    refs = md.split("**References**")[1].split("## 2.")[0]
    assert "\\[1\\] Memory Efficient Optimizers with 4\\-bit States" not in refs  # '-' is fine
    assert "\\[1\\] Memory Efficient Optimizers with 4-bit States" in refs
    assert "\\[2\\] Overlapping Communication in Data\\-Parallel Training" not in refs
    assert "Overlapping Communication in Data-Parallel Training" in refs
    assert "Warmup for Vision Transformers" not in refs  # retrieved, not cited
    assert "> We compress them to 4-bit states with a new quantizer." in refs
    # Markers read [n] in the answer text, escaped so they can never open a link.
    assert "stored in 4 bits \\[1\\]" in md
    assert "No papers cited" in md.split("## 2.")[1]
    assert render.export_markdown([]).count("No questions yet") == 1


# --- facts ---------------------------------------------------------------------------------


def test_facts_line_with_tokens_latency_and_cost():
    a = Answer(question="q", answer="x [1]", mode="llm", model="gpt-4o-mini",
               timings_ms={"total_ms": 2345.0, "first_token_ms": 310.0},
               usage=Usage(prompt_tokens=1000, completion_tokens=200, total_tokens=1200))
    line = render.facts_line(a, priced=True)
    assert line.startswith("LLM · gpt-4o-mini")
    assert "2.3 s" in line and "first token 310 ms" in line
    assert "1,200 tokens (1,000 in, 200 out)" in line
    assert "≈$0.0003" in line  # 1000 * 0.15/1M + 200 * 0.60/1M = 0.00027
    assert "$" not in render.facts_line(a)  # not OpenAI's endpoint: no cost
    local = a.model_copy(update={"model": "llama3.1:8b"})
    assert "$" not in render.facts_line(local, priced=True)  # unknown model: no cost
    dated = a.model_copy(update={"model": "gpt-4o-mini-2024-07-18"})
    assert "≈$0.0003" in render.facts_line(dated, priced=True)
    extractive = Answer(question="q", answer="x", mode="extractive",
                        timings_ms={"total_ms": 80.0})
    assert render.facts_line(extractive) == "extractive · 80 ms"


def test_facts_line_reports_citation_check():
    a = Answer(question="q", answer="A claim. Another [1].", mode="llm", model="m",
               removed_citations=[7], flagged_sentences=["A claim."])
    line = render.facts_line(a)
    assert "removed invalid citation [7]" in line and "1 sentence without a citation" in line


# --- escaping -------------------------------------------------------------------------------


def evil_answer() -> Answer:
    evil = source(1, EVIL_TITLE, EVIL_ABSTRACT, cited=True,
                  quotes=["<script>alert(1)</script> Then ![x](http://evil/beacon.png) and "
                          "[click me](javascript:alert(1)) plus <a href=\"http://evil/\">a "
                          "link</a>."])
    other = source(2, "Plain <b>bold</b> title", "An abstract with <iframe src=x></iframe>.")
    # The answer quotes the abstract verbatim, as the extractive mode does.
    return Answer(question='<img src=x onerror="alert(2)"> ![q](http://evil/q.png)?',
                  answer=f"*{EVIL_TITLE}* [1]. {EVIL_ABSTRACT} [1]", mode="extractive",
                  citations=[Citation(n=1, paper_id="p1", title=EVIL_TITLE)],
                  sources=[evil, other])


def assert_inert(markup: str) -> None:
    """Chat Markdown: no tag but ours, no live Markdown link/image, no template syntax."""
    rest = OUR_TAG.sub("", markup)
    assert "<" not in rest, rest  # every tag left is one of ours
    assert "![" not in rest and "](" not in rest  # no Markdown image or link syntax
    assert "${" not in rest and "{{" not in rest  # nothing a template engine would expand
    # A URL outside a code span would be auto-linked by GFM.
    for url in re.findall(r"(?:https?|ftp)://\S+|www\.\S+", re.sub(r"`[^`]*`", "", rest)):
        raise AssertionError(f"live URL {url!r}")


class TagAudit(HTMLParser):
    """Collects every tag and attribute of a piece of HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(k, v or "") for k, v in attrs]


def test_source_cards_escape_html_and_markdown_from_sources():
    html = render.source_cards_html(evil_answer())
    audit = TagAudit()
    audit.feed(html)
    assert audit.tags <= {"div", "section", "article", "span", "p", "q", "details", "summary",
                          "mark", "i", "a"}, audit.tags  # only our structure: no script/img
    assert {k for k, _ in audit.attrs} <= {"class", "id", "title", "style", "href", "target",
                                           "rel"}
    # The only links are ours, out to a paper search, built from the title (url-encoded).
    hrefs = [v for k, v in audit.attrs if k == "href"]
    assert hrefs and all(h.startswith("https://www.semanticscholar.org/search?q=")
                         for h in hrefs), hrefs
    assert all(v == "noopener noreferrer" for k, v in audit.attrs if k == "rel")
    assert all(v.startswith("width:") for k, v in audit.attrs if k == "style")
    assert "&lt;script&gt;alert&#40;1&#41;&lt;/script&gt;" in html
    assert "![" not in html and "](" not in html and "${" not in html and "{{" not in html
    assert "<mark>" in html  # the quote is still found and highlighted, escaped inside
    shown = text_of(html)
    assert "<script>alert(1)</script>" in shown and "![x](http://evil/beacon.png)" in shown


def test_chat_message_escapes_everything_but_our_links():
    answer = evil_answer()
    md = render.answer_to_markdown(answer)
    assert_inert(md)
    assert len(re.findall(r"<a ", md)) == 2  # the two [1] links, nothing else
    assert "`http://evil/beacon.png`" in md  # bare URLs become code: never auto-linked
    assert "`www.evil.example`" in md
    user = render.user_markdown(answer.question)
    assert_inert(user)
    assert "<img" not in user and "&lt;img" in user


def test_export_escapes_sources_and_questions():
    md = render.export_markdown([evil_answer()])
    assert "<script" not in md and "<img" not in md and "<a href" not in md
    # Markdown syntax only escaped: "\\!\\[x\\](" renders as the text "![x](".
    assert "![" not in md and not re.search(r"(?<!\\)\]\(", md)
    assert "&lt;script&gt;" in md
    assert "`http://evil/beacon.png`" in md


def test_rendered_markdown_has_no_link_or_image_but_ours():
    """Through a real CommonMark renderer (raw HTML allowed, as in the chat)."""
    import markdown_it

    md = markdown_it.MarkdownIt("commonmark", {"html": True})
    for source_md in (render.answer_to_markdown(evil_answer()),
                      render.user_markdown(evil_answer().question),
                      render.export_markdown([evil_answer()])):
        audit = TagAudit()
        audit.feed(md.render(source_md))
        assert "img" not in audit.tags and "script" not in audit.tags
        assert "iframe" not in audit.tags
        hrefs = [v for k, v in audit.attrs if k in ("href", "src")]
        assert all(re.fullmatch(r"#src-\d+", h) for h in hrefs), hrefs
