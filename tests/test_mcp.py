"""`assistant mcp` driven through the official SDK's own stdio client: the real command in a
subprocess over the seed index; search finds the paper a query names, ask returns a cited
answer with sources and urls, get_paper returns a paper by id, and errors are tool errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

pytestmark = pytest.mark.slow

MARCONI = "Marconi: Prefix Caching for the Era of Hybrid LLMs"


def payload(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        data = result.structured_content
        return data.get("result", data) if set(data) == {"result"} else data
    return json.loads(result.content[0].text)


def test_mcp_server_over_stdio(seed_settings):
    exe = Path(sys.executable).parent / "assistant"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "OPENAI_"))}
    params = StdioServerParameters(
        command=str(exe), args=["mcp", "--data-dir", str(seed_settings.data_dir)], env=env,
        cwd=str(seed_settings.data_dir))

    async def session() -> dict:
        out: dict = {}
        async with Client(params, read_timeout_seconds=240) as client:
            tools = await client.list_tools()
            out["tools"] = {t.name for t in tools.tools}
            out["search"] = payload(await client.call_tool(
                "search_papers", {"query": "Marconi prefix caching hybrid LLMs", "k": 3}))
            out["ask"] = payload(await client.call_tool(
                "ask", {"question": "How does prefix caching work for hybrid LLMs?",
                        "mode": "extractive"}))
            pid = out["search"]["results"][0]["paper_id"]
            out["paper"] = payload(await client.call_tool("get_paper", {"paper_id": pid}))
            out["missing"] = await client.call_tool("get_paper", {"paper_id": "t:nope"})
            out["bad_mode"] = await client.call_tool("ask", {"question": "x", "mode": "poem"})
        return out

    out = anyio.run(session)
    assert out["tools"] == {"search_papers", "ask", "get_paper"}

    results = out["search"]["results"]
    assert len(results) == 3 and results[0]["title"] == MARCONI
    assert all(r["url"].startswith("https://arxiv.org/") for r in results)

    answer = out["ask"]
    assert not answer["abstained"] and answer["error"] is None
    assert "[1]" in answer["answer"] and answer["citations"]
    assert answer["citations"][0]["title"] == MARCONI
    assert all(c["url"].startswith("https://arxiv.org/") for c in answer["citations"])
    assert all(s["url"].startswith("https://") for s in answer["sources"])
    assert {c["n"] for c in answer["citations"]} <= {s["n"] for s in answer["sources"]}
    # Extractive (the default here): every sentence is checked and supported by construction.
    assert answer["claims"] and all(c["label"] == "supported" for c in answer["claims"])

    paper = out["paper"]
    assert paper["title"] == MARCONI and "Marconi" in paper["abstract"]
    assert paper["url"] == results[0]["url"]

    assert out["missing"].is_error and "t:nope" in out["missing"].content[0].text
    assert out["bad_mode"].is_error
