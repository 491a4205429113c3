"""The corpus as a tool for other assistants: a Model Context Protocol server over stdio.

    build_server(services) -> MCPServer    tools: search_papers, ask, get_paper
    serve(services)                        run it on stdin/stdout (`assistant mcp`)

Built with the official `mcp` SDK. Every paper in a reply carries its `url`
(assistant/links.py). Nothing but JSON-RPC goes to stdout: the SDK moves Python's own
sys.stdout aside while it serves.
"""

from __future__ import annotations

from typing import Any

from assistant import links
from assistant.errors import AssistantError
from assistant.settings import AnswerMode

INSTRUCTIONS = (
    "A corpus of paper abstracts. search_papers finds papers for a query; ask answers a "
    "question from them, every claim cited as [n] with the numbered sources (title, url); "
    "get_paper returns one paper's abstract and metadata by its paper_id.")


def build_server(services: Any):
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(name="paper-assistant", title="Paper assistant",
                       instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(title="Search papers")
    def search_papers(query: str, k: int = 5) -> dict[str, Any]:
        """Find the papers most relevant to a query (hybrid dense + keyword retrieval).

        Returns {"query", "results": [{"paper_id", "title", "score", "snippet", "url"}]}.
        """
        try:
            hits = services.retriever.search(query, k=max(1, min(int(k), 50)))
        except AssistantError as e:
            raise ToolError(str(e)) from None
        links.attach_hits(hits, services.retriever)
        return {"query": query, "results": [
            {"paper_id": h.paper_id, "title": h.title, "score": round(h.score, 4),
             "snippet": h.snippet, "url": h.url} for h in hits]}

    @server.tool(title="Ask the papers")
    def ask(question: str, mode: str | None = None) -> dict[str, Any]:
        """Answer a question from the corpus, every claim cited as [n].

        mode: "extractive" (quoted sentences, no LLM) or "llm" (needs an endpoint); default:
        the server's setting. Returns {"answer", "abstained", "abstain_reason", "mode",
        "citations": [{"n", "paper_id", "title", "url"}], "sources": [{"n", "paper_id",
        "title", "score", "cited", "url"}], "claims": [{"sentence", "citations", "support",
        "label", "evidence", "better", "note"}] (each sentence checked against the papers it
        cites), "error"}.
        """
        if mode not in (None, "", *(m.value for m in AnswerMode)):
            raise ToolError(f"mode must be llm or extractive, not {mode!r}")
        try:
            answer = services.answerer.answer(question, mode=mode or None)
        except AssistantError as e:
            raise ToolError(str(e)) from None
        links.attach(answer, services.retriever)
        return {
            "question": answer.question, "answer": answer.answer, "mode": answer.mode,
            "abstained": answer.abstained, "abstain_reason": answer.abstain_reason,
            "citations": [c.model_dump(mode="json") for c in answer.citations],
            "sources": [{"n": s.n, "paper_id": s.paper_id, "title": s.title,
                         "score": round(s.score, 4), "cited": s.cited, "url": s.url}
                        for s in answer.sources],
            "claims": [c.model_dump(mode="json") for c in answer.claims],
            "error": answer.error,
        }

    @server.tool(title="Get a paper")
    def get_paper(paper_id: str) -> dict[str, Any]:
        """One paper by its paper_id (as search_papers and ask return it): title, abstract,
        url and the metadata of the corpus file (authors, year... when present)."""
        try:
            paper = services.retriever.papers([paper_id]).get(paper_id)
        except AssistantError as e:
            raise ToolError(str(e)) from None
        if paper is None:
            raise ToolError(f"no indexed paper has the id {paper_id!r}; search_papers "
                            "returns ids.")
        return {"paper_id": paper.id, "title": paper.title, "abstract": paper.abstract,
                "url": links.url_for(paper), "metadata": paper.metadata}

    return server


def serve(services: Any) -> None:
    build_server(services).run("stdio")
