"""What the browser tests share: Debian Chromium, its flags, choosing extractive mode, and
serving the app on a free loopback port (tests/support/ui.py)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from playwright import sync_api

from tests.support.ui import free_port, serve  # noqa: F401  (the browser tests' server)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
QUESTION = "Which optimizers reduce memory use when training large language models?"
TIMEOUT_MS = 90_000


@contextlib.contextmanager
def chromium() -> Iterator[sync_api.Browser]:
    """Debian's Chromium under Playwright (a module fixture in each browser test)."""
    # `make test` installs Debian's chromium; without it a browser test fails loudly rather
    # than skipping. Checked here, not on import, so `make test-fast` (which deselects the
    # browser tests) still collects on a machine without it.
    if not Path(CHROMIUM).exists():
        raise RuntimeError("Chromium is not installed: run `make test` "
                           "(or apt-get install -y chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def use_extractive(page: sync_api.Page) -> sync_api.Locator:
    """Open "Answer options" and pick extractive mode (no LLM); returns the accordion."""
    accordion = page.locator("#pa-settings").get_by_text("Answer options", exact=True)
    accordion.click()
    page.locator("#pa-mode label", has_text="extractive").click()
    return accordion
