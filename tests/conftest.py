"""Shared fixtures for the ingestion / index / retrieval tests (real Chroma, real MiniLM).

Fixtures
--------
``seeds_dir`` (session)       the bundled ``seeds/`` folder (5 HF listing pages, 633 papers).
``embedder`` (session)        the bundled MiniLM, loaded once; pass it to ``ingest`` or to
                              ``Services(settings, embedder=...)`` instead of loading another.
``hash_embedder``             a deterministic stand-in (tests/support/embedder.py): no model,
                              for the fast lane (make test-fast).
``seed_settings`` (session)   Settings whose data dir holds an index of all of ``seeds/``
                              (built once, ~25 s). Treat it as READ-ONLY: tests that write
                              build their own index with ``make_settings`` + ``small_corpus``.
``seed_services`` (session)   ``Services(seed_settings)`` sharing the session embedder.
``make_settings``             factory ``make_settings(data_dir, **overrides) -> Settings``:
                              hermetic settings (no ``.env``) for a fresh data dir.
``small_corpus``              path of a JSON Lines file with the papers of ``small_papers``.
``small_papers``              ``SMALL_PAPERS``: 7 dicts (title, abstract, year, venue, query),
                              unrelated topics; ``query`` is a paraphrase that finds the paper.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.settings import Settings
from tests.support.papers import SMALL_PAPERS

SEEDS_DIR = Path(__file__).resolve().parents[1] / "seeds"

def _settings(data_dir: Path, **overrides) -> Settings:
    """Settings for tests: no .env file, explicit data dir, seeds as default corpus."""
    fields = {"data_dir": data_dir, "corpus_paths": [SEEDS_DIR]} | overrides
    return Settings(_env_file=None, **fields)


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return SEEDS_DIR


# Fixtures that load the real model or build the seed index: a test using one is slow
# (marked so here, whatever its own markers say), and outside `make test-fast`.
MODEL_FIXTURES = {"embedder", "seed_settings", "seed_services"}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def hash_embedder():
    """A deterministic Embedder without a model (tests/support/embedder.py)."""
    from tests.support.embedder import HashEmbedder

    return HashEmbedder()


@pytest.fixture(scope="session")
def embedder():
    from assistant.embeddings import make_embedder

    emb = make_embedder(_settings(Path("unused")))
    assert emb.dim == 384  # loads the weights now, once for the whole session
    return emb


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory, embedder) -> Settings:
    from assistant.index import ingest

    settings = _settings(tmp_path_factory.mktemp("seed-index") / "data")
    report = ingest(settings, [SEEDS_DIR], embedder, progress=False)
    assert report.papers == 633 and not report.failed_files, report.summary()
    return settings


@pytest.fixture(scope="session")
def seed_services(seed_settings, embedder):
    from assistant.services import Services

    services = Services(seed_settings, embedder=embedder)
    yield services
    if "index" in services.__dict__:
        services.index.close()


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """``make_settings(data_dir, **overrides)``: hermetic Settings for a fresh data dir."""
    return _settings


@pytest.fixture
def small_papers() -> list[dict]:
    return [dict(p) for p in SMALL_PAPERS]


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A JSON Lines corpus of SMALL_PAPERS (title, abstract, year, venue, query fields)."""
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in SMALL_PAPERS), encoding="utf-8")
    return path
