"""assistant/recent.py: the small cache of question vectors."""

from __future__ import annotations

from assistant.recent import Recent


def test_a_value_is_made_once_and_the_least_recently_used_goes_first():
    made: list[str] = []
    cache: Recent[str] = Recent(2)

    def get(key: str) -> str:
        return cache.get(key, lambda: made.append(key) or key.upper())

    assert get("a") == "A" and get("b") == "B" and get("a") == "A"
    assert made == ["a", "b"]  # "a" came from the cache
    get("c")  # "b" is now the least recently used
    get("a")
    get("b")
    assert made == ["a", "b", "c", "b"]
