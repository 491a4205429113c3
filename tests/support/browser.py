"""What the browser tests share: Debian Chromium, its flags, and serving the app on a free
loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from ui.app import build_app, launch_options

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# `make test` installs Debian's chromium; run bare, this fails loudly rather than skipping.
if not Path(CHROMIUM).exists():
    raise RuntimeError("Chromium is not installed: run `make test` "
                       "(or apt-get install -y chromium)")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
QUESTION = "Which optimizers reduce memory use when training large language models?"
TIMEOUT_MS = 90_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(settings, services) -> Iterator[str]:
    demo = build_app(settings, services)
    port = free_port()
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_options(settings, port=port))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()

