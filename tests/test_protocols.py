"""The Retriever protocol (assistant/protocols.py): the product's retriever and every eval
baseline implement it, with the protocol's parameters, so one Answerer runs on each."""

from __future__ import annotations

import inspect

import pytest

from assistant import protocols
from assistant.retrieve import Retriever
from assistant.settings import Settings
from evals.baselines import BM25, ConfigRetriever, Ours

METHODS = ("retrieve", "search", "papers", "texts_of")


class _Base:
    """Just enough of a Retriever to construct the wrappers (no index, no model)."""

    embedder = object()
    settings = Settings(_env_file=None)


def implementations():
    product = Retriever(index=None, embedder=_Base.embedder, settings=_Base.settings)
    base = _Base()
    return {
        "assistant.retrieve.Retriever": product,
        "ours": Ours(base),
        "bm25-only": ConfigRetriever(BM25, base, lambda q, k: []),
    }


@pytest.mark.parametrize("name", list(implementations()))
def test_implements_the_protocol(name):
    impl = implementations()[name]
    # Members looked up on the class (or the instance's own attributes), so that a property
    # is not evaluated: `vocabulary` reads the index, which these stand-ins do not have.
    for member in ("embedder", "settings", "vocabulary", *METHODS):
        assert hasattr(type(impl), member) or member in vars(impl), f"{name} lacks {member}"
    assert isinstance(inspect.getattr_static(impl, "vocabulary"), property)
    for method in METHODS:
        want = inspect.signature(getattr(protocols.Retriever, method)).parameters
        have = inspect.signature(getattr(impl, method)).parameters
        for param in list(want)[1:]:  # self
            assert param in have, f"{name}.{method} lacks {param!r}"
            if want[param].default is not inspect.Parameter.empty:
                assert have[param].default is not inspect.Parameter.empty, \
                    f"{name}.{method}: {param!r} must be optional"
